"""A small Chrome DevTools Protocol client over ``--remote-debugging-pipe``: headless Chromium, no network.

Used by the report's tests and ``scripts/bench_report.py`` to open a report the way a user does (a local file)
and look at it: console errors, every request the page made, values computed in the page, a screenshot.
Standard library only: the pipe transport needs no websocket package, and no port is opened.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlee.errors import MleeError

#: Flags that keep a headless Chromium off the network and away from the user's profile.
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    # A proxy on a port nothing listens on: any http(s) request the page tries fails instead of leaving.
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class BrowserUnavailable(MleeError):
    """No headless Chromium could be found or started."""


@dataclass(frozen=True)
class ConsoleEntry:
    """One console message or uncaught exception of the page.

    ``level`` is the console level (``error``, ``warning``, ``log`` ...) or ``exception``.
    """

    level: str
    text: str


def find_chromium() -> str:
    """The Chromium executable: ``$MLEE_CHROMIUM``, else the first of the usual names on PATH.

    Raises:
        BrowserUnavailable: when none is found.
    """
    env = os.environ.get("MLEE_CHROMIUM")
    if env:
        if os.access(env, os.X_OK):
            return env
        raise BrowserUnavailable(f"MLEE_CHROMIUM={env} is not an executable file",
                                 fix="point it at a Chromium binary or unset it")
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserUnavailable("no Chromium found on PATH",
                             fix="install it (Debian: apt-get install chromium) or set MLEE_CHROMIUM")


class Browser:
    """A headless Chromium driven over a DevTools pipe; one page (tab) at a time.

    Use as a context manager. Every console message, uncaught exception and network request of the page is
    collected in :attr:`console` and :attr:`requests`.

    Args:
        executable: Chromium binary (default: :func:`find_chromium`).
        width: Viewport width. Units: CSS pixels.
        height: Viewport height. Units: CSS pixels.
        timeout_s: Default time limit of one protocol call. Units: seconds.
    """

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900,
                 timeout_s: float = 30.0) -> None:
        self.executable = executable or find_chromium()
        self.width = width
        self.height = height
        self.timeout_s = timeout_s
        self.console: list[ConsoleEntry] = []
        self.requests: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: str | None = None
        self._to_browser = -1
        self._from_browser = -1
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._session: str | None = None

    # -- lifetime -------------------------------------------------------------------------------------------
    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start Chromium and open one blank page."""
        child_in, self._to_browser = os.pipe()
        self._from_browser, child_out = os.pipe()

        def _wire_fds() -> None:  # runs in the child: Chromium reads fd 3 and writes fd 4
            a = fcntl.fcntl(child_in, fcntl.F_DUPFD, 10)  # via high fds: a pipe may already sit on 3 or 4
            b = fcntl.fcntl(child_out, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._profile = tempfile.mkdtemp(prefix="mlee-chromium-")
        args = [self.executable, *OFFLINE_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                f"--window-size={self.width},{self.height}", "about:blank"]
        try:
            self._proc = subprocess.Popen(args, preexec_fn=_wire_fds, close_fds=False,  # noqa: PLW1509
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
        except OSError as exc:
            self.close()
            raise BrowserUnavailable(f"cannot start {self.executable}: {exc}") from exc
        finally:
            os.close(child_in)
            os.close(child_out)
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable")
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self.close()  # no orphaned browser or profile folder when start-up fails half-way
            raise

    def close(self) -> None:
        """Stop Chromium and remove its temporary profile."""
        if self._proc is not None:
            try:
                self._send("Browser.close", {}, session=False)
            except (OSError, BrowserUnavailable):
                pass  # already gone: waiting below reaps it
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_browser = self._from_browser = -1
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    # -- protocol ----------------------------------------------------------------------------------------------
    def _send(self, method: str, params: dict[str, Any], session: bool = True) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session and self._session:
            msg["sessionId"] = self._session
        try:
            os.write(self._to_browser, json.dumps(msg).encode("utf-8") + b"\0")
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The same failure as an EOF on the reading side, whichever end notices first.
            raise BrowserUnavailable("Chromium closed the DevTools pipe (it crashed or exited)") from exc
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, left))
            if not ready:
                raise BrowserUnavailable("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserUnavailable("Chromium closed the DevTools pipe (it crashed or exited)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _handle_event(self, msg: dict[str, Any]) -> None:
        method, params = msg.get("method", ""), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(ConsoleEntry(params.get("type", "log"), text))
        elif method == "Runtime.exceptionThrown":
            det = params.get("exceptionDetails", {})
            text = det.get("exception", {}).get("description") or det.get("text", "exception")
            self.console.append(ConsoleEntry("exception", text))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append(ConsoleEntry(entry.get("level", "info"), entry.get("text", "")))
        elif method == "Network.requestWillBeSent":
            self.requests.append(params.get("request", {}).get("url", ""))
        self._events.append(msg)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        """Send one protocol command and return its result.

        Raises:
            BrowserUnavailable: on a protocol error, a time-out or a dead browser.
        """
        mid = self._send(method, params or {})
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            msg = self._receive(deadline)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise BrowserUnavailable(f"{method} failed: {msg['error'].get('message')}")
                return msg.get("result", {})
            if "method" in msg:
                self._handle_event(msg)

    def _wait_event(self, method: str, timeout_s: float) -> dict[str, Any]:
        for i, msg in enumerate(self._events):
            if msg.get("method") == method:
                return self._events.pop(i)
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self._receive(deadline)
            if "method" in msg:
                self._handle_event(msg)
                if msg["method"] == method:
                    self._events.remove(msg)
                    return msg

    # -- page --------------------------------------------------------------------------------------------------
    def open(self, path_or_url: str | Path, timeout_s: float | None = None) -> None:
        """Load a local file (or URL) and wait for its load event."""
        url = str(path_or_url)
        if "://" not in url and not url.startswith(("about:", "data:")):
            url = Path(url).resolve().as_uri()
        self._events.clear()
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserUnavailable(f"cannot open {url}: {result['errorText']}")
        self._wait_event("Page.loadEventFired", timeout_s or self.timeout_s)

    def evaluate(self, expression: str, timeout_s: float | None = None) -> Any:
        """The JSON value of a JavaScript expression in the page (promises are awaited).

        Raises:
            BrowserUnavailable: when the expression throws.
        """
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout_s=timeout_s)
        if "exceptionDetails" in result:
            det = result["exceptionDetails"]
            raise BrowserUnavailable("page script failed: "
                                     + (det.get("exception", {}).get("description") or det.get("text", "")))
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 10.0, interval_s: float = 0.02) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value.

        Raises:
            BrowserUnavailable: when it stays falsy for ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                seen = "; ".join(e.text.splitlines()[0] for e in self.errors()[:3] if e.text)
                raise BrowserUnavailable(f"timed out after {timeout_s:g} s waiting for: {expression}"
                                         + (f" (page errors: {seen})" if seen else ""))
            time.sleep(interval_s)

    def screenshot(self, full_page: bool = False) -> bytes:
        """A PNG screenshot of the viewport (or of the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", params)["data"])

    def errors(self) -> list[ConsoleEntry]:
        """Console errors and uncaught exceptions seen so far."""
        return [e for e in self.console if e.level in ("error", "exception", "assert")]
