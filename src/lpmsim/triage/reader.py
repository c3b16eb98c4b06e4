"""Streaming, bounded-memory reading of kernel logs.

Any input becomes a sequence of byte *blocks*, each a run of whole lines ending in ``\\n`` (the last
block of a file without a final newline gets one). Blocks stay bytes: the scanner searches them for
keywords at C speed and decodes only the lines it looks at (:func:`clean`). Memory is bounded by the block size plus
``MAX_LINE``: a line longer than that is truncated (the rest up to its newline is skipped), which is
what a serial capture without newlines or a binary blob in a log needs.

Input may be a plain file, gzip or xz (recognised by their magic bytes, not the file name) or
``-`` for stdin. NUL bytes are dropped from blocks (so UTF-16 text of ASCII messages still matches);
lines are decoded as UTF-8 with ``errors="replace"`` and carriage returns and other C0 control
characters (serial-console noise, ANSI escapes) are removed.
Line numbers are counted in ``\\n`` characters, as an editor or ``sed -n Np`` counts them.
"""

from __future__ import annotations

import gzip
import io
import lzma
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

BLOCK_SIZE = 1 << 20
MAX_LINE = 16 * 1024

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"

# C0 controls except TAB and LF, plus DEL: deleted. CR is handled separately (-> line end / space).
_DELETE = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127]}


class LogOpenError(Exception):
    """The input cannot be opened (missing, a directory, unreadable)."""


@dataclass
class ReadStatus:
    """What went wrong while reading, if anything (a truncated .gz still yields its readable part)."""

    warnings: list[str] = field(default_factory=list)
    truncated_lines: int = 0
    bytes_read: int = 0


def clean(data: bytes) -> str:
    """Decode bytes (a line or a few) and remove line-noise characters."""
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", " ")
    return text.translate(_DELETE)


def _open_binary(path: str) -> tuple[BinaryIO, str]:
    """Open ``path`` (or stdin for ``-``) and wrap it in a decompressor chosen by magic bytes."""
    raw: io.BufferedReader
    name = "<stdin>" if path == "-" else path
    if path == "-":
        buf = sys.stdin.buffer
        raw = buf if isinstance(buf, io.BufferedReader) else io.BufferedReader(buf)  # type: ignore[arg-type]
    else:
        p = Path(path)
        if p.is_dir():
            raise LogOpenError(f"{path}: is a directory")
        try:
            raw = open(p, "rb")  # noqa: SIM115 - closed by the caller via the returned stream
        except FileNotFoundError:
            raise LogOpenError(f"{path}: no such file") from None
        except OSError as exc:
            raise LogOpenError(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        head = raw.peek(8)[:8]
    except OSError as exc:
        raw.close()
        raise LogOpenError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb"), "gzip"  # type: ignore[return-value]
    if head.startswith(XZ_MAGIC):
        return lzma.LZMAFile(raw, mode="rb"), "xz"  # type: ignore[return-value]
    return raw, "plain"


def iter_blocks(
    path: str, status: ReadStatus | None = None, block_size: int = BLOCK_SIZE, max_line: int = MAX_LINE
) -> Iterator[bytes]:
    """Yield blocks of whole lines from ``path``; see the module docstring."""
    status = status if status is not None else ReadStatus()
    stream, kind = _open_binary(path)
    try:
        yield from _blocks(stream, kind, status, block_size, max_line)
    finally:
        stream.close()


def _blocks(
    stream: BinaryIO, kind: str, status: ReadStatus, block_size: int, max_line: int
) -> Iterator[bytes]:
    pending = b""
    discarding = False
    while True:
        try:
            data = stream.read(block_size)
        except (EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
            status.warnings.append(f"{kind} stream ends early ({exc}); read what was there")
            break
        if not data:
            break
        status.bytes_read += len(data)
        if discarding:
            nl = data.find(b"\n")
            if nl < 0:
                continue
            data = data[nl:]
            discarding = False
        buf = pending + data if pending else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            pending = buf
        else:
            yield _denul(buf[: cut + 1])
            pending = buf[cut + 1 :]
        if len(pending) > max_line:
            pending = pending[:max_line]
            discarding = True
            status.truncated_lines += 1
    if pending:
        yield _denul(pending + b"\n")


def _denul(block: bytes) -> bytes:
    return block.translate(None, b"\x00") if b"\x00" in block else block
