"""Helpers shared by the peer scripts (imported by both the py1 and the py2 venv; stdlib only)."""

import json
import os
import signal
import sys
import threading
import time
from typing import NoReturn


def die_with_parent(poll_s: float = 0.5) -> None:
    """Exit at once when the process that started us goes away.

    Polls getppid() from a daemon thread rather than using PR_SET_PDEATHSIG: the
    latter fires when the *thread* that spawned us exits, which would kill a server
    shared by several Rust tests as soon as the first test thread finished.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(poll_s)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def serve(app, port: int, log_level: str = "warning") -> None:
    """Run an ASGI app with uvicorn on 127.0.0.1:port until SIGTERM/SIGINT or parent death.

    uvicorn's own signal handling waits for open SSE streams to finish; a test peer
    must go away at once, so SIGTERM/SIGINT simply _exit(0).
    """
    import contextlib

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: os._exit(0))
            yield

    die_with_parent()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level, access_log=False)
    Server(config).run()


def emit(result: dict) -> None:
    """Print the scenario's one JSON result as the last stdout line."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(message: str, **extra) -> NoReturn:
    emit({"ok": False, "error": message, **extra})
    sys.exit(1)
