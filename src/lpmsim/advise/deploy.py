"""What to deploy for a candidate: the exact ``/etc/lpmsim/guard.toml`` or sysctl lines.

The guard configuration is written in the format docs/guard.md describes and is checked here with
the guard's own parser (``lpmsim.guard.config.parse_config``), so a file advise prints is a file
``lpmsim guard`` accepts.  Settings the simulator scored with its defaults (``completion`` etc.)
are left out: the guard's defaults are the ones the simulator's ``guard:<policy>`` models.
"""

from __future__ import annotations

import json
import tomllib

from lpmsim.advise.candidates import Candidate
from lpmsim.advise.facts import Facts
from lpmsim.guard.config import parse_config

GUARD_TOML_PATH = "/etc/lpmsim/guard.toml"
SYSCTL_PATH = "/etc/sysctl.d/90-lpmsim-advise.conf"


def _facts_line(facts: Facts) -> str:
    kernel = facts.kernel_label
    return (
        f"{facts.vcpus} vCPUs, {facts.memory_gib:g} GiB, {facts.link_gbps:.3g} Gb/s link, kernel {kernel}, "
        f"workload {facts.workload}"
    )


def guard_toml(candidate: Candidate, facts: Facts) -> str | None:
    """The ``guard.toml`` that deploys ``candidate`` (None if it is not a guard candidate)."""
    dep = candidate.deploy
    if dep.kind != "guard" or dep.guard_policy is None:
        return None
    lines = [
        f"# {GUARD_TOML_PATH}, written by `lpmsim advise` (candidate {candidate.name})",
        f"# for: {_facts_line(facts)}",
        "# Install the hook first: lpmsim guard install (docs/guard.md)",
        f"policy = {json.dumps(dep.guard_policy)}",
    ]
    if dep.skip_missing:
        lines.append("skip_missing = true  # settings this kernel does not have are skipped")
    if dep.guard_overrides:
        lines.append("")
        lines.append("[overrides]")
        lines.extend(f"{json.dumps(name)} = {value}" for name, value in sorted(dep.guard_overrides.items()))
    text = "\n".join(lines) + "\n"
    parse_config(tomllib.loads(text), GUARD_TOML_PATH)  # the guard's own loader: raises if it would refuse it
    return text


def sysctl_lines(candidate: Candidate) -> list[str]:
    """``NAME = VALUE`` lines for ``/etc/sysctl.d`` (empty if the candidate is not a sysctl one)."""
    return [f"{name} = {value}" for name, value in sorted(candidate.deploy.sysctl.items())]


def instructions(candidate: Candidate, facts: Facts) -> str:
    """What to do, as text: nothing, the sysctl file and command, or the guard configuration."""
    dep = candidate.deploy
    if dep.kind == "nothing":
        return "Nothing to deploy: leave the partition's settings as they are."
    if dep.kind == "sysctl":
        lines = sysctl_lines(candidate)
        cmds = " ".join(f"{ln.replace(' = ', '=')}" for ln in lines)
        return (
            f"# {SYSCTL_PATH} (applied at boot; apply now with: sysctl -w {cmds})\n" + "\n".join(lines) + "\n"
        )
    text = guard_toml(candidate, facts)
    assert text is not None
    return text
