"""AFT sampling (k = 4 responses per prompt) vs plain batched greedy generation: generated tokens/s.

`reasonalign sample` draws k responses per prompt for alignment fine-tuning (align/sample.py):
one `generate_texts` call with `num_return_sequences=k`, temperature 0.8, top-p 0.95 (no top-k
cut), `--batch-size` prompts per `generate` call. Sampling k sequences must not be much slower
per token than plain generation: the nucleus cut sorts the vocabulary at every step, and the k
sequences of a prompt end at different lengths. The reference is greedy generation of the same
prompts (`num_return_sequences=1`) with the same number of sequences per `generate` call
(batch-size x k prompts), so both decode batches of the same shape.

Same model, prompts (`sample`'s own, from `load_items`), precision and `max_new_tokens`, one
process. Generated tokens are counted from the texts (re-tokenised, no padding, no EOS), as
generation_speed.py does. Prints tokens/s of both and their ratio sampling / plain (target >= 0.8).
The untuned model is asked through its chat template by default, so that it writes reasons
rather than stopping at once (with dfar-llama it mostly ends at once, and there is nothing to time).

On a GPU, `--kv-cache dynamic,static` also times sampling with the static cache (compiled by
transformers there; `sampling-static`), and `--random-init 1b` times a random-init Llama-3.2-1B-shaped
model with the real tokenizer (no weights needed; it never writes EOS, so every sequence runs to
`--max-new-tokens`).

Usage: python benchmarks/sampling_speed.py [--rows 32] [--max-new-tokens 48] [--batch-size 8]
                                           [--template chat] [--json PATH]
                                           [--random-init tiny|1b|7b] [--kv-cache dynamic,static]
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from reasonalign.align.sample import SampleConfig, load_items
from reasonalign.core.generation import generate_texts
from reasonalign.core.precision import DTYPES, autocast, model_device, resolve
from reasonalign.models import load_model, load_tokenizer
from reasonalign.tasks import TASKS
from reasonalign.core.files import write_json
from random_model import SHAPES, build

TARGET = 0.8


def main():
    defaults = SampleConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=defaults.model)
    p.add_argument("--adapter", default=None, help="an adapter from `reasonalign train` (default: the untuned model)")
    p.add_argument("--data", default="dfar:train")
    p.add_argument("--template", default="chat", help="DFAR prompt template (sample's default is dfar-llama)")
    p.add_argument("--rows", type=int, default=32, help="prompts")
    p.add_argument("--k", type=int, default=defaults.k, help="responses sampled per prompt")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size,
                   help="prompts per generate call when sampling (plain generation: batch-size x k)")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--precision", default="auto")
    p.add_argument("--json", metavar="PATH", help="also save every number to this JSON file")
    p.add_argument("--random-init", choices=sorted(SHAPES), help="a random-init Llama of these dimensions with "
                   "SmolLM2's tokenizer instead of --model (speed only)")
    p.add_argument("--workdir", default=tempfile.gettempdir(), help="where --random-init models are written")
    p.add_argument("--kv-cache", default="dynamic", help="caches to sample with, comma-separated: dynamic, static")
    args = p.parse_args()
    caches = args.kv_cache.split(",")
    if args.random_init:
        args.model = build(args.random_init, Path(args.workdir) / f"random-{args.random_init}")

    config = SampleConfig(model=args.model, adapter=args.adapter, data=args.data, template=args.template,
                          rows=args.rows, k=args.k, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    tokenizer = load_tokenizer(args.model)
    items, info = load_items(config, tokenizer)
    model = load_model(args.model, args.adapter)
    device = model_device(model)
    precision = resolve(args.precision, device)
    prompts = [item.prompt for item in items]
    common = dict(add_special_tokens=items[0].add_special_tokens, stop=TASKS[info["task"]].stop, progress=False)

    # the static cache needs the model in the compute dtype (core.generation); loaded only when asked for
    static_model = load_model(args.model, args.adapter, dtype=DTYPES.get(precision)) if "static" in caches else None

    def sampled(chosen, max_new_tokens, cache="dynamic"):
        return generate_texts(static_model if cache == "static" else model, tokenizer, chosen, max_new_tokens=max_new_tokens, batch_size=config.batch_size,
                              num_return_sequences=config.k, temperature=config.temperature, top_p=config.top_p,
                              seed=config.seed, cache=cache, **common)

    def plain(chosen, max_new_tokens):
        return generate_texts(model, tokenizer, chosen, max_new_tokens=max_new_tokens,
                              batch_size=config.batch_size * config.k, **common)

    def timed(fn):
        with autocast(precision, device):
            start = time.perf_counter()
            texts = fn(prompts, config.max_new_tokens)
            seconds = time.perf_counter() - start
        tokens = sum(len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts)
        return {"sequences": len(texts), "seconds": round(seconds, 2), "tokens": tokens,
                "tokens_per_sequence": round(tokens / len(texts), 1), "tokens_per_s": round(tokens / seconds, 1)}

    with autocast(precision, device):  # warm-up: first-call costs belong to neither
        sampled(prompts[:2], 4), plain(prompts[:2], 4)
    runs = {"plain": timed(plain), "sampling": timed(sampled)}
    if "static" in caches:  # its warm-up compiles (on a GPU) for the shapes of the timed run: one full pass
        with autocast(precision, device):
            sampled(prompts, config.max_new_tokens, "static")
        runs["sampling-static"] = timed(lambda chosen, n: sampled(chosen, n, "static"))
    ratio = runs["sampling"]["tokens_per_s"] / runs["plain"]["tokens_per_s"]
    result = {
        "model": args.model, "adapter": args.adapter, "data": info["data"], "template": info["template"],
        "method": info["method"], "prompts": len(prompts), "k": config.k, "temperature": config.temperature,
        "top_p": config.top_p, "batch_size_sampling": config.batch_size,
        "batch_size_plain": config.batch_size * config.k, "max_new_tokens": config.max_new_tokens,
        "precision": precision, "threads": torch.get_num_threads(), "runs": runs,
        "ratio_sampling_vs_plain": round(ratio, 3), "target": TARGET,
        "headline": [
            {"name": "plain tokens/s", "value": runs["plain"]["tokens_per_s"], "unit": "tokens/s", "target": None,
             "higher_is_better": True},
            {"name": f"sampling k={config.k} tokens/s", "value": runs["sampling"]["tokens_per_s"],
             "unit": "tokens/s", "target": None, "higher_is_better": True},
            {"name": "sampling / plain tokens/s", "value": round(ratio, 3), "unit": "x", "target": TARGET,
             "higher_is_better": True},
        ],
    }
    if "sampling-static" in runs:
        static = runs["sampling-static"]["tokens_per_s"] / runs["sampling"]["tokens_per_s"]
        result["ratio_static_vs_dynamic"] = round(static, 3)
        result["headline"].append({"name": "sampling static / dynamic cache tokens/s", "value": round(static, 3),
                                   "unit": "x", "target": None, "higher_is_better": True})
    print(f"{args.model} on {len(prompts)} prompts of {info['data']}, template {info['template']}, "
          f"max_new_tokens {config.max_new_tokens}, precision {precision}, {torch.get_num_threads()} threads")
    for name, label in (("plain", f"plain greedy, {config.batch_size * config.k} prompts/call"),
                        ("sampling", f"sampling k={config.k} T={config.temperature} top-p {config.top_p}, "
                                     f"{config.batch_size} prompts/call")):
        r = runs[name]
        print(f"{label:<46}: {r['sequences']:>4} sequences  {r['tokens']:>6} tokens "
              f"({r['tokens_per_sequence']:.1f}/seq)  {r['seconds']:7.1f} s  {r['tokens_per_s']:7.1f} tokens/s")
    if "sampling-static" in runs:
        r = runs["sampling-static"]
        print(f"{'sampling, static KV cache':<46}: {r['sequences']:>4} sequences  {r['tokens']:>6} tokens "
              f"({r['tokens_per_sequence']:.1f}/seq)  {r['seconds']:7.1f} s  {r['tokens_per_s']:7.1f} tokens/s  "
              f"({result['ratio_static_vs_dynamic']:.2f}x dynamic)")
    print(f"sampling / plain tokens/s {ratio:.2f}x (target >= {TARGET}x) {'PASS' if ratio >= TARGET else 'MISS'}")
    if args.json:
        print(f"saved {write_json(args.json, result)}")


if __name__ == "__main__":
    main()
