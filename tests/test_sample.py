"""`reasonalign sample`: k graded responses per prompt -> groups.jsonl (the alignment trainer's input).

The checker and the group bookkeeping are pinned on hand-written responses; the console script
is run on the tiny random model for the file format and seeding.
"""

import json
from pathlib import Path

import pytest

from conftest import cli
from reasonalign.align import sample as sampling
from reasonalign.align.sample import Item, SampleConfig, make_group, summarize
from reasonalign.tasks import check
from reasonalign.cli import main
from reasonalign.data import take_rows as pick_rows
from reasonalign.data.cot import load_cot
from reasonalign.models import load_tokenizer

FIXTURES = Path(__file__).parent / "fixtures"
GSM8K, AQUA = str(FIXTURES / "gsm8k_tiny.jsonl"), str(FIXTURES / "aqua_tiny.jsonl")
GROUP_KEYS = ["id", "task", "prompt", "add_special_tokens", "gold", "responses", "n_positive", "n_negative", "seed"]


# ---------------------------------------------------------------- checker and groups

NATALIA = Item("gsm8k:train:1", "gsm8k", "Question: Natalia sold clips...\nAnswer:", True, "72")
RIGHT = " Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips altogether.\nThe answer is 72."
WRONG = " Natalia sold 48*2 = 96 clips in May.\nThe answer is 144."


def test_the_checker_marks_hand_written_responses():
    assert check("gsm8k", RIGHT, "72") and not check("gsm8k", WRONG, "72")
    assert check("gsm8k", " 48 + 24 = 72\nQuestion: How many pens? 5", "72")  # the next exercise is not the answer
    assert check("aqua", " 900 * 0.6 / 60 = 9 ... The answer is A.", "A")
    assert not check("aqua", " The answer is C.", "A")
    assert check("dfar", " unethical. Stealing hurts the owner.", "unethical")
    assert not check("dfar", " not unethical, it is fine.", "unethical")
    assert not check("dfar", " I cannot say.", "ethical")


def test_a_group_deduplicates_grades_and_ranks():
    group = make_group(NATALIA, [WRONG, RIGHT, WRONG, " I don't know.", RIGHT, WRONG], seed=3)
    assert list(group) == GROUP_KEYS
    assert [(r["text"], r["correct"], r["rank"], r["copies"]) for r in group["responses"]] == [
        (WRONG, False, 1, 3), (RIGHT, True, 0, 2), (" I don't know.", False, 1, 1)]  # first-drawn order
    assert (group["n_positive"], group["n_negative"], group["seed"]) == (1, 2, 3)
    assert group["prompt"] == NATALIA.prompt and group["add_special_tokens"] is True and group["gold"] == "72"


def test_length_scorer_ranks_correct_responses_shortest_first():
    shortest, short = " The answer is 72.", " 48+24 = 72. The answer is 72."
    group = make_group(NATALIA, [RIGHT, WRONG, short, shortest, short], 0, "length")
    ranks = {r["text"]: r["rank"] for r in group["responses"]}
    assert ranks == {shortest: 0, short: 1, RIGHT: 2, WRONG: 3}  # every incorrect one after all correct ones


def test_summary_counts_one_sided_groups():
    groups = [make_group(NATALIA, [RIGHT, RIGHT], 0), make_group(NATALIA, [WRONG, " no idea"], 0),
              make_group(NATALIA, [RIGHT, WRONG], 0)]
    s = summarize(groups, k=2)
    assert (s["n_groups"], s["n_responses"], s["duplicates_removed"]) == (3, 5, 1)
    assert (s["groups_all_positive"], s["groups_all_negative"], s["groups_mixed"]) == (1, 1, 1)
    assert (s["n_positive"], s["n_negative"]) == (2, 3)
    assert s["positive_share"] == pytest.approx(3 / 6)  # every draw counts, copies included


# ---------------------------------------------------------------- row selection

def test_held_out_rows_never_overlap_training_rows(tmp_path):
    examples = load_cot(GSM8K)
    held = pick_rows(examples, 3, seed=5)
    train = pick_rows(examples, 4, seed=5, skip=3)
    assert len(held) == 3 and len(train) == 4 and not {e.row for e in held} & {e.row for e in train}
    assert pick_rows(examples, None, seed=5) == examples  # all rows, file order
    assert pick_rows(examples, 3, seed=5) == held  # reproducible


def test_dfar_held_out_rows_never_overlap(small_csv):
    held, _ = sampling.load_items(SampleConfig(data=small_csv, rows=6, seed=1), tokenizer=None)
    train, info = sampling.load_items(SampleConfig(data=small_csv, rows=10, skip_rows=6, seed=1), tokenizer=None)
    assert len(held) == 6 and len(train) == 10 and not {i.id for i in held} & {i.id for i in train}
    assert sorted(i.gold for i in held) == ["ethical"] * 3 + ["unethical"] * 3  # label-balanced
    assert info["template"] == "dfar-llama" and info["method"] == "lr"


# ---------------------------------------------------------------- the whole run

def test_sample_writes_groups_from_scripted_responses(tiny_model, tmp_path, monkeypatch):
    """The model is replaced by a script: prompt 1 always right, prompt 2 always wrong, others mixed."""
    examples = {ex.row: ex for ex in load_cot(GSM8K)}
    calls = []

    def scripted(model, tokenizer, prompts, **kw):
        calls.append(kw)
        out = []
        for prompt in prompts:
            ex = next(e for e in examples.values() if prompt.startswith(f"Question: {e.question.strip()}"))
            good, bad = f" The answer is {ex.answer}.", " The answer is -1."
            out += {1: [good, good, good], 2: [bad, bad, " no"]}.get(ex.row, [good, bad, bad])
        return out

    monkeypatch.setattr("reasonalign.core.generation.generate_texts", scripted)
    out = tmp_path / "s" / "groups.jsonl"
    s = sampling.sample(SampleConfig(model=tiny_model, data=GSM8K, k=3, output=str(out)))
    groups = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in groups] == [f"{GSM8K}:{row}" for row in range(1, 9)]
    assert calls[0]["num_return_sequences"] == 3 and calls[0]["add_special_tokens"] is True
    assert calls[0]["stop"] == ("\nQuestion:",) and calls[0]["seed"] == 0
    assert groups[0]["responses"] == [{"text": " The answer is 72.", "correct": True, "rank": 0, "copies": 3}]
    assert [(r["correct"], r["copies"]) for r in groups[1]["responses"]] == [(False, 2), (False, 1)]
    assert (s["groups_all_positive"], s["groups_all_negative"], s["groups_mixed"]) == (1, 1, 6)
    assert s["duplicates_removed"] == 2 + 1 + 6 and s["n_responses"] == 8 * 3 - s["duplicates_removed"]
    summary = json.loads((out.parent / "sample_summary.json").read_text())
    assert summary["task"] == "gsm8k" and summary["k"] == 3 and summary["config"]["data"] == GSM8K
    tokenizer = load_tokenizer(tiny_model)  # every sampled text counts, duplicates too: they cost generation
    texts = scripted(None, None, [item.prompt for item in sampling.load_items(
        SampleConfig(model=tiny_model, data=GSM8K, k=3), tokenizer)[0]], num_return_sequences=3)
    assert summary["generated_tokens"] == sum(len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts)
    assert not list(out.parent.glob("*.partial"))


def test_sample_dfar_on_the_tiny_model(tiny_model, small_csv, tmp_path):
    out = tmp_path / "groups.jsonl"
    s = sampling.sample(SampleConfig(model=tiny_model, data=small_csv, rows=4, k=2, max_new_tokens=4,
                                     output=str(out)))
    groups = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(groups) == 4 and s["task"] == "dfar" and s["n_groups"] == 4
    for g in groups:
        assert list(g) == GROUP_KEYS and g["task"] == "dfar" and g["add_special_tokens"] is True
        assert g["prompt"].endswith("### Answer:") and g["gold"] in ("ethical", "unethical")
        assert sum(r["copies"] for r in g["responses"]) == 2
        assert all(r["correct"] == check("dfar", r["text"], g["gold"]) for r in g["responses"])


def test_console_script_same_seed_same_groups(tiny_model, tmp_path):
    args = ["sample", "--model", tiny_model, "--data", AQUA, "--rows", "3", "--k", "3", "--max-new-tokens", "6",
            "--batch-size", "2"]
    runs = {}
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        out = tmp_path / name / "groups.jsonl"
        r = cli(*args, "--seed", seed, "--output", str(out))
        assert r.returncode == 0, r.stderr
        assert "3 groups" in r.stdout and str(out) in r.stdout
        runs[name] = out.read_text()
    assert runs["a"] == runs["b"]  # same seed: byte-identical groups
    assert runs["a"] != runs["c"]
    groups = [json.loads(line) for line in runs["a"].splitlines()]
    summary = json.loads((tmp_path / "a" / "sample_summary.json").read_text())
    assert len(groups) == summary["n_groups"] == 3 and summary["task"] == "aqua"
    for g in groups:
        assert list(g) == GROUP_KEYS and g["task"] == "aqua" and g["gold"] in "ABCDE"
        assert g["prompt"].startswith("Question: ") and g["prompt"].endswith("\nAnswer:")
        assert sum(r["copies"] for r in g["responses"]) == 3
        assert all(r["correct"] == check("aqua", r["text"], g["gold"]) for r in g["responses"])
        assert all(r["rank"] == (0 if r["correct"] else 1) for r in g["responses"])
        assert g["n_positive"] + g["n_negative"] == len(g["responses"])
    assert summary["n_responses"] + summary["duplicates_removed"] == 9
    assert summary["groups_all_positive"] + summary["groups_all_negative"] + summary["groups_mixed"] == 3


# ---------------------------------------------------------------- bad input

@pytest.fixture
def malformed(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text((FIXTURES / "gsm8k_tiny.jsonl").read_text().splitlines()[0] + "\n{\"question\": \"x\"\n")
    return str(path)


@pytest.mark.parametrize("case", ["missing file", "k < 1", "malformed row", "greedy k > 1"])
def test_bad_input_is_one_line_exit_2_nothing_written(tiny_model, tmp_path, capsys, malformed, case):
    absent = str(tmp_path / "absent.jsonl")
    args, problem = {
        "missing file": (["--data", absent], f"{absent}: file not found"),
        "k < 1": (["--data", GSM8K, "--k", "0"], "--k 0: must be at least 1"),
        "malformed row": (["--data", malformed], f"{malformed}:2: invalid JSON"),
        "greedy k > 1": (["--data", GSM8K, "--temperature", "0"], "--temperature 0.0: must be above 0"),
    }[case]
    out = tmp_path / "out" / "groups.jsonl"
    assert main(["sample", "--model", tiny_model, *args, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {problem}"), err
    assert not out.parent.exists()


def test_an_existing_groups_file_is_not_replaced(tiny_model, tmp_path, capsys):
    out = tmp_path / "groups.jsonl"
    out.write_text("keep\n")
    assert main(["sample", "--model", tiny_model, "--data", GSM8K, "--output", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and out.read_text() == "keep\n"


# ---------------------------------------------------------------- generate_texts

def test_k_samples_per_prompt_come_back_in_prompt_order(tiny_model):
    """At a temperature near 0 sampling is greedy, so each prompt's k texts equal its greedy text."""
    from reasonalign.core.generation import cut_at_stop, generate_texts
    from reasonalign.models import load_model, load_tokenizer

    model, tok = load_model(tiny_model), load_tokenizer(tiny_model)
    prompts = ["Question: a long question with many words in it?\nAnswer:", "Question: short?\nAnswer:",
               "Question: medium length one here?\nAnswer:"]
    greedy = generate_texts(model, tok, prompts, add_special_tokens=True, max_new_tokens=4, batch_size=2,
                            progress=False)
    sampled = generate_texts(model, tok, prompts, add_special_tokens=True, max_new_tokens=4, batch_size=2,
                             num_return_sequences=2, temperature=1e-4, seed=0, progress=False)
    assert len(set(greedy)) == 3 and sampled == [g for g in greedy for _ in range(2)]
    assert cut_at_stop(" 72.\nQuestion: next\nAnswer: 5", ("\nQuestion:",)) == " 72."
    assert cut_at_stop(" 72.", ("\nQuestion:",)) == " 72."


def test_repetition_options_reach_generate_and_the_summary_records_the_decoding(tiny_model, tmp_path, monkeypatch):
    calls = []

    def scripted(model, tokenizer, prompts, **kw):
        calls.append(kw)
        return [" The answer is 1."] * (len(prompts) * kw["num_return_sequences"])

    monkeypatch.setattr("reasonalign.core.generation.generate_texts", scripted)
    out = tmp_path / "groups.jsonl"
    s = sampling.sample(SampleConfig(model=tiny_model, data=GSM8K, rows=2, k=2, repetition_penalty=1.2,
                                     no_repeat_ngram_size=4, precision="fp32", output=str(out)))
    assert (calls[0]["repetition_penalty"], calls[0]["no_repeat_ngram_size"]) == (1.2, 4)
    expected = {"strategy": "sampling", "temperature": 0.8, "top_p": 0.95, "repetition_penalty": 1.2,
                "no_repeat_ngram_size": 4, "max_new_tokens": 256}
    summary = json.loads((tmp_path / "sample_summary.json").read_text())
    assert s["decoding"] == summary["decoding"] == expected and summary["precision"] == "fp32"
