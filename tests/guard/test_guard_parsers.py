"""Property tests: the guard's readers of untrusted text raise only their own one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.guard.config import ConfigError, load_config
from lpmsim.guard.files import bracket_depth
from lpmsim.guard.journal import Journal, JournalError
from lpmsim.guard.policy import PolicyError, parse_policy

# TOML-ish fragments, so that examples reach the parser's deeper paths rather than failing at byte 0
FRAGMENTS = st.sampled_from(
    ["policy = ", '"', "'", "[", "]", "{", "}", "[[", "]]", "overrides", ".", "=", "\n", "#", '"""', "1", "-1",
     "1e999", "nan", "inf", "true", "a.b.c", "kernel.watchdog_thresh", "completion", "mode", ",", "٣", "\\", " "]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.binary(max_size=300), st.lists(FRAGMENTS, max_size=60).map(lambda p: "".join(p).encode()))
)
def test_load_config_raises_only_config_error(tmp_path_factory, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "guard.toml"
    path.write_bytes(data)
    try:
        load_config(path, required=True)
    except ConfigError as exc:
        assert "\n" not in str(exc)


JOURNAL = {
    "boot_id": "11111111-1111-1111-1111-111111111111",
    "policy": "inhibit-all",
    "generation": "v6.0+",
    "state": "applied",
    "token": "00ff",
    "created_at": 1.0,
    "applied_at": None,
    "window_deadline": 2.0,
    "waiting_since": None,
    "completion": {"mode": "hold", "hold_s": 0},
    "steal_baseline": None,
    "entries": [{"name": "kernel.nmi_watchdog", "original": "1", "target": "0"}],
    "history": [],
    "seq": 3,
    "version": 1,
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(JOURNAL)), JSON_VALUES)
def test_journal_with_any_field_replaced_is_valid_or_refused(key: str, value: object) -> None:
    data = dict(JOURNAL) | {key: value}
    try:
        j = Journal.from_json(json.dumps(data))
    except JournalError as exc:
        assert "\n" not in str(exc)
        return
    # what is accepted is usable: names map to setting files, values are short printable text
    assert all(e.name.replace("_", "").replace(".", "").isalnum() for e in j.entries)


def test_the_unmodified_journal_is_valid() -> None:
    assert Journal.from_json(json.dumps(JOURNAL)).seq == 3


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_policy_parser_takes_only_ascii_digits(arg: str) -> None:
    try:
        p = parse_policy(f"nmi-factor:{arg}")
    except PolicyError:
        assert not (arg.isascii() and arg.isdigit() and int(arg) < 2**32)
        return
    assert arg.isascii() and arg.isdigit() and p.factor == int(arg)


def test_bracket_depth_ignores_strings_and_comments() -> None:
    assert bracket_depth('a = "[[[[" # [[[[\nb = [[1]]\n') == 2
    assert bracket_depth("x = '''[[[['''\n") == 0
    assert bracket_depth("x = " + "[" * 40) == 40
