"""`--precision` of generate, eval --task reasons, sample and eval --task answers: resolved before any model
loads, applied to every generate call (a forward hook sees the dtype), and recorded as `precision`."""

import json
from pathlib import Path

import pytest
import torch
from conftest import cli

from reasonalign.align.sample import SampleConfig, sample
from reasonalign.eval.answers import AnswersConfig, evaluate_answers
from reasonalign.eval.reasons import GenerateConfig, ReasonsConfig, evaluate_reasons, generate

FIXTURES = Path(__file__).parent / "fixtures"
GSM8K = str(FIXTURES / "gsm8k_tiny.jsonl")
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


@pytest.fixture
def dtypes_seen(monkeypatch):
    """Every model `load_model` loads gets a hook on its first MLP's down projection; the list collects the
    dtype of that Linear's input and output at every forward pass (its input is the product of two Linear
    outputs, so under autocast it is low precision too)."""
    import reasonalign.models as models

    seen = []
    original = models.load_model

    def load_model(*args, **kw):
        model = original(*args, **kw)
        model.model.layers[0].mlp.down_proj.register_forward_hook(
            lambda module, inputs, output: seen.append((inputs[0].dtype, output.dtype)))
        return model

    monkeypatch.setattr(models, "load_model", load_model)
    return seen


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_generate_and_eval_reasons_run_and_record_the_precision(tiny_model, small_csv, tmp_path, dtypes_seen,
                                                                precision):
    gen = tmp_path / "gen"
    generate(GenerateConfig(model=tiny_model, data=small_csv, rows=2, max_new_tokens=3, precision=precision,
                            output=str(gen)))
    assert dtypes_seen and set(dtypes_seen) == {(DTYPES[precision], DTYPES[precision])}
    assert json.loads((gen / "generate_summary.json").read_text())["precision"] == precision
    m = evaluate_reasons(ReasonsConfig(generations=str(gen / "generations.jsonl"), output=str(tmp_path / "ev")))
    assert m["precision"] == precision and "judge_precision" not in m
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["precision"] == precision


def test_eval_reasons_generating_records_its_precision(tiny_model, small_csv, tmp_path, dtypes_seen):
    m = evaluate_reasons(ReasonsConfig(model=tiny_model, data=small_csv, rows=2, max_new_tokens=3, precision="bf16",
                                       output=str(tmp_path)))
    assert set(dtypes_seen) == {(torch.bfloat16, torch.bfloat16)}
    assert m["precision"] == json.loads((tmp_path / "metrics.json").read_text())["precision"] == "bf16"


def test_a_local_llm_judge_runs_in_the_precision(tiny_model, small_csv, tmp_path, dtypes_seen):
    gens = tmp_path / "gen" / "generations.jsonl"
    gens.parent.mkdir()
    gens.write_text(json.dumps({"row": 1, "statement": "I fed the cat.", "gold": "ethical", "verdict": "ethical",
                                "reason": "It is kind."}) + "\n")
    m = evaluate_reasons(ReasonsConfig(generations=str(gens), judge="llm", judge_model=tiny_model, precision="bf16",
                                       output=str(tmp_path / "ev")))
    assert m["judge_precision"] == "bf16" and m["precision"] is None  # the generations' own is unknown
    assert dtypes_seen and set(dtypes_seen) == {(torch.bfloat16, torch.bfloat16)}


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_sample_runs_and_records_the_precision(tiny_model, tmp_path, dtypes_seen, precision):
    s = sample(SampleConfig(model=tiny_model, data=GSM8K, rows=2, k=2, max_new_tokens=3, precision=precision,
                            output=str(tmp_path / "groups.jsonl")))
    assert dtypes_seen and set(dtypes_seen) == {(DTYPES[precision], DTYPES[precision])}
    assert s["precision"] == json.loads((tmp_path / "sample_summary.json").read_text())["precision"] == precision


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_answers_run_and_record_the_precision(tiny_model, tmp_path, dtypes_seen, precision):
    m = evaluate_answers(AnswersConfig(model=tiny_model, data=GSM8K, rows=2, max_new_tokens=3, precision=precision,
                                       output=str(tmp_path)))
    assert dtypes_seen and set(dtypes_seen) == {(DTYPES[precision], DTYPES[precision])}
    assert m["precision"] == json.loads((tmp_path / "metrics.json").read_text())["precision"] == precision


def test_answers_with_a_given_model_resolve_on_its_device(tiny_model, tmp_path):
    from reasonalign.models import load_model, load_tokenizer

    m = evaluate_answers(AnswersConfig(data=GSM8K, rows=1, max_new_tokens=2, precision="fp32", output=str(tmp_path)),
                         model=load_model(tiny_model), tokenizer=load_tokenizer(tiny_model))
    assert m["precision"] == "fp32"


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is refused only without a GPU")
@pytest.mark.parametrize("args", [
    ["generate"], ["eval", "--task", "reasons"], ["eval", "--task", "answers", "--data", GSM8K],
    ["sample", "--data", GSM8K],
])
def test_fp16_on_cpu_is_one_line_exit_2_before_the_model_loads(tmp_path, args):
    out = tmp_path / "out"
    target = str(out / "groups.jsonl") if args[0] == "sample" else str(out)
    r = cli(*args, "--precision", "fp16", "--model", str(tmp_path / "no-such-model"), "--output", target)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0] == "error: --precision fp16 needs a GPU; use bf16 or fp32 on CPU", err
    assert not out.exists()
