"""The ``bugs`` section: validation errors name the field; the CLI exits 2 with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpmsim.cli.main import app
from lpmsim.config.loader import ScenarioError, load_scenario

runner = CliRunner()


@pytest.mark.parametrize(
    ("bug", "needle"),
    [
        (
            '{kind="d_state", at_s=3, window_s=[1, 2]}',
            "bugs[0].window_s: give at_s (a fixed time) or window_s",
        ),
        ('{kind="d_state"}', "bugs[0].window_s: give at_s (a fixed time) or window_s (a random time)"),
        ('{kind="d_state", window_s=[30, 20]}', "bugs[0].window_s: lo 30 > hi 20"),
        ('{kind="d_state", window_s=[-1, 20]}', "bugs[0].window_s"),
        (
            '{kind="abba_deadlock", cpu=2, cpu2=2, at_s=1}',
            "bugs[0].cpu2: the two CPUs of the deadlock must differ",
        ),
        ('{kind="d_state", cpu2=2, at_s=1}', "bugs[0].cpu2: only abba_deadlock"),
        ('{kind="irqs_soft_off_spin", irqsave=true, at_s=1}', "bugs[0].irqsave: only abba_deadlock"),
        (
            '{kind="irqs_soft_off_spin", cpu=8, at_s=1}',
            "bugs[0].cpu: CPU 8 does not exist (partition.vcpus = 8",
        ),
        ('{kind="abba_deadlock", cpu=1, cpu2=9, at_s=1}', "bugs[0].cpu2: CPU 9 does not exist"),
        ('{kind="livelock", at_s=1}', "bugs[0].kind"),
        ('{kind="d_state", at_s=-1}', "bugs[0].at_s"),
        ('{kind="d_state", at_s=1, after="suspend"}', "bugs[0].after"),
        ('{kind="d_state", at_s=1, when=3}', "bugs[0].when: unknown field"),
    ],
)
def test_errors_name_the_field(bug: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(preset="small", overrides=[f"bugs=[{bug}]"])
    assert needle in str(err.value)


def test_second_entry_is_named_by_index() -> None:
    with pytest.raises(ScenarioError, match=r"^bugs\[1\]\.cpu: CPU 12 does not exist"):
        load_scenario(
            preset="small",
            overrides=['bugs=[{kind="d_state", at_s=1}, {kind="irqs_hard_off_spin", cpu=12, at_s=1}]'],
        )


def test_abba_needs_two_cpus() -> None:
    with pytest.raises(ScenarioError, match=r"bugs\[0\]\.kind: abba_deadlock needs two CPUs"):
        load_scenario(
            preset="small", overrides=["partition.vcpus=1", 'bugs=[{kind="abba_deadlock", at_s=1}]']
        )


def test_defaults_and_round_trip() -> None:
    sc = load_scenario(preset="small", overrides=['bugs=[{kind="d_state", window_s=[0, 60]}]'])
    (b,) = sc.bugs
    assert (b.after, b.cpu, b.cpu2, b.irqsave, b.horizon_s) == ("resume", None, None, False, None)
    dumped = sc.model_dump(mode="json")["bugs"]
    assert dumped[0]["window_s"] == [0.0, 60.0]
    again = load_scenario(
        preset="small", overrides=[f"bugs=[{{kind='d_state', window_s={dumped[0]['window_s']}}}]"]
    )
    assert again.bugs == sc.bugs


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('[[bugs]]\nkind = "d_state"\n', "bugs[0].window_s"),
        ('[[bugs]]\nkind = "d_state"\nat_s = 1\nwindow_s = [0, 5]\n', "not both"),
        ('[[bugs]]\nkind = "irqs_hard_off_spin"\ncpu = 99\nat_s = 1\n', "bugs[0].cpu: CPU 99 does not exist"),
    ],
)
def test_cli_validate_exit_2_one_line(tmp_path: Path, content: str, needle: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('base = "small"\n' + content)
    res = runner.invoke(app, ["validate", str(f)])
    assert res.exit_code == 2, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0]
    assert "Traceback" not in res.stderr


def test_cli_validate_accepts_bugs(tmp_path: Path) -> None:
    f = tmp_path / "ok.toml"
    f.write_text('base = "small"\n[[bugs]]\nkind = "abba_deadlock"\nwindow_s = [0, 30]\nirqsave = true\n')
    res = runner.invoke(app, ["validate", str(f)])
    assert res.exit_code == 0 and "ok" in res.stdout


def test_terminal_summary_has_a_row_per_bug() -> None:
    res = runner.invoke(
        app,
        [
            "run",
            "--preset",
            "small",
            "--set",
            "sim.mode=fluid",
            "--set",
            'bugs=[{kind="irqs_hard_off_spin", cpu=3, at_s=2}, {kind="d_state", at_s=9000}]',
        ],
        terminal_width=200,
    )
    assert res.exit_code == 0, res.stderr
    assert "bug 0: irqs_hard_off_spin on CPU 3" in res.stdout
    assert "bug 1: d_state on CPU" in res.stdout and "not started" in res.stdout
    assert "reports from migration / bugs" in res.stdout


def test_derived_detection_horizons() -> None:
    from lpmsim.bugs.inject import detection_horizon
    from lpmsim.kernel.config import Kernel

    k = Kernel()
    # spins: the workqueue watchdog bounds it (2 x 30 s + 1 s), + 5 s margin
    assert detection_horizon("irqs_hard_off_spin", k) == pytest.approx(66.0)
    # d_state: 120 + 2 x 120 + 5; SUSE's 480 s timeout: 480 + 960 + 5
    assert detection_horizon("d_state", k) == pytest.approx(365.0)
    assert detection_horizon("d_state", Kernel(preset="sles")) == pytest.approx(1445.0)
    assert detection_horizon("d_state", Kernel(hung_task_timeout_secs=0)) == pytest.approx(5.0)
