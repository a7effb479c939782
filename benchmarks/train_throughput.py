"""Training throughput: TRL SFTTrainer with the authors' recipe vs reasonalign's default recipe.

Same model, same DFAR L+R rows, same machine, one run. Prints real (non-padding) tokens/s of
both and their ratio, the held-out answer loss each reaches on the same token budget, and
MFU against a matmul peak measured here. Usage: python benchmarks/train_throughput.py [--steps N]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from reasonalign.data import load, split_off, stratified_sample
from reasonalign.models import load_model, load_tokenizer
from reasonalign.prompts import get_template
from reasonalign.scoring import answer_logprobs
from reasonalign.core.batching import Collator, encode
from reasonalign.train.sft import TrainConfig, train

MODEL = "smollm2-135m-instruct"


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


def run_trl(rows, steps: int, out: str) -> dict:
    """TRL SFTTrainer, the notebooks' recipe: LoRA r64/a16/0.1, batch 4, lr 2e-4 constant, fp32, full text."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    template = get_template("dfar-llama")
    texts = Dataset.from_list([{"text": template.render(e.statement, e.label, e.reason, "lr")} for e in rows])
    args = SFTConfig(output_dir=out, per_device_train_batch_size=4, learning_rate=2e-4, lr_scheduler_type="constant",
                     warmup_steps=0.03, weight_decay=0.001, max_grad_norm=0.3, max_steps=steps, bf16=False,
                     use_cpu=True, packing=False, train_sampling_strategy="group_by_length", max_length=1000,
                     logging_steps=1, report_to=[], save_strategy="no", seed=0)
    peft = LoraConfig(r=64, lora_alpha=16, lora_dropout=0.1, bias="none", task_type="CAUSAL_LM")
    tokenizer = load_tokenizer(MODEL)
    trainer = SFTTrainer(model=load_model(MODEL), args=args, train_dataset=texts, processing_class=tokenizer,
                         peft_config=peft)
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    # TRL counts the attention-mask tokens of every batch it trains on (a collator wrapper
    # would also count the batch the dataloader prefetches but never trains on).
    tokens = int(max(h.get("num_tokens", 0) for h in trainer.state.log_history))
    return {"model": trainer.model, "tokens": tokens, "seconds": seconds,
            "gradient_checkpointing": bool(args.gradient_checkpointing)}


@torch.no_grad()
def heldout_answer_loss(model, tokenizer, rows) -> float:
    """Mean cross-entropy per answer token (reason included) on held-out training rows."""
    template = get_template("dfar-llama")
    feats = [encode(tokenizer, template.prompt(e.statement, "lr"), template.answer(e.label, e.reason, "lr"),
                    max_length=1000) for e in rows]
    collate, total, count = Collator(tokenizer.pad_token_id), 0.0, 0
    model.eval()
    for start in range(0, len(feats), 8):
        sums, n = answer_logprobs(model, collate(feats[start:start + 8]))
        total, count = total - float(sums.sum()), count + int(n.sum())
    return total / count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="TRL optimizer steps (ours gets the same token budget)")
    parser.add_argument("--rows", type=int, default=96, help="DFAR L+R training rows (class-balanced)")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load("dfar:train", method="lr")
    pool, heldout = split_off(data.examples, 48, seed=1)
    rows = stratified_sample(pool, args.rows, seed=0)
    tokenizer = load_tokenizer(MODEL)
    n_params = sum(p.numel() for n, p in load_model(MODEL).named_parameters() if p.dim() == 2)

    print(f"matmul peak (fp32, 2 threads): measuring...", flush=True)
    peak = matmul_peak()
    print(f"matmul peak fp32: {peak:.0f} GFLOP/s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        trl = run_trl(rows, args.steps, f"{tmp}/trl")
        trl_loss = heldout_answer_loss(trl["model"], tokenizer, heldout)
        del trl["model"]
        config = TrainConfig(method="lr", output=f"{tmp}/ours", calibration_rows=0, save_steps=0,
                             max_tokens=trl["tokens"], epochs=10)
        ours = train(config, rows=rows)
        ours_model = load_model(MODEL, f"{tmp}/ours")
        ours_loss = heldout_answer_loss(ours_model, tokenizer, heldout)

    trl_tps = trl["tokens"] / trl["seconds"]
    ours_tps = ours["real_tokens"] / ours["seconds"]
    # LoRA on a frozen base: forward (2N) + input-gradient backward (2N) FLOPs per token.
    mfu = lambda tps: 4 * n_params * tps / (peak * 1e9)  # noqa: E731
    result = {
        "trl": {"tokens": trl["tokens"], "seconds": round(trl["seconds"], 1), "tokens_per_s": round(trl_tps, 1),
                "heldout_answer_loss": round(trl_loss, 4), "mfu": round(mfu(trl_tps), 3),
                "gradient_checkpointing": trl["gradient_checkpointing"]},
        "reasonalign": {"tokens": ours["real_tokens"], "seconds": ours["seconds"], "tokens_per_s": round(ours_tps, 1),
                        "heldout_answer_loss": round(ours_loss, 4), "mfu": round(mfu(ours_tps), 3),
                        "precision": ours["precision"], "batch_size": config.batch_size},
        "speedup": round(ours_tps / trl_tps, 2),
        "matmul_peak_gflops_fp32": round(peak, 1), "heldout_rows": len(heldout), "train_rows": len(rows),
    }
    print(json.dumps(result, indent=2))
    print(f"tokens/s: TRL {trl_tps:.0f}  reasonalign {ours_tps:.0f}  ratio {result['speedup']:.2f}x (target >= 3x); "
          f"held-out answer loss after ~{trl['tokens']} tokens: TRL {trl_loss:.3f}  reasonalign {ours_loss:.3f}")


if __name__ == "__main__":
    main()
