"""Start-up cost of the ``lpmsim-guard`` drmgr hook (issue 7).

Measures, on a fake root in a temporary directory (never the real /proc, /sys, /etc):
  * wall time of ``python -c pass`` (interpreter floor),
  * wall time of ``lpmsim-guard run-phase check``, ``pre`` and ``post`` (policy inhibit-all, v6.0+),
  * ``python -X importtime -c "import lpmsim.guard.hook"``: cumulative import time of the hook module and
    whether any third-party module was imported.

Usage: python benchmarks/guard_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYSCTLS = {
    "kernel/osrelease": "6.4.0-150600.23.7-default",
    "kernel/random/boot_id": "11111111-1111-1111-1111-111111111111",
    "kernel/watchdog_thresh": "10",
    "kernel/nmi_watchdog": "1",
    "kernel/soft_watchdog": "1",
    "kernel/hung_task_timeout_secs": "120",
    "kernel/nmi_wd_lpm_factor": "200",
    "kernel/hardlockup_panic": "0",
}
PARAMS = {
    "rcupdate/parameters/rcu_cpu_stall_suppress": "0",
    "workqueue/parameters/watchdog_thresh": "30",
}


def make_root(base: Path) -> Path:
    for rel, value in SYSCTLS.items():
        p = base / "proc/sys" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(value + "\n")
    for rel, value in PARAMS.items():
        p = base / "sys/module" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(value + "\n")
    (base / "proc/cpuinfo").write_text("processor\t: 0\nplatform\t: pSeries\n")
    (base / "proc/stat").write_text("cpu  90000 0 0 1000 0 0 0 2000 0 0\n")
    (base / "dev").mkdir()
    (base / "dev/kmsg").write_text("")
    cfg = base / "etc/lpmsim/guard.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('policy = "inhibit-all"\nwindow_max_s = 5\n')
    return base


def timed(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def importtime() -> tuple[float, list[str]]:
    """Cumulative import time of lpmsim.guard.hook, and the non-stdlib modules it leaves in sys.modules."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import lpmsim.guard.hook"],
        capture_output=True,
        text=True,
        check=True,
    )
    cumulative_us = 0
    for line in proc.stderr.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[2].strip() == "lpmsim.guard.hook":
            cumulative_us = int(fields[1])
    code = (
        "import sys, lpmsim.guard.hook\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names"
        " and m.split('.')[0] not in ('lpmsim', 'sitecustomize') and not m.startswith('_'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return cumulative_us / 1000.0, loaded.stdout.split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    script = Path(sys.executable).parent / "lpmsim-guard"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LPMSIM_GUARD_")}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_root(Path(tmp))
        base = timed([sys.executable, "-c", "pass"], args.runs, env)
        check = timed([str(script), "run-phase", "check", "--root", str(root)], args.runs, env)
        cycle: list[float] = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            for phase in ("pre", "post"):
                subprocess.run(
                    [str(script), "run-phase", phase, "--root", str(root)],
                    check=True,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            cycle.append((time.perf_counter() - t0) * 1000.0 / 2)
    imp_ms, third = importtime()
    print(
        f"python {sys.version.split()[0]} on {os.uname().machine}, {args.runs} runs each, median (min-max) ms"
    )
    for label, xs in (
        ("python -c pass", base),
        ("lpmsim-guard run-phase check", check),
        ("lpmsim-guard run-phase pre/post (per phase)", cycle),
    ):
        print(f"  {label:45s} {statistics.median(xs):7.1f}  ({min(xs):.1f}-{max(xs):.1f})")
    print(f"  {'import lpmsim.guard.hook (-X importtime, cum.)':45s} {imp_ms:7.1f}")
    print(f"  third-party modules imported: {third or 'none'}")


if __name__ == "__main__":
    main()
