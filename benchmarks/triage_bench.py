"""Benchmark ``lpmsim triage --json`` on generated kernel logs: scaling in the number of events, and
a multi-GB log with up to a million events.

Big log: writes a log of ``--size-mb`` MiB (default 1024) into a temporary directory, streaming it to
disk: timestamped dmesg noise of 24 kinds a long-running LPAR prints (storage, network, audit, systemd;
2 of the 24 carry a prefilter keyword, "refined-jiffies" and "NMI watchdog: Enabled"), a report every
``--every`` lines (default 40,000; 13 gives about a million reports in 1 GiB) and one complete LPM
sequence (mobility: phase lines, soft lockups and a hard lockup in the transfer window). Then runs
``lpmsim triage --json`` on it in a child process and reports wall time, MB/s, events and the child's
peak RSS (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, one child per run).

Scaling (``--scaling``): logs of 4k, 16k, 64k, ... soft-lockup reports (each followed by 3 noise
lines), one child process each; prints wall and CPU seconds and CPU microseconds per event, so a
linear cost shows as a flat us/event column (a quadratic one grows 4x per row). CPU time (user + sys of
the child) is the figure to compare on a shared machine; wall time includes waiting for a core.

    python benchmarks/triage_bench.py                          # 1 GiB, a report every 40,000 lines
    python benchmarks/triage_bench.py --every 13               # 1 GiB, about 1M reports
    python benchmarks/triage_bench.py --size-mb 64             # quick run
    python benchmarks/triage_bench.py --scaling 4000 16000 64000 256000
    python benchmarks/triage_bench.py --scaling 4000 16000 --src /path/to/other/src   # another tree
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOISE = (
    "sd 0:0:0:{a}: [sd{b}] Synchronize Cache(10) failed: Result: hostbyte=DID_OK driverbyte=DRIVER_OK",
    "ibmveth 30000002 eth0: Link is Up - {a}Gbps/Full - flow control off",
    "audit: type=1130 audit({n}.{b}:4{a}): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='unit=logrotate'",
    "EXT4-fs (dm-{a}): mounted filesystem {n:08x}-1b2c with ordered data mode. Quota mode: none.",
    "systemd[1]: Started Session {n} of User root.",
    "XFS (dm-{b}): Ending clean mount",
    "pseries-rng: Registering IBM pSeries RNG driver",
    "IPv6: ADDRCONF(NETDEV_CHANGE): eth{a}: link becomes ready",
    "clocksource: refined-jiffies: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 7645519600211568 ns",
    "rtas: ibm,get-system-parameter returned {a}",
    "nfs: server filer{b} OK",
    "ibmvscsi 30000003: SRP_VERSION: 16.a",
    "scsi host{a}: IBM POWER Virtual SCSI Adapter 1.5.9",
    "device-mapper: multipath: {a}:{b}: Failing path {a}:{n}.",
    "TCP: request_sock_TCP: Possible SYN flooding on port {n}. Sending cookies.",
    "bond0: (slave eth{a}): link status definitely up, 25000 Mbps full duplex",
    "RPC: Registered tcp NFSv4.1 backchannel transport module.",
    "NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.",
    "usb 1-{a}: new high-speed USB device number {b} using xhci_hcd",
    "kauditd_printk_skb: {a} callbacks suppressed",
    "perf: interrupt took too long ({n} > 2500), lowering kernel.perf_event_max_sample_rate to {b}9000",
    "cgroup: fork rejected by pids controller in /user.slice/user-{n}.slice/session-{a}.scope",
    "Memory cgroup out of memory: Killed process {n} (java) total-vm:{n}kB, anon-rss:{a}kB",
    "hvc: hvc_console_setup: port {b} has no data",
)
EVENTS = (
    "watchdog: BUG: soft lockup - CPU#{a} stuck for 2{b}s! [kworker/{a}:1:{n}]",
    "INFO: task java:{n} blocked for more than 480 seconds.",
    "rcu: INFO: rcu_sched self-detected stall on CPU",
    "BUG: workqueue lockup - pool cpus={a} node=0 flags=0x0 nice=0 stuck for 3{b}s!",
)
LPM = (
    "watchdog: Set the NMI watchdog timeout factor to 200%",
    "mobility: calling ibm,suspend-me on CPU 3",
    "mobility: CPU 3 waking all threads",
    "mobility: waiting for memory transfer to complete...",
    "watchdog: BUG: soft lockup - CPU#12 stuck for 23s! [java:4242]",
    "watchdog: CPU 0 detected hard LOCKUP on other CPUs 24",
    "watchdog: CPU 0 TB:997512652051031, last SMP heartbeat TB:997504470175378 (45980ms ago)",
    "mobility: memory transfer completed.",
    "watchdog: Set the NMI watchdog timeout factor to 0%",
)


def generate(path: Path, size_mb: int, every: int = 40_000) -> tuple[int, int]:
    """Write the log (a report every ``every`` lines); return (bytes, lines)."""
    target = size_mb * 1024 * 1024
    written = lines = 0
    t = 0.0
    n = 0
    lpm_at = target // 2
    lpm_done = False
    with path.open("w", encoding="utf-8", buffering=1 << 20) as fh:
        while written < target:
            buf: list[str] = []
            for _ in range(5000):
                n += 1
                t += 0.000731
                a, b = n % 64, n % 10
                if n % every == 0:
                    text = EVENTS[(n // every) % len(EVENTS)].format(a=a, b=b, n=n % 100_000)
                else:
                    text = NOISE[n % len(NOISE)].format(a=a, b=b, n=n)
                buf.append(f"[{t:12.6f}] {text}\n")
            if not lpm_done and written >= lpm_at:
                buf.extend(f"[{t + i:12.6f}] {text}\n" for i, text in enumerate(LPM))
                lpm_done = True
            chunk = "".join(buf)
            fh.write(chunk)
            written += len(chunk)
            lines += len(buf)
    return written, lines


_CPU = [0.0]  # CPU seconds (user + sys) of the last child: the figure to trust on a loaded machine


def run(path: Path, out: Path, src: Path | None = None) -> tuple[float, int, int]:
    """Run ``lpmsim triage --json`` on ``path`` in a child process; return (wall s, peak RSS KiB, events).

    ``src``: import lpmsim from this source tree instead of the installed one (for before/after runs)."""
    code = "import sys; from lpmsim.cli.main import main; sys.argv[0] = 'lpmsim'; main()"
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = ru0.ru_maxrss
    t0 = time.perf_counter()
    with out.open("wb") as fh:
        proc = subprocess.run(
            [sys.executable, "-c", code, "triage", "--json", str(path)], stdout=fh, check=False, env=env
        )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"lpmsim triage failed with exit code {proc.returncode}")
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss_kib = ru1.ru_maxrss
    _CPU[0] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    if rss_kib <= before:  # ru_maxrss is the largest child so far: run one size per process for RSS
        rss_kib = before
    with out.open("rb") as fh:
        # one entry per line, or (older versions) indented entries
        events = sum(1 for line in fh if line.startswith((b'    {"type": ', b'      "type": ')))
    return wall, rss_kib, events


def scaling(counts: list[int], src: Path | None, tmpdir: Path | None) -> int:
    """Triage logs of ``counts`` soft-lockup reports; print s and us/event per size."""
    print(f"{'events':>9} {'lines':>9} {'wall s':>8} {'cpu s':>8} {'us/event':>9} {'x prev':>7}")
    prev: float | None = None
    for n in counts:
        with tempfile.TemporaryDirectory(dir=tmpdir) as tmp:
            log = Path(tmp) / "scale.log"
            with log.open("w", encoding="utf-8", buffering=1 << 20) as fh:
                t = 0.0
                for i in range(n):
                    t += 0.25
                    fh.write(
                        f"[{t:12.6f}] watchdog: BUG: soft lockup - CPU#{i % 64} stuck for 22s! "
                        f"[kworker/{i % 64}:1:{i % 100_000}]\n"
                    )
                    for k in range(3):
                        fh.write(f"[{t:12.6f}] {NOISE[(i + k) % len(NOISE)].format(a=k, b=k, n=i)}\n")
            wall, _, events = run(log, Path(tmp) / "out.json", src)
        cpu = _CPU[0]
        ratio = f"{cpu / prev:7.1f}" if prev else f"{'':7}"
        print(
            f"{events:>9} {4 * n:>9} {wall:>8.2f} {cpu:>8.2f} {1e6 * cpu / max(events, 1):>9.1f} {ratio}",
            flush=True,
        )
        prev = cpu
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="log size in MiB (default 1024)")
    ap.add_argument("--every", type=int, default=40_000, help="a report every N lines (default 40000)")
    ap.add_argument(
        "--dir", type=Path, default=None, help="directory for the temporary log (default: $TMPDIR)"
    )
    ap.add_argument("--scaling", type=int, nargs="+", metavar="N", help="scaling run: these event counts")
    ap.add_argument("--src", type=Path, default=None, help="import lpmsim from this source tree")
    args = ap.parse_args(argv)
    if args.every < 1:
        ap.error("--every must be at least 1")
    if args.scaling:
        return scaling(args.scaling, args.src, args.dir)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        log = Path(tmp) / "bench.log"
        t0 = time.perf_counter()
        size, lines = generate(log, args.size_mb, args.every)
        gen_s = time.perf_counter() - t0
        wall, rss_kib, events = run(log, Path(tmp) / "out.json", args.src)
    mb = size / 1e6
    result = {
        "size_bytes": size,
        "lines": lines,
        "generate_s": round(gen_s, 1),
        "wall_s": round(wall, 2),
        "cpu_s": round(_CPU[0], 2),
        "mb_per_s": round(mb / wall, 1),
        "peak_rss_mb": round(rss_kib / 1024, 1),
        "events": events,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    ok = rss_kib / 1024 < 200 and _CPU[0] < 60
    print("targets (peak RSS < 200 MB, < 60 s of CPU on one core):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
