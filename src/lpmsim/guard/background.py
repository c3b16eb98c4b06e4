"""The detached restorer process: ``lpmsim-guard _restorer window|completion TOKEN``.

``window`` is started at ``pre``: it sleeps until the journal's ``window_deadline`` (``window_max_s`` after
``pre``) and restores if that window is still open (drmgr or the guard died before ``post``).
``completion`` is started at ``post`` on pre-v6.0 kernels: it waits for the end of the memory transfer
(``hold`` or ``steal``, bounded by ``max_s``) and restores.  Both exit as soon as the journal no longer
carries their token (someone else restored).

Fail safe: a journal that cannot be read while waiting is not taken for "someone else restored" (the
wait goes on and the final step restores from whichever copy is readable); /proc/stat becoming
unreadable ends the wait with a restore; any unexpected error restores.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lpmsim.guard import EXIT_OK
from lpmsim.guard.journal import ACTIVE, Journal, Store
from lpmsim.guard.phases import Guard
from lpmsim.guard.restorer import StealSample, read_steal, system_clock, wait_hold, wait_steal

REASONS = {
    "hold": "memory transfer assumed complete (hold_s elapsed): restoring",
    "settled": "memory transfer complete (stolen time back at its pre-migration level): restoring",
    "max_s": "hard maximum (max_s) reached before the transfer looked complete: restoring",
    "unreadable": "stolen time can no longer be read (/proc/stat): restoring",
}


class _StealGone(Exception):
    pass


def _wanted(store: Store, token: str) -> Callable[[], bool]:
    def still() -> bool:
        loaded = store.load()
        j = loaded.journal
        if j is None:
            return loaded.lost  # unreadable: keep going; absent: someone restored
        return j.token == token and j.state in ACTIVE

    return still


def run_restorer(
    guard: Guard,
    kind: str,
    token: str,
    *,
    clock: Callable[[], float] = system_clock,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    try:
        return _run(guard, kind, token, clock, sleep)
    except Exception as exc:  # whatever broke the wait, the window is closed now
        return guard.close_window(
            token, "restorer", f"restorer error ({type(exc).__name__}: {exc}): restoring"
        )


def _run(
    guard: Guard, kind: str, token: str, clock: Callable[[], float], sleep: Callable[[float], None]
) -> int:
    still = _wanted(guard.store, token)
    loaded = guard.store.load()
    j = loaded.journal
    if j is None and loaded.lost:
        return guard.close_window(token, "restorer", "journal unreadable: restoring")
    if j is None or j.token != token:
        return EXIT_OK
    if kind == "window":
        deadline = j.window_deadline or guard.wall()
        while (left := deadline - guard.wall()) > 0:
            sleep(min(left, 5.0))
            if not still():
                return EXIT_OK
        return guard.close_window(token, "restorer", "window maximum (window_max_s) reached: restoring")
    reason = _wait_completion(guard, j, clock, sleep, still)
    if reason == "cancelled":
        return EXIT_OK
    return guard.close_window(token, "restorer", REASONS[reason])


def _wait_completion(
    guard: Guard,
    j: Journal,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    still: Callable[[], bool],
) -> str:
    c = j.completion
    max_s = float(c.get("max_s", 1800.0))
    if c.get("mode") == "hold":
        reason = wait_hold(float(c.get("hold_s", 0.0)), max_s, clock, sleep, still)
    elif j.steal_baseline is None:
        reason = wait_hold(max_s, max_s, clock, sleep, still)
        reason = "max_s" if reason == "hold" else reason
    else:

        def sample() -> StealSample:
            try:
                return read_steal(guard.paths)
            except (OSError, ValueError) as exc:
                raise _StealGone(str(exc)) from None

        try:
            reason = wait_steal(
                float(j.steal_baseline.get("fraction", 0.0)),
                float(c.get("steal_margin_pct", 1.0)),
                float(c.get("settle_s", 30.0)),
                max_s,
                float(c.get("poll_s", 1.0)),
                sample,
                clock,
                sleep,
                still,
            )
        except _StealGone:
            reason = "unreadable"
    return reason
