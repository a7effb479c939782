"""`reasonalign baselines` through the real console script: classic models on a held-out split, the DFAR
path (validation, test and its clean part), the encoder on a tiny random BERT, and bad input."""

import csv
import json
import random

import pytest

from conftest import cli

CLASSIC = ("svm", "rf", "gb", "logreg")
GOOD = ["kind", "help", "share", "thank", "gift", "care"]
BAD = ["steal", "hurt", "lie", "cheat", "kick", "mock"]
FILLER = ["I", "my", "the", "friend", "today", "neighbour", "at", "work", "school", "a", "dog"]


@pytest.fixture(scope="module")
def learnable(tmp_path_factory) -> str:
    """120 rows (60 per label): three label words (ethical: kind/help/..., unethical: steal/hurt/...)
    among three shared filler words, so any working classifier beats chance on held-out rows."""
    rng = random.Random(0)
    rows = []
    for label, words in ((0, GOOD), (1, BAD)):
        for i in range(60):
            w = rng.sample(FILLER, 3) + rng.sample(words, 3)
            rng.shuffle(w)
            rows.append((" ".join(w) + f" {i}", label))
    rng.shuffle(rows)
    path = tmp_path_factory.mktemp("baselines") / "learnable.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("statement", "label"), *rows])
    return str(path)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random BERT classifier with the real MiniLM tokenizer (not the real MiniLM)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from reasonalign.judges.reference import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    out = tmp_path_factory.mktemp("tiny-bert")
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def read(path):
    return json.loads(path.read_text())


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_classic_baselines_on_a_held_out_split(learnable, tmp_path):
    out = tmp_path / "bl"
    r = cli("baselines", "--data", learnable, "--models", ",".join(CLASSIC), "--test-share", "0.25",
            "--output", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    split = read(out / "split.json")
    assert split["test_share"] == 0.25 and len(split["train_rows"]) == 90 and len(split["eval"]["eval"]["rows"]) == 30
    assert not set(split["train_rows"]) & set(split["eval"]["eval"]["rows"])
    summary = read(out / "baselines.json")
    for name in CLASSIC:
        m = read(out / name / "eval" / "metrics.json")
        assert m["method"] == "baseline" and m["model"].startswith(name) and m["n"] == 30
        assert {"accuracy", "ci95", "ci_method", "majority_baseline", "per_class", "confusion_matrix", "unparseable",
                "splits", "data", "data_sha256", "seconds", "seed", "config"} <= set(m)
        assert m["accuracy"] > 0.75, (name, m["accuracy"])
        assert m["best_params"] and 0 <= m["cv_accuracy"] <= 1
        preds = lines(out / name / "eval" / "predictions.jsonl")
        assert [p["row"] for p in preds] == split["eval"]["eval"]["rows"]
        assert all(p["correct"] == (p["gold"] == p["pred"]) for p in preds)
        assert all((p["p_unethical"] is None) == (name == "svm") for p in preds)
        train = read(out / name / "train_summary.json")
        assert train["real_tokens"] == 0 and train["train_rows"] == 90 and train["best_params"] == m["best_params"]
        assert not (out / name / "eval-validation").exists()
        assert summary["models"][name]["splits"][learnable]["accuracy"] == m["accuracy"]
    assert "svm" in r.stdout and "baselines.json" in r.stdout


def test_dfar_scores_validation_test_and_clean_test(tmp_path):
    out = tmp_path / "bl"
    r = cli("baselines", "--data", "dfar", "--train-rows", "200", "--models", "logreg", "--output", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    test = read(out / "logreg" / "eval" / "metrics.json")
    assert test["data"] == "dfar:test" and test["n"] == 500
    assert {k: v["n"] for k, v in test["splits"].items()} == {"dfar:test": 500, "dfar:test-clean": 311}
    validation = read(out / "logreg" / "eval-validation" / "metrics.json")
    assert validation["data"] == "dfar:validation" and validation["n"] == 500
    assert len(lines(out / "logreg" / "eval-validation" / "predictions.jsonl")) == 500
    split = read(out / "split.json")
    assert len(split["train_rows"]) == 200
    assert not set(split["train_rows"]) & set(split["eval"]["eval-validation"]["rows"])
    assert set(read(out / "baselines.json")["models"]["logreg"]["splits"]) == {
        "dfar:validation", "dfar:test", "dfar:test-clean"}


def test_encoder_fine_tunes_and_keeps_the_best_epoch(learnable, tiny_bert, tmp_path):
    out = tmp_path / "bl"
    r = cli("baselines", "--data", learnable, "--models", "encoder", "--encoder", tiny_bert, "--encoder-epochs", "2",
            "--encoder-lr", "5e-3", "--batch-size", "8", "--output", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    train = read(out / "encoder" / "train_summary.json")
    losses = [e["loss"] for e in train["loss_log"]]
    assert len(losses) >= 4 and sum(losses[-3:]) < sum(losses[:3])
    assert [e["epoch"] for e in train["per_epoch"]] == [1, 2] and train["best_epoch"] in (1, 2)
    split = read(out / "split.json")
    assert set(train["heldout_rows"]) <= set(split["train_rows"])  # the epoch is picked on training rows
    m = read(out / "encoder" / "eval" / "metrics.json")
    assert m["n"] == 24 and m["best_params"] == {"epochs": train["best_epoch"]}
    preds = lines(out / "encoder" / "eval" / "predictions.jsonl")
    assert all(0 <= p["p_unethical"] <= 1 and p["pred"] == int(p["p_unethical"] > 0.5) for p in preds)


@pytest.mark.parametrize("args, words", [
    (["--models", "svm,xgboost"], "xgboost"),
    (["--test-share", "1.5"], "--test-share"),
    (["--train-rows", "1000"], "--train-rows"),
    (["--cv-folds", "70"], "--cv-folds"),
    (["--models", "encoder", "--encoder", "/no/such/encoder"], "--encoder"),
])
def test_bad_input_is_one_line_and_writes_nothing(learnable, tmp_path, args, words):
    out = tmp_path / "bl"
    r = cli("baselines", "--data", learnable, "--output", str(out), *args)
    assert r.returncode == 2, r.stderr[-3000:]
    assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1 and words in r.stderr
    assert not out.exists()


def test_a_missing_file_is_one_line(tmp_path):
    r = cli("baselines", "--data", str(tmp_path / "missing.csv"), "--output", str(tmp_path / "bl"))
    assert r.returncode == 2 and r.stderr.startswith("error:") and "missing.csv" in r.stderr
    assert not (tmp_path / "bl").exists()
