"""``lpmsim-guard``: the drmgr hook (no arguments: PHASE and DRC_TYPE from the environment) and its commands.

    lpmsim-guard                       # as /etc/drmgr.d/pmig/lpmsim-guard, run by drmgr
    lpmsim-guard install|uninstall|status|restore [--root DIR] [--config FILE] [--dry-run]
    lpmsim-guard run-phase PHASE [--root DIR] [--config FILE] [--dry-run]

Standard library only: this runs on a production partition in the middle of a migration.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lpmsim.guard import EXIT_FAIL, EXIT_OK, EXIT_USAGE, GuardError
from lpmsim.guard.config import ConfigError, GuardConfig, load_config
from lpmsim.guard.paths import Paths
from lpmsim.guard.phases import PHASES, Guard, Spawner


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--root",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="run against another filesystem root (DIR/proc, DIR/sys, DIR/etc, DIR/run, DIR/dev/kmsg)",
    )
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="configuration file (default: ROOT/etc/lpmsim/guard.toml)",
    )
    common.add_argument(
        "--dry-run",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print what would change, change nothing",
    )
    return common


def build_parser(prog: str = "lpmsim-guard") -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog=prog,
        parents=[common],
        description="Apply a lockup-detector mitigation around a live partition migration (drmgr hook). "
        "With no command it acts as the hook, reading PHASE and DRC_TYPE from the environment.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("install", parents=[common], help="link the hook into ROOT/etc/drmgr.d/pmig/")
    p.add_argument("--target", metavar="PATH", help="executable to link to (default: this lpmsim-guard)")
    sub.add_parser("uninstall", parents=[common], help="restore anything applied and remove the hook link")
    p = sub.add_parser("status", parents=[common], help="show what is applied and since when")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("restore", parents=[common], help="restore the recorded original values now")
    p = sub.add_parser("run-phase", parents=[common], help="run one drmgr phase by hand (tests)")
    p.add_argument("phase", choices=PHASES)
    p = sub.add_parser("_restorer", parents=[common])  # the detached restorer (internal)
    p.add_argument("kind", choices=("window", "completion"))
    p.add_argument("token")
    return parser


def _config(paths: Paths, ns: argparse.Namespace) -> GuardConfig:
    given = getattr(ns, "config", None)
    return load_config(Path(given) if given else paths.default_config, required=given is not None)


def spawner(paths: Paths, config_arg: str | None) -> Spawner:
    """Start ``lpmsim-guard _restorer KIND TOKEN`` detached: own session, stdio on /dev/null (drmgr reads
    the hook's stdout/stderr pipes until EOF, so the restorer must not hold them)."""

    def spawn(kind: str, token: str) -> None:
        import subprocess

        argv = [
            sys.executable,
            "-m",
            "lpmsim.guard.hook",
            "_restorer",
            kind,
            token,
            "--root",
            str(paths.root),
        ]
        if config_arg:
            argv += ["--config", config_arg]
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )

    return spawn


def run(
    argv: list[str] | None = None,
    environ: dict[str, str] | None = None,
    prog: str = "lpmsim-guard",
    spawn: Spawner | None = None,
) -> int:
    """Entry point shared by ``lpmsim-guard`` and ``lpmsim guard``; returns the exit code."""
    env = os.environ if environ is None else environ
    args = sys.argv[1:] if argv is None else argv
    parser = build_parser(prog)
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    paths = Paths(Path(getattr(ns, "root", "/")).absolute())
    if getattr(ns, "config", None):
        ns.config = str(Path(ns.config).absolute())
    dry = bool(getattr(ns, "dry_run", False))
    phase = ns.phase if ns.command == "run-phase" else env.get("PHASE", "") if ns.command is None else ""
    if ns.command is None:  # hook mode: decide whether this call is ours before reading anything
        if not phase:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        if env.get("DRC_TYPE", "") != "pmig":
            return EXIT_OK  # linked into another DRC type's directory: not ours
        if phase not in PHASES:
            print(f"lpmsim-guard: ignoring unknown PHASE {phase!r}", file=sys.stderr)
            return EXIT_OK
    cmd = ns.command
    # commands that may restore: a broken configuration, or anything unexpected, must not stop them
    restoring = phase in ("undocheck", "post") or cmd in ("restore", "uninstall", "_restorer")
    try:
        try:
            cfg = _config(paths, ns)
        except ConfigError as exc:
            # a broken configuration vetoes check and stops pre/install; it never stops a restore
            if not (restoring or cmd == "status"):
                raise
            _error(f"{exc}; carrying on with built-in defaults (restoring needs only the journal)")
            cfg = GuardConfig(source="<defaults: configuration invalid>")
        guard = Guard(paths, cfg, dry_run=dry, spawn=spawn or spawner(paths, getattr(ns, "config", None)))
        if cmd is None or cmd == "run-phase":
            return guard.run(phase)
        if cmd == "status":
            return guard.status(as_json=ns.json)
        if cmd == "restore":
            return guard.restore()
        if cmd in ("install", "uninstall"):
            from lpmsim.guard import install

            if cmd == "install":
                return install.install(paths, ns.target, dry_run=dry)
            return install.uninstall(paths, guard, dry_run=dry)
        from lpmsim.guard.background import run_restorer

        return run_restorer(guard, ns.kind, ns.token)
    except GuardError as exc:
        _error(str(exc))
        return exc.code
    except Exception as exc:  # the last line of defence of a hook that runs mid-migration
        _error(f"unexpected {type(exc).__name__}: {exc}")
        if cmd not in ("status", "install", "_restorer"):  # the restorer closes its own window
            _emergency_restore(paths, dry)
        return EXIT_FAIL


def _error(text: str) -> None:
    line = " ".join(text.split())
    print(f"lpmsim-guard: error: {line[:2000]}", file=sys.stderr, flush=True)


def _emergency_restore(paths: Paths, dry: bool) -> None:
    """After an unexpected error: put back what the journal records, with defaults and without the lock."""
    try:
        Guard(paths, GuardConfig(source="<defaults: emergency restore>"), dry_run=dry).emergency_restore()
    except Exception as exc:
        _error(f"emergency restore failed: {type(exc).__name__}: {exc}")


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
