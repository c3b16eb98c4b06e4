"""``--png``: a picture of the report's main chart, taken by headless Chromium from the page itself.

The page is written once more with the main figure alone (``render(page, only_main=True)``) to a
temporary file, and ``chromium --headless --screenshot`` takes it; nothing is fetched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from lpmsim.report.html import Page, render

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class PngError(Exception):
    """No browser, or the browser failed (one line)."""


def find_browser() -> str | None:
    """``$LPMSIM_CHROMIUM`` if set, else the first Chromium or Chrome on PATH."""
    env = os.environ.get("LPMSIM_CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def write_png(
    page: Page, out: Path, width: int = 1500, height: int | None = None, timeout_s: float = 120.0
) -> Path:
    browser = find_browser()
    if browser is None:
        raise PngError("no Chromium found (apt-get install chromium, or LPMSIM_CHROMIUM=/path/to/chrome)")
    h = height if height is not None else _main_height(page)
    with tempfile.TemporaryDirectory(prefix="lpmsim-png-") as tmp:
        html_path = Path(tmp) / "main.html"
        html_path.write_text(render(page, only_main=True), encoding="utf-8")
        shot = Path(tmp) / "shot.png"
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={tmp}/profile",
            f"--window-size={width},{h}",
            "--virtual-time-budget=20000",
            f"--screenshot={shot}",
            html_path.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PngError(f"{browser}: {exc}") from None
        if proc.returncode != 0 or not shot.is_file() or shot.stat().st_size == 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise PngError(
                f"{browser} took no screenshot (exit {proc.returncode}{': ' + err[-1] if err else ''})"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, out)
    return out


def _main_height(page: Page) -> int:
    for s in page.sections:
        for f in s.figures:
            if f.id == page.main:
                return int(f.layout.get("height", 600)) + 200
    return 800
