"""Reason generation: batched (left padding, KV cache) vs a per-example `generate` loop.

Same model, same statements, same greedy decoding, one run. Prints items/s and generated
tokens/s of both, their ratio (target: batched >= 5x), and how many outputs are identical
(greedy decoding must not depend on batching). The untuned model is asked through its chat
template by default, so that it writes full-length reasons rather than stopping at once.
Usage: python benchmarks/generation_speed.py [--rows 32] [--batch-size 16] [--max-new-tokens 48] [--json PATH]
"""

import argparse
import json
import time
from pathlib import Path

import torch

from reasonalign.data import load, split_off
from reasonalign.eval.labels import generate_answers
from reasonalign.models import load_model, load_tokenizer
from reasonalign.prompts import get_template


@torch.no_grad()
def per_example(model, tokenizer, template, examples, method: str, max_new_tokens: int) -> list[str]:
    """The reference: one `generate` call per statement, no padding at all."""
    model.eval()
    texts = []
    for ex in examples:
        ids = tokenizer(template.prompt(ex.statement, method, tokenizer), add_special_tokens=not template.chat,
                        return_tensors="pt").input_ids
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        texts.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
    return texts


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--adapter", default=None, help="e.g. an L+R adapter from `reasonalign train`")
    p.add_argument("--template", default="chat")
    p.add_argument("--data", default="dfar:test")
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also save every number to this JSON file")
    args = p.parse_args()

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, args.adapter)
    template = get_template(args.template)
    examples = split_off(load(args.data).examples, args.rows, args.seed)[1]
    generate_answers(model, tokenizer, template, examples[:2], "lr", max_new_tokens=4, progress=False)  # warm-up

    def timed(fn):
        start = time.perf_counter()
        texts = fn()
        return texts, time.perf_counter() - start

    loop, loop_s = timed(lambda: per_example(model, tokenizer, template, examples, "lr", args.max_new_tokens))
    batched, batched_s = timed(lambda: generate_answers(model, tokenizer, template, examples, "lr",
                                                        max_new_tokens=args.max_new_tokens,
                                                        batch_size=args.batch_size, progress=False))
    tokens = sum(len(tokenizer(t, add_special_tokens=False).input_ids) for t in loop)
    same = sum(a == b for a, b in zip(loop, batched))
    print(f"{args.model} on {len(examples)} rows of {args.data} (seed {args.seed}), template {args.template}, "
          f"greedy, max_new_tokens {args.max_new_tokens}, {torch.get_num_threads()} threads; "
          f"{tokens} tokens generated ({tokens / len(examples):.1f} per item)")
    print(f"per-example loop : {loop_s:7.1f} s  {len(examples) / loop_s:6.2f} items/s  {tokens / loop_s:7.1f} tokens/s")
    print(f"batched ({args.batch_size:>3})    : {batched_s:7.1f} s  {len(examples) / batched_s:6.2f} items/s  "
          f"{tokens / batched_s:7.1f} tokens/s")
    print(f"speedup {loop_s / batched_s:.2f}x (target >= 5x); identical outputs {same}/{len(examples)}")
    if args.json:
        n, speedup = len(examples), loop_s / batched_s
        result = {"model": args.model, "adapter": args.adapter, "template": args.template, "data": args.data,
                  "rows": n, "seed": args.seed, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
                  "threads": torch.get_num_threads(), "tokens": tokens,
                  "per_example": {"seconds": round(loop_s, 2), "items_per_s": round(n / loop_s, 2),
                                  "tokens_per_s": round(tokens / loop_s, 1)},
                  "batched": {"seconds": round(batched_s, 2), "items_per_s": round(n / batched_s, 2),
                              "tokens_per_s": round(tokens / batched_s, 1)},
                  "speedup": round(speedup, 2), "identical_outputs": same,
                  "headline": [
                      {"name": "batched / per-example speedup", "value": round(speedup, 2), "unit": "x",
                       "target": 5.0, "higher_is_better": True},
                      {"name": "identical greedy outputs", "value": round(same / n, 4), "unit": "share",
                       "target": 1.0, "higher_is_better": True},
                      {"name": "batched tokens/s", "value": round(tokens / batched_s, 1), "unit": "tokens/s",
                       "target": None, "higher_is_better": True}]}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {args.json}")


if __name__ == "__main__":
    main()
