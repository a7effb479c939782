"""Audit numbers: balance, duplicates inside a split, leakage across splits."""

import pytest

from reasonalign.data import load
from reasonalign.data.audit import audit, render, word_stats
from reasonalign.data.tables import Dataset, Example


def dataset(name, rows):
    examples = [Example(s, label, reason, i + 2) for i, (s, label, reason) in enumerate(rows)]
    return Dataset(name, name, examples, "0" * 64, all(r is not None for _, _, r in rows))


def test_dfar_leakage():
    report = audit(load("dfar:train-all"), load("dfar:test"))
    assert report["leaked_test_rows"] == 189
    assert report["leaked_same_label"] == 189
    assert report["leaked_same_reason"] == 174
    assert report["clean_test_rows"] == 311 == len(load("dfar:test-clean"))
    assert report["train"]["labels"]["ethical"] == {"count": 2588, "share": 0.5751}
    assert report["test"]["n"] == 500
    assert 60 < report["test"]["reason_words"]["mean"] < 70  # docs/methods.md §1: ~65 words
    assert "189 of 500 test statements are in train" in render(report)


def test_duplicates_and_leakage_use_normalised_statements():
    train = dataset("train", [("I lied.", 1, "r1"), ("  i   LIED. ", 0, "r2"), ("I helped.", 0, "r3"), ("i helped.", 0, "r3")])
    test = dataset("test", [("I  lied.", 1, "r1"), ("I helped.", 1, "other"), ("New one.", 0, "r")])
    report = audit(train, test)
    assert report["train"]["duplicate_rows"] == 2
    assert report["train"]["duplicate_label_conflicts"] == 1
    assert report["test"]["duplicate_rows"] == 0
    assert (report["leaked_test_rows"], report["leaked_same_label"], report["leaked_same_reason"]) == (2, 1, 1)
    assert report["clean_test_rows"] == 1
    assert report["test"]["labels"]["unethical"] == {"count": 2, "share": 0.6667}


def test_no_reasons_gives_none_not_zero():
    train = dataset("train", [("a b", 0, "r")])
    test = dataset("test", [("a b", 0, None)])
    report = audit(train, test)
    assert report["leaked_same_reason"] is None and report["test"]["reason_words"] is None
    assert "identical reason" not in render(report)


def test_word_stats():
    stats = word_stats(["one", "one two", "one two three", "a b c d e f g h i j"])
    assert stats == {"mean": 4.0, "median": 2.5, "min": 1, "max": 10, "p95": pytest.approx(8.95)}
