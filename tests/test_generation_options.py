"""Decoding options users expect (repetition penalty, no repeated n-grams, sampling): they reach
`model.generate`, change what a model writes, are recorded as `decoding`, and bad values are one-line errors."""

import json

import pytest
from conftest import cli

from reasonalign.core.errors import UserError
from reasonalign.core.generation import decoding, describe, generate_texts
from reasonalign.eval.reasons import GenerateConfig, ReasonsConfig, evaluate_reasons, generate, headline

PROMPTS = ["Question: a long question with many words in it?\nAnswer:", "Statement: I fed the cat.\n### Answer:"]


@pytest.fixture(scope="module")
def spied(tiny_model):
    """The tiny model and tokenizer; `calls` holds (generate kwargs, new token ids per row) of every generate."""
    from reasonalign.models import load_model, load_tokenizer

    model, tokenizer = load_model(tiny_model), load_tokenizer(tiny_model)
    calls = []
    original = model.generate

    def spy(**kw):
        out = original(**kw)
        calls.append((kw, out[:, kw["input_ids"].shape[1]:].tolist()))
        return out

    model.generate = spy
    return model, tokenizer, calls


def run(spied, **options):
    model, tokenizer, calls = spied
    texts = generate_texts(model, tokenizer, PROMPTS, add_special_tokens=True, max_new_tokens=20, progress=False,
                           **options)
    return texts, calls[-1]


def repeats(rows, eos):
    return [len(r) - len(set(r)) for r in ([t for t in row if t != eos] for row in rows)]


def test_no_repeat_ngram_size_reaches_generate_and_stops_the_greedy_loop(spied):
    eos = spied[1].eos_token_id
    greedy, (kw, rows) = run(spied)
    assert "no_repeat_ngram_size" not in kw and "repetition_penalty" not in kw  # neutral values are not passed
    assert any(repeats(rows, eos)), "the random model's greedy continuation should loop (else this test is vacuous)"
    unique, (kw, rows) = run(spied, no_repeat_ngram_size=1)
    assert kw["no_repeat_ngram_size"] == 1 and kw["do_sample"] is False
    assert all(len(row) == 20 for row in rows) and repeats(rows, eos) == [0, 0]  # no token id twice
    assert unique != greedy


def test_repetition_penalty_reaches_generate_and_changes_greedy_output(spied):
    eos = spied[1].eos_token_id
    greedy, _ = run(spied, repetition_penalty=1.0)
    penalised, (kw, rows) = run(spied, repetition_penalty=1.5)
    assert kw["repetition_penalty"] == 1.5 and kw["do_sample"] is False
    assert penalised != greedy and sum(repeats(rows, eos)) < sum(repeats(run(spied)[1][1], eos))


def test_sampling_options_reach_generate_with_the_repetition_options(spied):
    _, (kw, _) = run(spied, temperature=0.7, top_p=0.9, seed=0, repetition_penalty=1.2, no_repeat_ngram_size=3)
    assert (kw["do_sample"], kw["temperature"], kw["top_k"]) == (True, 0.7, 0)
    assert kw["top_p"] == 1.0 and [p.top_p for p in kw["logits_processor"]] == [0.9]  # core.generation.TopP
    assert (kw["repetition_penalty"], kw["no_repeat_ngram_size"]) == (1.2, 3)


def test_decoding_record_and_its_phrase():
    assert decoding(0.0, 0.95, 1.0, 0, 64) == {"strategy": "greedy", "temperature": 0.0, "top_p": None,
                                               "repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
                                               "max_new_tokens": 64}
    d = decoding(0.8, 0.95, 1.3, 3, 256)
    assert d == {"strategy": "sampling", "temperature": 0.8, "top_p": 0.95, "repetition_penalty": 1.3,
                 "no_repeat_ngram_size": 3, "max_new_tokens": 256}
    assert describe(d) == "sampling (T=0.8, top-p 0.95), repetition penalty 1.3, no repeated 3-grams"
    assert describe(decoding(0.0, 1.0, 1.0, 0, 64)) == "greedy"


@pytest.mark.parametrize("options, problem", [
    ({"repetition_penalty": 0.0}, "--repetition-penalty 0.0: must be above 0"),
    ({"repetition_penalty": -1.0}, "--repetition-penalty -1.0: must be above 0"),
    ({"no_repeat_ngram_size": -1}, "--no-repeat-ngram-size -1: must be at least 0"),
])
def test_bad_values_fail_before_the_model_loads(tmp_path, options, problem):
    config = GenerateConfig(model=str(tmp_path / "no-such-model"), data=str(tmp_path / "no-such.csv"),
                            output=str(tmp_path / "out"), precision="fp32", **options)
    with pytest.raises(UserError, match=problem.replace("(", r"\(")):
        generate(config)
    assert not (tmp_path / "out").exists()


def test_generate_and_eval_reasons_record_the_decoding(tiny_model, small_csv, tmp_path):
    gen = tmp_path / "gen"
    records = generate(GenerateConfig(model=tiny_model, data=small_csv, rows=4, max_new_tokens=12, batch_size=2,
                                      repetition_penalty=1.3, no_repeat_ngram_size=2, precision="fp32",
                                      output=str(gen)))
    summary = json.loads((gen / "generate_summary.json").read_text())
    expected = {"strategy": "greedy", "temperature": 0.0, "top_p": None, "repetition_penalty": 1.3,
                "no_repeat_ngram_size": 2, "max_new_tokens": 12}
    assert summary["decoding"] == expected and summary["precision"] == "fp32" and summary["n"] == len(records) == 4
    assert summary["config"]["repetition_penalty"] == 1.3 and summary["config"]["no_repeat_ngram_size"] == 2

    # judged from the file: decoding and precision come from its generate_summary.json
    config = ReasonsConfig(generations=str(gen / "generations.jsonl"), output=str(tmp_path / "ev"))
    m = evaluate_reasons(config)
    on_disk = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert on_disk["decoding"] == m["decoding"] == expected and on_disk["precision"] == "fp32"
    assert "greedy, repetition penalty 1.3, no repeated 2-grams in fp32" in headline(m, config)

    # a file without its summary: unknown, said so
    (gen / "generate_summary.json").unlink()
    m = evaluate_reasons(ReasonsConfig(generations=str(gen / "generations.jsonl"), output=str(tmp_path / "ev2")))
    assert m["decoding"] is None and m["precision"] is None and "decoding unknown" in headline(m, config)

    # generated in the same run: the run's own decoding
    m = evaluate_reasons(ReasonsConfig(model=tiny_model, data=small_csv, rows=4, max_new_tokens=6, temperature=0.7,
                                       top_p=0.9, precision="fp32", output=str(tmp_path / "ev3")))
    assert m["decoding"] == {"strategy": "sampling", "temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.0,
                             "no_repeat_ngram_size": 3, "max_new_tokens": 6} and m["precision"] == "fp32"  # defaults


@pytest.mark.parametrize("args, problem", [
    (["generate", "--repetition-penalty", "0"], "--repetition-penalty 0.0: must be above 0"),
    (["eval", "--task", "reasons", "--no-repeat-ngram-size", "-1"], "--no-repeat-ngram-size -1: must be at least 0"),
    (["sample", "--data", "gsm8k:train", "--repetition-penalty", "-0.5"], "--repetition-penalty -0.5: must be above 0"),
])
def test_console_script_bad_value_is_one_line_exit_2(tmp_path, args, problem):
    """The model does not exist: the error must come from the option check, before any model loads."""
    out = tmp_path / "out"
    target = str(out / "groups.jsonl") if args[0] == "sample" else str(out)
    r = cli(*args, "--model", str(tmp_path / "no-such-model"), "--output", target)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {problem}"), err
    assert not out.exists()


def test_top_p_keeps_exactly_what_transformers_keeps():
    """core.generation.TopP (top-k candidates, then the nucleus) against transformers' full-sort warper,
    on peaked rows (nucleus inside the candidates), a flat row (falls back to the full sort) and ties."""
    import torch
    from transformers import TopPLogitsWarper

    from reasonalign.core.generation import TopP

    torch.manual_seed(0)
    vocab = 5000
    peaked = torch.randn(6, vocab) * 6  # a few tokens hold most of the mass
    flat = torch.randn(2, vocab) * 0.01  # the nucleus spans thousands of tokens: past 256 candidates
    step = torch.zeros(1, vocab)
    step[0, :3] = 5.0  # three equally likely tokens on top
    scores = torch.cat([peaked, flat, step])
    ids = torch.zeros(scores.shape[0], 1, dtype=torch.long)
    for top_p in (0.5, 0.9, 0.95):
        ours = TopP(top_p, candidates=256)(ids, scores.clone())
        theirs = TopPLogitsWarper(top_p)(ids, scores.clone())
        assert torch.equal(ours == -float("inf"), theirs == -float("inf")), top_p
        assert torch.equal(ours[ours > -float("inf")], scores[ours > -float("inf")])  # kept logits untouched
    kept = (TopP(0.95, candidates=256)(ids, scores.clone()) > -float("inf")).sum(-1)
    assert kept[6:8].min() > 256  # the flat rows really took the fallback


def test_top_p_without_host_sync_keeps_exactly_what_the_synced_path_keeps():
    """The GPU path (`sync_free`: no `short.any()` per step, the fallback computed for every row and chosen per
    row) against the CPU path, on rows inside the candidates and rows that need the fallback."""
    import torch

    from reasonalign.core.generation import TopP

    torch.manual_seed(1)
    scores = torch.cat([torch.randn(5, 3000) * 6, torch.randn(3, 3000) * 0.01])
    ids = torch.zeros(scores.shape[0], 1, dtype=torch.long)
    for top_p in (0.5, 0.95):
        synced = TopP(top_p, candidates=128, sync_free=False)(ids, scores.clone())
        free = TopP(top_p, candidates=128, sync_free=True)(ids, scores.clone())
        assert torch.equal(synced, free)
        assert (free[5:] > -float("inf")).sum(-1).min() > 128  # the flat rows took the fallback in both


@pytest.mark.parametrize("sampled", [False, True])
def test_the_static_cache_gives_the_same_texts(spied, sampled):
    """`cache="static"` (a fixed-size cache, compiled on a GPU; prompts padded to a multiple of 64): greedy texts
    identical to the dynamic cache's; seeded samples too (the same logits, the same draws)."""
    model, tokenizer, calls = spied
    prompts = PROMPTS + ["Statement: I lied.\n### Answer:", "Question: why?\nAnswer:", "A much longer prompt " * 9]
    options = dict(add_special_tokens=True, max_new_tokens=16, batch_size=2, progress=False)
    if sampled:
        options.update(temperature=0.8, top_p=0.95, num_return_sequences=2, seed=3)
    dynamic = generate_texts(model, tokenizer, prompts, **options)
    static = generate_texts(model, tokenizer, prompts, cache="static", **options)
    assert calls[-1][0]["cache_implementation"] == "static" and calls[-1][0]["input_ids"].shape[1] % 64 == 0
    assert static == dynamic and any(static)
    with pytest.raises(UserError, match="--kv-cache 'paged': choose from auto, dynamic, static"):
        generate_texts(model, tokenizer, prompts, cache="paged", **options)


def test_the_static_cache_under_autocast_needs_the_model_in_the_compute_dtype(tiny_model):
    """An fp32 model under bf16 autocast would fill a static cache with fp32 keys and bf16 values: a one-line error;
    the model loaded in bf16 (what `sample --kv-cache static` does) decodes the dynamic cache's greedy texts."""
    import torch

    from reasonalign.core.precision import autocast
    from reasonalign.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    options = dict(add_special_tokens=True, max_new_tokens=12, batch_size=2, progress=False)
    with autocast("bf16", "cpu"):
        with pytest.raises(UserError, match="--kv-cache static: the model must be loaded in the compute dtype"):
            generate_texts(load_model(tiny_model), tokenizer, PROMPTS, cache="static", **options)
        model = load_model(tiny_model, dtype=torch.bfloat16)
        assert generate_texts(model, tokenizer, PROMPTS, cache="static", **options) == \
            generate_texts(model, tokenizer, PROMPTS, **options)


def test_kv_cache_auto_is_static_on_a_gpu_and_dynamic_on_a_cpu(spied):
    """`--kv-cache auto` (sample's default): the compiled static cache where it pays (measured 5-10x on an H200 for
    a 1B model), the dynamic one on a CPU, so CPU outputs are those of before; the name is checked either way."""
    from reasonalign.core.generation import resolve_cache

    assert resolve_cache("auto", "cuda") == resolve_cache("auto", "cuda:1") == "static"
    assert resolve_cache("auto", "cpu") == "dynamic"
    assert resolve_cache("dynamic", "cuda") == "dynamic" and resolve_cache("static", "cpu") == "static"
    with pytest.raises(UserError, match="--kv-cache 'paged'"):
        resolve_cache("paged", "cuda")
    model, tokenizer, calls = spied  # on this CPU, auto decodes with the dynamic cache: no cache_implementation
    generate_texts(model, tokenizer, PROMPTS, add_special_tokens=True, max_new_tokens=4, progress=False, cache="auto")
    assert "cache_implementation" not in calls[-1][0]
