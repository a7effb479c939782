"""Training throughput: reasonalign's trainer (fp32 and bf16) vs TRL's SFTTrainer (authors' recipe and best settings).

Four runs on the same model, the same DFAR L+R rows and the same machine, in one process:

  trl-authors  TRL SFTTrainer, the notebooks' recipe: fp32, loss on the full text, batch 4,
               TRL's default gradient checkpointing. It runs `--steps` optimizer steps, and the
               real tokens it trains on are the token budget of every other run.
  trl-best     TRL SFTTrainer at its best settings here, so the comparison is like for like:
               bf16 (when the precision probe finds bf16 faster than fp32 on this machine, else
               fp32), loss on the completion only (a prompt-completion dataset), no gradient
               checkpointing, and our batch size and length-grouped batches.
  ours-fp32    reasonalign's `train` (its default recipe), precision fp32.
  ours-bf16    the same, precision bf16.

"ours-best" is our run at the precision `auto` picks (the probe's choice), like trl-best.
For each run: real (non-padding) tokens/s, the held-out answer loss it reaches on the token
budget (every adapter evaluated the same way, in fp32), and MFU against a matmul peak measured
here. Speed is only ever judged as a ratio against a run measured in the same process:

  ours-bf16 / ours-fp32     >= 2.5x  (on a CPU with AVX512-BF16 or AMX)
  ours-best / trl-authors   >= 3x    (on a CPU where bf16 is fast)
  ours-best / trl-best      >= 1.5x  (on a CPU where bf16 is fast)

Usage: python benchmarks/train_throughput.py [--steps N] [--rows N] [--json PATH]
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from reasonalign.core.batching import Collator, encode
from reasonalign.core.precision import probe
from reasonalign.data import load, split_off, stratified_sample
from reasonalign.models import load_model, load_tokenizer
from reasonalign.prompts import get_template
from reasonalign.scoring import answer_logprobs
from reasonalign.train.sft import TrainConfig, train

MODEL = "smollm2-135m-instruct"
TEMPLATE = "dfar-llama"
TRL_MAX_LENGTH = 1000  # the notebooks' max_seq_length
# (name, numerator, denominator, target, when the target applies: "bf16_cpu" or "fast_bf16")
RATIOS = [("ours-bf16 / ours-fp32", "ours-bf16", "ours-fp32", 2.5, "bf16_cpu"),
          ("ours-best / trl-authors", "ours-best", "trl-authors", 3.0, "fast_bf16"),
          ("ours-best / trl-best", "ours-best", "trl-best", 1.5, "fast_bf16")]


# ---------------------------------------------------------------- the machine


def machine() -> dict:
    """CPU model and bf16 flags, threads, library versions: what the ratios depend on."""
    import peft
    import transformers
    import trl

    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        first = ""
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"cpu": fields.get("model name", platform.processor() or platform.machine()),
            "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "peft": peft.__version__}


def matmul_peak(dtype=torch.float32, n=1024, seconds=1.0) -> float:
    """GFLOP/s of a square matmul, the best of a few repeats (the MFU denominator)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best, end = 0.0, time.time() + seconds
    while time.time() < end:
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


# ---------------------------------------------------------------- the runs


class _TokenBudget(TrainerCallback):
    """Stops a TRL run once it has trained on `budget` real tokens (TRL logs them as `num_tokens`)."""

    def __init__(self, budget: int):
        self.budget = budget

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and logs.get("num_tokens", 0) >= self.budget:
            control.should_training_stop = True


def run_trl(rows, out: str, *, best: bool, precision: str = "fp32", steps: int = -1, budget: int | None = None,
            batch_size: int = 4) -> dict:
    """TRL SFTTrainer with the notebooks' LoRA r64/a16/0.1, lr 2e-4 constant, group-by-length.

    best=False: the authors' recipe (full-text loss, batch 4, fp32, TRL's default gradient
    checkpointing), `steps` optimizer steps. best=True: prompt-completion data (loss on the
    completion only), `precision`, no gradient checkpointing, `batch_size`, until `budget` tokens."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    template = get_template(TEMPLATE)
    completion_only = best and "completion_only_loss" in SFTConfig.__dataclass_fields__
    if completion_only:
        data = [{"prompt": template.prompt(e.statement, "lr"), "completion": template.answer(e.label, e.reason, "lr")}
                for e in rows]
    else:
        data = [{"text": template.prompt(e.statement, "lr") + template.answer(e.label, e.reason, "lr")} for e in rows]
    extra = {}
    if best:
        extra["gradient_checkpointing"] = False
    if completion_only:
        extra["completion_only_loss"] = True
    args = SFTConfig(output_dir=out, per_device_train_batch_size=batch_size, learning_rate=2e-4,
                     lr_scheduler_type="constant", warmup_steps=0.03, weight_decay=0.001, max_grad_norm=0.3,
                     max_steps=steps, num_train_epochs=10, bf16=precision == "bf16", use_cpu=True, packing=False,
                     train_sampling_strategy="group_by_length", max_length=TRL_MAX_LENGTH, logging_steps=1,
                     report_to=[], save_strategy="no", seed=0, **extra)
    peft_config = LoraConfig(r=64, lora_alpha=16, lora_dropout=0.1, bias="none", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=load_model(MODEL), args=args, train_dataset=Dataset.from_list(data),
                         processing_class=load_tokenizer(MODEL), peft_config=peft_config,
                         callbacks=[_TokenBudget(budget)] if budget else None)
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    trainer.model.save_pretrained(out)  # evaluated from the saved adapter, like ours
    # TRL counts the attention-mask tokens of every batch it trains on (a collator wrapper
    # would also count the batch the dataloader prefetches but never trains on).
    tokens = int(max(h.get("num_tokens", 0) for h in trainer.state.log_history))
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "steps": trainer.state.global_step, "precision": precision, "batch_size": batch_size,
            "loss_on": "completion" if completion_only else "full",
            "gradient_checkpointing": bool(args.gradient_checkpointing), "adapter": out}


def run_ours(rows, out: str, precision: str, budget: int) -> dict:
    """reasonalign's `train` with its default recipe at `precision`, until `budget` real tokens."""
    config = TrainConfig(method="lr", output=out, calibration_rows=0, save_steps=0, max_tokens=budget, epochs=10,
                         precision=precision)
    summary = train(config, rows=rows)
    return {"tokens": summary["real_tokens"], "seconds": summary["seconds"], "tokens_per_s": summary["tokens_per_s"],
            "steps": summary["steps"], "precision": summary["precision"], "batch_size": config.batch_size,
            "loss_on": config.loss_on, "gradient_checkpointing": False, "adapter": out}


@torch.no_grad()
def heldout_answer_loss(adapter: str, tokenizer, rows) -> float:
    """Mean cross-entropy per answer token (reason included) on held-out training rows, in fp32."""
    model = load_model(MODEL, adapter)
    template = get_template(TEMPLATE)
    feats = [encode(tokenizer, template.prompt(e.statement, "lr"), template.answer(e.label, e.reason, "lr"),
                    max_length=TRL_MAX_LENGTH) for e in rows]
    collate, total, count = Collator(tokenizer.pad_token_id), 0.0, 0
    model.eval()
    for start in range(0, len(feats), 8):
        sums, n = answer_logprobs(model, collate(feats[start:start + 8]))
        total, count = total - float(sums.sum()), count + int(n.sum())
    return total / count


# ---------------------------------------------------------------- the report


def report(result: dict) -> None:
    m, p = result["machine"], result["probe"]
    print(f"\nmachine: {m['cpu']} ({m['cpu_count']} cores, {m['torch_threads']} torch threads)  "
          f"avx512_bf16={m['avx512_bf16']}  amx_bf16={m['amx_bf16']}  cuda={m['cuda']}")
    print(f"versions: torch {m['torch']}  transformers {m['transformers']}  trl {m['trl']}  peft {m['peft']}")
    print(f"precision probe: fp32 {p['fp32_s'] * 1e3:.2f} ms  bf16 {p.get('bf16_s', float('nan')) * 1e3:.2f} ms  "
          f"speedup {p['speedup']:.2f}x  -> auto = {p['auto']}")
    print(f"matmul peak: fp32 {result['matmul_peak_gflops']['fp32']:.0f} GFLOP/s  "
          f"bf16 {result['matmul_peak_gflops']['bf16']:.0f} GFLOP/s")
    print(f"token budget: {result['token_budget']} real tokens (trl-authors, {result['steps']} steps); "
          f"{result['train_rows']} train rows, {result['heldout_rows']} held-out rows\n")
    head = f"{'run':<12} {'precision':<9} {'loss on':<10} {'batch':>5} {'grad ckpt':>9} {'steps':>5} " \
           f"{'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'MFU':>6} {'held-out loss':>13}"
    print(head)
    print("-" * len(head))
    for name, r in result["runs"].items():
        print(f"{name:<12} {r['precision']:<9} {r['loss_on']:<10} {r['batch_size']:>5} "
              f"{str(r['gradient_checkpointing']):>9} {r['steps']:>5} {r['tokens']:>7} {r['seconds']:>8.1f} "
              f"{r['tokens_per_s']:>9.1f} {r['mfu']:>6.3f} {r['heldout_answer_loss']:>13.3f}")
    print(f"\nours-best = {result['ours_best']}\n")
    for name, r in result["ratios"].items():
        print(f"{name:<25} {r['ratio']:>6.2f}x  target >= {r['target']}x  {r['status']}"
              + ("" if r["applies"] else f"  (target is for {r['target_for']}; this machine is not one)"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12,
                        help="trl-authors optimizer steps; its real tokens are every other run's budget")
    parser.add_argument("--rows", type=int, default=96, help="DFAR L+R training rows (class-balanced)")
    parser.add_argument("--json", metavar="PATH", help="also save every number to this JSON file")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load("dfar:train", method="lr")
    pool, heldout = split_off(data.examples, 48, seed=1)
    rows = stratified_sample(pool, args.rows, seed=0)
    tokenizer = load_tokenizer(MODEL)
    n_params = sum(p.numel() for n, p in load_model(MODEL).named_parameters() if p.dim() == 2)

    info, found = machine(), probe("cpu")
    fast_bf16 = found["auto"] == "bf16"
    best_precision = "bf16" if fast_bf16 else "fp32"
    if not fast_bf16:
        print(f"bf16 is not faster than fp32 here (probe speedup {found['speedup']:.2f}x): "
              "trl-best and ours-best use fp32", flush=True)
    print("measuring the matmul peaks...", flush=True)
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs["trl-authors"] = run_trl(rows, f"{tmp}/trl-authors", best=False, steps=args.steps)
        budget = runs["trl-authors"]["tokens"]
        ours_batch = TrainConfig().batch_size
        runs["trl-best"] = run_trl(rows, f"{tmp}/trl-best", best=True, precision=best_precision, budget=budget,
                                   batch_size=ours_batch)
        runs["ours-fp32"] = run_ours(rows, f"{tmp}/ours-fp32", "fp32", budget)
        runs["ours-bf16"] = run_ours(rows, f"{tmp}/ours-bf16", "bf16", budget)
        for r in runs.values():
            r["heldout_answer_loss"] = round(heldout_answer_loss(r.pop("adapter"), tokenizer, heldout), 4)

    # LoRA on a frozen base: forward (2N) + input-gradient backward (2N) FLOPs per token.
    for r in runs.values():
        r["mfu"] = round(4 * n_params * r["tokens_per_s"] / (peak[r["precision"]] * 1e9), 3)
        r["tokens_per_s"], r["seconds"] = round(r["tokens_per_s"], 1), round(r["seconds"], 1)
    runs["ours-best"] = runs[f"ours-{best_precision}"]
    applies = {"bf16_cpu": info["avx512_bf16"] or info["amx_bf16"], "fast_bf16": fast_bf16}
    target_for = {"bf16_cpu": "CPUs with AVX512-BF16/AMX", "fast_bf16": "CPUs where bf16 is fast"}
    ratios = {}
    for name, num, den, target, when in RATIOS:
        ratio = runs[num]["tokens_per_s"] / runs[den]["tokens_per_s"]
        status = ("PASS" if ratio >= target else "MISS") if applies[when] else "n/a"
        ratios[name] = {"ratio": round(ratio, 2), "target": target, "status": status, "applies": applies[when],
                        "target_for": target_for[when]}
    del runs["ours-best"]
    # what benchmarks/collect.py reads: a target only where it applies to this machine
    headline = [{"name": f"{name} tokens/s", "value": r["ratio"], "unit": "x",
                 "target": r["target"] if r["applies"] else None, "higher_is_better": True}
                for name, r in ratios.items()]
    headline.append({"name": f"ours-{best_precision} real tokens/s", "unit": "tokens/s", "target": None,
                     "value": runs[f"ours-{best_precision}"]["tokens_per_s"], "higher_is_better": True})
    result = {"machine": info, "probe": found, "matmul_peak_gflops": {k: round(v, 1) for k, v in peak.items()},
              "steps": args.steps, "token_budget": budget, "train_rows": len(rows), "heldout_rows": len(heldout),
              "runs": runs, "ours_best": f"ours-{best_precision}", "ratios": ratios, "headline": headline}
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
