"""A headless Chromium driven over the DevTools protocol, for the tests that read pages.

The browser is the system's (``apt-get install chromium``); the protocol runs over the pipe
that ``--remote-debugging-pipe`` opens on file descriptors 3 and 4 (JSON messages ended by a
NUL byte), so no client library is needed. The network is blocked at two levels: host names
other than ``127.0.0.1`` do not resolve, and every request to another origin is failed and
recorded before it leaves the browser.
"""
from __future__ import annotations

import fcntl
import functools
import json
import os
import select
import shutil
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
REQUIRE = "VAECORE_REQUIRE_BROWSER"


def find_browser() -> str | None:
    return next((shutil.which(n) for n in NAMES if shutil.which(n)), None)


def browser_or_skip(what: str) -> str:
    """The browser's path; else skip, saying ``what`` goes unchecked, or fail under REQUIRE=1."""
    path = find_browser()
    if path is None:
        reason = f"no Chromium on PATH (apt-get install chromium): {what} is not checked"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but {reason}")
        pytest.skip(reason)
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Site:
    """``folder`` served on 127.0.0.1 from a thread, as long as the ``with`` block lasts."""

    def __init__(self, folder: Path):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "Site":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class ProtocolError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one tab; ``call`` sends a command and returns its result.

    Events that arrive meanwhile are kept in ``events`` as ``(method, params)``.
    """

    def __init__(self, path: str, profile: Path, timeout: float = 60):
        self.timeout, self.events, self._buffer, self._next = timeout, [], b"", 0
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()

        def onto_3_and_4():  # in the child: its ends of the pipes become fds 3 and 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        command = [path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--remote-debugging-pipe", f"--user-data-dir={profile}",
                   "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                   "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", "--disable-extensions", "--no-first-run",
                   "--no-default-browser-check", "--mute-audio",
                   "about:blank"]
        self.process = subprocess.Popen(command, pass_fds=(3, 4), preexec_fn=onto_3_and_4,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page, flatten=True)["sessionId"]

    def close(self):
        for fd in (self._write, self._read):
            try:
                os.close(fd)
            except OSError:
                pass
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, message: dict) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._write, data):]

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise ProtocolError(f"Chromium exited (code {self.process.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, session: bool = False, timeout: float | None = None, **params):
        """Send ``method`` (to the tab when ``session``) and wait for its answer."""
        self._next += 1
        ident = self._next
        message = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise ProtocolError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append((reply["method"], reply.get("params", {})))
                self._on_event(reply)

    def wait_for(self, method: str, timeout: float | None = None) -> dict:
        """The params of the next event ``method`` not yet seen (events before are kept)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = len(self.events)
        while True:
            for name, params in self.events[seen:]:
                if name == method:
                    return params
            seen = len(self.events)
            reply = self._receive(deadline)
            if "method" in reply:
                self.events.append((reply["method"], reply.get("params", {})))
                self._on_event(reply)

    def _on_event(self, reply: dict) -> None:
        """Requests paused by ``Fetch``: those to ``self.origin`` go on, the others fail."""
        if reply["method"] != "Fetch.requestPaused":
            return
        params = reply["params"]
        allowed = params["request"]["url"].startswith(self.origin + "/")
        self._next += 1
        self._send({"id": self._next, "sessionId": self.session,
                    "method": "Fetch.continueRequest" if allowed else "Fetch.failRequest",
                    "params": {"requestId": params["requestId"]} if allowed else
                    {"requestId": params["requestId"], "errorReason": "BlockedByClient"}})

    origin = "http://127.0.0.1"

    def open_offline(self, origin: str) -> None:
        """Record console messages and failed loads; let only requests to ``origin`` through."""
        self.origin = origin
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Fetch.enable", session=True, patterns=[{"urlPattern": "*"}])

    def viewport(self, width: int, height: int, mobile: bool) -> None:
        """A window ``width`` px wide; ``mobile``: a phone's (overlay scrollbars, its viewport)."""
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)

    def load(self, url: str, timeout: float | None = None) -> None:
        """Navigate the tab to ``url`` and wait for its load event."""
        del self.events[:]
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired", timeout)

    def evaluate(self, expression: str, timeout: float | None = None):
        """The value of ``expression`` (awaited when it is a promise), as JSON."""
        result = self.call("Runtime.evaluate", session=True, timeout=timeout, expression=expression,
                           awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise ProtocolError(f"the page's script failed: {result['exceptionDetails']}")
        return result["result"].get("value")
