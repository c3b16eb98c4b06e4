"""Named, independent random streams derived from one seed.

Each consumer asks for its stream by name.  The stream's ``SeedSequence`` is keyed by the seed and
a stable hash of the name, so adding a new consumer never shifts the numbers another one draws, and
the same (seed, name) gives the same stream in any process on any machine.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _name_key(name: str) -> tuple[int, ...]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class RngStreams:
    """A family of independent ``numpy.random.Generator`` objects, one per name."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._streams: dict[str, np.random.Generator] = {}

    def get(self, name: str) -> np.random.Generator:
        gen = self._streams.get(name)
        if gen is None:
            seq = np.random.SeedSequence(entropy=self.seed, spawn_key=_name_key(name))
            gen = np.random.Generator(np.random.PCG64(seq))
            self._streams[name] = gen
        return gen

    def __getitem__(self, name: str) -> np.random.Generator:
        return self.get(name)
