"""Client scenarios shared by py1_client.py and py2_client.py.

`s` is the SDK's client object: an `mcp.ClientSession` (1.x) or an `mcp.Client` (2.x).
Both offer list_tools/list_resources/list_prompts(cursor=), call_tool(name, arguments,
progress_callback=), read_resource(uri) and get_prompt(name, arguments); only the
attribute spelling of results differs (1.x camelCase, 2.x snake_case), hence `_a`.

Scenarios adapt to the server: against our own peers they use whoami/echo/slow_progress/
res://greeting/greet; against server-everything they fall back to its echo (`message`),
trigger-long-running-operation, its first resource and simple-prompt.
"""

import asyncio
import json
import time

MAX_PAGES = 50


def _a(obj, *names):
    for n in names:
        if hasattr(obj, n):
            return getattr(obj, n)
    raise AttributeError(f"{type(obj).__name__} has none of {names}")


def _text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def _list_all(method, *items_attr):
    items, pages, cursor = [], 0, None
    while True:
        r = await method(cursor=cursor)
        pages += 1
        items += _a(r, *items_attr)
        cursor = _a(r, "next_cursor", "nextCursor")
        if not cursor or pages >= MAX_PAGES:
            return items, pages


async def list_tools(s):
    tools, pages = await _list_all(s.list_tools, "tools")
    return {t.name: (_a(t, "input_schema", "inputSchema") or {}) for t in tools}, pages


async def call(s, name, args=None, progress=None):
    r = await s.call_tool(name, args or {}, progress_callback=progress)
    if _a(r, "is_error", "isError"):
        raise RuntimeError(f"tool {name} returned isError: {_text(r)}")
    return _text(r)


def echo_args(tools, text):
    props = tools.get("echo", {}).get("properties", {})
    return {"message": text} if "message" in props and "text" not in props else {"text": text}


async def whoami(s, tools, info):
    return await call(s, "whoami") if "whoami" in tools else info.get("server_info")


async def basic(s, args, info):
    tools, pages = await list_tools(s)
    out = {"tools_count": len(tools), "pages": pages, "tool_names": sorted(tools)[:10]}
    out["echo"] = await call(s, "echo", echo_args(tools, "hello proxy"))
    resources, _ = await _list_all(s.list_resources, "resources")
    uris = [str(r.uri) for r in resources]
    uri = "res://greeting" if "res://greeting" in uris or not uris else uris[0]
    rr = await s.read_resource(uri)
    out["resource_uri"], out["resource_text"] = uri, (getattr(rr.contents[0], "text", None) or "")[:200]
    prompts, _ = await _list_all(s.list_prompts, "prompts")
    names = [p.name for p in prompts]
    pname = "greet" if "greet" in names or not names else ("simple-prompt" if "simple-prompt" in names else names[0])
    gp = await s.get_prompt(pname, {"name": "proxy"} if pname == "greet" else {})
    out["prompt_name"], out["prompt_text"] = pname, getattr(gp.messages[0].content, "text", None)
    out["server"] = await whoami(s, tools, info)
    return out


async def progress(s, args, info):
    tools, _ = await list_tools(s)
    if args.tool:
        name, targs = args.tool, json.loads(args.args)
    elif "slow_progress" in tools:
        name, targs = "slow_progress", {"steps": 3, "delay_s": 0.5}
    else:
        name, targs = "trigger-long-running-operation", {"duration": 1.5, "steps": 3}
    events = []
    t0 = time.monotonic()

    async def on_progress(p, total, message):
        events.append({"t": round(time.monotonic() - t0, 3), "progress": p, "total": total, "message": message})

    text = await call(s, name, targs, on_progress)
    result_t = round(time.monotonic() - t0, 3)
    await asyncio.sleep(0)  # let a trailing progress callback run
    return {"tool": name, "arguments": targs, "progress": events, "result_t": result_t, "result": text}


async def many_calls(s, args, info):
    tools, _ = await list_tools(s)
    names, echoes = [], 0
    for i in range(args.count):
        if i % 2 == 0:
            names.append(await whoami(s, tools, info))
        else:
            want = f"msg {i}"
            got = await call(s, "echo", echo_args(tools, want))
            if want not in got:
                raise RuntimeError(f"echo {i}: sent {want!r}, got {got!r}")
            echoes += 1
    return {"calls": args.count, "names": names, "echoes": echoes}


async def tool(s, args, info):
    if not args.tool:
        raise RuntimeError("--scenario tool needs --tool NAME")
    await list_tools(s)  # 2026-07-28 clients need the schema to mirror Mcp-Param-* headers
    r = await s.call_tool(args.tool, json.loads(args.args))
    return {"tool": args.tool, "text": _text(r), "is_error": bool(_a(r, "is_error", "isError"))}


async def catalog(s, args, info):
    """Every page of the tool list, then (with --tool) one call: for federated routes."""
    tools, pages = await list_tools(s)
    out = {"tool_names": sorted(tools), "pages": pages}
    if args.tool:
        r = await s.call_tool(args.tool, json.loads(args.args))
        out["text"], out["is_error"] = _text(r), bool(_a(r, "is_error", "isError"))
    return out


async def members(s, args, info):
    """A federated route: every list, then one prompt got and one resource read per member
    (grouped by the prefix before `_` or `+`); prompts without required arguments first, the
    others' required arguments filled with "proxy"."""
    tools, tool_pages = await list_tools(s)
    prompts, prompt_pages = await _list_all(s.list_prompts, "prompts")
    resources, resource_pages = await _list_all(s.list_resources, "resources")
    templates, _ = await _list_all(s.list_resource_templates, "resource_templates", "resourceTemplates")
    out = {
        "pages": {"tools": tool_pages, "prompts": prompt_pages, "resources": resource_pages},
        "tool_names": sorted(tools),
        "prompt_names": [p.name for p in prompts],
        "resource_uris": [str(r.uri) for r in resources],
        "template_uris": [str(_a(t, "uri_template", "uriTemplate")) for t in templates],
        "got": {},
        "read": {},
    }
    def required(p):
        return [a.name for a in (p.arguments or []) if a.required]
    for p in sorted(prompts, key=lambda p: len(required(p))):
        prefix = p.name.split("_", 1)[0]
        if prefix not in out["got"]:
            gp = await s.get_prompt(p.name, {a: "proxy" for a in required(p)})
            out["got"][prefix] = {"name": p.name, "text": getattr(gp.messages[0].content, "text", None)}
    for uri in out["resource_uris"]:
        prefix = uri.split("+", 1)[0]
        if prefix not in out["read"]:
            rr = await s.read_resource(uri)
            out["read"][prefix] = {
                "uri": uri,
                "content_uri": str(rr.contents[0].uri),
                "text": (getattr(rr.contents[0], "text", None) or "")[:200],
            }
    return out


async def terminate(s, args, info):
    tools, _ = await list_tools(s)
    return {"server": await whoami(s, tools, info)}  # the DELETE happens when the client closes


class Inbox:
    """What the server sent the client on its own: notifications (method names, resource URIs
    updated, log lines) and sampling requests, answered `sampled: <question>`."""

    def __init__(self):
        self.methods, self.uris, self.logs, self.questions = [], [], [], []

    async def on_message(self, message):
        root = getattr(message, "root", None)
        method = getattr(root, "method", None)
        if method is None:
            return
        self.methods.append(method)
        params = getattr(root, "params", None)
        if method == "notifications/resources/updated":
            self.uris.append(str(params.uri))
        if method == "notifications/message":
            self.logs.append(str(params.data))

    async def on_sampling(self, context, params):
        from mcp.types import CreateMessageResult, TextContent

        question = getattr(params.messages[0].content, "text", "")
        self.questions.append(question)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text=f"sampled: {question}"), model="test")


async def _until(check, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def changes(s, args, info):
    """A federated session's GET stream: a member adds a tool (list_changed), asks the client
    to sample (on the GET stream, then on the call's own stream), says a resource was updated
    and logs; the log level is set. Tools are found by their suffix (any prefix)."""
    inbox = args.inbox
    tools, _ = await list_tools(s)
    out = {"before": sorted(tools)}
    await _until(lambda: any(e.startswith("GET 200 text/event-stream") for e in args.http_log.entries), "the GET stream")
    named = lambda suffix: next(n for n in tools if n.endswith(suffix))
    out["added"] = await call(s, named("add_tool"), {"name": args.tool or "fresh"})
    await _until(lambda: "notifications/tools/list_changed" in inbox.methods, "tools/list_changed")
    tools, _ = await list_tools(s)
    out["after"] = sorted(tools)
    out["sampled"] = await call(s, named("ask_client"), {"question": "two plus two"})
    out["sampled_inline"] = await call(s, named("ask_client"), {"question": "three", "inline": True})
    try:
        await s.set_logging_level("info")
        out["log_level"] = "set"
    except Exception as e:  # a server without logging (FastMCP's own) says "method not found"
        out["log_level"] = f"refused: {e}"
    out["touched"] = await call(s, named("touch"), {})
    await _until(lambda: inbox.uris and inbox.logs, "resources/updated and a log line")
    out.update({"methods": inbox.methods, "uris": inbox.uris, "logs": inbox.logs, "questions": inbox.questions})
    return out


async def listen(s, args, info):
    """2026-07-28 `subscriptions/listen` (Python SDK 2.x client): listening to the tool list
    and to resource --uri (as offered), a member adds a tool and says its resource (named
    in --args as the member's own URI) was updated; the events arrive and the next list
    shows the new tool. Tools are found by their suffix (any prefix)."""
    import json

    from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged

    tools, _ = await list_tools(s)
    named = lambda suffix: next(n for n in tools if n.endswith(suffix))
    out = {"before": sorted(tools)}
    heard = []
    async with s.listen(tools_list_changed=True, resource_subscriptions=[args.uri]) as sub:
        out["honored"] = sub.honored.model_dump(by_alias=True, exclude_none=True)
        out["added"] = await call(s, named("add_tool"), {"name": args.tool or "fresh"})
        out["touched"] = await call(s, named("touch"), json.loads(args.args))
        async for event in sub:
            if isinstance(event, ToolsListChanged):
                heard.append("tools")
            elif isinstance(event, ResourceUpdated):
                heard.append(f"updated {event.uri}")
            if "tools" in heard and any(h.startswith("updated") for h in heard):
                break
    out["heard"] = heard
    tools, _ = await list_tools(s)
    out["after"] = sorted(tools)
    return out


SCENARIOS = {"listen": listen, "changes": changes, "basic": basic, "progress": progress, "many_calls": many_calls, "tool": tool, "terminate": terminate, "catalog": catalog, "members": members}


def add_common_args(ap):
    ap.add_argument("--url", required=True, help="http://127.0.0.1:PORT/mcp (or .../sse with --transport sse)")
    ap.add_argument("--scenario", default="basic")
    ap.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    ap.add_argument("--tool", help="tool for --scenario tool (or progress)")
    ap.add_argument("--args", default="{}", help="JSON arguments for --tool")
    ap.add_argument("--uri", help="resource URI to watch (--scenario listen)")
    ap.add_argument("--count", type=int, default=20, help="calls for many_calls")
    ap.add_argument("--timeout", type=float, default=60.0, help="whole-scenario timeout, seconds")
    ap.add_argument("--header", action="append", default=[], help="'Name: value' sent on every request (repeatable)")


def headers(args) -> dict:
    """--header values ('Name: value') as a dict for the HTTP client."""
    out = {}
    for h in args.header:
        name, _, value = h.partition(":")
        out[name.strip()] = value.strip()
    return out


class HttpLog:
    """Records what the client's HTTP library saw (an httpx/httpx2 response event hook)."""

    def __init__(self):
        self.entries = []
        self.session_ids = []
        self.delete_status = None

    async def on_response(self, response):
        req = response.request
        sid = response.headers.get("mcp-session-id")
        if sid and sid not in self.session_ids:
            self.session_ids.append(sid)
        if req.method == "DELETE":
            self.delete_status = response.status_code
        entry = f"{req.method} {response.status_code} {response.headers.get('content-type', '-').split(';')[0]}"
        for h in ("mcp-method", "mcp-name", "mcp-param-env"):
            if req.headers.get(h):
                entry += f" {h}={req.headers[h]}"
        self.entries.append(entry)
