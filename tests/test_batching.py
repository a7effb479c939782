"""The completion mask (loss on the answer tokens and EOS only), truncation, and padding."""

import pytest
import torch

from reasonalign.core.errors import UserError
from reasonalign.prompts import get_template
from reasonalign.core.batching import IGNORE, Collator, encode

STATEMENT, REASON = "I lied to my friend about the party.", "Lying breaks the trust friendship rests on."


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def _pair(name="dfar-llama", method="lr", label=1, tok=None):
    t = get_template(name)
    return t.prompt(STATEMENT, method, tok), t.answer(label, REASON, method)


def _trained(labels):
    return [t for t in labels if t != IGNORE]


@pytest.mark.parametrize("name", ["dfar-llama", "dfar-mistral", "chat"])
@pytest.mark.parametrize("method", ["l", "lr"])
def test_completion_mask_covers_exactly_the_answer(tok, name, method):
    prompt, answer = _pair(name, method, tok=tok)
    chat = get_template(name).chat
    f = encode(tok, prompt, answer, max_length=512, chat=chat)
    prompt_ids = tok(prompt, add_special_tokens=not chat).input_ids
    n = len(prompt_ids)
    assert f["input_ids"][:n] == prompt_ids and f["length"] == len(f["input_ids"]) == len(f["labels"])
    assert f["labels"][:n] == [IGNORE] * n  # nothing of the prompt is trained
    assert all(label != IGNORE for label in f["labels"][n:])  # everything after it is
    assert f["labels"][n:] == f["input_ids"][n:]
    trained = _trained(f["labels"])
    assert trained[-1] == tok.eos_token_id and f["input_ids"][-1] == tok.eos_token_id
    assert tok.decode(trained[:-1]) == answer  # exactly the answer text, nothing more or less
    assert tok.decode(trained[:1]).strip() == "unethical"  # the first trained token is the label word


def test_full_loss_trains_every_token_but_the_first(tok):
    prompt, answer = _pair()
    f = encode(tok, prompt, answer, max_length=512, loss_on="full")
    completion = encode(tok, prompt, answer, max_length=512)
    assert f["input_ids"] == completion["input_ids"]
    assert f["labels"][0] == IGNORE and f["labels"][1:] == f["input_ids"][1:]
    assert len(_trained(f["labels"])) == f["length"] - 1  # = the tokens something predicts


def test_position_zero_is_never_a_target(tok):
    # a prompt of one token: the first answer token is at position 1, position 0 stays ignored
    f = encode(tok, "Q", " ethical", max_length=512, loss_on="full")
    assert f["labels"][0] == IGNORE and f["labels"][1:] == f["input_ids"][1:]


def test_truncation_cuts_the_reason_but_keeps_the_label(tok):
    prompt, answer = _pair()
    n = len(tok(prompt).input_ids)
    label_ids = tok(" unethical", add_special_tokens=False).input_ids
    f = encode(tok, prompt, answer, max_length=n + len(label_ids))
    assert f["length"] == n + len(label_ids)
    assert _trained(f["labels"]) == label_ids  # the label survives; the reason and EOS are cut
    longer = encode(tok, prompt, answer, max_length=n + 4)
    assert longer["length"] == n + 4 and tok.decode(_trained(longer["labels"])).startswith(" unethical.")


def test_an_answer_truncated_away_is_an_error(tok):
    prompt, answer = _pair()
    n = len(tok(prompt).input_ids)
    for max_length in (5, n):
        with pytest.raises(UserError, match=rf"data.csv:7: the prompt alone has {n} tokens.*max_length={max_length}"):
            encode(tok, prompt, answer, max_length=max_length, where="data.csv:7")


def test_collator_pads_with_masks(tok):
    a = encode(tok, *_pair(method="l"), max_length=512)
    b = encode(tok, *_pair(method="lr"), max_length=512)
    c = encode(tok, *_pair(method="lr", label=0), max_length=512, loss_on="full")
    batch = Collator(tok.pad_token_id)([a, b, c])
    width = max(len(f["input_ids"]) for f in (a, b, c))
    assert len(a["input_ids"]) < width  # something is padded
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    for k in batch:
        assert batch[k].shape == (3, width) and batch[k].dtype == torch.long
    for row, f in enumerate((a, b, c)):
        n = len(f["input_ids"])
        assert batch["input_ids"][row, :n].tolist() == f["input_ids"]
        assert batch["labels"][row, :n].tolist() == f["labels"]
        assert batch["attention_mask"][row, :n].tolist() == [1] * n
        assert (batch["input_ids"][row, n:] == tok.pad_token_id).all()
        assert (batch["attention_mask"][row, n:] == 0).all()
        assert (batch["labels"][row, n:] == IGNORE).all()
    # the answer tokens the loss sees are exactly the unpadded ones
    assert int((batch["labels"] != IGNORE).sum()) == sum(len(_trained(f["labels"])) for f in (a, b, c))


def test_collator_without_labels_gives_ignored_labels(tok):
    batch = Collator(7)([{"input_ids": [5, 6, 8]}, {"input_ids": [9]}])
    assert batch["input_ids"].tolist() == [[5, 6, 8], [9, 7, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert (batch["labels"] == IGNORE).all()


@pytest.mark.parametrize("name", ["dfar-llama", "dfar-mistral", "chat"])
@pytest.mark.parametrize("label", [0, 1])
def test_segments_split_the_answer_into_label_and_reason(tok, name, label):
    """With label_text, the label's tokens spell exactly the label word; the reason (EOS included) is the rest."""
    from reasonalign.core.batching import LABEL, REASON as REASON_SEGMENT

    template = get_template(name)
    prompt, answer = _pair(name, "lr", label, tok)
    enc = encode(tok, prompt, answer, max_length=512, chat=template.chat,
                 label_text=template.label_part(label, "lr"))
    ids, seg = enc["input_ids"], enc["segments"]
    label_ids = [i for i, s in zip(ids, seg) if s == LABEL]
    reason_ids = [i for i, s in zip(ids, seg) if s == REASON_SEGMENT]
    assert tok.decode(label_ids).strip() == ("ethical", "unethical")[label]
    assert reason_ids[-1] == tok.eos_token_id and REASON in tok.decode(reason_ids)
    assert seg == [0] * (len(ids) - len(label_ids) - len(reason_ids)) + [LABEL] * len(label_ids) + [REASON_SEGMENT] * len(reason_ids)
    batch = Collator(tok.pad_token_id)([enc, encode(tok, prompt, answer, max_length=512, chat=template.chat,
                                                    label_text=template.label_part(label, "lr"))])
    assert batch["segments"].shape == batch["input_ids"].shape


def test_label_text_must_start_the_answer(tok):
    prompt, answer = _pair()
    with pytest.raises(UserError, match="does not start with its label text"):
        encode(tok, prompt, answer, max_length=512, label_text=" ethical")
