from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from guard_fakeroot import FakeRoot, make_root


@pytest.fixture
def fake_root(tmp_path: Path) -> Callable[..., FakeRoot]:
    def factory(generation: str = "pre-v6.0", config: str = "", pseries: bool = True) -> FakeRoot:
        return make_root(tmp_path, generation, config, pseries)

    return factory
