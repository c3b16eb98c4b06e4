"""Configuration validation: bad config -> one clear line naming the field, exit code 2."""

from __future__ import annotations

import pytest

from lpmsim.guard.config import ConfigError, parse_config
from lpmsim.guard.policy import GEN_NEW, GEN_OLD, Policy, PolicyError, emulated_thresh, parse_policy, plan


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('policy = "nmi-factor"', "policy"),
        ('policy = "nmi-factor:abc"', "policy"),
        ('policy = "disable-everything"', "policy"),
        ("policy = 3", "policy"),
        ('polcy = "none"', "polcy"),
        ('[completion]\nmode = "wait"', "completion.mode"),
        ('[completion]\nhold_s = "ten"', "completion.hold_s"),
        ("[completion]\nhold_s = 100\nmax_s = 50", "completion.hold_s"),
        ("[completion]\nmax_s = 1e9", "completion.max_s"),
        ("[completion]\nsettle = 3", "completion.settle"),
        ('[overrides]\n"kernel.watchdog_thresh" = "30"', "overrides.kernel.watchdog_thresh"),
        ('[overrides]\n"Kernel/Watchdog" = 1', "overrides.Kernel/Watchdog"),
        ("[refuse_if]\npanic_set = 1", "refuse_if.panic_set"),
        ("[refuse_if]\npanic_settings = []", "refuse_if.panic_settings"),
        ('[refuse_if]\nmessage = "bad {placeholder}"', "refuse_if.message"),
        ('kernel_generation = "v5"', "kernel_generation"),
        ("window_max_s = 0", "window_max_s"),
        ("overrides = 5", "overrides"),
    ],
)
def test_bad_config_exit_2_one_line_naming_field(fake_root, text: str, field: str) -> None:
    fr = fake_root(config=text)
    rc, _out, err = fr.guard("run-phase", "check")
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert field in lines[0]
    assert "guard.toml" in lines[0]
    assert fr.journal_data() is None


def test_invalid_toml_and_missing_explicit_config(fake_root, tmp_path) -> None:
    fr = fake_root(config="policy = ")
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 2 and "not valid TOML" in err and len(err.strip().splitlines()) == 1
    rc, _, err = fr.guard("run-phase", "check", "--config", str(tmp_path / "nope.toml"))
    assert rc == 2 and "not found" in err


def test_unquoted_dotted_override_keys_are_accepted() -> None:
    cfg = parse_config({"overrides": {"kernel": {"hung_task_timeout_secs": 0}}})
    assert cfg.overrides == {"kernel.hung_task_timeout_secs": 0}


def test_example_config_is_valid() -> None:
    import tomllib
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "guard.toml"
    cfg = parse_config(tomllib.loads(example.read_text()), str(example))
    assert str(cfg.policy) == "nmi-factor:200"
    with pytest.raises(ConfigError):
        parse_config({"completion": {"mode": "later"}})


def test_policy_names() -> None:
    assert parse_policy("nmi-factor:200") == Policy("nmi-factor", 200)
    assert str(parse_policy("nmi-factor:0")) == "nmi-factor:0"
    for bad in ("nmi-factor:-1", "nmi-factor:", "NONE", f"nmi-factor:{2**32}"):
        with pytest.raises(PolicyError):
            parse_policy(bad)


@pytest.mark.parametrize(
    ("thresh", "factor", "expected"),
    [
        (10, 200, (30, 30)),
        (10, 33, (13, 13)),
        (10, 0, (10, 10)),
        (25, 200, (60, 75)),
        (60, 1, (60, 60)),
        (1, 50, (1, 1)),
    ],
)
def test_emulated_thresh_matches_v6_integer_arithmetic(
    thresh: int, factor: int, expected: tuple[int, int]
) -> None:
    assert emulated_thresh(thresh, factor) == expected


def test_plan_notes_side_effect_and_clamping() -> None:
    p = plan(parse_policy("nmi-factor:500"), GEN_OLD, lambda n: 15)
    assert p.targets == {"kernel.watchdog_thresh": 60}
    text = " ".join(p.notes)
    assert "soft-lockup threshold also becomes 120 s" in text
    assert "clamped" in text and "90 s" in text
    assert plan(parse_policy("nmi-factor:500"), GEN_NEW, lambda n: 15).targets == {
        "kernel.nmi_wd_lpm_factor": 500
    }
    assert plan(parse_policy("nmi-factor:200"), GEN_OLD, lambda n: 0).targets == {}
    assert plan(parse_policy("nmi-factor:200"), GEN_OLD, lambda n: None).missing == ["kernel.watchdog_thresh"]
