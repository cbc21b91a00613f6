"""Scenario runner on the Python SDK 2.x client (run with .peers/py2/bin/python).

Prints ONE JSON object as the last stdout line; exit 0 on success, 1 on failure
({"ok": false, "error": ...}). See README.md for scenarios and output shapes.
"""

import argparse
import os
import sys
import traceback

import anyio
import httpx2

from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _scenarios  # noqa: E402
from _peerutil import emit, fail  # noqa: E402

ERAS = {"legacy": "legacy", "auto": "auto", "modern": "2026-07-28"}


def leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def run(args) -> dict:
    log = _scenarios.HttpLog()
    hooks = {"response": [log.on_response]}
    timeout = httpx2.Timeout(30.0, read=300.0)
    sse_session = []
    if args.transport == "sse":

        def factory(headers=None, timeout=timeout, auth=None):
            return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks=hooks)

        transport = sse_client(args.url, httpx_client_factory=factory, on_session_created=sse_session.append)
        http = None
    else:
        http = httpx2.AsyncClient(timeout=timeout, event_hooks=hooks, headers=_scenarios.headers(args))
        transport = streamable_http_client(args.url, http_client=http)

    scenario = "basic" if args.scenario == "modern" else args.scenario
    era = "modern" if args.scenario == "modern" else args.era
    fn = _scenarios.SCENARIOS.get(scenario)
    if fn is None:
        raise SystemExit(f"unknown scenario {args.scenario!r}")
    out = {"ok": True, "scenario": args.scenario, "transport": args.transport, "era": era}
    try:
        with anyio.fail_after(args.timeout):
            async with Client(transport, mode=ERAS[era], cache=None) as client:
                info = {"server_info": client.server_info.name if client.server_info else None}
                out["protocol_version"] = client.protocol_version
                out["server_info"] = info["server_info"]
                out.update(await fn(client, args, info))
            if args.scenario == "terminate":
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
    async with httpx2.AsyncClient(timeout=10.0) as c:
        r = await c.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 99, "method": "tools/list"})
        return r.status_code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    _scenarios.add_common_args(ap)
    ap.add_argument("--era", choices=sorted(ERAS), default="legacy",
                    help="legacy: initialize handshake; modern: 2026-07-28 stateless; auto: server/discover probe")
    args = ap.parse_args()
    try:
        emit(anyio.run(run, args))
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - report anything as the JSON failure line
        e = leaf(e)
        traceback.print_exception(e, file=sys.stderr)
        code = getattr(e, "code", None)
        fail(f"{type(e).__name__}: {e}", scenario=args.scenario, code=code if isinstance(code, int) else None)


if __name__ == "__main__":
    main()
