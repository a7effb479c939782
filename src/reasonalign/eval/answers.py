"""`reasonalign eval --task answers`: chain-of-thought answer accuracy on GSM8K or AQuA.

The model continues each `Question: ... Answer:` prompt greedily; the final answer is read out
of its reasoning by the same conservative extractors that label sampled responses for
alignment fine-tuning (the task's `extract`, `reasonalign.tasks`), so accuracy here and G_P/G_N there agree.
"""

import json
import time
from pathlib import Path

from reasonalign.core.config import to_dict
from reasonalign.core.errors import UserError
from reasonalign.core.distributed import is_main
from reasonalign.core.files import write_jsonl, write_text
from reasonalign.eval.config import AnswersConfig
from reasonalign.tasks import task_for


def evaluate_answers(config: AnswersConfig, model=None, tokenizer=None) -> dict:
    """Greedy answers for every selected question -> metrics.json + predictions.jsonl."""
    # heavy (torch, transformers, scipy): imported when the command runs, so `--help` starts fast
    from reasonalign.core.generation import generate_texts, throughput
    from reasonalign.core.precision import autocast, model_device, resolve
    from reasonalign.core.stats import wilson_interval
    from reasonalign.models import default_device, load_model, load_tokenizer

    # a given model runs where it is; load_model puts a loaded one on default_device()
    device = model_device(model) if model is not None else default_device()
    precision = resolve(config.precision, device)  # a bad value fails here, before any data or model loads
    task = task_for(config.data, expect="answers")
    if task.kind != "answers":
        raise UserError(f"--data {config.data}: {task.name} has no final answers to check; use eval --task labels")
    examples = task.rows(task.load(config.data).examples, config.rows, config.seed)
    if tokenizer is None:
        tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    if model is None:
        model = load_model(config.model, config.adapter, trust_remote_code=config.trust_remote_code)

    started = time.time()
    prompts = [task.prompt(ex) for ex in examples]
    with autocast(precision, model_device(model)):
        texts = generate_texts(model, tokenizer, prompts, add_special_tokens=task.add_special_tokens(),
                               max_new_tokens=config.max_new_tokens, batch_size=config.batch_size, stop=task.stop)
    seconds = time.time() - started
    records = [{"row": ex.row, "prompt": prompt, "output": text, "extracted": task.extract(text),
                "gold": task.gold(ex), "correct": task.is_correct(text, task.gold(ex))}
               for ex, prompt, text in zip(examples, prompts, texts)]

    n_correct = sum(r["correct"] for r in records)
    metrics = {"accuracy": n_correct / len(records), "n": len(records), "correct": n_correct,
               "ci95": wilson_interval(n_correct, len(records)), "ci_method": "Wilson score interval",
               "no_answer": sum(r["extracted"] is None for r in records), "task": task.name, "data": config.data,
               "model": config.model, "adapter": config.adapter, "seed": config.seed, "seconds": round(seconds, 1),
               **throughput(tokenizer, texts, seconds), "precision": precision, "config": to_dict(config)}
    if not is_main():  # under a launcher every process has all results; one writes them
        return metrics
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "predictions.jsonl", records)
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))  # last: it marks the evaluation finished
    return metrics


def headline(m: dict, config: AnswersConfig) -> str:
    lo, hi = m["ci95"]
    return (f"{m['task']} accuracy {m['accuracy']:.1%} (95% CI {lo:.1%}-{hi:.1%}, n={m['n']}, "
            f"{m['no_answer']} without an answer) in {m['seconds']} s -> {config.output}/metrics.json")
