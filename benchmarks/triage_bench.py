"""Benchmark ``lpmsim triage --json`` on a generated multi-GB kernel log.

Writes a log of ``--size-mb`` MiB (default 1024) into a temporary directory, streaming it to disk:
timestamped dmesg noise of 24 kinds a long-running LPAR prints (storage, network, audit, systemd;
2 of the 24 carry a prefilter keyword, "refined-jiffies" and "NMI watchdog: Enabled"), with a lockup report every ~40k lines and
one complete LPM sequence (mobility: phase lines, soft lockups and a hard lockup in the transfer
window). Then runs ``lpmsim triage --json`` on it in a child process and reports wall time, MB/s and
the child's peak RSS (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``).

    python benchmarks/triage_bench.py                 # 1 GiB
    python benchmarks/triage_bench.py --size-mb 64    # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
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


def generate(path: Path, size_mb: int) -> tuple[int, int]:
    """Write the log; return (bytes, lines)."""
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
                if n % 40_000 == 0:
                    text = EVENTS[(n // 40_000) % len(EVENTS)].format(a=a, b=b, n=n % 100_000)
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


def run(path: Path, out: Path) -> tuple[float, int, int]:
    """Run ``lpmsim triage --json`` on ``path``; return (wall s, peak RSS KiB, events)."""
    exe = shutil.which("lpmsim") or str(Path(sys.executable).parent / "lpmsim")
    t0 = time.perf_counter()
    with out.open("wb") as fh:
        proc = subprocess.run([exe, "triage", "--json", str(path)], stdout=fh, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"lpmsim triage failed with exit code {proc.returncode}")
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    events = len(json.loads(out.read_text())["events"])
    return wall, rss_kib, events


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="log size in MiB (default 1024)")
    ap.add_argument(
        "--dir", type=Path, default=None, help="directory for the temporary log (default: $TMPDIR)"
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        log = Path(tmp) / "bench.log"
        t0 = time.perf_counter()
        size, lines = generate(log, args.size_mb)
        gen_s = time.perf_counter() - t0
        wall, rss_kib, events = run(log, Path(tmp) / "out.json")
    mb = size / 1e6
    result = {
        "size_bytes": size,
        "lines": lines,
        "generate_s": round(gen_s, 1),
        "wall_s": round(wall, 2),
        "mb_per_s": round(mb / wall, 1),
        "peak_rss_mb": round(rss_kib / 1024, 1),
        "events": events,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    ok = rss_kib / 1024 < 200 and mb / wall >= 50
    print("targets (peak RSS < 200 MB, >= 50 MB/s):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
