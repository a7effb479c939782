import pytest

from reasonalign.verdict import parse_verdict


@pytest.mark.parametrize("text, label", [
    (" unethical. Stealing hurts people.", 1),
    (" ethical. Helping is good.", 0),
    ("The statement is not ethical because it harms.", 1),
    ("This is non-ethical.", 1),
    ("It is not unethical to rest.", 0),
    ("Ethical? No: it is unethical.", 0),  # the first verdict counts
    ("I cannot say.", None),
    ("", None),
])
def test_parse_verdict(text, label):
    assert parse_verdict(text) == label
