"""Reading files the guard does not own (``/proc``, ``/sys``, its configuration, its journal) defensively.

A file the guard reads may be missing, a directory, a dangling symlink, a FIFO nobody writes to, or
garbage of any size; none of that may hang or crash a hook that runs in the middle of a migration.
``read_small`` opens without blocking and without following a final symlink (``O_NOFOLLOW``: a symlink
in place of a guard file is refused with ``ELOOP``), accepts only regular files, and reads at most
``limit`` bytes.  procfs and sysfs files are regular files of size 0 whose content is produced on read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

SMALL = 64 * 1024  # a sysctl, /proc/cpuinfo of a large partition fits many times over
MAX_DEPTH = 16  # nesting bound for configuration and journal documents (they need 3)


def read_small(path: Path, limit: int = SMALL, *, follow: bool = True) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); raises OSError otherwise.

    ``follow=False`` refuses a symlink at ``path`` itself (the guard's own files are never symlinks).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_ascii(path: Path, limit: int = SMALL) -> str:
    """``read_small`` decoded as ASCII; undecodable content raises OSError(EILSEQ) like an unreadable file."""
    data = read_small(path, limit)
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise OSError(errno.EILSEQ, "not ASCII text", str(path)) from None


def why(exc: OSError) -> str:
    """One short reason for an OSError (``strerror``, else its text)."""
    return exc.strerror or str(exc) or type(exc).__name__


def depth_exceeds(value: object, limit: int = MAX_DEPTH) -> bool:
    """True when lists/dicts nest deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = list(item)
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def bracket_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` in a TOML or JSON text, outside strings and ``#`` comments.

    Run before a recursive parser (tomllib, json) so that ``x = [[[[...]]]]`` is refused with one line
    instead of exhausting the interpreter's stack.  Over-approximating is harmless: the bound is far
    above what a valid guard file needs.
    """
    depth = best = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch in "\"'":
            if text.startswith(ch * 3, i):
                j = text.find(ch * 3, i + 3)
                i = n if j < 0 else j + 3
                continue
            j = i + 1
            while j < n and text[j] != ch and text[j] != "\n":
                j += 2 if ch == '"' and text[j] == "\\" else 1
            i = j + 1
            continue
        if ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return best
