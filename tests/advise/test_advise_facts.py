"""Facts: kernel versions, missing facts, and reading a partition's /proc and /sys."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fakepartition import OLD_RELEASE, V6_RELEASE, make_partition

from lpmsim.advise.facts import FactsError, from_partition, from_scenario, given, version_of
from lpmsim.config.loader import load_scenario, resolve_scenario


@pytest.mark.parametrize(
    ("text", "factor", "version", "distro", "has_factor", "rcu_reset"),
    [
        ("pre-v6.0", False, "pre-v6.0", None, False, "rest_of_gp"),  # deprecated alias: SLES 15 SP4
        ("v6.6", False, "v6.6", None, True, "third_fqs"),  # deprecated alias: 6.6.3
        ("5.14.21-150400.24.46-default", False, "5.14.21", "sles15-sp4", False, "rest_of_gp"),
        # the LPM series backported: the sysctl exists
        ("5.14.21-150400.24.46-default", True, "5.14.21", "sles15-sp4", True, "rest_of_gp"),
        ("4.18.0-477.el8.ppc64le", False, "4.18", None, False, "rest_of_gp"),
        ("6.0", False, "6.0", None, True, "timeout"),
        ("6.5.9", False, "6.5.9", None, True, "timeout"),
        ("6.6", False, "6.6", None, True, "timeout"),
        ("6.6.3", False, "6.6.3", None, True, "third_fqs"),
        ("6.12.0-55.el10", False, "6.12", None, True, "third_fqs"),
    ],
)
def test_kernel_versions(
    text: str, factor: bool, version: str, distro: str | None, has_factor: bool, rcu_reset: str
) -> None:
    kf = version_of(text, factor)
    assert (kf.version, kf.distro) == (version, distro)
    f = given(64, 256, 1, text)
    f = f if not factor else given(None, None, None, text, base=replace(f, has_factor=True))
    assert f.has_lpm_factor == has_factor
    assert f.kernel.rcu_reset == rcu_reset


def test_the_factor_sysctl_backports_the_factor_only() -> None:
    # 5.19.4 took the factor (118b1366930c) without the series' completion wait (882c0d1704cf): the
    # sysctl proves the first only
    kf = version_of("5.15.0-1", has_factor=True)
    assert kf.backports == ("118b1366930c",)
    f = given(None, None, None, "5.15.0-1", base=replace(given(64, 256, 1, "5.15.0-1"), has_factor=True))
    assert f.has_lpm_factor and not f.kernel.waits_for_completion


@pytest.mark.parametrize("text", ["linux", "v7", "", "6", "sles"])
def test_unknown_kernel_says_what_to_pass(text: str) -> None:
    with pytest.raises(
        FactsError, match=r"unknown kernel version; pass a release such as .* or one of pre-v6.0"
    ):
        version_of(text)


def test_kernel_older_than_the_model() -> None:
    with pytest.raises(FactsError, match=r"before 4\.13"):
        version_of("3.10.0-1160.el7")


def test_missing_facts_are_named() -> None:
    with pytest.raises(FactsError) as exc:
        given(64, None, None, "6.6")
    msg = str(exc.value)
    assert msg.startswith("missing facts: pass --memory-gib GIB, --link-gbps GBPS")
    assert "--vcpus" not in msg and "--from-partition" in msg


def test_given_facts_make_the_scenario() -> None:
    f = given(1024, 4096, 10, "5.14.21", "sles", "analytics")
    data = f.apply(resolve_scenario(preset="default"))
    sc = load_scenario(preset="default", overrides=[])  # the base itself is untouched
    assert sc.partition.vcpus == 64
    from lpmsim.config.loader import build_scenario

    sc = build_scenario(data)
    assert (sc.partition.vcpus, sc.partition.memory_gib, sc.platform.link_gbps) == (1024, 4096, 10)
    assert (sc.kernel.version, sc.kernel.distro, sc.kernel.preset, sc.kernel.hung_task_timeout_secs) == (
        "5.14.21",
        None,
        "sles",
        480,
    )
    assert sc.workload.preset == "analytics"


def test_scenario_facts_keep_explicit_settings() -> None:
    raw = resolve_scenario(preset="lpm-2022", overrides=["kernel.hardlockup_panic=1"])
    from lpmsim.config.loader import build_scenario

    f = from_scenario(build_scenario(raw).model_dump(mode="json"), raw)
    assert (f.vcpus, f.link_gbps, f.distro, f.kernel_version) == (1024, 10.0, "sles", "5.14.21")
    assert f.kernel_distro == "sles15-sp4" and not f.has_lpm_factor
    assert f.settings == {"kernel.hardlockup_panic": 1}


def test_from_partition_reads_proc_and_sys(tmp_path: Path) -> None:
    root = make_partition(tmp_path, cpus=12, mem_kib=32 * 2**20, release=V6_RELEASE, factor=300)
    f = from_partition(root)
    assert (f.vcpus, f.memory_gib, f.kernel_version, f.kernel_release) == (
        12,
        32.0,
        str(version_of(V6_RELEASE).version),
        V6_RELEASE,
    )
    assert f.has_lpm_factor
    assert f.settings["kernel.nmi_wd_lpm_factor"] == 300
    assert f.settings["rcupdate.rcu_cpu_stall_timeout"] == 60
    assert f.settings["kernel.hung_task_timeout_secs"] == 480
    assert f.link_gbps == 0.0  # not readable: must be given
    with pytest.raises(FactsError, match="missing facts: pass --link-gbps GBPS"):
        given(None, None, None, None, base=f)
    g = given(None, None, 25, None, base=f)
    sc_kernel = g.kernel_fields()
    assert sc_kernel["nmi_wd_lpm_factor"] == 300 and sc_kernel["rcu_cpu_stall_timeout"] == 60


def test_from_partition_old_kernel_has_no_factor(tmp_path: Path) -> None:
    f = from_partition(make_partition(tmp_path, release=OLD_RELEASE))
    assert f.kernel_version == str(version_of(OLD_RELEASE).version) and not f.has_lpm_factor


def test_not_pseries(tmp_path: Path) -> None:
    with pytest.raises(FactsError, match="does not say 'platform : pSeries'"):
        from_partition(make_partition(tmp_path, platform="PowerNV"))


def test_unreadable_release(tmp_path: Path) -> None:
    root = make_partition(tmp_path)
    (root / "proc/sys/kernel/osrelease").write_bytes(b"\xff\xfe garbage\n")
    with pytest.raises(FactsError, match=r"cannot read the kernel release .*: pass --kernel RELEASE"):
        from_partition(root)


def test_no_memory(tmp_path: Path) -> None:
    root = make_partition(tmp_path)
    (root / "proc/meminfo").unlink()
    with pytest.raises(FactsError, match="pass --memory-gib GIB"):
        from_partition(root)
