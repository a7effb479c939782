"""Labels (L) and labels + reasons (L+R) fine-tuning with LoRA: config, trainer, recipe.

The recipe is setup -> train -> save. What makes it beat the naive TRL recipe on a small CPU
budget (METHODS.md §3), each a default you can switch off:
- loss on the answer only (`loss_on: completion`), projected onto the vocabulary only there;
- class-balanced training subset (`train_rows`);
- batches grouped by length, so little compute goes to padding;
- a label-prior threshold fitted on held-out *training* rows (`calibration_rows`), saved
  next to the adapter and used by `reasonalign eval`.
"""

import hashlib
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from transformers import Trainer, TrainerCallback, TrainingArguments

from reasonalign import __version__
from reasonalign.config import to_dict
from reasonalign.errors import UserError
from reasonalign.scoring import label_logits
from reasonalign.train.batching import Collator, encode
from reasonalign.train.config import TrainConfig


class CompletionTrainer(Trainer):
    """Cross-entropy on label tokens only, counting real (non-padding) tokens for tokens/s."""

    real_tokens = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits, targets, _ = label_logits(model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"])
        if targets.numel() == 0:
            raise UserError("a training batch has no trainable label tokens (every answer was masked or truncated); "
                            "check --max-length and the template's answer part")
        self.real_tokens += int(inputs["attention_mask"].sum())
        loss = F.cross_entropy(logits, targets, reduction="sum")
        return loss / (num_items_in_batch if num_items_in_batch is not None else targets.numel())

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:
            elapsed = time.time() - self._started
            logs["real_tokens"] = self.real_tokens
            logs["tokens_per_s"] = round(self.real_tokens / max(elapsed, 1e-9), 1)
        super().log(logs, *args, **kwargs)


class _Clock(TrainerCallback):
    """Starts the tokens/s clock and enforces the token budget (`max_tokens`)."""

    def __init__(self, trainer, max_tokens: int | None):
        self.trainer, self.max_tokens = trainer, max_tokens

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._started = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        if self.max_tokens and self.trainer.real_tokens >= self.max_tokens:
            control.should_training_stop = True


def pick_precision(requested: str, device: str) -> str:
    from reasonalign.models import supports_bf16

    if requested != "auto":
        return requested
    return "bf16" if supports_bf16(device) else "fp32"


def _lora(config: TrainConfig, n_layers: int):
    from peft import LoraConfig

    layers = None
    if config.lora_layers:
        if not 0 < config.lora_layers <= n_layers:
            raise UserError(f"--lora-layers {config.lora_layers}: the model has {n_layers} layers")
        layers = list(range(n_layers - config.lora_layers, n_layers))
    targets = None if config.lora_targets == "auto" else (
        "all-linear" if config.lora_targets == "all-linear" else [t.strip() for t in config.lora_targets.split(",")])
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      bias="none", task_type="CAUSAL_LM", target_modules=targets,
                      layers_to_transform=layers)


def _quantization(config: TrainConfig, device: str):
    if not config.qlora:
        return None
    if not device.startswith("cuda"):
        raise UserError("--qlora needs a CUDA GPU (4-bit NF4 via bitsandbytes); this machine has none")
    try:
        from transformers import BitsAndBytesConfig
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserError("--qlora needs bitsandbytes: pip install bitsandbytes") from None
    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def select_rows(config: TrainConfig):
    """(dataset, training rows, calibration rows): calibration rows never overlap training rows.

    Method cot has no labels to balance or calibrate: the first N rows of a seeded shuffle."""
    from reasonalign.data import Dataset, load, parse_columns, parse_label_map, split_off, stratified_sample

    if config.method == "cot":
        from reasonalign.data.cot import cot_source, load_cot, pick_rows

        if config.data.partition(":")[0] in ("dfar", "ethos"):
            raise UserError(f"--data {config.data}: method cot needs gsm8k:train, aqua:dev or a GSM8K/AQuA JSONL file")
        path, examples = cot_source(config.data)[0], load_cot(config.data)
        dataset = Dataset(config.data, str(path), examples, hashlib.sha256(path.read_bytes()).hexdigest(), True)
        return dataset, pick_rows(examples, config.train_rows, config.seed), []
    dataset = load(config.data, method=config.method,
                   columns=parse_columns(config.columns) if config.columns else None,
                   label_map=parse_label_map(config.label_map) if config.label_map else None)
    pool, calibration = split_off(dataset.examples, min(config.calibration_rows, len(dataset) // 5), config.seed)
    rows = stratified_sample(pool, min(config.train_rows, len(pool)), config.seed) if config.train_rows else pool
    return dataset, rows, calibration


def _check_output(config: TrainConfig) -> Path:
    out = Path(config.output)
    if (out / "train_summary.json").exists() and not (config.overwrite or config.resume):
        raise UserError(f"{out}: holds a finished run; pass --overwrite to replace it or choose another --output")
    if config.resume and not any(out.glob("checkpoint-*")):
        raise UserError(f"{out}: --resume given but there is no checkpoint to resume from")
    return out


def train(config: TrainConfig, rows=None) -> dict:
    """Setup -> train -> save. Returns the summary written to train_summary.json.

    `rows` replaces the selected training rows (benchmarks use it to train on exactly the
    rows a reference run saw)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    from reasonalign.eval.classify import fit_threshold, score_labels
    from reasonalign.models import default_device, load_model, load_tokenizer
    from reasonalign.prompts import get_template

    # --- setup: validate everything before any expensive work
    out = _check_output(config)
    template = get_template(config.template)
    dataset, selected, calibration = select_rows(config)
    rows = selected if rows is None else rows
    device = default_device()
    precision = pick_precision(config.precision, device)
    if precision == "fp16" and device == "cpu":
        raise UserError("--precision fp16 needs a GPU; use bf16 or fp32 on CPU")
    quantization = _quantization(config, device)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    if config.method == "cot":  # plain text: the tokenizer adds its special tokens, as at generation
        from reasonalign.data.cot import format_prompt, format_target, task_of

        task = task_of(dataset.examples)
        pairs = [(format_prompt(ex), format_target(ex)) for ex in rows]
        chat = False
    else:
        task = None
        pairs = [(template.prompt(ex.statement, config.method, tokenizer),
                  template.answer(ex.label, ex.reason, config.method)) for ex in rows]
        chat = template.chat
    features = [encode(tokenizer, prompt, answer, max_length=config.max_length, loss_on=config.loss_on,
                       where=f"{dataset.path}:{ex.row}", chat=chat) for ex, (prompt, answer) in zip(rows, pairs)]
    torch.manual_seed(config.seed)
    model = load_model(config.model, trust_remote_code=config.trust_remote_code, quantization=quantization)
    if quantization is not None:
        model = prepare_model_for_kbit_training(model)
    model = get_peft_model(model, _lora(config, model.config.num_hidden_layers))

    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
        num_train_epochs=config.epochs, max_steps=config.max_steps, logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_steps else "no", save_steps=config.save_steps or 500, save_total_limit=2,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=device == "cpu", seed=config.seed,
        data_seed=config.seed, report_to=["tensorboard"],
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=False,
    )
    trainer = CompletionTrainer(model=model, args=args, train_dataset=features,
                                data_collator=Collator(tokenizer.pad_token_id))
    trainer.add_callback(_Clock(trainer, config.max_tokens))

    # --- train
    started = time.time()
    result = trainer.train(resume_from_checkpoint=True if config.resume else None)
    seconds = time.time() - started

    # --- save: adapter (Hugging Face format), calibration, summary
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    calibration_info = None
    if calibration:
        scores = score_labels(model, tokenizer, template, calibration, config.method)
        labels = [ex.label for ex in calibration]
        calibration_info = {"threshold": fit_threshold(scores, labels), "rows": len(calibration),
                            "source": dataset.name, "fitted_on": "held-out training rows (never the test split)"}
        (out / "calibration.json").write_text(json.dumps(calibration_info, indent=2))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "method": config.method, "model": config.model,
        "template": "cot" if task else config.template,  # cot: data/cot.py's Question:/Answer: format
        "loss_on": config.loss_on,
        "steps": trainer.state.global_step, "epochs": config.epochs, "train_rows": len(rows),
        "real_tokens": trainer.real_tokens, "seconds": round(seconds, 1),
        "tokens_per_s": round(trainer.real_tokens / max(seconds, 1e-9), 1),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else result.training_loss, "precision": precision, "device": device,
        "seed": config.seed, "data": {"spec": config.data, "sha256": dataset.sha256, "rows": len(dataset)},
        "calibration": calibration_info, "config": to_dict(config), "versions": _versions(),
    }
    if task:  # which checker grades this model's answers: gsm8k or aqua
        summary["task"] = task
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    return summary


def _versions() -> dict:
    import peft
    import transformers

    return {"reasonalign": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "python": platform.python_version()}
