"""Output (issue 11, sections 4 and 5): --version, data written verbatim when piped, tables sized to
their content off a terminal, output files with the umask's mode written atomically, and the plain
sentences that end the terminal summary."""

from __future__ import annotations

import copy
import json
import os
import shlex
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpmsim import __version__
from lpmsim.cli.main import app
from lpmsim.config.explain import field_docs
from lpmsim.config.loader import load_scenario, preset_names, preset_text
from lpmsim.outputs.files import write_atomic
from lpmsim.outputs.story import tell
from lpmsim.runner import run_scenario


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lpmsim.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    res = _cli("--version")
    assert res.returncode == 0 and res.stdout == f"lpmsim {__version__}\n"


@pytest.mark.parametrize("name", preset_names())
def test_presets_show_is_the_toml_verbatim_when_piped(name: str) -> None:
    res = _cli("presets", "--show", name, env={"COLUMNS": "40"})
    assert res.returncode == 0
    assert res.stdout == preset_text(name)
    tomllib.loads(res.stdout)  # valid TOML, long lines and all


def test_tables_are_sized_to_content_when_piped() -> None:
    res = _cli("presets", env={"COLUMNS": ""})
    assert res.returncode == 0
    for name in preset_names():
        desc = tomllib.loads(preset_text(name))["description"]
        assert any(desc in line for line in res.stdout.splitlines()), (desc, res.stdout)
    res = _cli("explain", "bugs")
    for d in field_docs():
        if d.path.startswith("bugs") and "[" in d.description:
            assert any(d.description in line for line in res.stdout.splitlines()), d.description


def test_explain_shows_bracketed_doc_text_literally() -> None:
    res = CliRunner().invoke(app, ["explain", "bugs.window_s"])
    doc = next(d for d in field_docs() if d.path == "bugs[].window_s")
    assert "[" in doc.description or "[" in doc.default
    flat = " ".join(res.stdout.split())
    for token in doc.description.split():
        if "[" in token:
            assert token in flat, (token, res.stdout)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        res = CliRunner().invoke(
            app, ["run", "--preset", "small", "-q", "--set", "sim.mode=fluid", "--out", str(tmp_path)]
        )
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.stderr
    for name in ("summary.json", "dmesg.log"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dmesg.log", "summary.json"]  # no temp files


def test_a_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "dmesg.log"
    write_atomic(target, "old\n")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["dmesg.log"]


# -- the story ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_summary() -> dict[str, object]:
    return run_scenario(load_scenario(preset="default"))


def test_default_preset_shows_the_phenomenon_and_its_fractions_stay_in_range(default_summary: dict) -> None:
    s = default_summary
    fired = sum(w.get("reports", 0) for k, w in s["watchdogs"].items() if k != "nmi_ipi")
    assert fired >= 1 and s["watchdogs"]["hardlockup"]["first_s"] >= s["migration"]["vasi"]["resumed_s"]
    # this run counted 1.072 and 1.002 before the stall and link time past its end were clipped
    assert 0.0 <= s["guest"]["throughput_loss_frac"] <= 1.0
    assert 0.0 <= s["migration"]["link_busy_frac"] <= 1.0


def test_the_story_of_a_crash_is_its_chain(default_summary: dict) -> None:
    st = tell(default_summary, ["--preset", "default", "--set", "mitigation.policy=none"])
    text = " ".join(st.sentences)
    crash = default_summary["crash"]
    assert crash is not None
    assert f"CPU {crash['cpu']}" in text and "NMI" in text and "hard-lockup" in text
    assert st.next_command.startswith("lpmsim ") and "--preset default" in st.next_command
    assert st.next_command.count("mitigation.policy") == 1  # the suggestion's own, not the source's


def test_the_story_states_the_smp_timeout_the_kernel_computes() -> None:
    """powerpc watchdog_calc_timeouts(): threshold = thresh + pct*thresh/100, SMP timeout = 3/2 of it:
    10 s -> 15 s without the LPM factor, 10 + 20 = 30 s -> 45 s with nmi_wd_lpm_factor = 200."""
    for policy, want in (("none", "15 s timeout"), ("nmi-factor:200", "45 s timeout")):
        sc = load_scenario(preset="default", overrides=[f"mitigation.policy={policy}"])
        text = " ".join(tell(run_scenario(sc)).sentences)
        assert want in text, (policy, text)


def test_the_story_comes_from_the_figures(default_summary: dict) -> None:
    calm = copy.deepcopy(default_summary)
    calm.update(outcome="survived", crash=None, events=[])
    for w in calm["watchdogs"].values():
        w.update({k: 0 for k in ("reports", "sent", "timed_out", "unrecoverable") if k in w})
        if "cpus" in w:
            w.update(cpus=[], first_s=None)
    calm["guest"].update(max_irqs_off_s=1.7, max_stall_s=0.02, max_spin_s=0.0)
    text = " ".join(tell(calm).sentences)
    assert "No detector fired" in text and "1.7 s" in text and "17% of the 10 s hard-lockup threshold" in text
    calm["guest"]["max_irqs_off_s"] = 4.2
    assert "42% of the 10 s" in " ".join(tell(calm).sentences)
    assert "link_gbps" in tell(calm).next_command


def test_run_ends_with_sentences_and_a_next_command() -> None:
    res = CliRunner().invoke(app, ["run", "--preset", "small", "--set", "sim.mode=fluid"])
    assert res.exit_code == 0
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert lines[-1].startswith("  lpmsim ") and lines[-2].startswith("next: ")
    assert lines[-3].startswith("The partition resumed after") and lines[-3].endswith(".")


def test_run_json_is_unchanged_by_the_story() -> None:
    res = CliRunner().invoke(app, ["run", "--preset", "small", "--set", "sim.mode=fluid", "--json"])
    s = json.loads(res.stdout)
    assert "next" not in res.stdout.split("}")[-1]
    assert s["scenario"]["name"] == "small"


def test_the_suggested_next_run_is_a_valid_command(default_summary: dict) -> None:
    st = tell(default_summary, ["--preset", "default"])
    args = shlex.split(st.next_command)
    assert args[:2] == ["lpmsim", "run"]
    res = CliRunner().invoke(app, [*args[1:], "--json"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["scenario"]["mitigation"]["policy"] == "nmi-factor:200"
