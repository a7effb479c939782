"""`reasonalign generate`: batched generation writes prompt, output, verdict and reason per statement."""

import json

import pytest

from reasonalign.eval.reasons import GenerateConfig, generate, split_reason


@pytest.mark.parametrize("text, reason", [
    (" unethical. Stealing hurts the owner.", "Stealing hurts the owner."),
    ("The statement is ethical: helping is kind.", "helping is kind."),
    (" not ethical, because it lies.", "because it lies."),
    ("I am not sure.", "I am not sure."),
])
def test_split_reason(text, reason):
    assert split_reason(text) == reason


def test_generate_writes_one_record_per_statement(tiny_model, small_csv, tmp_path):
    config = GenerateConfig(model=tiny_model, data=small_csv, rows=6, max_new_tokens=5, batch_size=4,
                            output=str(tmp_path))
    records = generate(config)
    lines = [json.loads(line) for line in (tmp_path / "generations.jsonl").read_text().splitlines()]
    assert len(records) == len(lines) == 6
    for r in lines:
        assert r["prompt"].endswith("### Answer:") and r["gold"] in ("ethical", "unethical")
        assert r["verdict"] in (None, "ethical", "unethical") and r["reason"] == split_reason(r["output"])
    # greedy decoding is deterministic: a second run gives the same outputs
    assert [r["output"] for r in generate(config)] == [r["output"] for r in records]
