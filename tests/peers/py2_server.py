"""MCP test backend on the Python SDK 2.x (run with .peers/py2/bin/python).

Streamable HTTP at http://127.0.0.1:PORT/mcp. Serves both eras: legacy (initialize +
Mcp-Session-Id, or no sessions with --stateless) and, for any request whose
MCP-Protocol-Version header is not a handshake-era version, the 2026-07-28 stateless era.
tools/list is paginated (PAGE_SIZE tools per page, cursor = decimal offset). With --changes,
two more tools publish to `subscriptions/listen` streams: add_tool(name) adds a tool and says
the tool list changed; touch(uri) says that resource was updated.
"""

import argparse
import json
import os
import sys
from typing import Annotated

import anyio
from pydantic import Field

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import ListToolsResult, PaginatedRequestParams

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peerutil import serve  # noqa: E402

PAGE_SIZE = 25
EXTRA_TOOLS = 60


class PagedServer(MCPServer):
    """MCPServer's own tools/list handler returns everything at once; page it."""

    async def _handle_list_tools(self, ctx, params: PaginatedRequestParams | None) -> ListToolsResult:
        tools = await self.list_tools()
        try:
            start = int(params.cursor) if params and params.cursor else 0
        except ValueError:
            raise MCPError(code=-32602, message="invalid cursor") from None
        end = start + PAGE_SIZE
        return ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)


def build(server_name: str, changes: bool = False) -> MCPServer:
    mcp = PagedServer(server_name, version="1.0.0", log_level="WARNING")

    @mcp.tool()
    def whoami() -> str:
        """Name of this backend."""
        return server_name

    @mcp.tool()
    def echo(text: str) -> str:
        """Return text unchanged."""
        return text

    @mcp.tool()
    def add(a: float, b: float) -> str:
        """a + b, as text."""
        s = a + b
        return str(int(s)) if s == int(s) else str(s)

    @mcp.tool()
    async def slow_progress(ctx: Context, steps: int = 3, delay_s: float = 0.5) -> str:
        """Send notifications/progress then sleep delay_s, steps times; then return 'done'.

        Progress i (1-based) goes out at about (i-1)*delay_s, the result at steps*delay_s, so
        no notification races the response.
        """
        for i in range(1, steps + 1):
            await ctx.report_progress(i, steps, f"step {i}/{steps}")
            await anyio.sleep(delay_s)
        return "done"

    # env is mirrored as the Mcp-Param-Env header by 2026-07-28 clients (x-mcp-header).
    Env = Annotated[str, Field(json_schema_extra={"x-mcp-header": "Env"})]

    @mcp.tool()
    def deploy_app(env: Env = "prod") -> str:
        """Pretend to deploy the app."""
        return f"deployed app by {server_name}"

    @mcp.tool()
    def deploy_db(env: Env = "prod") -> str:
        """Pretend to deploy the database."""
        return f"deployed db by {server_name}"

    def filler(tool_name: str):
        def fn() -> str:
            return f"{tool_name} by {server_name}"

        return fn

    for i in range(EXTRA_TOOLS):
        n = f"tool_{i:03d}"
        mcp.add_tool(filler(n), name=n, description=f"filler tool {n}")

    @mcp.resource("res://greeting", mime_type="text/plain")
    def greeting() -> str:
        return f"Hello from {server_name}"

    @mcp.resource("res://items/{item_id}", mime_type="text/plain")
    def item(item_id: str) -> str:
        return f"item {item_id} from {server_name}"

    @mcp.prompt()
    def greet(name: str = "world") -> str:
        """Greet someone."""
        return f"Hello, {name}! ({server_name})"

    if changes:

        @mcp.tool()
        async def add_tool(ctx: Context, name: str) -> str:
            """Add a tool named `name` and tell listeners the tool list changed."""
            mcp.add_tool(filler(name), name=name, description=f"added at run time: {name}")
            await ctx.notify_tools_changed()
            return f"added {name}"

        @mcp.tool()
        async def touch(ctx: Context, uri: str) -> str:
            """Tell listeners the resource at `uri` was updated."""
            await ctx.notify_resource_updated(uri)
            return f"touched {uri}"

    return mcp


def recording(app, path: str):
    """Wraps an ASGI app: appends one JSON line per HTTP request (method, path, headers) to path
    before the app sees it, so a test can prove what the server received."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
            line = json.dumps({"method": scope["method"], "path": scope["path"], "headers": headers})
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        await app(scope, receive, send)

    return wrapped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="py2")
    ap.add_argument("--stateless", action="store_true", help="no Mcp-Session-Id (stateless_http)")
    ap.add_argument("--json", action="store_true", help="application/json responses instead of SSE")
    ap.add_argument("--host-check", action="store_true", help="keep the SDK's DNS-rebinding Host/Origin check")
    ap.add_argument("--changes", action="store_true", help="also add_tool and touch (listen tests)")
    ap.add_argument("--log-level", default="warning")
    ap.add_argument("--record", metavar="FILE", help="append one JSON line per HTTP request received")
    args = ap.parse_args()

    security = None if args.host_check else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = build(args.name, args.changes).streamable_http_app(
        streamable_http_path="/mcp",
        json_response=args.json,
        stateless_http=args.stateless,
        transport_security=security,
    )
    serve(recording(app, args.record) if args.record else app, args.port, args.log_level)


if __name__ == "__main__":
    main()
