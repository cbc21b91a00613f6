// Scenario runner on the TypeScript SDK client (@modelcontextprotocol/sdk from .peers/node).
//
//   $PEERS_NODE tests/peers/ts_client.mjs --url URL [--scenario basic|progress|many_calls|terminate|tool|members]
//       [--transport streamable-http|sse] [--tool NAME --args JSON] [--count N] [--timeout S]
//
// Legacy era only (SDK 1.x). Prints ONE JSON object as the last stdout line; exit 0 on success,
// 1 with {"ok": false, "error": ...} on failure. Same output shapes as the Python clients.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.PEERS_NODE_MODULES ?? path.join(here, "../../.peers/node/node_modules");
const sdk = (p) => import(pathToFileURL(path.join(nodeModules, "@modelcontextprotocol/sdk/dist/esm", p)).href);
const { Client } = await sdk("client/index.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");
const { SSEClientTransport } = await sdk("client/sse.js");

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    scenario: { type: "string", default: "basic" },
    transport: { type: "string", default: "streamable-http" },
    tool: { type: "string" },
    args: { type: "string", default: "{}" },
    count: { type: "string", default: "20" },
    timeout: { type: "string", default: "60" },
  },
});

// Everything the client's fetch saw, and the session id it was given.
const http = [];
let sessionId = null;
async function loggingFetch(url, init) {
  const res = await fetch(url, init);
  const method = init?.method ?? "GET";
  const ctype = (res.headers.get("content-type") ?? "-").split(";")[0];
  http.push(`${method} ${res.status} ${ctype}`);
  const sid = res.headers.get("mcp-session-id");
  if (sid && !sessionId) sessionId = sid;
  if (!sessionId && method === "POST") {
    const q = new URL(url).searchParams; // legacy SSE: the endpoint URL carries the session
    sessionId = q.get("sessionId") ?? q.get("session_id");
  }
  return res;
}

const text = (r) => (r.content ?? []).map((c) => c.text ?? "").join("");

async function listAll(fn, key) {
  const items = [];
  let pages = 0;
  let cursor;
  do {
    const r = await fn(cursor ? { cursor } : undefined);
    pages += 1;
    items.push(...r[key]);
    cursor = r.nextCursor;
  } while (cursor && pages < 50);
  return { items, pages };
}

async function listTools(c) {
  const { items, pages } = await listAll((p) => c.listTools(p), "tools");
  return { tools: Object.fromEntries(items.map((t) => [t.name, t.inputSchema ?? {}])), pages };
}

async function call(c, name, a = {}, onprogress) {
  const r = await c.callTool({ name, arguments: a }, undefined, onprogress ? { onprogress } : undefined);
  if (r.isError) throw new Error(`tool ${name} returned isError: ${text(r)}`);
  return text(r);
}

const echoArgs = (tools, s) => {
  const props = tools.echo?.properties ?? {};
  return "message" in props && !("text" in props) ? { message: s } : { text: s };
};
const whoami = async (c, tools) => ("whoami" in tools ? call(c, "whoami") : c.getServerVersion()?.name);

const scenarios = {
  async basic(c) {
    const { tools, pages } = await listTools(c);
    const out = { tools_count: Object.keys(tools).length, pages, tool_names: Object.keys(tools).sort().slice(0, 10) };
    out.echo = await call(c, "echo", echoArgs(tools, "hello proxy"));
    const uris = (await listAll((p) => c.listResources(p), "resources")).items.map((r) => r.uri);
    const uri = uris.includes("res://greeting") || !uris.length ? "res://greeting" : uris[0];
    out.resource_uri = uri;
    out.resource_text = ((await c.readResource({ uri })).contents[0]?.text ?? "").slice(0, 200);
    const names = (await listAll((p) => c.listPrompts(p), "prompts")).items.map((p) => p.name);
    const pname = names.includes("greet") || !names.length ? "greet" : names.includes("simple-prompt") ? "simple-prompt" : names[0];
    const gp = await c.getPrompt({ name: pname, arguments: pname === "greet" ? { name: "proxy" } : {} });
    out.prompt_name = pname;
    out.prompt_text = gp.messages[0]?.content?.text ?? null;
    out.server = await whoami(c, tools);
    return out;
  },
  async progress(c) {
    const { tools } = await listTools(c);
    let [name, targs] = args.tool
      ? [args.tool, JSON.parse(args.args)]
      : "slow_progress" in tools
        ? ["slow_progress", { steps: 3, delay_s: 0.5 }]
        : ["trigger-long-running-operation", { duration: 1.5, steps: 3 }];
    const events = [];
    const t0 = performance.now();
    const secs = () => Math.round(performance.now() - t0) / 1000;
    const result = await call(c, name, targs, (p) =>
      events.push({ t: secs(), progress: p.progress, total: p.total ?? null, message: p.message ?? null }),
    );
    return { tool: name, arguments: targs, progress: events, result_t: secs(), result };
  },
  async many_calls(c) {
    const { tools } = await listTools(c);
    const names = [];
    let echoes = 0;
    const n = Number(args.count);
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) names.push(await whoami(c, tools));
      else {
        const got = await call(c, "echo", echoArgs(tools, `msg ${i}`));
        if (!got.includes(`msg ${i}`)) throw new Error(`echo ${i}: got ${JSON.stringify(got)}`);
        echoes += 1;
      }
    }
    return { calls: n, names, echoes };
  },
  async tool(c) {
    if (!args.tool) throw new Error("--scenario tool needs --tool NAME");
    const r = await c.callTool({ name: args.tool, arguments: JSON.parse(args.args) });
    return { tool: args.tool, text: text(r), is_error: Boolean(r.isError) };
  },
  // A federated route: every list, then one prompt got and one resource read per member
  // (grouped by the prefix before `_` or `+`), as the Python clients' `members` scenario.
  async members(c) {
    const { tools, pages: toolPages } = await listTools(c);
    const prompts = await listAll((p) => c.listPrompts(p), "prompts");
    const resources = await listAll((p) => c.listResources(p), "resources");
    const templates = (await listAll((p) => c.listResourceTemplates(p), "resourceTemplates")).items;
    const out = {
      pages: { tools: toolPages, prompts: prompts.pages, resources: resources.pages },
      tool_names: Object.keys(tools).sort(),
      prompt_names: prompts.items.map((p) => p.name),
      resource_uris: resources.items.map((r) => r.uri),
      template_uris: templates.map((t) => t.uriTemplate),
      got: {},
      read: {},
    };
    const required = (p) => (p.arguments ?? []).filter((a) => a.required).map((a) => a.name);
    for (const p of [...prompts.items].sort((x, y) => required(x).length - required(y).length)) {
      const prefix = p.name.split("_")[0];
      if (prefix in out.got) continue;
      const gp = await c.getPrompt({ name: p.name, arguments: Object.fromEntries(required(p).map((a) => [a, "proxy"])) });
      out.got[prefix] = { name: p.name, text: gp.messages[0]?.content?.text ?? null };
    }
    for (const uri of out.resource_uris) {
      const prefix = uri.split("+")[0];
      if (prefix in out.read) continue;
      const rr = await c.readResource({ uri });
      out.read[prefix] = { uri, content_uri: rr.contents[0]?.uri, text: (rr.contents[0]?.text ?? "").slice(0, 200) };
    }
    return out;
  },
  async terminate(c) {
    const { tools } = await listTools(c);
    return { server: await whoami(c, tools) };
  },
};

async function main() {
  const fn = scenarios[args.scenario];
  if (!args.url || !fn) throw new Error(`need --url and one of --scenario ${Object.keys(scenarios).join("|")}`);
  const url = new URL(args.url);
  const transport =
    args.transport === "sse"
      ? new SSEClientTransport(url, { fetch: loggingFetch })
      : new StreamableHTTPClientTransport(url, { fetch: loggingFetch });
  let negotiated = null; // the SSE transport keeps no readable copy of the negotiated version
  const setVersion = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (v) => {
    negotiated = v;
    setVersion?.(v);
  };
  const client = new Client({ name: "mcp-edge-ts-client", version: "1.0.0" });
  await client.connect(transport);
  const out = { ok: true, scenario: args.scenario, transport: args.transport };
  out.protocol_version = negotiated;
  out.server_info = client.getServerVersion()?.name ?? null;
  Object.assign(out, await fn(client));
  if (args.scenario === "terminate" && args.transport !== "sse") {
    await transport.terminateSession(); // DELETE with Mcp-Session-Id
    out.delete_status = Number(http.findLast((e) => e.startsWith("DELETE "))?.split(" ")[1]) || null;
    const r = await fetch(url, {
      method: "POST",
      headers: {
        accept: "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-session-id": sessionId,
        "mcp-protocol-version": out.protocol_version,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "tools/list" }),
    });
    out.after_delete_status = r.status;
  }
  await client.close();
  out.session_id = sessionId;
  out.http = http;
  return out;
}

const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, scenario: args.scenario, error: `timeout after ${args.timeout}s` }));
  process.exit(1);
}, Number(args.timeout) * 1000);
try {
  console.log(JSON.stringify(await main()));
  clearTimeout(timer);
  process.exit(0);
} catch (e) {
  console.error(e);
  console.log(JSON.stringify({ ok: false, scenario: args.scenario, error: String(e?.message ?? e), code: e?.code ?? null }));
  process.exit(1);
}
