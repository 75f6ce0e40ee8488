"""Config helpers: overrides, file reading, merging."""

from __future__ import annotations

import pytest

from hrsnn.config import deep_update, parse_overrides, read_config_file
from hrsnn.errors import ConfigError


def test_parse_overrides_nests_keys_and_parses_values_as_yaml():
    out = parse_overrides(["train.lr=0.005", "train.milestones=[10, 20]", "model.layers=[{size: 8}]", "quick=true"])
    assert out == {"train": {"lr": 0.005, "milestones": [10, 20]}, "model": {"layers": [{"size": 8}]}, "quick": True}
    with pytest.raises(ConfigError, match="--set='train.lr'"):
        parse_overrides(["train.lr"])


def test_deep_update_merges_mappings_and_replaces_the_rest():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_update(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


@pytest.mark.parametrize(
    ("name", "text"),
    [("c.toml", "[train]\nlr = 0.1\n"), ("c.yaml", "train:\n  lr: 0.1\n"), ("c.json", '{"train": {"lr": 0.1}}')],
)
def test_read_config_file_formats(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert read_config_file(path) == {"train": {"lr": 0.1}}


def test_read_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        read_config_file(tmp_path / "absent.toml")
    bad = tmp_path / "c.ini"
    bad.write_text("x")
    with pytest.raises(ConfigError, match="suffix"):
        read_config_file(bad)
    broken = tmp_path / "c.toml"
    broken.write_text("[train\n")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        read_config_file(broken)


def test_a_missing_required_field_is_named():
    from dataclasses import dataclass

    from hrsnn.config import from_dict
    from hrsnn.errors import ConfigError

    @dataclass
    class Two:
        a: int
        b: int = 1

    with pytest.raises(ConfigError, match=r"^cfg.a=None: is required and missing$"):
        from_dict(Two, {"b": 2}, "cfg")
