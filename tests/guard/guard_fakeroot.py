"""Fake filesystem roots for lpmsim guard tests: never the real /proc, /sys, /etc."""

from __future__ import annotations

import io
import json
import random
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from lpmsim.guard.hook import run

OLD_RELEASE = "5.14.21-150400.24.46-default"
NEW_RELEASE = "6.4.0-150600.23.7-default"

BASE_SYSCTLS = {
    "kernel/watchdog_thresh": "10",
    "kernel/nmi_watchdog": "1",
    "kernel/soft_watchdog": "1",
    "kernel/hung_task_timeout_secs": "120",
    "kernel/hardlockup_panic": "0",
    "kernel/softlockup_panic": "0",
    "kernel/hung_task_panic": "0",
    "kernel/panic_on_rcu_stall": "0",
}
MODULE_PARAMS = {
    "rcupdate/parameters/rcu_cpu_stall_suppress": "0",
    "rcupdate/parameters/rcu_cpu_stall_timeout": "21",
    "workqueue/parameters/watchdog_thresh": "30",
    "workqueue/parameters/panic_on_stall": "0",
}


def proc_stat(steal: int, total: int) -> str:
    """A /proc/stat whose aggregate cpu line has the given steal and total ticks."""
    user = total - steal - 1000
    return (
        f"cpu  {user} 0 0 1000 0 0 0 {steal} 0 0\ncpu0 {user} 0 0 1000 0 0 0 {steal} 0 0\nbtime 1700000000\n"
    )


@dataclass
class FakeRoot:
    root: Path
    generation: str
    spawned: list[tuple[str, str]] = field(default_factory=list)

    def sysctl(self, name: str) -> Path:
        return self.root / "proc/sys" / name.replace(".", "/")

    def param(self, name: str) -> Path:
        module, p = name.split(".")
        return self.root / "sys/module" / module / "parameters" / p

    def path(self, name: str) -> Path:
        return self.param(name) if name.split(".")[0] in ("rcupdate", "workqueue") else self.sysctl(name)

    def get(self, name: str) -> str:
        return self.path(name).read_text().strip()

    def set(self, name: str, value: str) -> None:
        self.path(name).write_text(value + "\n")

    def values(self) -> dict[str, str]:
        out = {}
        for p in sorted((self.root / "proc/sys/kernel").glob("*")):
            if p.is_file():
                out["kernel." + p.name] = p.read_text().strip()
        for p in sorted((self.root / "sys/module").glob("*/parameters/*")):
            out[f"{p.parent.parent.name}.{p.name}"] = p.read_text().strip()
        return out

    def config(self, text: str) -> None:
        cfg = self.root / "etc/lpmsim/guard.toml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(text)

    @property
    def journal(self) -> Path:
        return self.root / "run/lpmsim-guard/journal.json"

    def journal_data(self) -> dict[str, object] | None:
        return json.loads(self.journal.read_text()) if self.journal.exists() else None

    def kmsg(self) -> list[str]:
        return (self.root / "dev/kmsg").read_text().splitlines()

    def reboot(self, new_boot_id: str = "22222222-2222-2222-2222-222222222222") -> None:
        (self.root / "proc/sys/kernel/random/boot_id").write_text(new_boot_id + "\n")

    def guard(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = run([*args, "--root", str(self.root)], environ=env or {}, spawn=self._spawn)
        return rc, out.getvalue(), err.getvalue()

    def _spawn(self, kind: str, token: str) -> None:
        self.spawned.append((kind, token))


def make_root(base: Path, generation: str = "pre-v6.0", config: str = "", pseries: bool = True) -> FakeRoot:
    root = base / f"root-{generation}"
    sysctls = dict(BASE_SYSCTLS)
    sysctls["kernel/osrelease"] = NEW_RELEASE if generation == "v6.0+" else OLD_RELEASE
    sysctls["kernel/random/boot_id"] = "11111111-1111-1111-1111-111111111111"
    if generation == "v6.0+":
        sysctls["kernel/nmi_wd_lpm_factor"] = "200"
    for name, value in sysctls.items():
        p = root / "proc/sys" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(value + "\n")
    for name, value in MODULE_PARAMS.items():
        p = root / "sys/module" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(value + "\n")
    platform = "pSeries" if pseries else "PowerNV"
    (root / "proc/cpuinfo").write_text(
        f"processor\t: 0\ncpu\t\t: POWER10 (architected), altivec supported\n\ntimebase\t: 512000000\n"
        f"platform\t: {platform}\nmodel\t\t: IBM,9080-HEX\n"
    )
    (root / "proc/stat").write_text(proc_stat(2_000, 100_000))
    (root / "proc/powerpc").mkdir(parents=True)
    (root / "proc/powerpc/lparcfg").write_text(
        "lparcfg 1.9\nshared_processor_mode=1\npartition_active_processors=16\n"
    )
    (root / "dev").mkdir()
    (root / "dev/kmsg").write_text("")
    fr = FakeRoot(root, generation)
    if config:
        fr.config(config)
    return fr


# -- faults: what an adversary (or a broken disk) can do to any file of the fake root -------------------

FAULT_KINDS = ("remove", "garbage", "empty", "directory", "dangling-symlink", "nested-toml")
NESTED_TOML = b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n"
GARBAGE = (
    b"\xff\xfe\x00binary\x80",
    b"-1\n",
    b"99999999999999999999999\n",
    b"[[[[[[[[",
    b'{"version": 1}\n',
    b'{"version": 1, "state": "applied", "entries": [{"name": "kernel/../../etc/passwd"}]}\n',
    b"nan\n",
    "٣٠٠\n".encode(),
)


def fault_targets(root: Path) -> list[Path]:
    """Every file and symlink of the fake root, plus the guard's run directory when it exists."""
    found = sorted(p for p in root.rglob("*") if p.is_symlink() or p.is_file())
    run_dir = root / "run/lpmsim-guard"
    return [*found, run_dir] if run_dir.is_dir() else found


def inject(path: Path, kind: str, rng: random.Random) -> None:
    """Replace ``path`` (a file, or a directory for ``remove``/``garbage``) by ``kind``."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if kind == "remove":
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "garbage":
        choice = rng.randrange(len(GARBAGE) + 1)
        path.write_bytes(GARBAGE[choice] if choice < len(GARBAGE) else rng.randbytes(rng.randrange(1, 300)))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_text("1\n")
    elif kind == "dangling-symlink":
        path.symlink_to(path.parent / "does-not-exist")
    elif kind == "nested-toml":
        path.write_bytes(NESTED_TOML)
    else:
        raise ValueError(kind)
