"""A corpus of malformed scenario files (issue 11, section 3): each is refused by ``lpmsim validate``
and ``lpmsim run`` with exit code 2 and one line on stderr naming the field path, never a traceback.

Each entry: (id, file content, extra CLI arguments, text the error line must contain).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpmsim.cli.main import app

DEEP_ARRAY = "x = " + "[" * 3000 + "1" + "]" * 3000 + "\n"
DEEP_INLINE = "x = " + "{a = " * 2000 + "1" + "}" * 2000 + "\n"
DEEP_TABLES = "[" + ".".join(["t"] * 200) + "]\nv = 1\n"
DEEP_DOTTED = ".".join(["k"] * 500) + " = 1\n"
MEDIUM_ARRAY = "[platform]\nlink_gbps = " + "[" * 40 + "1" + "]" * 40 + "\n"

# One entry a line: a corpus reads better as a table than as formatted code.
# fmt: off
CORPUS: list[tuple[str, str, tuple[str, ...], str]] = [
    # -- not TOML, not UTF-8, nested too deeply
    ("garbage", "this is [not toml\n", (), "not valid TOML"),
    ("unterminated-string", 'name = "abc\n', (), "not valid TOML"),
    ("duplicate-key", "[platform]\nlink_gbps = 1\nlink_gbps = 2\n", (), "not valid TOML"),
    ("duplicate-table", "[platform]\n[platform]\n", (), "not valid TOML"),
    ("latin1", "name = \"caf\xe9\"\n", (), "not UTF-8"),
    ("deep-array", DEEP_ARRAY, (), "nested too deeply"),
    ("deep-inline-table", DEEP_INLINE, (), "nested too deeply"),
    ("deep-tables", DEEP_TABLES, (), "nested too deeply"),
    ("deep-dotted-key", DEEP_DOTTED, (), "nested too deeply"),
    ("medium-deep-array", MEDIUM_ARRAY, (), "nested too deeply"),
    ("deep-set", "", ("--set", "a." * 100 + "b=1"), "nested too deeply"),
    ("deep-set-value", "", ("--set", "name=" + "[" * 2000 + "]" * 2000), "nested too deeply"),
    # -- non-finite numbers
    ("memory-inf", "[partition]\nmemory_gib = inf\n", (), "partition.memory_gib"),
    ("memory-nan", "[partition]\nmemory_gib = nan\n", (), "partition.memory_gib"),
    ("rtt-inf", "[platform]\nrtt_us = inf\n", (), "platform.rtt_us"),
    ("link-inf", "[platform]\nlink_gbps = inf\n", (), "platform.link_gbps"),
    ("link-nan", "[platform]\nlink_gbps = nan\n", (), "platform.link_gbps"),
    ("overhead-inf", "[platform]\nfault_overhead_us = inf\n", (), "platform.fault_overhead_us"),
    ("max-time-inf", "[sim]\nmax_time_s = inf\n", (), "sim.max_time_s"),
    ("max-time-nan", "[sim]\nmax_time_s = nan\n", (), "sim.max_time_s"),
    ("tail-inf", "[kernel]\ntail_s = inf\n", (), "kernel.tail_s"),
    ("blackout-inf", "[migration]\nblackout_s = inf\n", (), "migration.blackout_s"),
    ("stop-fraction-nan", "[migration]\nprecopy_stop_fraction = nan\n", (), "migration.precopy_stop_fraction"),
    ("resume-missing-nan", "[migration]\nresume_missing_fraction = nan\n", (), "migration.resume_missing_fraction"),
    ("bug-window-nan", '[[bugs]]\nkind = "d_state"\nwindow_s = [nan, 5]\n', (), "bugs[0].window_s[0]"),
    ("bug-window-inf", '[[bugs]]\nkind = "d_state"\nwindow_s = [1, inf]\n', (), "bugs[0].window_s[1]"),
    ("bug-at-inf", '[[bugs]]\nkind = "d_state"\nat_s = inf\n', (), "bugs[0].at_s"),
    ("script-at-inf", '[[script]]\ncpu = 0\nat_s = inf\nstate = "stalled"\nduration_s = 1\n', (), "script[0].at_s"),
    ("script-duration-nan", '[[script]]\ncpu = 0\nat_s = 1\nstate = "stalled"\nduration_s = nan\n', (), "script[0].duration_s"),
    ("script-duration-neg-inf", '[[script]]\ncpu = 0\nat_s = 1\nstate = "stalled"\nduration_s = -inf\n', (), "script[0].duration_s"),
    ("option-inf", '[mitigation]\npolicy = "adaptive-factor"\noptions = {faults = inf}\n', (), "mitigation.options.faults"),
    ("set-memory-inf", "", ("--set", "partition.memory_gib=inf"), "partition.memory_gib"),
    ("set-link-nan", "", ("--set", "platform.link_gbps=nan"), "platform.link_gbps"),
    ("fluid-step-inf", "[sim]\nfluid_step_s = inf\n", (), "sim.fluid_step_s"),
    # -- out of range
    ("vcpus-zero", "[partition]\nvcpus = 0\n", (), "partition.vcpus"),
    ("vcpus-huge", "[partition]\nvcpus = 100000\n", (), "partition.vcpus"),
    ("vcpus-20-digits", "[partition]\nvcpus = 99999999999999999999\n", (), "partition.vcpus"),
    ("vcpus-float", "[partition]\nvcpus = 2.5\n", (), "partition.vcpus"),
    ("vcpus-string", '[partition]\nvcpus = "many"\n', (), "partition.vcpus"),
    ("memory-negative", "[partition]\nmemory_gib = -4\n", (), "partition.memory_gib"),
    ("memory-tiny", "[partition]\nmemory_gib = 0.00001\n", (), "partition.memory_gib"),
    ("memory-huge", "[partition]\nmemory_gib = 1e300\n", (), "partition.memory_gib"),
    ("link-zero", "[platform]\nlink_gbps = 0\n", (), "platform.link_gbps"),
    ("link-negative", "[platform]\nlink_gbps = -1\n", (), "platform.link_gbps"),
    ("link-huge", "[platform]\nlink_gbps = 1e300\n", (), "platform.link_gbps"),
    ("rtt-negative", "[platform]\nrtt_us = -5\n", (), "platform.rtt_us"),
    ("page-odd", "[platform]\npage_kib = 1\n", (), "platform.page_kib"),
    ("discipline-unknown", '[platform]\ndiscipline = "lifo"\n', (), "platform.discipline"),
    ("window-zero", "[platform]\npush_window_pages = 0\n", (), "platform.push_window_pages"),
    ("prefetch-negative", "[platform]\nprefetch_pages = -1\n", (), "platform.prefetch_pages"),
    ("stop-fraction-2", "[migration]\nprecopy_stop_fraction = 2\n", (), "migration.precopy_stop_fraction"),
    ("resume-missing-neg", "", ("--set", "migration.resume_missing_fraction=-0.1"), "migration.resume_missing_fraction"),
    ("resume-missing-1.5", "", ("--set", "migration.resume_missing_fraction=1.5"), "migration.resume_missing_fraction"),
    ("rounds-zero", "[migration]\nprecopy_max_rounds = 0\n", (), "migration.precopy_max_rounds"),
    ("max-factor-half", "[migration]\nprecopy_max_factor = 0.5\n", (), "migration.precopy_max_factor"),
    ("mode-unknown", '[sim]\nmode = "warp"\n', (), "sim.mode"),
    ("seed-negative", "[sim]\nseed = -1\n", (), "sim.seed"),
    ("max-time-zero", "[sim]\nmax_time_s = 0\n", (), "sim.max_time_s"),
    ("max-time-huge", "[sim]\nmax_time_s = 1e300\n", (), "sim.max_time_s"),
    ("thresh-negative", "[kernel]\nwatchdog_thresh = -1\n", (), "kernel.watchdog_thresh"),
    ("kernel-version", '[kernel]\nversion = "v9.9"\n', (), "kernel.version"),
    ("panic-2", "[kernel]\nhardlockup_panic = 2\n", (), "kernel.hardlockup_panic"),
    # -- structure and names
    ("unknown-field", "[platform]\nlink_gpbs = 10\n", (), "platform.link_gpbs: unknown field"),
    ("unknown-section", "[platfrom]\nlink_gbps = 10\n", (), "platfrom: unknown field"),
    ("section-not-table", "platform = 3\n", (), "platform"),
    ("workload-not-table", "workload = 3\n", (), "workload: expected a table"),
    ("workload-unknown", '[workload]\npreset = "crypto"\n', (), "workload.preset"),
    ("workload-preset-number", "[workload]\npreset = 3\n", (), "workload.preset"),
    ("base-unknown", 'base = "nope"\n', (), "unknown preset"),
    ("base-number", "base = 3\n", (), "base: expected a preset name"),
    ("name-number", "name = 3\n", (), "name"),
    ("policy-unknown", '[mitigation]\npolicy = "pray"\n', (), "mitigation.policy"),
    ("policy-empty", '[mitigation]\npolicy = ""\n', (), "mitigation.policy"),
    ("option-unknown", '[mitigation]\npolicy = "adaptive-factor"\noptions = {multiplier = 4}\n', (), "mitigation.options"),
    ("option-wrong-policy", "[mitigation]\noptions = {faults = 4}\n", (), "mitigation.options"),
    ("set-no-equals", "", ("--set", "platform.rtt_us"), "expected FIELD=VALUE"),
    ("set-empty-field", "", ("--set", "platform..rtt_us=1"), "empty field name"),
    ("set-through-value", "", ("--set", "sim.mode.x=1"), "sim.mode.x: mode is not a section"),
    # -- cross-field checks
    ("script-cpu-99", '[[script]]\ncpu = 99\nat_s = 1\nstate = "stalled"\nduration_s = 1\n', (), "script[0].cpu"),
    ("script-cpu-negative", '[[script]]\ncpu = -1\nat_s = 1\nstate = "stalled"\nduration_s = 1\n', (), "script[0].cpu"),
    ("script-state-unknown", '[[script]]\ncpu = 0\nat_s = 1\nstate = "asleep"\nduration_s = 1\n', (), "script[0].state"),
    ("script-missing-cpu", '[[script]]\nat_s = 1\nstate = "stalled"\nduration_s = 1\n', (), "script[0].cpu"),
    ("bug-cpu-99", '[[bugs]]\nkind = "d_state"\nat_s = 1\ncpu = 99\n', (), "bugs[0].cpu"),
    ("bug-kind-unknown", '[[bugs]]\nkind = "gremlin"\nat_s = 1\n', (), "bugs[0].kind"),
    ("bug-no-time", '[[bugs]]\nkind = "d_state"\n', (), "bugs[0]"),
    ("bug-window-reversed", '[[bugs]]\nkind = "d_state"\nwindow_s = [5, 1]\n', (), "bugs[0].window_s"),
    ("memory-below-a-page", "[partition]\nmemory_gib = 0.00002\n[platform]\npage_kib = 65536\n", (), "partition.memory_gib"),
    (
        "exact-too-large",
        '[partition]\nvcpus = 8\nmemory_gib = 1048576\n[platform]\npage_kib = 4\n[sim]\nmode = "exact"\n',
        (),
        "sim.mode: exact mode needs about",
    ),
]
# fmt: on


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 60
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("content", "args", "needle"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_malformed_scenario_is_one_line_and_exit_2(
    tmp_path: Path, content: str, args: tuple[str, ...], needle: str
) -> None:
    f = tmp_path / "bad.toml"
    f.write_bytes(content.encode("latin-1") if "\xe9" in content else content.encode("utf-8"))
    if not content:  # an empty file is the default preset: the overrides carry the fault
        f.write_text('base = "small"\n')
    for cmd in ("validate", "run"):
        res = CliRunner().invoke(app, [cmd, str(f), *args])
        assert res.exit_code == 2, (cmd, res.stdout, res.stderr, res.exception)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, res.stderr
        assert needle in lines[0], lines[0]
        assert "Traceback" not in res.stderr and res.stdout == ""
