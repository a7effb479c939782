"""Evaluation: metrics against hand-computed values, batched scoring against a direct computation, files."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from reasonalign.data import load
from reasonalign.core.errors import UserError
from reasonalign import scoring
from reasonalign.eval import labels
from reasonalign.core.stats import UNPARSEABLE, bootstrap_ci, classification_metrics
from reasonalign.eval.labels import EvalConfig, evaluate
from reasonalign.prompts import PromptTemplate, get_template
from reasonalign.core.verdict import parse_verdict


def test_classification_metrics_by_hand():
    gold = [0, 0, 0, 1, 1, 1]
    pred = [0, 0, 1, 1, 1, UNPARSEABLE]
    m = classification_metrics(gold, pred)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["n"] == 6 and m["unparseable"] == 1
    ethical, unethical = m["per_class"]["ethical"], m["per_class"]["unethical"]
    # ethical: predicted 0 twice, both right; 3 gold -> P 1, R 2/3, F1 0.8
    assert (ethical["precision"], ethical["recall"], ethical["f1"], ethical["support"]) == \
        pytest.approx((1.0, 2 / 3, 0.8, 3))
    # unethical: predicted 1 three times, 2 right; 3 gold (one unparseable) -> P 2/3, R 2/3
    assert (unethical["precision"], unethical["recall"], unethical["f1"], unethical["support"]) == \
        pytest.approx((2 / 3, 2 / 3, 2 / 3, 3))
    assert m["confusion_matrix"]["values"] == [[2, 1, 0], [0, 2, 1]]  # gold rows; pred 0 / 1 / unparseable
    assert m["majority_baseline"] == 0.5
    lo, hi = m["ci95"]
    assert 0 <= lo < 4 / 6 < hi <= 1
    assert m["ci95"] == bootstrap_ci([1, 1, 0, 1, 1, 0], seed=0)


def test_majority_baseline_and_all_wrong():
    m = classification_metrics([1, 1, 1, 0], [0, 0, 0, 1])
    assert m["accuracy"] == 0.0 and m["majority_baseline"] == 0.75 and m["ci95"] == [0.0, 0.0]
    assert sum(map(sum, m["confusion_matrix"]["values"])) == 4


def test_bootstrap_ci():
    assert bootstrap_ci([1, 1, 1, 1]) == [1.0, 1.0]
    assert all(np.isnan(bootstrap_ci([])))
    assert bootstrap_ci([0, 1] * 50, seed=3) == bootstrap_ci([0, 1] * 50, seed=3)
    assert bootstrap_ci([0, 1] * 50, seed=3) != bootstrap_ci([0, 1] * 50, seed=4)
    lo, hi = bootstrap_ci([0, 1] * 500)
    half = 1.96 * np.sqrt(0.25 / 1000)  # normal approximation: 0.031
    assert lo == pytest.approx(0.5 - half, abs=0.005) and hi == pytest.approx(0.5 + half, abs=0.005)
    lo, hi = bootstrap_ci([1] * 80 + [0] * 20)  # p = 0.8, n = 100: about ±0.078
    assert lo == pytest.approx(0.8 - 0.078, abs=0.012) and hi == pytest.approx(0.8 + 0.078, abs=0.012)


def test_fit_threshold_maximises_training_accuracy():
    # margins (unethical - ethical): -3, -2, -1.5 for ethical rows; -1, 2 for unethical rows.
    # Threshold 0 gets 4/5 right; only a threshold between -1.5 and -1 gets all 5.
    scores = np.array([[0, -3], [0, -2], [0, -1.5], [0, -1], [0, 2]], dtype=float)
    labels = [0, 0, 0, 1, 1]
    assert (scoring.predict_from_scores(scores, 0.0) == labels).mean() == 0.8
    t = scoring.fit_threshold(scores, labels)
    assert t == pytest.approx(-1.25)  # the midpoint between the two margins
    assert (scoring.predict_from_scores(scores, t) == labels).all()


def test_fit_threshold_ties_go_nearest_zero_and_extremes_work():
    scores = np.array([[0, -1], [0, 1]], dtype=float)
    assert scoring.fit_threshold(scores, [0, 1]) == 0.0  # any t in (-1, 1) is perfect: 0 is nearest to 0
    # every row ethical: the threshold must sit above the largest margin
    t = scoring.fit_threshold(np.array([[0, 1.0], [0, 3.0]]), [0, 0])
    assert t > 3.0 and (scoring.predict_from_scores(np.array([[0, 1.0], [0, 3.0]]), t) == 0).all()
    t = scoring.fit_threshold(np.array([[0, -1.0], [0, -3.0]]), [1, 1])
    assert t < -3.0


def test_parse_predictions_marks_unparseable():
    assert labels.parse_predictions([" unethical.", " ethical", "no idea"]).tolist() == [1, 0, UNPARSEABLE]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    from reasonalign.models import load_model, load_tokenizer

    return load_model(tiny_model), load_tokenizer(tiny_model)


@torch.no_grad()
def _direct_logprob(model, prompt_ids, cont_ids):
    """log P(cont | prompt) from one full forward pass over prompt + continuation, no padding."""
    ids = torch.tensor([prompt_ids + cont_ids])
    logp = torch.log_softmax(model(ids).logits[0].float(), -1)
    return sum(logp[len(prompt_ids) - 1 + j, t].item() for j, t in enumerate(cont_ids))


def _direct_scores(model, tok, template, examples, method):
    conts = [tok(c, add_special_tokens=False).input_ids for c in template.label_continuations()]
    return np.array([[_direct_logprob(model, tok(template.prompt(ex.statement, method)).input_ids, c) for c in conts]
                     for ex in examples])


def test_batched_scores_equal_a_direct_forward(tiny):
    model, tok = tiny
    template = get_template("dfar-llama")
    assert all(len(tok(c, add_special_tokens=False).input_ids) == 1 for c in template.label_continuations())
    examples = load("dfar:test-clean").examples[:12]
    batched = labels.score_examples(model, tok, template, examples, "lr", batch_size=5, progress=False)
    assert batched.shape == (12, 2)
    assert np.allclose(batched, _direct_scores(model, tok, template, examples, "lr"), atol=1e-4)
    one_by_one = np.concatenate([labels.score_examples(model, tok, template, [ex], "lr", progress=False)
                                 for ex in examples])
    assert np.allclose(batched, one_by_one, atol=1e-4)


class _TwoTokenLabels(PromptTemplate):
    """Label continuations of several tokens: the general scoring path (one sequence per label)."""

    def label_continuations(self):
        return [" ethical act", " unethical deed indeed"]


def test_multi_token_labels_equal_a_direct_forward(tiny):
    model, tok = tiny
    base = get_template("dfar-mistral")
    template = _TwoTokenLabels(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
    examples = load("dfar:test-clean").examples[:6]
    batched = labels.score_examples(model, tok, template, examples, "l", batch_size=4, progress=False)
    assert np.allclose(batched, _direct_scores(model, tok, template, examples, "l"), atol=1e-4)


def test_shared_prefix_is_exact(tiny, monkeypatch):
    model, tok = tiny
    template = get_template("dfar-llama")
    examples = load("dfar:test-clean").examples[:8]
    prompts = [tok(template.prompt(e.statement, "l")).input_ids for e in examples]
    assert scoring._shared_prefix(prompts) >= 8  # the instruction every prompt repeats
    with_prefix = labels.score_examples(model, tok, template, examples, "l", progress=False)
    monkeypatch.setattr(scoring, "_shared_prefix", lambda seqs: 0)
    plain = labels.score_examples(model, tok, template, examples, "l", progress=False)
    assert np.allclose(with_prefix, plain, atol=1e-4)


def test_shared_prefix_length():
    assert scoring._shared_prefix([list(range(20)), list(range(12)) + [99] * 5]) == 12
    assert scoring._shared_prefix([list(range(20)), list(range(20))]) == 19  # each keeps a token to score from
    assert scoring._shared_prefix([list(range(20)), [0, 1, 2] + list(range(10))]) == 0  # too short to pay off


def test_evaluate_writes_metrics_and_predictions(tiny, tiny_model, small_csv, tmp_path):
    model, tok = tiny
    m = evaluate(EvalConfig(model=tiny_model, data=small_csv, output=str(tmp_path), calibrate_on="dfar:train",
                            calibration_rows=20, method="l"), model=model, tokenizer=tok)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(m))
    assert saved["n"] == 24 and 0 <= saved["accuracy"] <= 1
    lo, hi = saved["ci95"]
    assert 0 <= lo <= saved["accuracy"] <= hi <= 1
    assert set(saved["per_class"]) == {"ethical", "unethical"}
    assert sum(map(sum, saved["confusion_matrix"]["values"])) == 24
    assert saved["threshold_source"] == "fitted on 20 rows of dfar:train" and saved["method"] == "l"
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 24
    for r in rows:  # each prediction follows from its own scores and the fitted threshold
        assert r["pred"] == int(r["logp_unethical"] - r["logp_ethical"] > saved["threshold"])
        assert r["correct"] == (r["pred"] == r["gold"])
    assert sum(r["correct"] for r in rows) / 24 == pytest.approx(saved["accuracy"])
    assert sorted(r["row"] for r in rows) == sorted(ex.row for ex in load(small_csv).examples)


def test_evaluate_rows_keeps_label_shares(tiny, tiny_model, small_csv, tmp_path):
    model, tok = tiny
    m = evaluate(EvalConfig(model=tiny_model, data=small_csv, output=str(tmp_path), rows=8, calibration="none"),
                 model=model, tokenizer=tok)
    assert m["n"] == 8 and m["threshold"] == 0.0 and m["per_class"]["ethical"]["support"] == 4


def test_generate_scoring_counts_unparseable(tiny, tiny_model, small_csv, tmp_path):
    model, tok = tiny
    m = evaluate(EvalConfig(model=tiny_model, data=small_csv, output=str(tmp_path), scoring="generate",
                            max_new_tokens=4, rows=8), model=model, tokenizer=tok)
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and m["n"] == 8
    expected = [UNPARSEABLE if parse_verdict(r["output"]) is None else parse_verdict(r["output"]) for r in rows]
    assert [r["pred"] for r in rows] == expected
    assert m["unparseable"] == expected.count(UNPARSEABLE)
    assert m["accuracy"] == pytest.approx(np.mean([r["pred"] == r["gold"] for r in rows]))


def test_generate_returns_the_continuation_only(tiny):
    model, tok = tiny
    examples = load("dfar:test-clean").examples[:3]
    texts = labels.generate_answers(model, tok, get_template("dfar-llama"), examples, "l", max_new_tokens=3,
                                      batch_size=2, progress=False)
    for ex, text in zip(examples, texts):  # greedy: the same as generating for each prompt alone
        ids = torch.tensor([tok(get_template("dfar-llama").prompt(ex.statement, "l")).input_ids])
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        assert text == tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_calibrating_on_the_eval_data_is_refused(tiny, tiny_model, tmp_path):
    model, tok = tiny
    with pytest.raises(UserError, match="calibrate on training data only"):
        evaluate(EvalConfig(model=tiny_model, data="dfar:test-clean", calibrate_on="dfar:test-clean",
                            output=str(tmp_path / "out")), model=model, tokenizer=tok)
    assert not (tmp_path / "out").exists()


def test_calibration_files(tiny, tiny_model, small_csv, tmp_path):
    model, tok = tiny
    with pytest.raises(UserError, match="calibration file not found"):
        evaluate(EvalConfig(model=tiny_model, data=small_csv, calibration=str(tmp_path / "absent.json"),
                            output=str(tmp_path / "a")), model=model, tokenizer=tok)
    bad = tmp_path / "bad.json"
    bad.write_text('{"limit": 1}')
    with pytest.raises(UserError, match="not a calibration file"):
        evaluate(EvalConfig(model=tiny_model, data=small_csv, calibration=str(bad), output=str(tmp_path / "b")),
                 model=model, tokenizer=tok)
    good = tmp_path / "good.json"
    good.write_text('{"threshold": 1e9}')  # nothing clears it: everything is predicted ethical
    m = evaluate(EvalConfig(model=tiny_model, data=small_csv, calibration=str(good), output=str(tmp_path / "c")),
                 model=model, tokenizer=tok)
    assert m["threshold"] == 1e9 and m["threshold_source"] == str(good)
    assert m["accuracy"] == 0.5 and m["confusion_matrix"]["values"] == [[12, 0, 0], [12, 0, 0]]
