"""Evaluation: metrics against hand-computed values, batched scoring against a direct computation."""

import json

import numpy as np
import pytest
import torch

from reasonalign.data import load
from reasonalign.errors import UserError
from reasonalign.eval import classify
from reasonalign.eval.metrics import UNPARSEABLE, bootstrap_ci, classification_metrics
from reasonalign.eval.run import EvalConfig, evaluate
from reasonalign.prompts import get_template


def test_classification_metrics_by_hand():
    gold = [0, 0, 0, 1, 1, 1]
    pred = [0, 0, 1, 1, 1, UNPARSEABLE]
    m = classification_metrics(gold, pred)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["n"] == 6 and m["unparseable"] == 1
    assert m["per_class"]["ethical"]["precision"] == 1.0 and m["per_class"]["ethical"]["recall"] == pytest.approx(2 / 3)
    assert m["per_class"]["unethical"]["precision"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"]["values"] == [[2, 1, 0], [0, 2, 1]]
    assert m["majority_baseline"] == 0.5
    lo, hi = m["ci95"]
    assert 0 <= lo < 4 / 6 < hi <= 1


def test_bootstrap_ci_degenerate_and_seeded():
    assert bootstrap_ci([1, 1, 1, 1]) == [1.0, 1.0]
    assert bootstrap_ci([0, 1] * 50, seed=3) == bootstrap_ci([0, 1] * 50, seed=3)
    lo, hi = bootstrap_ci([0, 1] * 500)
    assert lo == pytest.approx(0.47, abs=0.01) and hi == pytest.approx(0.53, abs=0.01)  # ±1.96·sqrt(.25/1000)


def test_fit_threshold_maximises_training_accuracy():
    # margins (unethical - ethical): -3, -2, -1.5 for ethical rows; -1, 2 for unethical rows
    scores = np.array([[0, -3], [0, -2], [0, -1.5], [0, -1], [0, 2]], dtype=float)
    t = classify.fit_threshold(scores, [0, 0, 0, 1, 1])
    assert -1.5 < t < -1 and t == pytest.approx(-1.25)
    assert (classify.predict_from_scores(scores, t) == [0, 0, 0, 1, 1]).all()


@pytest.fixture(scope="module")
def tiny(tiny_model):
    from reasonalign.models import load_model, load_tokenizer

    return load_model(tiny_model), load_tokenizer(tiny_model)


def test_batched_scores_equal_a_direct_forward(tiny):
    model, tok = tiny
    template = get_template("dfar-llama")
    examples = load("dfar:test-clean").examples[:12]
    batched = classify.score_labels(model, tok, template, examples, "lr", batch_size=5, progress=False)
    conts = [tok(c, add_special_tokens=False).input_ids[0] for c in template.label_continuations()]
    for ex, row in zip(examples, batched):
        ids = torch.tensor([tok(template.prompt(ex.statement, "lr")).input_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, -1].float(), -1)
        assert np.allclose(row, logp[conts].numpy(), atol=1e-4)


def test_shared_prefix_is_exact(tiny):
    model, tok = tiny
    template = get_template("dfar-llama")
    examples = load("dfar:test-clean").examples[:8]
    prompts = [tok(template.prompt(e.statement, "l")).input_ids for e in examples]
    assert classify._shared_prefix(prompts) >= 8  # the instruction every prompt repeats
    with_prefix = classify.score_labels(model, tok, template, examples, "l", progress=False)
    original = classify._shared_prefix
    classify._shared_prefix = lambda seqs: 0
    try:
        plain = classify.score_labels(model, tok, template, examples, "l", progress=False)
    finally:
        classify._shared_prefix = original
    assert np.allclose(with_prefix, plain, atol=1e-4)


def test_evaluate_writes_metrics_and_predictions(tiny, tiny_model, small_csv, tmp_path):
    model, tok = tiny
    m = evaluate(EvalConfig(model=tiny_model, data=small_csv, output=str(tmp_path), calibrate_on="dfar:train",
                            calibration_rows=20), model=model, tokenizer=tok)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["n"] == 24 and 0 <= saved["accuracy"] <= 1 and len(saved["ci95"]) == 2
    assert set(saved["per_class"]) == {"ethical", "unethical"} and saved["threshold_source"].startswith("fitted on 20")
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 24
    assert sum(json.loads(line)["correct"] for line in lines) == round(m["accuracy"] * 24)


def test_generate_scoring_counts_unparseable(tiny, tiny_model, small_csv, tmp_path):
    model, tok = tiny
    m = evaluate(EvalConfig(model=tiny_model, data=small_csv, output=str(tmp_path), scoring="generate",
                            max_new_tokens=4, rows=8), model=model, tokenizer=tok)
    outputs = [json.loads(line)["output"] for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    from reasonalign.verdict import parse_verdict

    assert m["n"] == 8 and m["unparseable"] == sum(parse_verdict(o) is None for o in outputs)


def test_calibrating_on_the_eval_data_is_refused(tiny, tiny_model, tmp_path):
    model, tok = tiny
    with pytest.raises(UserError, match="calibrate on training data only"):
        evaluate(EvalConfig(model=tiny_model, data="dfar:test-clean", calibrate_on="dfar:test-clean",
                            output=str(tmp_path)), model=model, tokenizer=tok)
