"""Scenario runner on the Python SDK 1.x client (run with .peers/py1/bin/python).

Legacy era only. --transport streamable-http (default; URL .../mcp) or sse (URL .../sse).
Prints ONE JSON object as the last stdout line; exit 0 on success, 1 on failure.
"""

import argparse
import os
import sys
import traceback
import warnings

import anyio
import httpx

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _scenarios  # noqa: E402
from _peerutil import emit, fail  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)


def leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def run(args) -> dict:
    log = _scenarios.HttpLog()
    hooks = {"response": [log.on_response]}
    timeout = httpx.Timeout(30.0, read=300.0)
    sse_session = []
    fn = _scenarios.SCENARIOS.get(args.scenario)
    if fn is None:
        raise SystemExit(f"unknown scenario {args.scenario!r}")
    out = {"ok": True, "scenario": args.scenario, "transport": args.transport}

    with anyio.fail_after(args.timeout):
        if args.transport == "sse":

            def factory(headers=None, timeout=timeout, auth=None):
                return httpx.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks=hooks)

            transport = sse_client(args.url, httpx_client_factory=factory, on_session_created=sse_session.append)
            http = None
        else:
            http = httpx.AsyncClient(timeout=timeout, event_hooks=hooks, headers=_scenarios.headers(args))
            transport = streamable_http_client(args.url, http_client=http)
        try:
            async with transport as streams:
                args.inbox, args.http_log = _scenarios.Inbox(), log
                handlers = {"message_handler": args.inbox.on_message, "sampling_callback": args.inbox.on_sampling}
                async with ClientSession(streams[0], streams[1], **handlers) as session:
                    init = await session.initialize()
                    info = {"server_info": init.serverInfo.name}
                    out["protocol_version"] = init.protocolVersion
                    out["server_info"] = info["server_info"]
                    out.update(await fn(session, args, info))
            if args.scenario == "terminate" and args.transport != "sse":
                out["delete_status"] = log.delete_status
                out["after_delete_status"] = await follow_up(args.url, log, out["protocol_version"])
        finally:
            if http is not None:
                await http.aclose()
    out["session_id"] = (log.session_ids or sse_session or [None])[0]
    out["http"] = log.entries
    return out


async def follow_up(url: str, log, version: str) -> int | None:
    """POST tools/list on the terminated session; a conforming server answers 404."""
    if not log.session_ids:
        return None
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-session-id": log.session_ids[0],
        "mcp-protocol-version": version,
    }
    async with httpx.AsyncClient(timeout=10.0) as c:
        r = await c.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 99, "method": "tools/list"})
        return r.status_code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    _scenarios.add_common_args(ap)
    args = ap.parse_args()
    try:
        emit(anyio.run(run, args))
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - report anything as the JSON failure line
        e = leaf(e)
        traceback.print_exception(e, file=sys.stderr)
        err = getattr(e, "error", None)  # McpError carries ErrorData
        code = getattr(err, "code", None)
        fail(f"{type(e).__name__}: {e}", scenario=args.scenario, code=code if isinstance(code, int) else None)


if __name__ == "__main__":
    main()
