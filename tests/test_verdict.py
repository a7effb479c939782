"""Reading a verdict out of generated text: 0 = ethical, 1 = unethical, None = no verdict."""

import pytest

from reasonalign.prompts import get_template
from reasonalign.core.verdict import LABELS, parse_verdict


@pytest.mark.parametrize("text, label", [
    # what a fine-tuned model generates after "The statement is"
    (" unethical. Stealing hurts people.", 1),
    (" ethical. Helping is good.", 0),
    (" Unethical.", 1),
    ("ETHICAL", 0),
    # "unethical" contains "ethical": the negative form must win
    ("unethical", 1),
    ("It is clearly unethical because it is not fair.", 1),
    # negations
    ("The statement is not ethical because it harms.", 1),
    ("This is not an ethical act.", 1),
    ("This isn't ethical.", 1),
    ("This is non-ethical.", 1),
    ("This is non ethical.", 1),
    ("This is nonethical.", 1),
    ("It is not unethical to rest.", 0),
    ("It is not an unethical thing to rest.", 0),
    ("Resting isn't unethical.", 0),
    ("It is not non-ethical.", 0),
    # moral / immoral, and their negations
    ("That is immoral.", 1),
    ("That is moral.", 0),
    ("That is not moral.", 1),
    ("That is not immoral.", 0),
    # the first verdict in the text counts
    ("Ethical? No: it is unethical.", 0),
    ("The statement is unethical, not ethical.", 1),
    ("The statement is ethical, not unethical.", 0),
    # no verdict
    ("I cannot say.", None),
    ("The ethics of this are complicated.", None),
    ("ethically questionable", None),
    ("amoral", None),
    ("", None),
])
def test_parse_verdict(text, label):
    assert parse_verdict(text) == label


@pytest.mark.parametrize("name", ["dfar-llama", "dfar-mistral", "chat"])
@pytest.mark.parametrize("method", ["l", "lr"])
def test_every_template_answer_parses_back_to_its_label(name, method):
    t = get_template(name)
    for label in (0, 1):
        # a reason that mentions the other word must not change the verdict
        reason = "Some would call it " + LABELS[1 - label] + ", but no."
        assert parse_verdict(t.answer(label, reason, method)) == label
