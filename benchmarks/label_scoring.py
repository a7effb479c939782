"""Label classification: log-likelihood scoring vs generate-and-parse, on the same prompts.

`reasonalign eval --task labels` can decide a verdict two ways (eval/labels.py):

  loglik    one forward pass per statement compares log P(" ethical") and log P(" unethical")
            after the prompt (`score_examples`, then `predict_from_scores` at the adapter's
            fitted threshold, or 0 without one), the default;
  generate  generate up to `--max-new-tokens` tokens and parse the verdict out of the text
            (`generate_answers`, then `parse_predictions`).

Both run here on the same rows of dfar:test (all 500 by default, the rows `eval --rows N`
would take), the same model, template, prompt variant, batch size and precision, in one
process. Prints items/s of each, the speedup loglik / generate, and the share of items where
both give the same verdict (target >= 98%). A generated text with no verdict in it counts as
not identical and is also counted on its own. The untuned model (the default) often writes
something other than its most likely first word, so its agreement can legitimately be low; with
a trained adapter (`--adapter runs/train`) both should agree. With eval's default template
(dfar-llama) the untuned model mostly ends at once, so most generations have no verdict;
`--template chat` asks it through its chat template instead. Accuracy against the gold labels
is printed for both, for context.

Usage: python benchmarks/label_scoring.py [--rows 500] [--adapter DIR] [--template NAME] [--batch-size 32]
                                          [--max-new-tokens 16] [--json PATH]
"""

import argparse
import time

import numpy as np

from reasonalign.core.precision import autocast, model_device, resolve
from reasonalign.core.run_record import read_run
from reasonalign.core.stats import UNPARSEABLE
from reasonalign.eval.labels import EvalConfig, generate_answers, parse_predictions, score_examples
from reasonalign.models import load_model, load_tokenizer
from reasonalign.prompts import get_template
from reasonalign.scoring import predict_from_scores
from reasonalign.core.files import write_json

TARGET_AGREEMENT = 0.98


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--adapter", default=None, help="an adapter from `reasonalign train` (default: the untuned model)")
    p.add_argument("--data", default="dfar:test")
    p.add_argument("--template", default=None, help="prompt template (default: the adapter's, else dfar-llama)")
    p.add_argument("--rows", type=int, default=None, help="the first N rows `eval --rows N` takes (default: all)")
    p.add_argument("--batch-size", type=int, default=EvalConfig.batch_size, help="eval's default")
    p.add_argument("--max-new-tokens", type=int, default=EvalConfig.max_new_tokens, help="eval's default")
    p.add_argument("--precision", default="auto")
    p.add_argument("--json", metavar="PATH", help="also save every number to this JSON file")
    args = p.parse_args()

    # the same rows, template, prompt variant and precision `reasonalign eval` would use
    config = EvalConfig(model=args.model, adapter=args.adapter, data=args.data, rows=args.rows, template=args.template,
                        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, precision=args.precision)
    _, _, examples = config.load_rows(config.seed)
    template, method = get_template(config.template_name()), config.method_name(None)
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, args.adapter)
    device = model_device(model)
    precision = resolve(args.precision, device)
    record = read_run(args.adapter)  # eval's --calibration auto: the adapter's fitted threshold, else 0
    threshold = float(record.calibration["threshold"]) if record and record.calibration else 0.0

    def loglik(rows):
        with autocast(precision, device):
            return score_examples(model, tokenizer, template, rows, method, args.batch_size, progress=False)

    def generate(rows):
        with autocast(precision, device):
            texts = generate_answers(model, tokenizer, template, rows, method, max_new_tokens=args.max_new_tokens,
                                     batch_size=args.batch_size, progress=False)
        return parse_predictions(texts), texts

    loglik(examples[:2]), generate(examples[:2])  # warm-up: first-call costs are not the method's
    start = time.perf_counter()
    scores = loglik(examples)
    by_loglik = predict_from_scores(scores, threshold)
    loglik_s = time.perf_counter() - start
    # the same scores read at threshold 0 (the likelier label word): what greedy generation picks when its
    # first word is a label, so the disagreement left at the fitted threshold is the threshold's doing
    by_argmax = predict_from_scores(scores, 0.0)
    start = time.perf_counter()
    by_generate, texts = generate(examples)
    generate_s = time.perf_counter() - start

    n = len(examples)
    gold = np.array([ex.label for ex in examples])
    unparseable = int((by_generate == UNPARSEABLE).sum())
    same = int((by_loglik == by_generate).sum())
    agreement = same / n
    agreement_argmax = float((by_argmax == by_generate).mean())
    speedup = (n / loglik_s) / (n / generate_s)
    result = {
        "model": args.model, "adapter": args.adapter, "data": args.data, "rows": n, "template": template.name,
        "method": method, "precision": precision, "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens, "threshold": threshold,
        "loglik": {"seconds": round(loglik_s, 2), "items_per_s": round(n / loglik_s, 2),
                   "accuracy": round(float((by_loglik == gold).mean()), 4)},
        "generate": {"seconds": round(generate_s, 2), "items_per_s": round(n / generate_s, 2),
                     "accuracy": round(float((by_generate == gold).mean()), 4), "unparseable": unparseable},
        "speedup_loglik_vs_generate": round(speedup, 2),
        "identical_verdicts": same, "agreement": round(agreement, 4),
        "agreement_at_threshold_0": round(agreement_argmax, 4),
        "agreement_parseable_only": round(same / (n - unparseable), 4) if n > unparseable else None,
        "examples": [{"row": ex.row, "loglik": int(a), "generate": int(b), "text": t}
                     for ex, a, b, t in list(zip(examples, by_loglik, by_generate, texts))[:10]],
        "headline": [
            {"name": "loglik items/s", "value": round(n / loglik_s, 2), "unit": "items/s", "target": None,
             "higher_is_better": True},
            {"name": "generate items/s", "value": round(n / generate_s, 2), "unit": "items/s", "target": None,
             "higher_is_better": True},
            {"name": "speedup loglik / generate", "value": round(speedup, 2), "unit": "x", "target": None,
             "higher_is_better": True},
            {"name": "identical verdicts", "value": round(agreement, 4), "unit": "share",
             "target": TARGET_AGREEMENT, "higher_is_better": True},
            {"name": "identical verdicts, loglik at threshold 0", "value": round(agreement_argmax, 4),
             "unit": "share", "target": None, "higher_is_better": True},
            {"name": "unparseable generations", "value": unparseable, "unit": "items", "target": None,
             "higher_is_better": False},
        ],
    }
    print(f"{args.model}{' + ' + args.adapter if args.adapter else ' (untuned)'} on {n} rows of {args.data}, "
          f"template {template.name}, method {method}, precision {precision}, batch {args.batch_size}, "
          f"threshold {threshold:.3f}")
    print(f"loglik   : {loglik_s:7.1f} s  {n / loglik_s:7.2f} items/s  accuracy {result['loglik']['accuracy']:.1%}")
    print(f"generate : {generate_s:7.1f} s  {n / generate_s:7.2f} items/s  accuracy "
          f"{result['generate']['accuracy']:.1%}  ({args.max_new_tokens} new tokens; {unparseable}/{n} unparseable)")
    print(f"speedup loglik / generate {speedup:.2f}x")
    status = "PASS" if agreement >= TARGET_AGREEMENT else "MISS"
    print(f"identical verdicts {same}/{n} = {agreement:.1%} (target >= {TARGET_AGREEMENT:.0%}) {status}"
          + (f"; {result['agreement_parseable_only']:.1%} of the parseable ones"
             if unparseable and result["agreement_parseable_only"] is not None else ""))
    print(f"identical verdicts with loglik read at threshold 0 instead of {threshold:.3f}: {agreement_argmax:.1%}")
    if args.json:
        print(f"saved {write_json(args.json, result)}")


if __name__ == "__main__":
    main()
