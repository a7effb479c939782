"""The generation benchmark compares like with like: batched greedy output equals the per-example loop's."""

import importlib.util
from pathlib import Path

import pytest

from reasonalign.data import load
from reasonalign.eval.labels import generate_answers
from reasonalign.models import load_model, load_tokenizer
from reasonalign.prompts import get_template

BENCH = Path(__file__).parents[1] / "benchmarks" / "generation_speed.py"


def benchmark():
    spec = importlib.util.spec_from_file_location("generation_speed", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("template_name", ["dfar-llama", "chat"])
def test_batched_greedy_equals_per_example(tiny_model, small_csv, template_name):
    tokenizer, model = load_tokenizer(tiny_model), load_model(tiny_model)
    template = get_template(template_name)
    examples = load(small_csv).examples[:10]  # statements of different lengths -> real left padding
    loop = benchmark().per_example(model, tokenizer, template, examples, "lr", max_new_tokens=12)
    batched = generate_answers(model, tokenizer, template, examples, "lr", max_new_tokens=12, batch_size=4,
                               progress=False)
    assert len({len(tokenizer(template.prompt(e.statement, "lr", tokenizer)).input_ids) for e in examples}) > 1
    assert all(t for t in loop)  # the random model writes something, so the comparison is not vacuous
    assert batched == loop
