"""Open a report in headless Chromium (the system's, driven by playwright) and see what it did.

``load(path)`` opens the file URL, waits for every chart to be drawn (the page sets
``body[data-rendered]``), and returns the console errors, every request other than the page
itself (none is allowed: the report is self-contained), the page errors, and the time it took.
Requests are recorded and aborted, so a page that tried to reach the network is caught even
offline.  ``CHROMIUM`` is ``$LPMSIM_CHROMIUM`` or the first chromium on PATH; the tests skip with
the reason when there is none (CI installs Debian's ``chromium``: .ci/run).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lpmsim.report.png import find_browser

CHROMIUM = find_browser()
ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts"
# .ci/run sets it after installing chromium: there a missing browser fails the tests, not skips them
REQUIRED = os.environ.get("LPMSIM_REQUIRE_BROWSER") == "1"

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not REQUIRED,
    reason="no Chromium on this machine (apt-get install chromium; CI installs it in .ci/run)",
)


@dataclass
class Loaded:
    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def evaluate(self, js: str, arg: Any = None) -> Any:
        return self.page.evaluate(js, arg)

    def marker_count(self, fig_id: str, meta: str) -> int:
        """The markers drawn (SVG points) by the traces of ``fig_id`` whose ``meta`` is ``meta``."""
        return int(
            self.page.evaluate(
                """([id, meta]) => {
                    const gd = document.getElementById(id);
                    let n = 0;
                    gd.querySelectorAll('.scatterlayer .trace').forEach((tr) => {
                        const d = tr.__data__;
                        const t = d && d[0] && d[0].trace;
                        if (t && t.meta === meta) { n += tr.querySelectorAll('path.point').length; }
                    });
                    return n;
                }""",
                [fig_id, meta],
            )
        )


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "LPMSIM_REQUIRE_BROWSER=1 but no chromium on PATH (nor LPMSIM_CHROMIUM)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@contextmanager
def load(path: Path, name: str, width: int = 1500, timeout_s: float = 60.0) -> Iterator[Loaded]:
    """Open ``path``; on a failing test (an exception in the block) keep a full-page screenshot
    as tests/artefacts/NAME.png."""
    url = path.resolve().as_uri()
    with browser() as b:
        ctx = b.new_context(viewport={"width": width, "height": 1000}, java_script_enabled=True)
        page = ctx.new_page()
        out = Loaded(page)

        def on_request(route: Any) -> None:
            req_url = route.request.url
            if req_url == url:
                route.continue_()
            else:
                out.requests.append(req_url)
                route.abort()

        page.route("**/*", on_request)
        page.on("console", lambda m: out.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: out.page_errors.append(str(e)))

        def on_dialog(d: Any) -> None:
            out.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        t0 = time.monotonic()
        page.goto(url, wait_until="load", timeout=timeout_s * 1000)
        page.wait_for_selector("body[data-rendered]", timeout=timeout_s * 1000, state="attached")
        out.seconds = time.monotonic() - t0
        try:
            yield out
        except BaseException:
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
            raise
        finally:
            ctx.close()


def assert_clean(loaded: Loaded) -> None:
    assert loaded.requests == [], f"the page made network requests: {loaded.requests[:5]}"
    assert loaded.console_errors == [], f"console errors: {loaded.console_errors[:5]}"
    assert loaded.page_errors == [], f"page errors: {loaded.page_errors[:5]}"
    assert loaded.dialogs == [], f"dialogs opened: {loaded.dialogs[:5]}"
