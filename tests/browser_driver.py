"""Headless Chromium for the report's tests and ``scripts/bench_report.py``, driven by Selenium.

Opens a report the way a user does (a local file) with the network shut off and looks at it: console errors
and uncaught exceptions (Chromium's browser log), every request the page made (``Network.requestWillBeSent``
in the performance log), values computed in the page (DevTools ``Runtime.evaluate`` through chromium-driver),
a screenshot. Nothing is downloaded: the browser and its driver come from the system (Debian: ``apt-get
install chromium chromium-driver``) or from ``MLEE_CHROMIUM`` and ``MLEE_CHROMEDRIVER``, and Selenium is
handed the driver's path so that its own driver manager never runs.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Flags that keep a headless Chromium off the network and away from the user's profile.
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
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
#: Chromium's browser-log levels as console levels (an uncaught exception is SEVERE with "Uncaught").
_LEVELS = {"SEVERE": "error", "WARNING": "warning", "INFO": "info", "DEBUG": "debug"}


class BrowserUnavailable(RuntimeError):
    """No headless Chromium (or no chromium-driver) could be found or started, or the page failed."""


@dataclass(frozen=True)
class ConsoleEntry:
    """One console message or uncaught exception of the page.

    ``level`` is the console level (``error``, ``warning``, ``info`` ...) or ``exception``.
    """

    level: str
    text: str


def _executable(variable: str, names: tuple[str, ...], install: str) -> str:
    env = os.environ.get(variable)
    if env:
        if os.access(env, os.X_OK):
            return env
        raise BrowserUnavailable(f"{variable}={env} is not an executable file; point it at the binary or unset it")
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserUnavailable(f"no {names[0]} found on PATH; install it (Debian: apt-get install {install}) "
                             f"or set {variable}")


def find_chromium() -> str:
    """The Chromium executable: ``$MLEE_CHROMIUM``, else the first of the usual names on PATH."""
    return _executable("MLEE_CHROMIUM", _CANDIDATES, "chromium")


def find_chromedriver() -> str:
    """The driver for that Chromium: ``$MLEE_CHROMEDRIVER``, else ``chromedriver`` on PATH."""
    return _executable("MLEE_CHROMEDRIVER", ("chromedriver",), "chromium-driver")


class Browser:
    """A headless Chromium under Selenium; one page at a time. Use as a context manager.

    Args:
        executable: Chromium binary (default: :func:`find_chromium`).
        width: Viewport width. Units: CSS pixels.
        height: Viewport height. Units: CSS pixels.
        timeout_s: Time limit of loading a page and of one driver command. Units: seconds.
        record_requests: Keep Chromium's performance log for :attr:`requests` (it costs the page time:
            off for benchmarks).
    """

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900,
                 timeout_s: float = 30.0, record_requests: bool = True) -> None:
        self.executable = executable or find_chromium()
        self.width = width
        self.height = height
        self.timeout_s = timeout_s
        self.record_requests = record_requests
        self._console: list[ConsoleEntry] = []
        self._requests: list[str] = []
        self._driver: Any = None
        self._profile: str | None = None

    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start chromium-driver and Chromium on a blank page."""
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = self.executable
        self._profile = tempfile.mkdtemp(prefix="mlee-chromium-")
        for flag in (*OFFLINE_FLAGS, f"--user-data-dir={self._profile}", f"--window-size={self.width},{self.height}"):
            options.add_argument(flag)
        logs = {"browser": "ALL", **({"performance": "ALL"} if self.record_requests else {})}
        options.set_capability("goog:loggingPrefs", logs)
        try:
            self._driver = webdriver.Chrome(service=Service(executable_path=find_chromedriver()), options=options)
            self._driver.set_page_load_timeout(self.timeout_s)
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        except WebDriverException as exc:
            self.close()
            raise BrowserUnavailable(f"cannot start {self.executable}: {(exc.msg or str(exc)).splitlines()[0]}") from exc
        except BaseException:
            self.close()  # no orphaned browser, driver or profile folder when start-up fails half-way
            raise

    def close(self) -> None:
        """Stop Chromium and its driver and remove the temporary profile."""
        if self._driver is not None:
            try:
                self._driver.quit()
            except Exception:  # noqa: BLE001 - already gone; quit has reaped what it could
                pass
            self._driver = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    # -- what the page did -------------------------------------------------------------------------------------
    def _drain(self) -> None:
        if self._driver is None:
            return
        for entry in self._driver.get_log("browser"):
            text = entry.get("message", "")
            level = _LEVELS.get(entry.get("level", ""), "info")
            self._console.append(ConsoleEntry("exception" if " Uncaught " in f" {text}" else level, text))
        for entry in self._driver.get_log("performance") if self.record_requests else ():
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self._requests.append(message["params"]["request"]["url"])

    @property
    def console(self) -> list[ConsoleEntry]:
        """Every console message and uncaught exception so far (clear it to start afresh)."""
        self._drain()
        return self._console

    @property
    def requests(self) -> list[str]:
        """The URL of every request the page made so far (clear it to start afresh)."""
        self._drain()
        return self._requests

    def errors(self) -> list[ConsoleEntry]:
        """Console errors and uncaught exceptions seen so far."""
        return [e for e in self.console if e.level in ("error", "exception")]

    # -- the page ----------------------------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send one DevTools command (through chromium-driver) and return its result."""
        return self._driver.execute_cdp_cmd(method, params or {})

    def open(self, path_or_url: str | Path, timeout_s: float | None = None) -> None:
        """Load a local file (or URL) and wait for its load event."""
        from selenium.common.exceptions import WebDriverException

        url = str(path_or_url)
        if "://" not in url and not url.startswith(("about:", "data:")):
            url = Path(url).resolve().as_uri()
        self._driver.set_page_load_timeout(timeout_s or self.timeout_s)
        try:
            self._driver.get(url)
        except WebDriverException as exc:
            raise BrowserUnavailable(f"cannot open {url}: {(exc.msg or str(exc)).splitlines()[0]}") from exc
        finally:
            self._driver.set_page_load_timeout(self.timeout_s)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises are awaited).

        Raises:
            BrowserUnavailable: when the expression throws.
        """
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
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
