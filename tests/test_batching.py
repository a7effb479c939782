"""The completion mask: loss on the answer tokens (and EOS) only."""

import pytest

from reasonalign.errors import UserError
from reasonalign.prompts import get_template
from reasonalign.train.batching import IGNORE, Collator, encode


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def _pair(method="lr"):
    t = get_template("dfar-llama")
    return t.prompt("I lied to my friend.", method), t.answer(1, "Lying breaks trust.", method)


def test_completion_mask_covers_exactly_the_answer(tok):
    prompt, answer = _pair()
    f = encode(tok, prompt, answer, max_length=512)
    n_prompt = len(tok(prompt).input_ids)
    assert f["labels"][:n_prompt] == [IGNORE] * n_prompt
    trained = [t for t in f["labels"] if t != IGNORE]
    assert trained[-1] == tok.eos_token_id
    assert tok.decode(trained[:-1]) == answer == " unethical. Lying breaks trust."
    assert f["input_ids"] == tok(prompt).input_ids + trained


def test_full_loss_trains_every_token_but_the_first(tok):
    f = encode(tok, *_pair(), max_length=512, loss_on="full")
    assert f["labels"][0] == IGNORE and f["labels"][1:] == f["input_ids"][1:]


def test_truncation_keeps_the_label(tok):
    prompt, answer = _pair()
    n_prompt = len(tok(prompt).input_ids)
    f = encode(tok, prompt, answer, max_length=n_prompt + 1)
    assert [t for t in f["labels"] if t != IGNORE] == tok(" unethical", add_special_tokens=False).input_ids


def test_no_room_for_the_answer_is_an_error(tok):
    prompt, answer = _pair()
    with pytest.raises(UserError, match="max_length"):
        encode(tok, prompt, answer, max_length=5, where="data.csv:7")


def test_collator_pads_with_masks(tok):
    a = encode(tok, *_pair("l"), max_length=512)
    b = encode(tok, *_pair("lr"), max_length=512)
    batch = Collator(tok.pad_token_id)([a, b])
    n = len(a["input_ids"])
    assert batch["input_ids"].shape == (2, len(b["input_ids"]))
    assert batch["attention_mask"][0, n:].sum() == 0 and batch["attention_mask"][0, :n].all()
    assert (batch["labels"][0, n:] == IGNORE).all()
    assert (batch["input_ids"][0, n:] == tok.pad_token_id).all()
