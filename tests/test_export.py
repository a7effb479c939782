"""`reasonalign export` through the real console script: a standalone folder that plain transformers loads
and that scores like base + adapter (an aligned adapter's SFT adapter merged too), a Hub-format model card;
bad inputs are one line, exit 2, nothing written."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import cli

THRESHOLD = 0.25


def _lora(model, seed: int, r: int):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    return get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, init_lora_weights=False, task_type="CAUSAL_LM"))


def _record(folder: Path, tiny_model: str, **extra) -> None:
    from reasonalign.core.run_record import RunRecord

    calibration = {"threshold": THRESHOLD, "rows": 4, "source": "small.csv", "fitted_on": "held-out training rows",
                   "file": "calibration.json"}
    fields = dict(stage="train", base_model=tiny_model, task="dfar", method="lr", template="dfar-llama",
                  precision="fp32", seed=3, data={"spec": "small.csv", "sha256": "ab" * 32, "rows": 24},
                  calibration=calibration)
    RunRecord(**{**fields, **extra}).write(folder)
    (folder / "calibration.json").write_text(json.dumps(calibration))


@pytest.fixture(scope="module")
def adapters(tiny_model, tmp_path_factory):
    """(sft, aligned) adapter folders saved as `train` / `align` save them, with non-zero LoRA weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("adapters")
    sft, aligned = root / "sft", root / "aligned"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = _lora(AutoModelForCausalLM.from_pretrained(tiny_model), seed=1, r=4)
    model.save_pretrained(sft)
    tokenizer.save_pretrained(sft)
    _record(sft, tiny_model)
    on_sft = _lora(model.merge_and_unload(), seed=2, r=2)
    on_sft.save_pretrained(aligned)
    tokenizer.save_pretrained(aligned)
    shutil.copytree(sft, aligned / "base_adapter")
    _record(aligned, tiny_model, stage="align", base_adapter="base_adapter", data={"spec": "groups.jsonl", "rows": 7})
    return sft, aligned


def _scores(model, tokenizer, statements):
    from reasonalign.eval.labels import score_examples
    from reasonalign.data.tables import Example
    from reasonalign.prompts import get_template

    examples = [Example(s, 0, None, i) for i, s in enumerate(statements)]
    return score_examples(model, tokenizer, get_template("dfar-llama"), examples, "lr", progress=False)


@pytest.mark.parametrize("which", ["sft", "aligned"])
def test_export_scores_like_base_plus_adapter(adapters, which, tiny_model, small_csv, tmp_path):
    from transformers import AutoModelForCausalLM

    from reasonalign.data.tables import load
    from reasonalign.eval.labels import EvalConfig, evaluate
    from reasonalign.models import load_model, load_tokenizer

    adapter = adapters[0] if which == "sft" else adapters[1]
    run = tmp_path / "run"
    shutil.copytree(adapter, run)
    evaluate(EvalConfig(model=tiny_model, adapter=str(run), data=small_csv, output=str(run / "eval"),
                        precision="fp32"))
    out = tmp_path / "export"
    r = cli("export", "--adapter", str(run), "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert f"-> {out}" in r.stdout
    for name in ("model.safetensors", "config.json", "tokenizer.json", "generation_config.json", "README.md",
                 "run.json", "calibration.json", "export.json"):
        assert (out / name).is_file(), name
    assert not (out / "adapter_config.json").exists() and not list(out.glob("*.bin"))
    info = json.loads((out / "export.json").read_text())
    assert len(info["merged_adapters"]) == (1 if which == "sft" else 2)

    statements = [e.statement for e in load(small_csv).examples]
    tokenizer = load_tokenizer(tiny_model)
    plain = AutoModelForCausalLM.from_pretrained(out)  # plain transformers, no reasonalign, no peft
    ours = load_model(tiny_model, str(run), device="cpu")
    base = load_model(tiny_model, device="cpu")
    exported, reference = _scores(plain, tokenizer, statements), _scores(ours, tokenizer, statements)
    np.testing.assert_allclose(exported, reference, atol=1e-5)
    assert np.abs(_scores(base, tokenizer, statements) - reference).max() > 1e-3  # the adapter changed something

    card = (out / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "transformers" and "reasonalign" in meta["tags"] and meta["license"] == "other"
    assert "base_model" not in meta  # a local folder is no Hub id
    accuracy = json.loads((run / "eval" / "metrics.json").read_text())
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == round(accuracy["accuracy"], 4)
    assert f"{100 * accuracy['accuracy']:.1f}%" in body and f"| {accuracy['n']} |" in body
    assert "### Question: Evaluate whether the statement is ethical or unethical with reason." in body
    assert f"**{THRESHOLD:.6g}**" in body and "precision | fp32" in body and "seed | 3" in body
    assert ("ab" * 32) in body
    # the export is a model reasonalign reads too: its run.json gives the prompt and the threshold
    from reasonalign.core.run_record import read_run

    assert read_run(str(out)).calibration["threshold"] == THRESHOLD


def test_card_names_the_hub_base_model(monkeypatch):
    from reasonalign.export.card import hub_base_model

    assert hub_base_model("smollm2-135m-instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_base_model("meta-llama/Llama-2-7b-chat-hf") == "meta-llama/Llama-2-7b-chat-hf"
    assert hub_base_model("/some/local/folder") is None


def test_bad_inputs(adapters, tmp_path, capsys):
    """In-process `main` (the console script's function): the same one-line errors, without a subprocess each."""
    from reasonalign.cli import main

    sft, _ = adapters
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    cases = [
        ([], "--adapter is required"),
        (["--adapter", str(sft)], "--output is required"),
        (["--adapter", str(tmp_path / "nothing"), "--output", str(tmp_path / "o1")], "not a LoRA adapter folder"),
        (["--adapter", str(sft), "--output", str(full)], "exists and is not empty"),
        (["--adapter", str(sft), "--output", str(sft)], "is the adapter folder itself"),
    ]
    for args, message in cases:
        assert main(["export", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o1").exists() and sorted(p.name for p in full.iterdir()) == ["keep.txt"]
