"""Helpers the DFAR task YAMLs name (`!function utils.NAME`): the data through reasonalign's own loader
(so the rows, the clean split and their order are exactly `reasonalign eval`'s) and the prompt rendered
by reasonalign's template (so the text is character for character the one our scorer reads)."""

from reasonalign.data import load
from reasonalign.prompts import get_template


def _test(spec: str):
    from datasets import Dataset, DatasetDict

    rows = load(spec).examples
    return DatasetDict({"test": Dataset.from_dict({"row": [e.row for e in rows],
                                                   "statement": [e.statement for e in rows],
                                                   "label": [e.label for e in rows]})})


def dfar_test(**kwargs):
    return _test("dfar:test")


def dfar_test_clean(**kwargs):
    return _test("dfar:test-clean")


def prompt_lr(doc) -> str:
    return get_template("dfar-llama").prompt(doc["statement"], "lr")


def prompt_l(doc) -> str:
    return get_template("dfar-llama").prompt(doc["statement"], "l")
