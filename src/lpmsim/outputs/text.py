"""Text from outside (file names, scenario names, field values, process names) made safe to print.

Anything a user or a log controls is data, never markup or terminal control: ``visible`` replaces
control characters (ESC, BEL, CR, backspace, ...) with their ``\\xNN`` spelling so that they can be
seen and cannot move the cursor or recolour the terminal; ``esc`` also escapes ``rich`` markup so
that ``[/bold]`` prints as written instead of raising ``MarkupError`` or being swallowed.
"""

from __future__ import annotations

import json
import re

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.text import Text

# C0 controls except TAB and LF, DEL, and the C1 controls (U+0080-U+009F; U+009B is a one-byte CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: object) -> str:
    """``str(text)`` with every control character but TAB and LF shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def json_text(obj: object) -> str:
    """``obj`` as indented JSON, non-ASCII text kept readable but DEL and the C1 controls (which
    ``json.dumps`` leaves raw with ``ensure_ascii=False``) written as ``\\u`` escapes."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def esc(text: object) -> str:
    """``text`` ready to be embedded in a ``rich`` markup string: controls visible, markup escaped."""
    return escape(visible(text))


def plain(text: object, style: str = "") -> Text:
    """``text`` as a ``rich`` Text (never parsed as markup), controls made visible."""
    return Text(visible(text), style=style)


def print_sized(console: Console, renderable: RenderableType, title: str = "") -> None:
    """Print ``renderable`` on ``console``; when the console is not a terminal (a pipe, a file),
    at the width of its content instead of 80 columns, so that no cell or title wraps mid-label."""
    if console.is_terminal:
        console.print(renderable)
        return
    wide = console.options.update(width=10_000, max_width=10_000)
    need = max(Measurement.get(console, wide, renderable).maximum, cell_len(title))
    saved = console.width
    console.width = max(need, 1)  # Console.print never renders wider than the console
    try:
        console.print(renderable, crop=False)
    finally:
        console.width = saved
