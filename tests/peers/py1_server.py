"""MCP test backend on FastMCP from the Python SDK 1.x (run with .peers/py1/bin/python).

Streamable HTTP at http://127.0.0.1:PORT/mcp (legacy era only: initialize + Mcp-Session-Id,
or no sessions with --stateless). With --stdio, the same server over stdin/stdout instead (as
mcp-edge's [pool.stdio] runs it), with three more tools: pid, env and client. With --changes, three tools send on the session's GET stream (add_tool, ask_client,
touch). With --sse the same app also serves the deprecated
HTTP+SSE transport: GET /sse, whose first event names POST /messages/?session_id=ID.
"""

import argparse
import os
import sys

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.transport_security import TransportSecuritySettings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peerutil import serve  # noqa: E402


def build(server_name: str, args) -> FastMCP:
    security = None if args.host_check else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    mcp = FastMCP(
        server_name,
        log_level="WARNING",
        stateless_http=args.stateless,
        json_response=args.json,
        streamable_http_path="/mcp",
        sse_path="/sse",
        message_path="/messages/",
        transport_security=security,
    )

    @mcp.tool()
    def whoami() -> str:
        """Name of this backend."""
        return server_name

    @mcp.tool()
    def echo(text: str) -> str:
        """Return text unchanged."""
        return text

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

    if args.stdio:

        @mcp.tool()
        def pid() -> int:
            """This process's id (a test kills it to see it restarted)."""
            return os.getpid()

        @mcp.tool()
        def env(name: str) -> str:
            """The value of environment variable `name`, or <unset>."""
            return os.environ.get(name, "<unset>")

        @mcp.tool()
        def client(ctx: Context) -> str:
            """The client's name and protocol version, from the initialize this process got."""
            p = ctx.session.client_params
            return f"{p.clientInfo.name} {p.protocolVersion}" if p else "<none>"

    if args.changes:

        @mcp.tool()
        async def add_tool(ctx: Context, name: str) -> str:
            """Add a tool `name` (it echoes), then say the tool list changed, on the session's
            GET stream (no related request)."""
            mcp.add_tool(lambda: name, name=name, description=f"added at run time: {name}")
            await ctx.session.send_tool_list_changed()
            return f"added {name}"

        @mcp.tool()
        async def ask_client(ctx: Context, question: str, inline: bool = False) -> str:
            """Ask the client to sample a message: on the GET stream, or (inline) on this
            call's own stream. Returns the client's text."""
            from mcp.types import SamplingMessage, TextContent

            message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
            related = ctx.request_id if inline else None
            result = await ctx.session.create_message([message], max_tokens=16, related_request_id=related)
            return getattr(result.content, "text", "")

        @mcp.tool()
        async def touch(ctx: Context, uri: str = "res://greeting") -> str:
            """Say resource `uri` was updated, and log a line, on the GET stream."""
            from pydantic import AnyUrl

            await ctx.session.send_resource_updated(AnyUrl(uri))
            await ctx.session.send_log_message("warning", f"touched {uri}", logger="py1")
            return "touched"

    @mcp.resource("res://greeting", mime_type="text/plain")
    def greeting() -> str:
        return f"Hello from {server_name}"

    @mcp.prompt()
    def greet(name: str = "world") -> str:
        """Greet someone."""
        return f"Hello, {name}! ({server_name})"

    return mcp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, help="HTTP port (required unless --stdio)")
    ap.add_argument("--stdio", action="store_true", help="serve over stdin/stdout, not HTTP")
    ap.add_argument("--name", default="py1")
    ap.add_argument("--stateless", action="store_true", help="no Mcp-Session-Id (stateless_http)")
    ap.add_argument("--json", action="store_true", help="application/json responses instead of SSE")
    ap.add_argument("--sse", action="store_true", help="also serve legacy HTTP+SSE at /sse + /messages/")
    ap.add_argument("--host-check", action="store_true", help="keep the SDK's DNS-rebinding Host/Origin check")
    ap.add_argument("--changes", action="store_true", help="also add_tool, ask_client and touch (stream tests)")
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args()

    mcp = build(args.name, args)
    if args.stdio:
        print(f"{args.name}: serving MCP over stdio", file=sys.stderr, flush=True)
        mcp.run("stdio")
        return
    if args.port is None:
        ap.error("--port is required unless --stdio")
    app = mcp.streamable_http_app()  # its lifespan runs the session manager
    if args.sse:
        app.router.routes.extend(mcp.sse_app().router.routes)
    serve(app, args.port, args.log_level)


if __name__ == "__main__":
    main()
