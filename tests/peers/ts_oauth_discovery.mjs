// OAuth discovery (and, with --call, the whole login) on the TypeScript SDK client
// (@modelcontextprotocol/sdk from .peers/node).
//
//   $PEERS_NODE tests/peers/ts_oauth_discovery.mjs --url URL [--call TOOL [--args JSON]] [--timeout S]
//
// Discovery, with the SDK's own functions from client/auth.js:
//   1. POST initialize to URL with no token: expect 401; extractWWWAuthenticateParams reads the
//      challenge (resource_metadata, scope, error).
//   2. discoverOAuthProtectedResourceMetadata(URL, {resourceMetadataUrl}) from the challenge's URL,
//      and again without it (the SDK's own well-known URL, path-aware first).
//   3. selectResourceURL: the RFC 8707 resource the SDK would send (it throws on a mismatch).
//   4. discoverAuthorizationServerMetadata(authorization_servers[0]), and discoverOAuthServerInfo(URL).
// With --call TOOL: the SDK's Client over StreamableHTTPClientTransport with an in-memory
// OAuthClientProvider. connect() gets 401, the SDK registers and redirects (we GET the
// authorization URL without following and keep the code), transport.finishAuth(code) exchanges
// it, and a new connection initializes, lists tools and calls TOOL.
//
// Prints ONE JSON object as the last stdout line; exit 0 on success, 1 with
// {"ok": false, "error": ...} on failure.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.PEERS_NODE_MODULES ?? path.join(here, "../../.peers/node/node_modules");
const sdk = (p) => import(pathToFileURL(path.join(nodeModules, "@modelcontextprotocol/sdk/dist/esm", p)).href);
const {
  discoverAuthorizationServerMetadata,
  discoverOAuthProtectedResourceMetadata,
  discoverOAuthServerInfo,
  extractWWWAuthenticateParams,
  selectResourceURL,
  UnauthorizedError,
} = await sdk("client/auth.js");
const { Client } = await sdk("client/index.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");
const { LATEST_PROTOCOL_VERSION } = await sdk("types.js");

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    call: { type: "string" },
    args: { type: "string", default: "{}" },
    timeout: { type: "string", default: "60" },
  },
});

// Every response the SDK's fetch saw: "METHOD /path STATUS" (+ " bearer" when it sent a token).
const http = [];
async function loggingFetch(url, init) {
  const res = await fetch(url, init);
  const headers = new Headers(init?.headers);
  http.push(`${init?.method ?? "GET"} ${new URL(url).pathname} ${res.status}${headers.has("authorization") ? " bearer" : ""}`);
  return res;
}

async function discover(url) {
  const init = {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "ts-oauth", version: "0" } },
  };
  const res = await loggingFetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify(init),
  });
  await res.body?.cancel();
  const challenge = extractWWWAuthenticateParams(res);
  const fromHeader = await discoverOAuthProtectedResourceMetadata(
    url,
    { resourceMetadataUrl: challenge.resourceMetadataUrl },
    loggingFetch,
  );
  const fromWellKnown = await discoverOAuthProtectedResourceMetadata(url, {}, loggingFetch);
  const resource = await selectResourceURL(url, {}, fromHeader);
  const asUrl = fromHeader.authorization_servers?.[0];
  const asMetadata = asUrl ? await discoverAuthorizationServerMetadata(asUrl, { fetchFn: loggingFetch }) : undefined;
  const info = await discoverOAuthServerInfo(url, { fetchFn: loggingFetch });
  return {
    unauthenticated_status: res.status,
    www_authenticate: res.headers.get("www-authenticate"),
    challenge: {
      resource_metadata: challenge.resourceMetadataUrl?.href ?? null,
      scope: challenge.scope ?? null,
      error: challenge.error ?? null,
    },
    resource_metadata: fromHeader,
    resource_metadata_well_known: fromWellKnown,
    selected_resource: resource?.href ?? null,
    authorization_server: asUrl ?? null,
    authorization_server_metadata: asMetadata ?? null,
    server_info: {
      authorization_server_url: String(info.authorizationServerUrl),
      issuer: info.authorizationServerMetadata?.issuer ?? null,
      resource: info.resourceMetadata?.resource ?? null,
    },
  };
}

// An OAuthClientProvider that keeps everything in memory and plays the browser itself.
class MemoryProvider {
  constructor() {
    this.client = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.code = undefined;
    this.authorizeParams = undefined;
    this.tokensSaved = [];
  }
  get redirectUrl() {
    return "http://127.0.0.1:9/callback";
  }
  get clientMetadata() {
    return {
      client_name: "mcp-edge ts oauth test",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
    this.tokensSaved.push(tokens);
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(authorizationUrl) {
    this.authorizeParams = Object.fromEntries(authorizationUrl.searchParams);
    const res = await loggingFetch(authorizationUrl.href, { redirect: "manual" });
    await res.body?.cancel();
    const location = res.headers.get("location");
    if (res.status !== 302 || !location) throw new Error(`authorization endpoint answered ${res.status}`);
    const q = new URL(location).searchParams;
    if (q.get("error")) throw new Error(`authorization failed: ${location}`);
    if (q.get("state") !== (this.authorizeParams.state ?? "")) throw new Error("state mismatch");
    this.code = q.get("code");
  }
}

const text = (r) => (r.content ?? []).map((c) => c.text ?? "").join("");
const claims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

async function login(url, tool, toolArgs) {
  const provider = new MemoryProvider();
  const first = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: loggingFetch });
  try {
    await new Client({ name: "ts-oauth", version: "0" }).connect(first);
    throw new Error("connected without logging in");
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  if (!provider.code) throw new Error("the SDK never redirected to the authorization endpoint");
  await first.finishAuth(provider.code);
  await first.close();
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: loggingFetch });
  const client = new Client({ name: "ts-oauth", version: "0" });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const r = await client.callTool({ name: tool, arguments: toolArgs });
  await client.close();
  return {
    authorize_params: provider.authorizeParams,
    tools_first_page: tools.length,
    call: { text: text(r), is_error: Boolean(r.isError) },
    tokens: provider.tokensSaved.length,
    token_claims: provider.tokensSaved.map((t) => claims(t.access_token)),
  };
}

async function main() {
  const out = { ok: true, ...(await discover(args.url)) };
  if (args.call) out.login = await login(args.url, args.call, JSON.parse(args.args));
  out.http = http;
  return out;
}

const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: `timed out after ${args.timeout}s`, http }));
  process.exit(1);
}, Number(args.timeout) * 1000);
try {
  const out = await main();
  clearTimeout(timer);
  console.log(JSON.stringify(out));
  process.exit(0);
} catch (e) {
  clearTimeout(timer);
  console.error(e?.stack ?? String(e));
  console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e), http }));
  process.exit(1);
}
