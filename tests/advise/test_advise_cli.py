"""``lpmsim advise`` end to end: JSON keys, the text, --from-partition on a fake root, --from-log,
and the one-line refusals (exit code 2)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fakepartition import V6_RELEASE, make_partition
from typer.testing import CliRunner

import lpmsim
from lpmsim.cli.main import app
from lpmsim.guard.config import parse_config

FAST = ["--runs", "2", "--batch", "2", "--horizon", "20", "--detection-runs", "1", "-j", "1"]
SMALL = ["--vcpus", "8", "--memory-gib", "16", "--link-gbps", "1"]

TOP_KEYS = {
    "lpmsim_version",
    "command",
    "facts",
    "assumptions",
    "recommendation",
    "candidates",
    "resume_s",
    "sensitivity",
    "fit",
    "execution",
    "complete",
}
CANDIDATE_KEYS = {
    "name",
    "summary",
    "policy",
    "overrides",
    "variant",
    "deploy",
    "runs",
    "failed",
    "p_crash",
    "p_panic",
    "p_down",
    "reports_mean",
    "nmi_ipi_mean",
    "left_race_after",
    "detection",
}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["advise", *args])


def test_json_for_scripts() -> None:
    res = invoke(
        *SMALL,
        "--kernel",
        "5.14.21-150400.24.46-default",
        "--distro",
        "sles",
        *FAST,
        "--sensitivity-runs",
        "1",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == TOP_KEYS
    assert out["facts"]["kernel_version"] == "5.14.21" and out["facts"]["distro"] == "sles"
    assert out["facts"]["kernel_distro"] == "sles15-sp4"
    names = [c["name"] for c in out["candidates"]]
    assert names == ["none", "guard-factor-200", "guard-factor-500", "guard-disable-nmi", "guard-inhibit-all"]
    for c in out["candidates"]:
        assert set(c) == CANDIDATE_KEYS
        assert set(c["p_crash"]) == {"k", "n", "p", "ci95_low", "ci95_high"}
        assert c["detection"]["runs"] == 1
    rec = out["recommendation"]
    assert rec["name"] in names
    assert [p["label"] for p in out["sensitivity"]] == ["0.5x link (0.5 Gb/s)", "2x link (2 Gb/s)"]
    assert out["assumptions"]["horizon_after_resume_s"] == 20
    if rec["guard_toml"] is not None:  # what the guard's own parser accepts
        cfg = parse_config(tomllib.loads(rec["guard_toml"]))
        assert str(cfg.policy) == rec["deploy"]["guard_policy"]


def test_text_shows_the_table_recommendation_and_deployment() -> None:
    res = invoke(*SMALL, "--kernel", "v6.6", *FAST, "--sensitivity-runs", "0")
    assert res.exit_code == 0, res.output
    text = res.stdout
    for piece in (
        "Partition: 8 vCPUs, 16 GiB",
        "Assumed: link 1 Gb/s",
        "sysctl-factor-400",
        "Recommendation: ",
        "Deploy:",
    ):
        assert piece in text
    assert "Sensitivity" not in text


def test_from_partition(tmp_path: Path) -> None:
    root = make_partition(
        tmp_path,
        cpus=8,
        mem_kib=16 * 2**20,
        release=V6_RELEASE,
        factor=200,
        settings={"kernel/softlockup_panic": 1},
    )
    res = invoke(
        "--from-partition",
        "--root",
        str(root),
        "--link-gbps",
        "1",
        *FAST,
        "--sensitivity-runs",
        "0",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["facts"]["vcpus"] == 8 and out["facts"]["kernel_release"] == V6_RELEASE
    assert out["facts"]["settings"]["kernel.softlockup_panic"] == 1
    names = [c["name"] for c in out["candidates"]]
    assert "guard-no-panic" in names and "sysctl-factor-400" in names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((*SMALL, "--kernel", "linux-next"), "unknown kernel version; pass a release"),
        (("--vcpus", "8", "--kernel", "6.6"), "missing facts: pass --memory-gib GIB, --link-gbps GBPS"),
        ((*SMALL, "--kernel", "6.6", "--workload", "gaming"), "--workload 'gaming': expected one of"),
        ((*SMALL[:4], "--link-gbps", "-1", "--kernel", "6.6"), "--link-gbps -1.0: must be > 0"),
        (("--vcpus", "9000", "--memory-gib", "1", "--link-gbps", "1", "--kernel", "6.6"), "partition.vcpus"),
        (("--preset", "lpm-2022", "--from-log", "/nonexistent/log"), "--from-log /nonexistent/log"),
    ],
)
def test_refusals_are_one_line(args: tuple[str, ...], message: str) -> None:
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output


def test_not_pseries_and_no_link(tmp_path: Path) -> None:
    root = make_partition(tmp_path, platform="PowerNV")
    res = invoke("--from-partition", "--root", str(root), "--link-gbps", "1")
    assert res.exit_code == 2 and "does not say 'platform : pSeries'" in res.output
    root2 = make_partition(tmp_path / "b")
    res = invoke("--from-partition", "--root", str(root2))
    assert res.exit_code == 2 and "missing facts: pass --link-gbps GBPS" in res.output


def test_from_log(tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = ["--preset", "default", "--set", "partition.vcpus=8", "--set", "partition.memory_gib=16"]
    res = CliRunner().invoke(
        app, ["run", *base, "--set", "migration.resume_missing_fraction=0.5", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    res = invoke(
        *base,
        "--from-log",
        str(out / "dmesg.log"),
        "--fit-runs",
        "12",
        *FAST,
        "--sensitivity-runs",
        "1",
        "--json",
    )
    if res.exit_code == 1:  # nothing accepted: said in one line, the fit still printed
        assert "no simulated run reproduced the log's pattern" in res.output
        assert json.loads(res.stdout)["fit"]["accepted"] == 0
        return
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    fit = data["fit"]
    assert fit["runs"] == 12 and 0 < fit["accepted"] <= 12
    assert [p["field"] for p in fit["parameters"]] == [
        "platform.link_gbps",
        "platform.fault_overhead_us",
        "migration.resume_missing_fraction",
    ]
    assert data["facts"]["link_gbps"] == fit["parameters"][0]["accepted_median"]
    assert [p["label"] for p in data["sensitivity"]] == [
        "hardest accepted platform",
        "easiest accepted platform",
    ]


def test_api_is_the_cli() -> None:
    assert "advise" in lpmsim.__all__ and "Advice" in lpmsim.__all__
    a = lpmsim.advise(
        vcpus=8,
        memory_gib=16,
        link_gbps=1,
        kernel="v6.6",
        runs=2,
        batch=2,
        horizon_s=20,
        detection_runs=0,
        sensitivity_runs=0,
        jobs=1,
    )
    assert isinstance(a, lpmsim.Advice)
    assert a.recommendation in {c.name for c in a.candidates}
    res = invoke(
        *SMALL,
        "--kernel",
        "v6.6",
        "--runs",
        "2",
        "--batch",
        "2",
        "--horizon",
        "20",
        "--detection-runs",
        "0",
        "--sensitivity-runs",
        "0",
        "-j",
        "1",
        "--json",
    )
    cli = json.loads(res.stdout)
    api = a.to_dict()
    assert [c["p_down"] for c in cli["candidates"]] == [c["p_down"] for c in api["candidates"]]
    with pytest.raises(lpmsim.AdviseError, match="missing facts"):
        lpmsim.advise(vcpus=8)


def test_from_log_with_nothing_accepted_exits_1_and_keeps_the_fit(tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = ["--preset", "default", "--set", "partition.vcpus=16", "--set", "partition.memory_gib=64"]
    res = CliRunner().invoke(app, ["run", *base, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Hard LOCKUP" in (out / "dmesg.log").read_text()
    # a prior of fast links only: the post-migration RTAS calls no longer stall, nothing fires
    res = invoke(
        *base,
        "--from-log",
        str(out / "dmesg.log"),
        "--fit-runs",
        "4",
        "--prior",
        "platform.link_gbps=200:400",
        "-j",
        "1",
        "--json",
    )
    assert res.exit_code == 1, res.output
    assert "0 of 4 accepted" in res.output
    fit = json.loads(res.stdout)["fit"]
    assert fit["accepted"] == 0 and fit["parameters"][0]["prior"] == [200.0, 400.0]
    assert fit["observed"]["fired"] == ["hardlockup", "unrecoverable_system_reset"]
