"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages ending in NUL on fds 3 and 4), so no
websocket client or browser-automation package is needed; and a PNG decoder (zlib and
struct), to look at the pixels of a screenshot."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import struct
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WIDTH = 1280


class BrowserError(RuntimeError):
    pass


def chromium_path() -> str:
    """Debian's chromium, installed with apt the way `ecomctl stack up` installs its Debian
    packages when it is missing (as root; anyone else is told the line to run), so the
    README's test command needs nothing else on a fresh machine."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        import tempfile

        from ecomctl.stack.toolchain import install_debian_packages

        log = Path(tempfile.gettempdir()) / "ecomctl-chromium-install.log"
        install_debian_packages(["chromium"], log_file=log)
        path = shutil.which("chromium")
    if path is None:
        raise BrowserError("no `chromium` on PATH: apt-get install chromium")
    return path


@dataclass
class PageReport:
    """What the browser saw of one page."""

    console_errors: list[str]
    charts: Any  # what the page's probe found: by default, the report's charts
    height: int
    screenshot: bytes  # PNG of the whole page


@dataclass
class Browser:
    """One headless Chromium; ``open`` loads a page in a fresh tab."""

    workdir: Path
    timeout_s: float = 60.0
    _process: subprocess.Popen[bytes] | None = None
    _buffer: bytes = b""
    _next_id: int = 0
    _events: list[dict[str, Any]] = field(default_factory=list)

    def __enter__(self) -> Browser:
        profile = self.workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        args = [chromium_path(), "--headless", "--remote-debugging-pipe", "--no-sandbox",
                "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions",
                "--hide-scrollbars", f"--user-data-dir={profile}",
                f"--window-size={WIDTH},2000", "about:blank"]
        # The protocol pipe is the browser's fds 3 (commands in) and 4 (replies out): the
        # shell moves our stdin/stdout pipes there, and sends its own output to the log.
        log = (self.workdir / "chromium.log").open("wb")
        self._process = subprocess.Popen(
            ["sh", "-c", 'exec "$@" 3<&0 4>&1 0</dev/null 1>&2', "sh", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )
        log.close()
        return self

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(BrowserError, OSError):
            self.call("Browser.close")
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # -- the protocol ---------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(json.dumps(message).encode() + b"\0")
        self._process.stdin.flush()

    def _receive(self, deadline: float) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        out = self._process.stdout.fileno()
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer from chromium within {self.timeout_s:.0f}s "
                                   f"(log: {self.workdir / 'chromium.log'})")
            ready, _, _ = select.select([out], [], [], left)
            if ready:
                chunk = os.read(out, 1 << 20)
                if not chunk:
                    raise BrowserError("chromium closed the DevTools pipe (log: "
                                       f"{self.workdir / 'chromium.log'})")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self._events.append(reply)

    def _wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not any(e.get("method") == method and e.get("sessionId") == session
                      for e in self._events):
            self._events.append(self._receive(deadline))

    def _wait_until(self, session: str, expression: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            result = self.call("Runtime.evaluate", session, expression=expression,
                               returnByValue=True)["result"]
            if result.get("value"):
                return
            time.sleep(0.25)
        text = self.call("Runtime.evaluate", session, returnByValue=True,
                         expression="document.body ? document.body.innerText : ''")
        raise BrowserError(f"the page never got ready ({expression}) within "
                           f"{self.timeout_s:.0f}s; it shows:\n"
                           f"{str(text['result'].get('value'))[:2000]}")

    # -- a page ---------------------------------------------------------------------------

    def open(self, page: Path | str, *, ready: str | None = None,
             probe: str | None = None) -> PageReport:
        """Load a file or a URL; with ``ready``, wait until that expression is true (a page
        that draws after its own requests); ``probe`` is evaluated to describe the page
        (default: the HTML report's charts)."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self._events.clear()
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session)
        self.call("Emulation.setDeviceMetricsOverride", session, width=WIDTH, height=2000,
                  deviceScaleFactor=1, mobile=False)
        url = page if isinstance(page, str) else page.resolve().as_uri()
        self.call("Page.navigate", session, url=url)
        self._wait_for("Page.loadEventFired", session)
        if ready is not None:
            self._wait_until(session, ready)
        charts = self.call("Runtime.evaluate", session, expression=probe or _CHARTS_JS,
                           returnByValue=True)["result"].get("value")
        height = int(self.call("Runtime.evaluate", session, returnByValue=True,
                               expression="document.documentElement.scrollHeight")
                     ["result"]["value"])
        shot = self.call("Page.captureScreenshot", session, format="png",
                         captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1})
        self.call("Target.closeTarget", targetId=target)
        return PageReport(_console_errors(self._events, session), charts, height,
                          base64.b64decode(shot["data"]))


# Every chart shown (not folded away in a closed <details>): where it is on the page and
# how many data marks (lines with points, dots, bars) it draws with a visible size.
_CHARTS_JS = """
JSON.parse(JSON.stringify(Array.from(document.querySelectorAll('svg.chart')).filter(
    svg => !svg.closest('details:not([open])')).map(svg => {
  const box = svg.getBoundingClientRect();
  const marks = Array.from(svg.querySelectorAll('.line, .mark')).filter(el => {
    const b = el.getBBox();  // a line may be flat; a bar or a dot needs an area
    return el.tagName === 'polyline' ? b.width > 0 || b.height > 0 : b.width > 0 && b.height > 0;
  });
  return {label: svg.getAttribute('aria-label'), marks: marks.length,
          box: {x: box.left + window.scrollX, y: box.top + window.scrollY,
                width: box.width, height: box.height}};
})))
"""


# Every badge ("OK", "BROKEN", "yes"...): its text and on how many lines the browser laid it
# out (distinct tops of its text's boxes: a badge squeezed into "O / K" has two).
BADGES_JS = """
JSON.parse(JSON.stringify(Array.from(document.querySelectorAll('.badge')).map(el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = Array.from(range.getClientRects()).filter(r => r.width > 0)
    .map(r => Math.round(r.top));
  return {text: el.textContent, lines: new Set(tops).size};
})))
"""


def _console_errors(events: list[dict[str, Any]], session: str) -> list[str]:
    errors = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        params = event.get("params", {})
        method = event.get("method")
        if method == "Runtime.exceptionThrown":
            errors.append(f"uncaught: {params.get('exceptionDetails', {}).get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source')}: {entry.get('text')} ({entry.get('url')})")
    return errors


# -- PNG ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        row, i = self.rows[y], x * self.channels
        return row[i], row[i + 1], row[i + 2]


def decode_png(data: bytes) -> Image:
    """8-bit RGB or RGBA, not interlaced (what Chromium writes)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, color type {color}")
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        filter_type, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if filter_type == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif filter_type == 2:
            for i in range(stride):
                line[i] = (line[i] + previous[i]) & 0xFF
        elif filter_type == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif filter_type == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return Image(width, height, channels, rows)


def colored_pixels(image: Image, box: dict[str, float], step: int = 2) -> int:
    """Pixels inside ``box`` (page coordinates) with a clear hue: the charts' data is drawn
    in colours, their frame, grid and text in greys."""
    count = 0
    x0, y0 = max(int(box["x"]), 0), max(int(box["y"]), 0)
    x1 = min(int(box["x"] + box["width"]), image.width)
    y1 = min(int(box["y"] + box["height"]), image.height)
    for y in range(y0, y1, step):
        for x in range(x0, x1, step):
            r, g, b = image.pixel(x, y)
            if max(r, g, b) - min(r, g, b) > 60:
                count += 1
    return count


def blank(image: Image, step: int = 8) -> bool:
    """Every sampled pixel the same colour."""
    first = image.pixel(0, 0)
    return all(image.pixel(x, y) == first for y in range(0, image.height, step)
               for x in range(0, image.width, step))
