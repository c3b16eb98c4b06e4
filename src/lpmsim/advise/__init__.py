"""``lpmsim advise``: which settings or ``lpmsim guard`` policy to use on a partition about to be
migrated, with the risk on both sides (docs/advise.md).

``facts`` (what is known about the partition), ``candidates`` (what its kernel can be told to do),
``compact`` (the compact comparison), ``recommend`` (the rule and the sensitivity), ``deploy`` (the
guard configuration or sysctl lines), ``pattern`` and ``fit`` (advice from a real log: approximate
Bayesian computation of the platform figures), ``results`` (typed results), ``render`` (the tables).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lpmsim.advise.results import Advice


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Advice:
        """``lpmsim.advise(...)``: see ``lpmsim.api.advise.advise`` (a package and a function cannot
        share the name ``lpmsim.advise``, so the package is callable, as ``lpmsim.triage`` is)."""
        from lpmsim.api.advise import advise

        return advise(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
