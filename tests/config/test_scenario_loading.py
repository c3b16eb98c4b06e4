"""What a scenario file means (issue 11, section 3): a BOM, an empty file, ``base`` with overrides,
non-finite values where they make sense, the exact mode's memory, the documented option example."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from lpmsim.config.explain import field_docs
from lpmsim.config.loader import ScenarioError, load_scenario, preset_text
from lpmsim.config.memory import EXACT_BYTES_PER_PAGE, exact_memory_problem, exact_mode_bytes


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "bom.toml"
    f.write_bytes(b'\xef\xbb\xbfbase = "small"\n[platform]\nlink_gbps = 2\n')
    sc = load_scenario(f)
    assert sc.platform.link_gbps == 2 and sc.partition.vcpus == 8


def test_an_empty_file_is_the_default_preset_under_its_own_name(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text("# nothing yet\n")
    sc = load_scenario(f)
    default = load_scenario(preset="default")
    assert sc.model_dump(exclude={"name", "description"}) == default.model_dump(
        exclude={"name", "description"}
    )
    assert sc.name == "mine"
    assert "default" in sc.description and "mine.toml" in sc.description


def test_base_with_overrides_is_the_users_scenario_described_by_its_values(tmp_path: Path) -> None:
    f = tmp_path / "fast-link.toml"
    f.write_text('base = "default"\n[platform]\nlink_gbps = 25\ndiscipline = "demand-first"\n')
    sc = load_scenario(f)
    assert sc.name == "fast-link"
    base_desc = tomllib.loads(preset_text("default"))["description"]
    assert sc.description != base_desc
    assert "25 Gb/s demand-first" in sc.description and "64 vCPUs" in sc.description
    # a description or name the file gives is kept
    f.write_text('base = "default"\nname = "mine"\ndescription = "my words"\n[platform]\nlink_gbps = 25\n')
    sc = load_scenario(f)
    assert (sc.name, sc.description) == ("mine", "my words")


def test_overrides_of_a_preset_replace_its_description() -> None:
    sc = load_scenario(preset="small", overrides=["platform.link_gbps=7"])
    assert sc.name == "small" and "7 Gb/s" in sc.description
    assert load_scenario(preset="small").description == tomllib.loads(preset_text("small"))["description"]


def test_infinity_is_accepted_where_it_means_never() -> None:
    sc = load_scenario(
        preset="small", overrides=['script=[{cpu = 1, at_s = 1, state = "stalled", duration_s = inf}]']
    )
    assert sc.script[0].duration_s == float("inf")


def test_explain_mitigation_options_example_validates() -> None:
    doc = next(d for d in field_docs() if d.path == "mitigation.options").description
    options = re.search(r"\{[^}]*\}", doc)
    policy = re.search(r'policy = "([^"]+)"', doc)
    assert options is not None and policy is not None, doc
    sc = load_scenario(
        preset="small",
        overrides=[f"mitigation.policy={policy.group(1)}", f"mitigation.options={options.group(0)}"],
    )
    assert sc.mitigation.options


def test_exact_mode_memory_is_checked_against_what_is_available() -> None:
    sc = load_scenario(preset="small")  # 65,536 pages, exact mode
    assert exact_mode_bytes(sc) == EXACT_BYTES_PER_PAGE * 65_536
    assert exact_memory_problem(sc, available=10**12) is None
    msg = exact_memory_problem(sc, available=10**6)
    assert msg is not None and msg.startswith("sim.mode:") and "fluid" in msg
    fluid = load_scenario(preset="small", overrides=["sim.mode=fluid"])
    assert exact_memory_problem(fluid, available=1) is None


def test_exact_mode_too_large_for_any_machine_is_refused_and_fluid_is_not() -> None:
    big = ["partition.memory_gib=1048576", "platform.page_kib=4"]
    with pytest.raises(
        ScenarioError, match=r"^sim\.mode: exact mode needs about .* use sim\.mode = \"fluid\""
    ):
        load_scenario(preset="small", overrides=[*big, "sim.mode=exact"])
    assert load_scenario(preset="small", overrides=[*big, "sim.mode=fluid"]).total_pages == 2**38
