"""Alignment fine-tuning: `AlignTrainer` (one loss over groups of responses) and the recipe.

The recipe is setup -> train -> save, like `reasonalign train`:
- start from the SFT model: the SFT adapter (`--adapter`) is merged into the base weights, and a
  fresh LoRA is trained on top, so "adapters disabled" is exactly the SFT model (DPO's reference);
- a batch is G groups whose responses are flattened into one padded batch: one forward gives
  every response's score (length-normalised log-likelihood, `scoring.group_scores`);
- loss = `losses.compute_alignment_loss(...)` + `sft_weight` x mean NLL of the correct responses;
- the saved folder loads anywhere `--adapter` does (`models.load_model` merges `base_adapter/`).
"""

import json
import math
import shutil
import time
from pathlib import Path

import torch
import yaml
from transformers import Trainer, TrainingArguments

from reasonalign.align.config import AlignConfig
from reasonalign.align.groups import GroupCollator, cap, encode_group, has_pair, ordering, read_groups, score_groups
from reasonalign.config import to_dict
from reasonalign.errors import UserError, at
from reasonalign.losses import compute_alignment_loss, ordering_stats, pairs_from_ranks
from reasonalign.scoring import group_scores

LOGGED = ("score_pos", "score_neg", "margin", "pair_accuracy", "align_loss", "sft_nll")


def sft_nll(scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean length-normalised NLL of the positive slots (0, still with a grad_fn, when there are none)."""
    return -(scores * positive).sum() / positive.sum().clamp(min=1)


class AlignTrainer(Trainer):
    """`Trainer` whose loss is an alignment loss over groups; logs scores, margin and ordered-pair share."""

    def __init__(self, *args, align: AlignConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.align, self._stats = align, []

    @torch.no_grad()
    def reference_logps(self, model, inputs) -> torch.Tensor:
        """Summed log-probs [G, K] under the model with its (alignment) adapter disabled = the SFT model."""
        peft_model = self.accelerator.unwrap_model(model)
        with peft_model.disable_adapter():
            return group_scores(peft_model, inputs)[1]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        c = self.align
        scores, logps, _ = group_scores(model, inputs)
        mask, rank = inputs["mask"], inputs["rank"]
        ref = self.reference_logps(model, inputs) if c.loss in ("dpo", "dpo-pl") else None
        align_loss = compute_alignment_loss(
            c.loss, scores=scores, mask=mask, rank=rank, beta=c.resolved_beta(),
            constraint=None if c.constraint == "none" else c.constraint, constraint_beta=c.constraint_beta,
            detach_boundary=c.detach_boundary, policy_logps=logps, ref_logps=ref)
        nll = sft_nll(scores, inputs["positive"] & mask)
        loss = align_loss + c.sft_weight * nll if c.sft_weight else align_loss
        if model.training:
            stats = ordering_stats(scores.detach(), pairs_from_ranks(rank, mask), mask)
            self._stats.append({**stats, "align_loss": align_loss.item(), "sft_nll": nll.item()})
        return loss

    def log(self, logs, *args, **kwargs):
        if "loss" in logs and self._stats:  # means over the steps since the last log (NaN = nothing to average)
            for key in LOGGED:
                values = [s[key] for s in self._stats if not math.isnan(s[key])]
                logs[key] = round(sum(values) / len(values), 4) if values else float("nan")
            self._stats = []
        super().log(logs, *args, **kwargs)


def _check(config: AlignConfig) -> Path:
    """Every cheap check, before any model is loaded or anything is written."""
    out = Path(config.output)
    if config.adapter and not (Path(config.adapter) / "adapter_config.json").is_file():
        raise UserError(f"{config.adapter}: not a LoRA adapter folder (no adapter_config.json)")
    if config.adapter and out.resolve() == Path(config.adapter).resolve():
        raise UserError(f"{out}: is the SFT adapter (--adapter) itself; choose another --output")
    if ((out / "align_summary.json").exists() or (out / "adapter_config.json").exists()) and not config.overwrite:
        raise UserError(f"{out}: holds a finished run; pass --overwrite to replace it or choose another --output")
    if config.constraint != "none" and config.loss in ("aft-bc", "aft-rank"):
        raise UserError(f"--loss {config.loss} already contains the boundary constraint; drop --constraint")
    if config.groups_per_step < 1:
        raise UserError("--groups-per-step must be at least 1")
    return out


def _lora(config: AlignConfig):
    from peft import LoraConfig

    targets = None if config.lora_targets == "auto" else (
        "all-linear" if config.lora_targets == "all-linear" else [t.strip() for t in config.lora_targets.split(",")])
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      bias="none", task_type="CAUSAL_LM", target_modules=targets)


def _copy_adapter(src: Path, dst: Path) -> None:
    """Copy an adapter (and, recursively, its own base adapter) without checkpoints or logs."""
    dst.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "train_summary.json"):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    if (src / "base_adapter").is_dir():
        _copy_adapter(src / "base_adapter", dst / "base_adapter")


def align(config: AlignConfig) -> dict:
    """Setup -> train -> save. Returns the summary written to align_summary.json."""
    from peft import get_peft_model

    from reasonalign.models import default_device, load_model, load_tokenizer
    from reasonalign.train.sft import _versions

    # --- setup: validate everything before any expensive work
    out = _check(config)
    groups = read_groups(config.groups)
    with_pairs = sum(has_pair(g, config.feedback) for g in groups)
    if not with_pairs:
        raise at(config.groups, None, f"no group has a (better, worse) pair under --feedback {config.feedback}; "
                                      "nothing to align")
    # a group without a pair only feeds the SFT term, through its correct responses: keep it only then
    used = [cap(g, config.max_responses, config.feedback, config.seed) for g in groups
            if has_pair(g, config.feedback) or (config.sft_weight and any(r["correct"] for r in g["responses"]))]
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    encoded = [encode_group(tokenizer, g, config.feedback, config.max_length) for g in used]
    device = default_device()
    torch.manual_seed(config.seed)
    model = load_model(config.model, config.adapter, trust_remote_code=config.trust_remote_code)
    if config.adapter:
        model = model.merge_and_unload()  # the SFT model is the starting point and the reference
    model = get_peft_model(model, _lora(config))
    pad, rank = tokenizer.pad_token_id, [g["rank"] for g in encoded]
    before = ordering(score_groups(model, encoded, pad), rank)

    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=config.groups_per_step, learning_rate=config.lr,
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=config.max_grad_norm,
        num_train_epochs=config.epochs, max_steps=config.max_steps, logging_steps=config.logging_steps,
        save_strategy="no", use_cpu=device == "cpu", seed=config.seed, data_seed=config.seed,
        report_to=["tensorboard"], remove_unused_columns=False, dataloader_num_workers=0,
    )
    trainer = AlignTrainer(model=model, args=args, train_dataset=encoded, data_collator=GroupCollator(pad),
                           align=config)

    # --- train
    started = time.time()
    result = trainer.train()
    seconds = time.time() - started
    after = ordering(score_groups(model, encoded, pad), rank)

    # --- save: the new adapter, a copy of the SFT adapter it sits on, summaries
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    base = None
    if config.adapter:
        shutil.rmtree(out / "base_adapter", ignore_errors=True)
        _copy_adapter(Path(config.adapter), out / "base_adapter")
        base = "base_adapter"
    sft = json.loads((Path(config.adapter) / "train_summary.json").read_text()) if config.adapter and (
        Path(config.adapter) / "train_summary.json").is_file() else {}
    # what `eval` / `generate` read from an adapter folder (its prompt template and method), and
    # what `load_model` reads to merge the SFT adapter first (a path relative to this folder)
    marker = {k: sft[k] for k in ("method", "template") if sft.get(k) is not None}
    marker.update(base_adapter=base, aligned_with=config.loss, model=config.model, summary="align_summary.json")
    (out / "train_summary.json").write_text(json.dumps(marker, indent=2))

    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "loss": config.loss, "feedback": config.feedback, "beta": config.resolved_beta(), "model": config.model,
        "base_adapter": config.adapter, "steps": trainer.state.global_step, "seconds": round(seconds, 1),
        "first_loss": losses[0] if losses else result.training_loss,
        "final_loss": losses[-1] if losses else result.training_loss,
        "groups": {"file": config.groups, "total": len(groups), "with_pairs": with_pairs,
                   "without_pairs": len(groups) - with_pairs, "used": len(used),
                   "responses_used": sum(len(g["input_ids"]) for g in encoded)},
        "ordering_before": before, "ordering_after": after, "measured_on": "the training groups used",
        "device": device, "seed": config.seed, "config": to_dict(config), "versions": _versions(),
    }
    (out / "align_summary.json").write_text(json.dumps(summary, indent=2))
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    return summary
