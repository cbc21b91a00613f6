"""A stdio MCP server that misbehaves on purpose, for mcp-edge's supervision tests (stdlib only).

  stdio_misbehaves.py hang PIDFILE     answers initialize, then never reads stdin again
  stdio_misbehaves.py daemon PIDFILE   first starts a helper that leaves its process group
                                       (setsid) and writes the helper's pid to PIDFILE, then
                                       serves initialize, ping and tools/call (answering its pid)
  stdio_misbehaves.py fragile PIDFILE  serves like daemon (no helper), but exits at once on an
                                       initialize from a client named "crash"
  stdio_misbehaves.py flood PIDFILE    serves like daemon (no helper), but writes 32 log
                                       notifications of 3 MB before each tools/call's answer
  stdio_misbehaves.py deaf PIDFILE     on a tools/call, writes 300 requests to the client with
                                       1 MB ids, then PIDFILE.sent, and stops reading stdin
In all, the server's own pid is appended to PIDFILE.hang / reported by tools/call.
"""

import json
import os
import sys
import time


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main():
    mode, pidfile = sys.argv[1], sys.argv[2]
    if mode == "daemon":
        if os.fork() == 0:
            os.setsid()
            with open(pidfile, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
            os._exit(0)
    else:
        with open(pidfile, "a") as f:
            f.write(f"{os.getpid()}\n")
    for line in sys.stdin:
        msg = json.loads(line)
        if "id" not in msg or "method" not in msg:
            continue
        if msg["method"] == "initialize":
            if mode == "fragile" and msg["params"].get("clientInfo", {}).get("name") == "crash":
                os._exit(3)
            send({"jsonrpc": "2.0", "id": msg["id"], "result": {
                "protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                "serverInfo": {"name": mode, "version": "1"}}})
            if mode == "hang":
                time.sleep(300)
        elif msg["method"] == "tools/call" and mode == "flood":
            pad = "x" * (3 << 20)
            for n in range(32):
                send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": f"{n} {pad}"}})
            send({"jsonrpc": "2.0", "id": msg["id"], "result": {"content": [{"type": "text", "text": "flooded"}]}})
        elif msg["method"] == "tools/call" and mode == "deaf":
            for n in range(300):
                send({"jsonrpc": "2.0", "id": f"{n} " + "i" * (1 << 20), "method": "sampling/createMessage", "params": {}})
            open(pidfile + ".sent", "w").close()
            time.sleep(300)
        elif msg["method"] == "ping":
            send({"jsonrpc": "2.0", "id": msg["id"], "result": {}})
        else:
            send({"jsonrpc": "2.0", "id": msg["id"], "result": {"content": [{"type": "text", "text": str(os.getpid())}]}})


if __name__ == "__main__":
    main()
