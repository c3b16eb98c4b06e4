"""Streaming, bounded-memory reading of kernel logs.

Any input becomes a sequence of byte *blocks*, each a run of whole lines ending in ``\\n`` (the last
block of a file without a final newline gets one). Blocks stay bytes: the scanner searches them for
keywords at C speed and decodes only the lines it looks at (:func:`clean`). Memory is bounded by the block size plus
``MAX_LINE``: a line longer than that is truncated (the rest up to its newline is skipped), which is
what a serial capture without newlines or a binary blob in a log needs.

Input may be a plain file, gzip or xz (recognised by their magic bytes, not the file name) or
``-`` for stdin. A compressed file that is cut short or damaged is read up to the damage (every byte
the decompressor could decode, as ``zcat``/``xzcat`` print before their error) and a warning says how
much was read. NUL bytes are dropped from blocks (so UTF-16 text of ASCII messages still matches);
lines are decoded as UTF-8 with ``errors="replace"`` and carriage returns and other C0 control
characters (serial-console noise, ANSI escapes) are removed.
Line numbers are counted in ``\\n`` characters, as an editor or ``sed -n Np`` counts them.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import stat
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

BLOCK_SIZE = 1 << 20
MAX_LINE = 16 * 1024

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"

# C0 controls except TAB and LF, plus DEL: deleted. CR is handled separately (-> line end / space).
_DELETE = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127]}
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class LogOpenError(Exception):
    """The input cannot be opened (missing, a directory, unreadable)."""


@dataclass
class ReadStatus:
    """What went wrong while reading, if anything (a truncated .gz still yields its readable part)."""

    warnings: list[str] = field(default_factory=list)
    truncated_lines: int = 0
    bytes_read: int = 0  # of the file as stored (compressed bytes for .gz/.xz)
    total_bytes: int | None = None  # size of the file, when it is a regular file


def clean(data: bytes) -> str:
    """Decode bytes (a line or a few) and remove line-noise characters."""
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", " ")
    return text.translate(_DELETE) if _CONTROL.search(text) else text


class _Decoder:
    """Streaming decompressor for one container format, tolerant of a cut-short or damaged tail.

    ``zlib`` / ``lzma`` decompressor objects fed raw chunks return every byte decoded so far, so the
    text up to the damage is kept (``gzip.GzipFile.read`` raises instead and loses what it had decoded in
    that call). Concatenated members/streams (``cat a.gz b.gz``, ``pigz``, ``xz -T``) are followed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._d = self._new()
        self._padded = False  # the data ended in zero padding after a complete member

    def _new(self) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(wbits=31)
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def decode(self, data: bytes, max_out: int) -> Iterator[bytes]:
        """Decode ``data`` in pieces of at most ``max_out`` bytes (a small input may expand a lot)."""
        magic = GZIP_MAGIC if self.kind == "gzip" else XZ_MAGIC
        while data:
            d = self._d
            if d.eof:  # the member/stream before ended: another one, zero padding, or garbage
                if not data.strip(b"\x00"):
                    self._padded = True
                    return
                if not data.startswith(magic):
                    raise ValueError(f"{len(data)} bytes of trailing garbage after the {self.kind} data")
                self._d = d = self._new()
                self._padded = False
            out = d.decompress(data, max_out)
            if self.kind == "gzip":
                data = d.unconsumed_tail
            else:
                data = b""
                while not d.eof and not d.needs_input:
                    if out:
                        yield out
                    out = d.decompress(b"", max_out)
            if out:
                yield out
            if d.eof:  # the rest of the input (zlib may also leave a copy in unconsumed_tail)
                data = d.unused_data

    @property
    def complete(self) -> bool:
        """The last member/stream ended properly (not cut short)."""
        return self._padded or bool(self._d.eof)


def _open_binary(path: str) -> tuple[BinaryIO, str, int | None]:
    """Open ``path`` (or stdin for ``-``); return the raw stream, its format (by magic bytes) and its size."""
    raw: io.BufferedReader
    name = "<stdin>" if path == "-" else path
    size: int | None = None
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
            st = os.fstat(raw.fileno())
            size = st.st_size if stat.S_ISREG(st.st_mode) else None
        except OSError:
            size = None
    try:
        head = raw.peek(8)[:8]
    except OSError as exc:
        raw.close()
        raise LogOpenError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if head.startswith(GZIP_MAGIC):
        return raw, "gzip", size
    if head.startswith(XZ_MAGIC):
        return raw, "xz", size
    return raw, "plain", size


def iter_blocks(
    path: str, status: ReadStatus | None = None, block_size: int = BLOCK_SIZE, max_line: int = MAX_LINE
) -> Iterator[bytes]:
    """Yield blocks of whole lines from ``path``; see the module docstring."""
    status = status if status is not None else ReadStatus()
    stream, kind, size = _open_binary(path)
    status.total_bytes = size
    try:
        yield from _lines(_chunks(stream, kind, status, block_size), status, max_line)
    finally:
        stream.close()


def _chunks(stream: BinaryIO, kind: str, status: ReadStatus, block_size: int) -> Iterator[bytes]:
    """The decoded bytes of ``stream`` in pieces of about ``block_size``; a damaged tail ends it with a warning."""
    dec = _Decoder(kind) if kind != "plain" else None
    decoded = 0
    while True:
        try:
            data = stream.read(block_size)
        except OSError as exc:
            status.warnings.append(
                f"read error after {status.bytes_read} bytes ({exc.strerror or exc}); read what was there"
            )
            return
        if not data:
            break
        status.bytes_read += len(data)
        if dec is None:
            yield data
            continue
        try:
            for out in dec.decode(data, block_size):
                decoded += len(out)
                yield out
        except (ValueError, lzma.LZMAError, zlib.error, EOFError) as exc:
            status.warnings.append(
                f"{kind} data damaged after {_size(status.bytes_read)} of "
                f"{_size(status.total_bytes)} compressed ({exc}); read the {_size(decoded)} before it"
            )
            return
    if dec is not None and not dec.complete:
        status.warnings.append(
            f"{kind} stream ends early (cut short after {_size(status.bytes_read)}); "
            f"read the {_size(decoded)} of text it holds"
        )


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    if n < 10_000:
        return f"{n} bytes"
    if n < 10_000_000:
        return f"{n / 1e3:.0f} kB"
    return f"{n / 1e6:.0f} MB"


def _lines(chunks: Iterator[bytes], status: ReadStatus, max_line: int) -> Iterator[bytes]:
    pending = b""
    discarding = False
    cr_only: bool | None = None
    for data in chunks:
        if cr_only is None:  # a serial capture that ends its lines with CR alone
            head = data[:65536]
            cr_only = b"\n" not in head and b"\r" in head
        if cr_only:
            data = data.replace(b"\r", b"\n")
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
