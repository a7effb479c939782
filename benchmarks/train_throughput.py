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
  ours-packed  with --batch-tokens N: ours-best's precision, token-budget batches packed into one row.

"ours-best" is our run at the precision `auto` picks (the probe's choice), like trl-best.
For each run: real (non-padding) tokens/s, the held-out answer loss it reaches on the token
budget (every adapter evaluated the same way, in fp32), and MFU against a matmul peak measured
here. Speed is only ever judged as a ratio against a run measured in the same process:

  ours-bf16 / ours-fp32     >= 2.5x  (on a CPU with AVX512-BF16 or AMX)
  ours-best / trl-authors   >= 3x    (on a CPU where bf16 is fast)
  ours-best / trl-best      >= 1.5x  (on a CPU where bf16 is fast, or a GPU)

On a GPU (`--device cuda`; `--random-init 1b|7b` times a random-init Llama of those dimensions with the
real tokenizer, no weights needed) every run also reports steady-state tokens/s (after its first 3
steps) and MFU on LoRA's 4N FLOPs/token against the bf16 matmul peak measured on that GPU; `--runs`
picks runs (without trl-authors, `--budget` gives the token budget). `benchmarks/gpu_checks.sh` runs
every GPU check in one go.

Usage: python benchmarks/train_throughput.py [--steps N] [--rows N] [--json PATH]
       [--device cuda] [--model NAME | --random-init tiny|1b|7b] [--batch-tokens N] [--runs A,B] [--budget N]
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

from random_model import SHAPES, build

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
          ("ours-best / trl-best", "ours-best", "trl-best", 1.5, "fast_bf16"),
          ("ours-packed / trl-best", "ours-packed", "trl-best", 1.5, "fast_bf16")]
FALLBACK_BUDGET = 20000  # real tokens, when trl-authors was to set the budget but failed
WARMUP_STEPS = 3  # as train_summary.json's steady_tokens_per_s


# ---------------------------------------------------------------- the machine


def machine() -> dict:
    """CPU model and bf16 flags, threads, library versions: what the ratios depend on."""
    import peft
    import transformers

    try:
        import trl
    except ImportError:  # the TRL runs then fail one by one, with their error in the report; ours still run
        trl = None

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
            "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl and trl.__version__,
            "peft": peft.__version__}


def matmul_peak(dtype=torch.float32, n=None, seconds=1.0, device="cpu") -> float:
    """GFLOP/s of a square matmul, the best of a few repeats (the MFU denominator)."""
    cuda = device.startswith("cuda")
    n = n or (8192 if cuda else 1024)
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    a @ b
    sync()
    best, end = 0.0, time.time() + seconds
    while time.time() < end:
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        sync()
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


# ---------------------------------------------------------------- the runs


class _TokenBudget(TrainerCallback):
    """Stops a TRL run once it has trained on `budget` real tokens (TRL logs them as `num_tokens`, every step);
    `marks`: (time, tokens) at each step's log, for the steady-state tokens/s."""

    def __init__(self, budget: int | None):
        self.budget, self.marks = budget, []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "num_tokens" in logs:
            self.marks.append((time.time(), logs["num_tokens"]))
        if self.budget and logs and logs.get("num_tokens", 0) >= self.budget:
            control.should_training_stop = True


def steady_rate(marks: list) -> float | None:
    """Tokens/s after the first WARMUP_STEPS steps, from (time, tokens so far) at each step."""
    warmup = min(WARMUP_STEPS, len(marks) // 2)
    if warmup < 1:
        return None
    (t0, n0), (t1, n1) = marks[warmup - 1], marks[-1]
    return (n1 - n0) / max(t1 - t0, 1e-9)


def run_trl(rows, out: str, *, best: bool, precision: str = "fp32", steps: int = -1, budget: int | None = None,
            batch_size: int = 4, model: str = MODEL, device: str = "cpu") -> dict:
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
                     max_steps=steps, num_train_epochs=10, bf16=precision == "bf16", use_cpu=device == "cpu",
                     packing=False,
                     train_sampling_strategy="group_by_length", max_length=TRL_MAX_LENGTH, logging_steps=1,
                     report_to=[], save_strategy="no", seed=0, **extra)
    peft_config = LoraConfig(r=64, lora_alpha=16, lora_dropout=0.1, bias="none", task_type="CAUSAL_LM")
    # TRL at its best on a GPU loads the base in bf16 (its `model_init_kwargs={"dtype": ...}`); the authors: fp32
    dtype = torch.bfloat16 if best and precision == "bf16" and device.startswith("cuda") else None
    clock = _TokenBudget(budget)
    trainer = SFTTrainer(model=load_model(model, dtype=dtype, device=device), args=args,
                         train_dataset=Dataset.from_list(data), processing_class=load_tokenizer(model),
                         peft_config=peft_config, callbacks=[clock])
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    trainer.model.save_pretrained(out)  # evaluated from the saved adapter, like ours
    # TRL counts the attention-mask tokens of every batch it trains on (a collator wrapper
    # would also count the batch the dataloader prefetches but never trains on).
    tokens = int(max(h.get("num_tokens", 0) for h in trainer.state.log_history))
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "steady_tokens_per_s": steady_rate(clock.marks), "steps": trainer.state.global_step, "precision": precision, "batch_size": batch_size,
            "loss_on": "completion" if completion_only else "full",
            "gradient_checkpointing": bool(args.gradient_checkpointing), "adapter": out}


def run_ours(rows, out: str, precision: str, budget: int, model: str = MODEL, **options) -> dict:
    """reasonalign's `train` with its default recipe at `precision` (and `options`: batch_tokens, pack), until
    `budget` real tokens."""
    config = TrainConfig(method="lr", model=model, output=out, calibration_rows=0, save_steps=0, max_tokens=budget,
                         epochs=10, precision=precision, report_to="none", **options)
    summary = train(config, rows=rows)
    return {"tokens": summary["real_tokens"], "seconds": summary["seconds"], "tokens_per_s": summary["tokens_per_s"],
            "steady_tokens_per_s": summary["steady_tokens_per_s"], "steps": summary["steps"], "precision": summary["precision"], "batch_size": f"{config.batch_tokens}t" if config.batch_tokens else config.batch_size,
            "loss_on": config.loss_on, "gradient_checkpointing": False, "adapter": out}


@torch.no_grad()
def heldout_answer_loss(adapter: str, tokenizer, rows, base: str = MODEL) -> float:
    """Mean cross-entropy per answer token (reason included) on held-out training rows, in fp32."""
    model = load_model(base, adapter)
    template = get_template(TEMPLATE)
    feats = [encode(tokenizer, template.prompt(e.statement, "lr"), template.answer(e.label, e.reason, "lr"),
                    max_length=TRL_MAX_LENGTH) for e in rows]
    collate, total, count = Collator(tokenizer.pad_token_id), 0.0, 0
    model.eval()
    for start in range(0, len(feats), 8):
        batch = {k: v.to(model.device) for k, v in collate(feats[start:start + 8]).items()}
        sums, n = answer_logprobs(model, batch)
        total, count = total - float(sums.sum()), count + int(n.sum())
    return total / count


# ---------------------------------------------------------------- the report


def report(result: dict) -> None:
    m, p = result["machine"], result["probe"]
    print(f"\nmachine: {m['cpu']} ({m['cpu_count']} cores, {m['torch_threads']} torch threads)  "
          f"avx512_bf16={m['avx512_bf16']}  amx_bf16={m['amx_bf16']}  cuda={m['cuda']}")
    print(f"versions: torch {m['torch']}  transformers {m['transformers']}  trl {m['trl']}  peft {m['peft']}")
    if "speedup" in p:
        print(f"precision probe: fp32 {p['fp32_s'] * 1e3:.2f} ms  bf16 {p.get('bf16_s', float('nan')) * 1e3:.2f} ms  "
              f"speedup {p['speedup']:.2f}x  -> auto = {p['auto']}")
    else:
        print(f"precision: GPU {p['gpu']}, compute capability {p['capability']} -> auto = {p['auto']}")
    print(f"model: {result['model']} ({result['params_2d'] / 1e9:.2f}B parameters in matrices)")
    print(f"matmul peak: fp32 {result['matmul_peak_gflops']['fp32']:.0f} GFLOP/s  "
          f"bf16 {result['matmul_peak_gflops']['bf16']:.0f} GFLOP/s")
    print(f"token budget: {result['token_budget']} real tokens; "
          f"{result['train_rows']} train rows, {result['heldout_rows']} held-out rows\n")
    head = f"{'run':<12} {'precision':<9} {'loss on':<10} {'batch':>5} {'grad ckpt':>9} {'steps':>5} " \
           f"{'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'steady':>9} {'MFU':>6} {'MFU st.':>7} {'held-out loss':>13}"
    print(head)
    print("-" * len(head))
    for name, r in result["runs"].items():
        steady = r["steady_tokens_per_s"]
        print(f"{name:<12} {r['precision']:<9} {r['loss_on']:<10} {r['batch_size']:>5} "
              f"{str(r['gradient_checkpointing']):>9} {r['steps']:>5} {r['tokens']:>7} {r['seconds']:>8.1f} "
              f"{r['tokens_per_s']:>9.1f} {steady if steady is not None else '-':>9} {r['mfu']:>6.3f} "
              f"{r['mfu_steady'] if r['mfu_steady'] is not None else '-':>7} "
              f"{'-' if r['heldout_answer_loss'] is None else format(r['heldout_answer_loss'], '.3f'):>13}")
    print(f"\nours-best = {result['ours_best']}\n")
    for name, r in result["ratios"].items():
        print(f"{name:<25} {r['ratio']:>6.2f}x  target >= {r['target']}x  {r['status']}"
              + ("" if r["applies"] else f"  (target is for {r['target_for']}; this machine is not one)"))


def failed_as_none(run, errors: dict, name: str, *args, **kwargs) -> dict | None:
    """A TRL run, or None with its error kept (TRL missing or broken on a rented GPU must not cost ours)."""
    try:
        return run(*args, **kwargs)
    except Exception as exc:  # reported in the JSON's "errors" and on stdout
        errors[name] = f"{type(exc).__name__}: {exc}"
        print(f"{name} failed: {errors[name]}", flush=True)
        return None


def matrix_params(model: str) -> int:
    """Parameters in weight matrices (the 4N basis of MFU), counted on the meta device: a 7B model is never
    loaded for it."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from reasonalign.models import resolve

    with torch.device("meta"):
        built = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(resolve(model)))
    return sum(p.numel() for p in built.parameters() if p.dim() == 2)


def pick_model(args) -> str:
    """The model to time: a random-init one (built once under --workdir) or a name/hub id/folder."""
    if args.random_init:
        return build(args.random_init, Path(args.workdir) / f"random-{args.random_init}", args.device)
    return args.model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12,
                        help="trl-authors optimizer steps; its real tokens are every other run's budget")
    parser.add_argument("--rows", type=int, default=96, help="DFAR L+R training rows (class-balanced)")
    parser.add_argument("--json", metavar="PATH", help="also save every number to this JSON file")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where every run trains")
    parser.add_argument("--model", default=MODEL, help="short name, hub id or folder")
    parser.add_argument("--random-init", choices=sorted(SHAPES), help="a random-init Llama of these dimensions "
                        "with SmolLM2's tokenizer instead of --model (speed only; no weights needed)")
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where --random-init models are written")
    parser.add_argument("--batch-tokens", type=int, help="also run ours-packed: --batch-tokens N --pack")
    parser.add_argument("--runs", default="trl-authors,trl-best,ours-fp32,ours-bf16",
                        help="comma-separated runs (ours-packed is added by --batch-tokens)")
    parser.add_argument("--budget", type=int, help="real-token budget of every run when trl-authors is not run")
    parser.add_argument("--no-heldout", action="store_true", help="skip the held-out loss of every adapter (it "
                        "loads the base in fp32 once per run: minutes for a 7B model)")
    args = parser.parse_args()
    wanted = args.runs.split(",") + (["ours-packed"] if args.batch_tokens else [])
    if "trl-authors" not in wanted and not args.budget:
        parser.error("--budget N is needed when trl-authors (whose tokens are the budget) is not run")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU here")
    if args.device == "cpu":  # every run follows default_device(); hide a GPU so CPU numbers stay CPU numbers
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    torch.manual_seed(0)
    model = pick_model(args)
    data = load("dfar:train", method="lr")
    pool, heldout = split_off(data.examples, 48, seed=1)
    rows = stratified_sample(pool, args.rows, seed=0)
    tokenizer = load_tokenizer(model)
    n_params = matrix_params(model)

    info, found = machine(), probe(args.device)
    fast_bf16 = found["auto"] == "bf16"
    best_precision = "bf16" if fast_bf16 else "fp32"
    if not fast_bf16:
        print(f"bf16 is not faster than fp32 here (probe speedup {found.get('speedup', 0):.2f}x): "
              "trl-best and ours-best use fp32", flush=True)
    print("measuring the matmul peaks...", flush=True)
    peak = {"fp32": matmul_peak(torch.float32, device=args.device),
            "bf16": matmul_peak(torch.bfloat16, device=args.device)}

    runs, budget, errors = {}, args.budget, {}
    with tempfile.TemporaryDirectory() as tmp:
        if "trl-authors" in wanted:
            runs["trl-authors"] = failed_as_none(run_trl, errors, "trl-authors", rows, f"{tmp}/trl-authors",
                                                 best=False, steps=args.steps, model=model, device=args.device)
            budget = budget or (runs["trl-authors"] or {}).get("tokens") or FALLBACK_BUDGET
        ours_batch = TrainConfig().batch_size
        if "trl-best" in wanted:
            runs["trl-best"] = failed_as_none(run_trl, errors, "trl-best", rows, f"{tmp}/trl-best", best=True,
                                              precision=best_precision, budget=budget, batch_size=ours_batch,
                                              model=model, device=args.device)
        runs = {name: r for name, r in runs.items() if r is not None}
        for precision in ("fp32", "bf16"):
            if f"ours-{precision}" in wanted:
                runs[f"ours-{precision}"] = run_ours(rows, f"{tmp}/ours-{precision}", precision, budget, model)
        if "ours-packed" in wanted:
            runs["ours-packed"] = run_ours(rows, f"{tmp}/ours-packed", best_precision, budget, model,
                                           batch_tokens=args.batch_tokens, pack=True)
        for r in runs.values():
            adapter = r.pop("adapter")
            r["heldout_answer_loss"] = None if args.no_heldout else \
                round(heldout_answer_loss(adapter, tokenizer, heldout, model), 4)

    # LoRA on a frozen base: forward (2N) + input-gradient backward (2N) FLOPs per token.
    for r in runs.values():
        flops = 4 * n_params / (peak[r["precision"]] * 1e9)
        r["mfu"] = round(flops * r["tokens_per_s"], 3)
        r["mfu_steady"] = round(flops * r["steady_tokens_per_s"], 3) if r["steady_tokens_per_s"] else None
        r["tokens_per_s"], r["seconds"] = round(r["tokens_per_s"], 1), round(r["seconds"], 1)
        if r["steady_tokens_per_s"]:
            r["steady_tokens_per_s"] = round(r["steady_tokens_per_s"], 1)
    ours_best = f"ours-{best_precision}"
    if ours_best in runs:
        runs["ours-best"] = runs[ours_best]
    applies = {"bf16_cpu": (info["avx512_bf16"] or info["amx_bf16"]) and args.device == "cpu",
               "fast_bf16": fast_bf16}
    target_for = {"bf16_cpu": "CPUs with AVX512-BF16/AMX", "fast_bf16": "CPUs where bf16 is fast, and GPUs"}
    ratios = {}
    for name, num, den, target, when in RATIOS:
        if num not in runs or den not in runs:
            continue
        ratio = runs[num]["tokens_per_s"] / runs[den]["tokens_per_s"]
        status = ("PASS" if ratio >= target else "MISS") if applies[when] else "n/a"
        ratios[name] = {"ratio": round(ratio, 2), "target": target, "status": status, "applies": applies[when],
                        "target_for": target_for[when]}
    runs.pop("ours-best", None)
    # what benchmarks/collect.py reads: a target only where it applies to this machine
    headline = [{"name": f"{name} tokens/s", "value": r["ratio"], "unit": "x",
                 "target": r["target"] if r["applies"] else None, "higher_is_better": True}
                for name, r in ratios.items()]
    if ours_best in runs:
        headline.append({"name": f"{ours_best} real tokens/s", "unit": "tokens/s", "target": None,
                         "value": runs[ours_best]["tokens_per_s"], "higher_is_better": True})
    result = {"machine": info, "probe": found, "device": args.device, "model": args.random_init and
              f"random-init {args.random_init}" or args.model, "params_2d": n_params,
              "matmul_peak_gflops": {k: round(v, 1) for k, v in peak.items()},
              "steps": args.steps, "token_budget": budget, "train_rows": len(rows), "heldout_rows": len(heldout),
              "runs": runs, "errors": errors, "ours_best": ours_best, "ratios": ratios, "headline": headline}
    report(result)
    for name, error in errors.items():
        print(f"{name}: not run ({error})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
