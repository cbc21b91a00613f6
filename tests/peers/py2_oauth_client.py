"""An MCP client that logs in with OAuth first, on the Python SDK 2.x (run with .peers/py2/bin/python).

    py2_oauth_client.py --url URL [--tool NAME --args JSON] [--refresh] [--timeout S]

Uses the SDK's own `mcp.client.auth.OAuthClientProvider` as the httpx2 auth of the streamable
HTTP client: the first request gets 401, the SDK reads `resource_metadata` from the challenge,
fetches the protected resource metadata, then the authorization server's metadata, registers
(RFC 7591), authorizes with PKCE and `resource`, exchanges the code, and retries with the token.
No browser: `redirect_handler` GETs the authorization URL itself (no redirects followed) and
keeps the `Location`; `callback_handler` hands its code, state and iss back to the SDK. Tokens
live in memory. Then: initialize, tools/list (all pages), tools/call NAME ARGS. With --refresh,
the access token is then declared expired and the tool is called again, so the SDK refreshes it
(grant_type=refresh_token) before that call.

Prints ONE JSON object as the last stdout line, exit 0 on success, 1 on failure:
  ok, protocol_version, server_info, tools (names), call ({text, is_error}),
  refreshed_call (with --refresh), tokens (access tokens the SDK stored, in order),
  token_claims (the claims of each, decoded without verification: the proxy verifies),
  http (one string per response the client's HTTP library saw: "METHOD PATH STATUS" plus
  " bearer" when the request carried an Authorization header).
"""

import argparse
import base64
import json
import os
import sys
import time
import traceback
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2

from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _scenarios  # noqa: E402
from _peerutil import emit, fail  # noqa: E402

REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the redirect is read, not followed


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory; keeps every token it was given."""

    def __init__(self):
        self.tokens: list[OAuthToken] = []
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens[-1] if self.tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Browser:
    """Plays the user agent: follows nothing, remembers where the authorization server sent it."""

    def __init__(self):
        self.location: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10.0) as c:
            r = await c.get(authorization_url)
        if r.status_code not in (302, 303) or "location" not in r.headers:
            raise RuntimeError(f"authorization endpoint answered {r.status_code}: {r.text[:300]}")
        self.location = r.headers["location"]

    async def callback(self) -> AuthorizationCodeResult:
        if self.location is None:
            raise RuntimeError("no redirect captured")
        q = {k: v[0] for k, v in parse_qs(urlsplit(self.location).query).items()}
        if "error" in q:
            raise RuntimeError(f"authorization failed: {q}")
        return AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def run(args, http_log: list[str]) -> dict:
    async def on_response(response):
        req = response.request
        entry = f"{req.method} {req.url.path} {response.status_code}"
        if req.headers.get("authorization"):
            entry += " bearer"
        http_log.append(entry)

    storage, browser = MemoryStorage(), Browser()
    metadata = OAuthClientMetadata(
        client_name="mcp-edge oauth test",
        redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )
    out: dict = {"ok": True}
    http = httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30.0, read=120.0),
                              event_hooks={"response": [on_response]})
    try:
        with anyio.fail_after(args.timeout):
            async with Client(streamable_http_client(args.url, http_client=http), mode="legacy", cache=None) as client:
                out["protocol_version"] = client.protocol_version
                out["server_info"] = client.server_info.name if client.server_info else None
                tools, _ = await _scenarios.list_tools(client)
                out["tools"] = sorted(tools)
                tool_args = json.loads(args.args)
                r = await client.call_tool(args.tool, tool_args)
                out["call"] = {"text": _scenarios._text(r), "is_error": bool(r.is_error)}
                if args.refresh:
                    provider.context.token_expiry_time = time.time() - 1
                    r = await client.call_tool(args.tool, tool_args)
                    out["refreshed_call"] = {"text": _scenarios._text(r), "is_error": bool(r.is_error)}
    finally:
        await http.aclose()
    out["tokens"] = len(storage.tokens)
    out["token_claims"] = [claims(t.access_token) for t in storage.tokens]
    out["http"] = http_log
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:P/mcp")
    ap.add_argument("--tool", default="whoami")
    ap.add_argument("--args", default="{}", help="the tool's arguments, as JSON")
    ap.add_argument("--refresh", action="store_true", help="expire the token and call again (refresh grant)")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    http_log: list[str] = []
    try:
        emit(anyio.run(run, args, http_log))
    except BaseException as e:  # noqa: BLE001 - report anything as the JSON failure line
        e = leaf(e)
        traceback.print_exception(e, file=sys.stderr)
        fail(f"{type(e).__name__}: {e}", http=http_log)


if __name__ == "__main__":
    main()
