"""Random draws of the compiled fluid step: every distribution by inversion of a uniform.

The fluid step (``lpmsim.guest.fluid_kernel``) and the fluid transfer's kernels
(``lpmsim.hypervisor.fluid``) are compiled with numba (``@njit(cache=True)``) where it is
installed, and run as plain Python where it is not (``HAVE_NUMBA``; ``LPMSIM_NUMBA=0`` forces it, as
a check): the same functions, the same float operations in the same order.  So that both paths draw
the same numbers, the draws come from a generator of their own, SplitMix64 (``uniform``: 64-bit
integer arithmetic, wrapping in the compiled path and masked in Python, the same words), seeded
from the named numpy stream of its user; numpy's ``Generator`` is not used inside a kernel
(numba reimplements its distributions, and handing it to a compiled function costs ~8 µs per
call).  Every distribution is its textbook inversion of uniforms with ``math.log``/``math.exp``
(the C library's in both paths).  ``tests/guest/test_fluid_kernel.py`` checks that the two paths
agree bit for bit, and that each draw has its distribution.

* exponential(mean): ``-mean·log(1 - U)``;
* Poisson(λ): sequential search of the cdf (Knuth, TAOCP vol. 2, 3.4.1), λ cut into pieces of at
  most ``CHUNK`` (a sum of independent Poisson variables is Poisson), so that ``exp(-λ)`` never
  underflows; cost O(λ);
* binomial(n, p): sequential search of the cdf (Kachitvichyanukul & Schmeiser 1988, BINV), p
  folded to at most 1/2, n cut into pieces whose mean is at most ``CHUNK`` (a sum of binomials
  of the same p is binomial); cost O(n·p);
* both searches return 0 without their ``exp``/``log`` when the uniform is below a bound of P(0)
  (``ZERO_MARGIN``): the same draw, cheaper (most draws of the fluid step are zeros);
* multinomial: conditional binomials in bin order, as numpy's ``Generator.multinomial``;
* categorical: the first index whose cdf exceeds U, as ``cdf.searchsorted(U, side="right")``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

_njit: Callable[..., Any] | None = None
if os.environ.get("LPMSIM_NUMBA", "1") != "0":  # LPMSIM_NUMBA=0: the Python path, as a check
    try:  # pragma: no cover - which branch runs depends on the platform
        from numba import njit as _njit
    except ImportError:  # pragma: no cover - e.g. ppc64le, where numba has no wheels
        _njit = None
HAVE_NUMBA = _njit is not None

_cache_class: Callable[[Callable[..., Any]], Any] | None = None
if _njit is not None:
    try:
        from numba.core.caching import FunctionCache
        from numba.core.runtime.nrt import rtsys

        class _LoadWithoutRefresh(FunctionCache):
            """numba's cache of one compiled function, whose load of a cached overload does not
            first refresh the compiler's target context.

            numba's own ``load_overload`` calls ``target_context.refresh()`` before it looks in the
            cache: at a process's first call that imports and installs every typing and lowering
            registry (``numba.np.arraymath`` and the rest, and through it scipy's linear algebra
            where scipy is installed): 0.2-0.3 s of CPU in every process (``lpmsim run`` each time,
            each ``compare`` worker once, docs/performance.md "Round 6"), none of which loading
            machine code needs.  Loading it needs numba's runtime (``rtsys.initialize``: the
            reference counting and allocation the kernels that allocate call), then the same
            ``_load_overload`` as numba's; only when the cache has no entry for the signature is
            the context refreshed, as numba does, for the compile that follows.  The same machine
            code is loaded either way (tests/guest/test_fluid_kernel.py)."""

            def load_overload(self, sig: Any, target_context: Any) -> Any:
                rtsys.initialize(target_context)
                with self._guard_against_spurious_io_errors():
                    data = self._load_overload(sig, target_context)  # type: ignore[no-untyped-call]
                    if data is not None:
                        return data
                target_context.refresh()  # a miss (or an unreadable entry): numba compiles next
                return None

        _cache_class = _LoadWithoutRefresh
    except (ImportError, AttributeError):  # pragma: no cover - numba's internals moved: its own cache
        _cache_class = None


def _compiled(disp: Any) -> Any:
    """A dispatcher made by ``numba.njit(cache=True)`` with the cache that loads without refreshing
    numba's compiler (``_LoadWithoutRefresh``), where numba's internals are as expected."""
    if _cache_class is not None and getattr(disp, "_cache", None) is not None:
        disp._cache = _cache_class(disp.py_func)
    return disp


def _no_view(addr: int, shape: Any) -> np.ndarray:  # pragma: no cover - the Python path never calls it
    raise RuntimeError("array views from addresses exist only in compiled code")


f8_view: Callable[[int, Any], np.ndarray] = _no_view
i8_view: Callable[[int, Any], np.ndarray] = _no_view
u8_view: Callable[[int, Any], np.ndarray] = _no_view
"""Compiled code only: the C-contiguous array of float64 / int64 / uint64 of ``shape`` (an int or a
tuple) whose data starts at address ``addr`` (``ndarray.ctypes.data``), a view without numba's
reference counting (``numba.carray``).  For the arrays that a compiled kernel is called with at
every fluid step and that never change identity (``fluid_kernel.batch_binding``): numba unboxes
each array argument at every call (~35 ns an array, ~1.8 µs for the batch's 47), a view from an
address costs a few instructions.  Whoever makes the addresses keeps the arrays alive."""

if _njit is not None:
    try:
        from numba import types as _types
        from numba.extending import intrinsic as _intrinsic
        from numba.np.numpy_support import carray as _carray

        def _pointer_intrinsic(elem: Any) -> Any:
            ptr = _types.CPointer(elem)  # type: ignore[no-untyped-call]

            def typer(typingctx: Any, addr: Any) -> Any:
                def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
                    return builder.inttoptr(args[0], context.get_value_type(ptr))

                return ptr(_types.int64), codegen

            return _intrinsic(typer)

        _f8p = _pointer_intrinsic(_types.float64)
        _i8p = _pointer_intrinsic(_types.int64)
        _u8p = _pointer_intrinsic(_types.uint64)

        def _f8_view(addr: int, shape: Any) -> np.ndarray:
            return _carray(_f8p(addr), shape)

        def _i8_view(addr: int, shape: Any) -> np.ndarray:
            return _carray(_i8p(addr), shape)

        def _u8_view(addr: int, shape: Any) -> np.ndarray:
            return _carray(_u8p(addr), shape)

        f8_view = _njit(inline="always", _nrt=False)(_f8_view)
        i8_view = _njit(inline="always", _nrt=False)(_i8_view)
        u8_view = _njit(inline="always", _nrt=False)(_u8_view)
        HAVE_VIEWS = True
    except (ImportError, AttributeError):  # pragma: no cover - numba's API moved: arrays as arguments
        HAVE_VIEWS = False
else:
    HAVE_VIEWS = False


CHUNK = 16.0
"""The largest mean of one inversion (exp(-16) ~ 1e-7: far from underflow)."""


def jit(fn: F) -> F:
    """``numba.njit(cache=True)`` without numba's reference counting when numba is installed, else
    the function itself: for the kernels that allocate no array (``jit_nrt`` for those that do).

    Without it every compiled function that takes arrays counts a reference to each on entry and
    drops it on exit (two atomic operations per array and call: ~300 per fluid step, ~7 % of its
    compiled time); the arrays belong to the Python caller or to a ``jit_nrt`` function up the
    stack, which keep them alive.  ``error_model="numpy"``: a division is the IEEE one without
    numba's test for a zero divisor before each (every divisor of the kernels is tested or
    positive; the Python path, which would raise, gives the same results).  The compiled code is cached next to the module when its
    ``__pycache__`` is writable, else in the user's cache directory (numba's own fallback), so a
    read-only install compiles once per user; the first run compiles in a few seconds
    (docs/performance.md)."""
    if _njit is None:
        return fn
    return _compiled(_njit(cache=True, nogil=True, _nrt=False, error_model="numpy")(fn))


def jit_nrt(fn: F) -> F:
    """``numba.njit(cache=True)`` when numba is installed, else the function itself: for the
    kernels that allocate arrays (numba's reference counting frees them)."""
    if _njit is None:
        return fn
    return _compiled(_njit(cache=True, nogil=True)(fn))


_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_MASK = 0xFFFFFFFFFFFFFFFF
_TO_UNIT = 2.0**-53


def seed_state(rng: np.random.Generator) -> np.ndarray:
    """A generator state (one 64-bit word) drawn from a named numpy stream."""
    return np.asarray(rng.integers(0, 2**64, size=1, dtype=np.uint64, endpoint=False), dtype=np.uint64)


def _uniform_py(st: np.ndarray) -> float:
    """SplitMix64 (Steele, Lea & Flood, OOPSLA 2014; the generator of Java's SplittableRandom)
    advanced by one, as a uniform double in [0, 1) from its top 53 bits: Python integers."""
    x = (int(st[0]) + _GAMMA) & _MASK
    st[0] = x
    z = ((x ^ (x >> 30)) * _MIX1) & _MASK
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK
    z ^= z >> 31
    return (z >> 11) * _TO_UNIT


if _njit is None:
    uniform = _uniform_py
else:
    _G = np.uint64(_GAMMA)
    _M1 = np.uint64(_MIX1)
    _M2 = np.uint64(_MIX2)
    _S30 = np.uint64(30)
    _S27 = np.uint64(27)
    _S31 = np.uint64(31)
    _S11 = np.uint64(11)

    @_compiled
    @_njit(cache=True, nogil=True, _nrt=False, error_model="numpy")  # type: ignore[untyped-decorator]
    def uniform(st: np.ndarray) -> float:
        """``_uniform_py`` in wrapping 64-bit arithmetic (the same numbers)."""
        x = st[0] + _G
        st[0] = x
        z = (x ^ (x >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        z ^= z >> _S31
        return float(z >> _S11) * _TO_UNIT


@jit
def exponential(st: np.ndarray, mean: float) -> float:
    """Exp with mean ``mean``, by inversion."""
    return -math.log(1.0 - uniform(st)) * mean


ZERO_MARGIN = 1e-12
"""Slack of the no-draw shortcuts (``_poisson_small``, ``_binomial_small``): a uniform below the
bound 1 - mean - ``ZERO_MARGIN``·(1 + n) of P(0) is a zero draw without its ``exp``/``log``.  The
bound is below P(0) as computed (``exp(-lam)``, ``exp(n·log(1-p))``; libm within an ulp, so the
rounding is below 1e-15·(1 + n)) by a margin a thousand times that: the shortcut returns the
very zero the search would have returned, so the draws are the same numbers."""


@jit
def _poisson_small(st: np.ndarray, lam: float) -> int:
    u = uniform(st)
    if u < 1.0 - lam - ZERO_MARGIN:  # exp(-lam) >= 1 - lam: zero (``ZERO_MARGIN``)
        return 0
    p = math.exp(-lam)
    s = p
    k = 0
    kmax = int(lam + 40.0 * math.sqrt(lam) + 40.0)  # guards a cdf that rounds short of u
    while u >= s and k < kmax:
        k += 1
        p *= lam / k
        s += p
    return k


@jit
def poisson(st: np.ndarray, lam: float) -> int:
    """Poisson with mean ``lam`` (0 draws no uniform)."""
    x = 0
    while lam > 0.0:
        piece = lam if lam < CHUNK else CHUNK
        x += _poisson_small(st, piece)
        lam -= piece
    return x


@jit
def _binomial_small(st: np.ndarray, n: int, p: float) -> int:
    u = uniform(st)
    if u < 1.0 - n * p - ZERO_MARGIN * (1.0 + n):  # (1 - p)^n >= 1 - n·p: zero (``ZERO_MARGIN``)
        return 0
    q = 1.0 - p
    r = p / q
    f = math.exp(n * math.log(q))
    k = 0
    while u >= f and k < n:
        u -= f
        k += 1
        f *= r * (n - k + 1) / k
    return k


@jit
def binomial(st: np.ndarray, n: int, p: float) -> int:
    """Binomial(n, p); n <= 0, p <= 0 or p >= 1 draw no uniform."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    flip = p > 0.5
    if flip:
        p = 1.0 - p
    span = CHUNK / p  # trials per piece; compared as a float first (int() of a huge float
    piece = n if span >= n else int(span)  # overflows in compiled code)
    if piece < 1:
        piece = 1
    x = 0
    left = n
    while left > 0:
        m = left if left < piece else piece
        x += _binomial_small(st, m, p)
        left -= m
    return n - x if flip else x


@jit
def multinomial(st: np.ndarray, n: int, w: np.ndarray, out: np.ndarray) -> None:
    """``out[j]``: of ``n`` draws, those in bin j, with probability ``w[j] / sum(w)`` (w >= 0):
    a binomial per bin conditioned on the bins before it; the last bin with weight gets the rest."""
    d = w.size
    tot = 0.0
    last = -1
    for j in range(d):
        out[j] = 0
        if w[j] > 0.0:
            tot += w[j]
            last = j
    if n <= 0 or last < 0:
        return
    rem = n
    rem_p = 1.0
    for j in range(last):
        if rem <= 0:
            return
        if w[j] <= 0.0:
            continue
        pj = w[j] / tot
        x = binomial(st, rem, pj / rem_p if rem_p > pj else 1.0)
        out[j] = x
        rem -= x
        rem_p -= pj
    out[last] = rem


@jit
def categorical(st: np.ndarray, cdf: np.ndarray) -> int:
    """The first index whose ``cdf`` value exceeds a uniform (``searchsorted(side="right")``)."""
    u = uniform(st)
    k = 0
    last = cdf.size - 1
    while k < last and cdf[k] <= u:
        k += 1
    return k


@jit
def take_proportional(
    st: np.ndarray, avail: np.ndarray, n: int, take: np.ndarray, work: np.ndarray, draw: np.ndarray
) -> int:
    """Take ``n`` items from bins with ``avail`` items each, proportionally (a multinomial on
    what is left, capped per bin, again until all are taken); ``take`` gets the counts, the
    return value their total.  ``work`` and ``draw`` are scratch of at least ``avail.size`` floats
    and integers."""
    d = avail.size
    total = 0
    for j in range(d):
        take[j] = 0
        total += avail[j]
    left = n if n < total else total
    got = 0
    room = work[:d]
    drawn = draw[:d]
    while left > 0:
        for j in range(d):
            room[j] = float(avail[j] - take[j])
        multinomial(st, left, room, drawn)
        for j in range(d):
            x = drawn[j]
            r = avail[j] - take[j]
            if x > r:
                x = r
            take[j] += x
            got += x
            left -= x
    return got
