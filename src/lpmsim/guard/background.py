"""The detached restorer process: ``lpmsim-guard _restorer window|completion TOKEN``.

``window`` is started at ``pre``: it sleeps until the journal's ``window_deadline`` (``window_max_s`` after
``pre``) and restores if that window is still open (drmgr or the guard died before ``post``).
``completion`` is started at ``post`` on pre-v6.0 kernels: it waits for the end of the memory transfer
(``hold`` or ``steal``, bounded by ``max_s``) and restores.  Both exit as soon as the journal no longer
carries their token (someone else restored).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lpmsim.guard import EXIT_OK, journal
from lpmsim.guard.journal import ACTIVE
from lpmsim.guard.phases import Guard
from lpmsim.guard.restorer import read_steal, system_clock, wait_hold, wait_steal


def _wanted(guard: Guard, token: str) -> Callable[[], bool]:
    def still() -> bool:
        try:
            j = journal.load(guard.paths.journal)
        except ValueError:
            return False
        return j is not None and j.token == token and j.state in ACTIVE

    return still


def run_restorer(
    guard: Guard,
    kind: str,
    token: str,
    *,
    clock: Callable[[], float] = system_clock,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    still = _wanted(guard, token)
    j = journal.load(guard.paths.journal)
    if j is None or j.token != token:
        return EXIT_OK
    if kind == "window":
        deadline = j.window_deadline or guard.wall()
        while (left := deadline - guard.wall()) > 0:
            sleep(min(left, 5.0))
            if not still():
                return EXIT_OK
        return guard.close_window(token, "restorer", "window maximum (window_max_s) reached: restoring")
    c = j.completion
    max_s = float(c.get("max_s", 1800.0))
    if c.get("mode") == "hold":
        reason = wait_hold(float(c.get("hold_s", 0.0)), max_s, clock, sleep, still)
    elif j.steal_baseline is None:
        reason = wait_hold(max_s, max_s, clock, sleep, still)
        reason = "max_s" if reason == "hold" else reason
    else:
        reason = wait_steal(
            float(j.steal_baseline["fraction"]),
            float(c.get("steal_margin_pct", 1.0)),
            float(c.get("settle_s", 30.0)),
            max_s,
            float(c.get("poll_s", 1.0)),
            lambda: read_steal(guard.paths),
            clock,
            sleep,
            still,
        )
    if reason == "cancelled":
        return EXIT_OK
    text = {
        "hold": "memory transfer assumed complete (hold_s elapsed): restoring",
        "settled": "memory transfer complete (stolen time back at its pre-migration level): restoring",
        "max_s": "hard maximum (max_s) reached before the transfer looked complete: restoring",
    }[reason]
    return guard.close_window(token, "restorer", text)
