"""One config system: defaults < YAML recipe < flags; typos, wrong types and bad choices are errors."""

import argparse
import dataclasses

import pytest

from reasonalign.core import config as cfg
from reasonalign.core.errors import UserError
from reasonalign.eval.labels import EvalConfig
from reasonalign.train.sft import TrainConfig


def _parse(argv, cls=TrainConfig):
    parser = argparse.ArgumentParser()
    cfg.add_arguments(parser, cls)
    return cfg.build(cls, parser.parse_args(argv))


def _recipe(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_without_recipe_or_flags():
    assert _parse([]) == TrainConfig()
    assert _parse([], EvalConfig) == EvalConfig()


def test_defaults_then_yaml_then_flags(tmp_path):
    recipe = _recipe(tmp_path, "lr: 0.001\nlora_r: 8\nmethod: l\nlora-alpha: 32\n")
    c = _parse(["--config", recipe, "--lora-r", "16"])
    assert c.lr == 0.001 and c.method == "l" and c.lora_alpha == 32  # YAML over defaults (dashes allowed)
    assert c.lora_r == 16  # flag over YAML
    assert c.lora_dropout == TrainConfig().lora_dropout  # untouched: the default
    assert _parse(["--lora-r", "4"]).lora_r == 4  # flag over default


def test_flags_are_converted_to_the_field_type():
    c = _parse(["--lr", "3e-4", "--epochs", "2", "--train-rows", "300", "--max-tokens", "1000"])
    assert (c.lr, c.epochs, c.train_rows, c.max_tokens) == (3e-4, 2.0, 300, 1000)
    assert isinstance(c.epochs, float) and isinstance(c.train_rows, int)


def test_unknown_yaml_key_is_an_error(tmp_path):
    recipe = _recipe(tmp_path, "lora_rank: 8\nlr: 0.1\n")
    with pytest.raises(UserError, match="unknown option.*lora_rank") as err:
        _parse(["--config", recipe])
    assert str(err.value).startswith(recipe)


@pytest.mark.parametrize("text, problem", [
    ("lora_r: many\n", "lora_r: expected int, got 'many'"),
    ("lora_r: 8.5\n", "lora_r: expected int"),  # never silently truncated to 8
    ("lora_r: true\n", "lora_r: expected int"),
    ("lr: fast\n", "lr: expected float"),
    ("resume: maybe\n", "resume: expected bool"),
    ("columns: [a, b]\n", "columns: expected str"),
    ("method: x\n", "method: 'x' is not one of l, lr"),
    ("loss_on: prompt\n", "loss_on: 'prompt' is not one of completion, full"),
])
def test_wrong_type_or_choice_in_yaml(tmp_path, text, problem):
    with pytest.raises(UserError, match=problem):
        _parse(["--config", _recipe(tmp_path, text)])


def test_integral_floats_and_yaml_booleans_are_fine(tmp_path):
    c = _parse(["--config", _recipe(tmp_path, "lora_r: 8.0\nlr: 1\ngroup_by_length: false\nresume: no\n")])
    assert c.lora_r == 8 and c.lr == 1.0 and c.group_by_length is False and c.resume is False


def test_wrong_type_and_bad_choice_on_the_command_line(capsys):
    with pytest.raises(UserError, match="lora_r: expected int"):
        _parse(["--lora-r", "many"])
    with pytest.raises(SystemExit) as exit_:  # argparse enforces choices itself
        _parse(["--method", "x"])
    assert exit_.value.code == 2 and "invalid choice: 'x'" in capsys.readouterr().err


def test_booleans_from_yaml_and_flags(tmp_path):
    recipe = _recipe(tmp_path, "group_by_length: false\n")
    assert _parse(["--config", recipe]).group_by_length is False
    assert _parse(["--config", recipe, "--group-by-length"]).group_by_length is True
    assert _parse(["--no-group-by-length"]).group_by_length is False


@pytest.mark.parametrize("text, problem", [
    ("lr: [unclosed\n", r"recipe.yaml:\d+: invalid YAML"),
    ("- lr\n- 0.1\n", "expected a mapping"),
])
def test_broken_recipe_files(tmp_path, text, problem):
    with pytest.raises(UserError, match=problem):
        _parse(["--config", _recipe(tmp_path, text)])
    with pytest.raises(UserError, match="config file not found"):
        _parse(["--config", str(tmp_path / "absent.yaml")])


def test_empty_recipe_means_defaults(tmp_path):
    assert _parse(["--config", _recipe(tmp_path, "")]) == TrainConfig()


@pytest.mark.parametrize("command, cls", [("train", TrainConfig), ("eval", EvalConfig)])
def test_field_help_is_the_cli_help(capsys, monkeypatch, command, cls):
    from reasonalign.cli import main

    monkeypatch.setenv("COLUMNS", "2000")  # no wrapping inside words like "length-grouped"
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        assert flag in text, flag
        assert " ".join(f.metadata["help"].split()) in text, f.name
    if cls is TrainConfig:
        assert "LoRA rank (authors: 64) (default: 64)" in text
