"""One config system: defaults < YAML recipe < flags; typos are errors."""

import argparse

import pytest

from reasonalign import config as cfg
from reasonalign.errors import UserError
from reasonalign.train.sft import TrainConfig


def _parse(argv):
    parser = argparse.ArgumentParser()
    cfg.add_arguments(parser, TrainConfig)
    return cfg.build(TrainConfig, parser.parse_args(argv))


def test_precedence(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lr: 0.001\nlora_r: 8\nmethod: l\n")
    c = _parse(["--config", str(recipe), "--lora-r", "16"])
    assert (c.lr, c.lora_r, c.method, c.lora_alpha) == (0.001, 16, "l", 16)


def test_unknown_yaml_key_is_an_error(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lora_rank: 8\n")
    with pytest.raises(UserError, match="unknown option.*lora_rank"):
        _parse(["--config", str(recipe)])


def test_wrong_type_and_bad_choice(tmp_path):
    with pytest.raises(UserError, match="lora_r: expected int"):
        _parse(["--lora-r", "many"])
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: x\n")
    with pytest.raises(UserError, match="method"):
        _parse(["--config", str(recipe)])


def test_booleans_from_yaml_and_flags(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("group_by_length: false\n")
    assert _parse(["--config", str(recipe)]).group_by_length is False
    assert _parse(["--config", str(recipe), "--group-by-length"]).group_by_length is True
