"""CoT data. The extractors decide G_P / G_N in alignment fine-tuning: hard cases are pinned."""

import json
import shutil
from pathlib import Path

import pytest

from reasonalign.data.cot import (CotExample, extract_aqua, extract_gsm8k, format_prompt,
                                  format_target, is_correct, load_cot, normalise_number)
from reasonalign.core.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = (Path(__file__).parents[1] / ".." / "shared" / "data").resolve()


# ---------------------------------------------------------------- GSM8K extraction

@pytest.mark.parametrize("text, want", [
    ("The answer is 1,000.", "1000"),
    ("In total she paid $1,234.50. The answer is $1,234.50.", "1234.5"),
    ("The answer is 18 dollars.", "18"),
    ("So 25% were late. The answer is 25%.", "25"),
    ("The answer is 10.0", "10"),
    ("The answer is 12.00.", "12"),
    ("The answer is 0.50.", "0.5"),
    ("The answer is +5.", "5"),
    ("The answer is -3.", "-3"),
    ("The average was -7 degrees.\n#### -7", "-7"),
    ("She has 10-3 = 7 left", "7"),  # '-3' after a digit is subtraction, not a negative
    ("The answer is 3/4.", "3/4"),  # fractions are kept, never guessed to 0.75
    ("He walks 2.5 km a day, so 7 * 2.5 = 17.5 km", "17.5"),
    ("the answer is 42", "42"),
    ("The answer is: **18**", "18"),
    ("The answer is \\boxed{18}.", "18"),
    ("The answer is about 5.5 hours", "5.5"),
])
def test_gsm8k_normalises_the_final_number(text, want):
    assert extract_gsm8k(text) == want


def test_gsm8k_hash_marker_beats_the_answer_is_and_later_numbers():
    assert extract_gsm8k("The answer is 5.\n#### 72\nThat took 3 steps.") == "72"
    assert extract_gsm8k("#### 72\nThe answer is 5") == "72"


def test_gsm8k_question_echo_and_rambling_continuation_are_ignored():
    echo = ("Question: Tom has 5 apples and buys 3 more. How many?\nAnswer: 5 + 3 = 8.\n"
            "The answer is 8.\n\nQuestion: Sam has 20 pens and loses 4. How many?\n"
            "Answer: 20 - 4 = 16. The answer is 16.")
    assert extract_gsm8k(echo) == "8"
    assert extract_gsm8k("5 + 3 = 8 apples\nQuestion: A farm has 12 cows") == "8"


def test_gsm8k_takes_the_last_marker_that_carries_a_number():
    assert extract_gsm8k("The answer is 5. Let me check the answer is right.") == "5"
    assert extract_gsm8k("The answer is 5. No wait, the answer is 6.") == "6"


@pytest.mark.parametrize("text", [
    "", "I do not know.", "The answer is unknown, after 3 steps.",
    "We used 4 cups, so the answer is not clear from 3 steps.",
])
def test_gsm8k_gives_none_rather_than_a_guess(text):
    assert extract_gsm8k(text) is None


def test_normalise_number():
    assert normalise_number(" 1,080 ") == "1080"
    assert normalise_number("007") == "7"
    assert normalise_number("-0.0") == "0"
    assert normalise_number("no digits") is None


# ---------------------------------------------------------------- AQuA extraction

@pytest.mark.parametrize("text, want", [
    ("So the speed is 600. The answer is (B).", "B"),
    ("the answer is (c)", "C"),
    ("answer: d", "D"),
    ("Answer is E", "E"),
    ("The answer is C) 600", "C"),
    ("The answer is option D.", "D"),
    ("ANSWER:A", "A"),
    # several letters: the announced one wins, wherever the others are
    ("(A) and (B) are too small and (D) is too big, so the answer is C.", "C"),
    ("A) and B) are too small; E) is too large.\nThe answer is D.", "D"),
    # no marker: the last '(X)' / 'X)', else the last capital letter standing alone
    ("Both A and B fail, so we are left with (E).", "E"),
    ("A and B fail, so C", "C"),
    ("C is correct. A quick check confirms it.", "C"),  # 'A quick' is the article
    ("P(A/B) = P(A n B)/P(B) = 0.2\nA", "A"),  # letters inside math are no options
])
def test_aqua_extracts_the_option_letter(text, want):
    assert extract_aqua(text) == want


def test_aqua_ignores_the_next_hallucinated_question():
    assert extract_aqua("The answer is B.\n\nQuestion: What is 2+2?\nThe answer is D.") == "B"


@pytest.mark.parametrize("text", [
    "", "I cannot decide.", "we compute a, then b, then c.", "The answer is a number above 5.",
])
def test_aqua_gives_none_rather_than_a_guess(text):
    assert extract_aqua(text) is None


def test_is_correct():
    assert is_correct("gsm8k", "so $1,080 in total. The answer is 1,080.", "1080")
    assert is_correct("gsm8k", "The answer is 1080", "1,080")
    assert not is_correct("gsm8k", "The answer is 1081", "1080")
    assert not is_correct("gsm8k", "no idea", "1080")
    assert is_correct("aqua", "the answer is (c)", "C")
    assert not is_correct("aqua", "The answer is B.", "C")
    assert not is_correct("aqua", "hmm", "C")
    with pytest.raises(ValueError):
        is_correct("ecqa", "x", "y")


# ---------------------------------------------------------------- loading + format

def test_load_gsm8k_fixture_cleans_rationales():
    examples = load_cot(str(FIXTURES / "gsm8k_tiny.jsonl"))
    assert [e.answer for e in examples] == ["72", "10", "5", "42", "1080", "-7", "1000", "624"]
    assert [e.row for e in examples] == list(range(1, 9))
    for e in examples:
        assert "<<" not in e.rationale and ">>" not in e.rationale and "####" not in e.rationale
        assert e.rationale.endswith(f"\nThe answer is {e.answer}.")
        assert e.options == ()
    assert examples[1].rationale == ("Weng earns 12/60 = $0.2 per minute.\n"
                                     "Working 50 minutes, she earned 0.2 x 50 = $10.\n"
                                     "The answer is 10.")


def test_load_aqua_fixture_replaces_the_answer_line():
    examples = load_cot(str(FIXTURES / "aqua_tiny.jsonl"))
    assert [e.answer for e in examples] == list("ADCBCBEB")
    assert all(len(e.options) == 5 for e in examples)
    first, second, third = (e.rationale for e in examples[:3])
    assert first.endswith("= 32400\nThe answer is A.")  # 'Correct answer - A' line dropped
    assert second.endswith("x = 250 m.\nThe answer is D.")  # trailing 'Answer D' dropped
    assert third.endswith("should be 24.\nThe answer is C.")  # no marker: appended
    for e in examples:
        assert e.rationale.count("The answer is") == 1
        assert "CORRECT OPTION" not in e.rationale


def test_prompt_format():
    gsm = CotExample("How many?", "2 + 2 = 4\nThe answer is 4.", "4", 1)
    assert format_prompt(gsm) == "Question: How many?\nAnswer:"
    assert format_prompt(gsm) + format_target(gsm) == (
        "Question: How many?\nAnswer: 2 + 2 = 4\nThe answer is 4.")
    aqua = load_cot(str(FIXTURES / "aqua_tiny.jsonl"))[1]
    lines = format_prompt(aqua).split("\n")
    assert lines[1:] == ["Options:", "A) 100 m", "B) 150 m", "C) 200 m", "D) 250 m", "E) 300 m",
                         "Answer:"]
    assert extract_aqua(format_target(aqua)) == "D"


def test_named_specs_resolve_against_the_data_root(tmp_path, monkeypatch):
    (tmp_path / "gsm8k").mkdir()
    shutil.copy(FIXTURES / "gsm8k_tiny.jsonl", tmp_path / "gsm8k" / "train.jsonl")
    monkeypatch.setenv("REASONALIGN_SHARED_DATA", str(tmp_path))
    assert len(load_cot("gsm8k:train")) == 8
    with pytest.raises(UserError, match=r"test\.jsonl: file not found"):
        load_cot("gsm8k:test")
    with pytest.raises(UserError, match="unknown data set .*aqua:dev"):
        load_cot("gsm8k:dev")


# ---------------------------------------------------------------- validation

GOOD_GSM = {"question": "q", "answer": "1 + 1 = 2\n#### 2"}
GOOD_AQUA = {"question": "q", "options": ["A)1", "B)2"], "rationale": "r", "correct": "B"}


def _write(tmp_path, *lines) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines))
    return path


@pytest.mark.parametrize("lines, row, problem", [
    ([GOOD_GSM, "{not json"], 2, "invalid JSON"),
    ([GOOD_GSM, {"question": "q"}], 2, "missing field 'answer'"),
    ([GOOD_GSM, {"answer": "#### 3"}], 2, "missing field 'question'"),
    ([{"question": "q", "answer": "just 2"}], 1, "no '#### <number>'"),
    ([{"question": "q", "answer": "#### seven"}], 1, "not a number"),
    ([GOOD_AQUA, dict(GOOD_AQUA, correct="F")], 2, "'F' is not one of the options AB"),
    ([dict(GOOD_AQUA, options=["1", "2"])], 1, "options must be strings like"),
    ([{k: v for k, v in GOOD_AQUA.items() if k != "rationale"}], 1, "missing field 'rationale'"),
    ([{"text": "hello"}], 1, "cannot tell the format"),
    ([[1, 2]], 1, "expected a JSON object"),
])
def test_bad_rows_are_one_line_errors_naming_file_and_row(tmp_path, lines, row, problem):
    path = _write(tmp_path, *lines)
    with pytest.raises(UserError) as err:
        load_cot(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}:{row}: ") and problem in message
    assert "\n" not in message


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(UserError, match="nope.jsonl: file not found"):
        load_cot(str(tmp_path / "nope.jsonl"))
    with pytest.raises(UserError, match="no examples"):
        load_cot(str(_write(tmp_path, "")))


# ---------------------------------------------------------------- the real data

needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason=f"shared data not found at {SHARED}")


@needs_shared
def test_real_counts_and_gold_rationales_extract_to_their_answers(monkeypatch):
    monkeypatch.setenv("REASONALIGN_SHARED_DATA", str(SHARED))
    sets = {s: load_cot(s) for s in ("gsm8k:train", "gsm8k:test", "aqua:dev", "aqua:test")}
    assert {s: len(v) for s, v in sets.items()} == {
        "gsm8k:train": 7473, "gsm8k:test": 1319, "aqua:dev": 254, "aqua:test": 254}
    wrong = [e.row for e in sets["gsm8k:train"] if extract_gsm8k(e.rationale) != e.answer]
    assert wrong == []
    raw = [json.loads(l) for l in open(SHARED / "gsm8k" / "train.jsonl")]
    assert all(is_correct("gsm8k", r["answer"], e.answer) for r, e in zip(raw, sets["gsm8k:train"]))


@needs_shared
def test_raw_aqua_rationales_never_extract_a_wrong_letter():
    """The authors' free-form endings ('ANSWER:C', 'Option B', bare 'D', math like P(A/B)):
    the extractor may give up (None), but must never name a wrong option."""
    for split in ("dev", "test"):
        rows = [json.loads(l) for l in open(SHARED / "aqua" / f"{split}.json")]
        wrong = [i for i, r in enumerate(rows, 1)
                 if extract_aqua(r["rationale"]) not in (None, r["correct"])]
        assert wrong == [], split
