"""Alignment fine-tuning: `AlignTrainer` (one loss over groups of responses) and the recipe.

The recipe is `FinetuneRecipe`'s setup -> train -> save, like `reasonalign train`:
- start from the SFT model: the SFT adapter (`--adapter`) is merged into the base weights, and a
  fresh LoRA is trained on top, so "adapters disabled" is exactly the SFT model (DPO's reference);
- a batch is G groups whose responses are flattened into one padded batch: one forward gives
  every response's score (length-normalised log-likelihood, `scoring.group_scores`);
- loss = `losses.compute_alignment_loss(...)` + `sft_weight` x mean NLL of the correct responses;
- the saved folder loads anywhere `--adapter` does (`models.load_model` merges `base_adapter/`).
"""

import math
import shutil
from pathlib import Path

import torch

from reasonalign.align.config import AlignConfig
from reasonalign.core.distributed import is_main
from reasonalign.core.errors import UserError, at
from reasonalign.core.run_record import read_run
from reasonalign.data.groups import GroupCollator, cap, encode_group, has_pair, read_groups
from reasonalign.finetune.recipe import AutocastTrainer, FinetuneRecipe
from reasonalign.loss_table import LOSS_TABLE
from reasonalign.losses import compute_alignment_loss, ordering_stats, pairs_from_ranks
from reasonalign.scoring import group_scores, ordering, score_groups

LOGGED = ("score_pos", "score_neg", "margin", "pair_accuracy", "align_loss", "sft_nll")


def sft_nll(scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean length-normalised NLL of the positive slots (0, still with a grad_fn, when there are none)."""
    return -(scores * positive).sum() / positive.sum().clamp(min=1)


class AlignTrainer(AutocastTrainer):
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
        ref = self.reference_logps(model, inputs) if LOSS_TABLE[c.loss].reference else None
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


def _copy_adapter(src: Path, dst: Path) -> None:
    """Copy an adapter (and, recursively, its own base adapter) without checkpoints or logs."""
    dst.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "run.json",
                 "train_summary.json", "calibration.json"):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    if (src / "base_adapter").is_dir():
        _copy_adapter(src / "base_adapter", dst / "base_adapter")


class AlignRecipe(FinetuneRecipe):
    stage, summary_file = "align", "align_summary.json"

    def start_adapter(self) -> str | None:
        return self.config.adapter

    def check(self) -> None:
        super().check()
        c = self.config
        if c.loss not in LOSS_TABLE:  # the API path: the command line already limits --loss to these
            raise UserError(f"unknown alignment loss {c.loss!r}; choose from {', '.join(LOSS_TABLE)}")
        spec = LOSS_TABLE[c.loss]
        if c.constraint != "none" and spec.boundary:
            raise UserError(f"--loss {c.loss} already contains the boundary constraint; drop --constraint")
        if c.groups_per_step < 1:
            raise UserError("--groups-per-step must be at least 1")
        if not spec.ordering and (not c.sft_weight or c.constraint != "none"):
            raise UserError(f"--loss {c.loss} is the likelihood term alone: it needs --sft-weight above 0 and no --constraint")
        if c.qlora and c.adapter:
            raise UserError("--qlora cannot merge the SFT adapter (--adapter) into 4-bit weights; align without --qlora")

    def build_dataset(self, tokenizer) -> list[dict]:
        c = self.config
        self.groups = read_groups(c.groups)
        self.with_pairs = sum(has_pair(g, c.feedback) for g in self.groups)
        if not self.with_pairs and LOSS_TABLE[c.loss].ordering:  # rft learns from correct responses alone
            raise at(c.groups, None, f"no group has a (better, worse) pair under --feedback {c.feedback}; "
                                     "nothing to align")
        # a group without a pair only feeds the SFT term, through its correct responses: keep it only then
        self.used = [cap(g, c.max_responses, c.feedback, c.seed) for g in self.groups
                     if has_pair(g, c.feedback) or (c.sft_weight and any(r["correct"] for r in g["responses"]))]
        return [encode_group(tokenizer, g, c.feedback, c.max_length) for g in self.used]

    def batch_size(self) -> int:
        return self.config.groups_per_step

    def trainer(self, model, args, dataset, tokenizer):
        return AlignTrainer(model=model, args=args, train_dataset=dataset,
                            data_collator=GroupCollator(tokenizer.pad_token_id), align=self.config,
                            precision=self.precision)

    def measure(self, model, tokenizer, when: str) -> dict:
        """Share of (better, worse) pairs the model orders right on the training groups."""
        scores = score_groups(model, self.dataset, tokenizer.pad_token_id)
        return {"ordering": ordering(scores, [g["rank"] for g in self.dataset])}

    def save_extra(self, model, tokenizer) -> dict:
        """A copy of the SFT adapter this one sits on: `models.load_model` merges it first."""
        if not self.config.adapter:
            return {}
        if is_main():
            shutil.rmtree(self.out / "base_adapter", ignore_errors=True)
            _copy_adapter(Path(self.config.adapter), self.out / "base_adapter")
        return {"base_adapter": "base_adapter"}

    def record(self) -> dict:
        """Prompt format and task come from the SFT adapter: an aligned model is prompted as it was."""
        sft = read_run(self.config.adapter)
        task = self.groups[0].get("task") or (sft.task if sft else "dfar")
        return {"task": task, "method": sft.method if sft else None, "template": sft.template if sft else None,
                "data": {"spec": self.config.groups, "rows": len(self.groups)}}

    def summary(self, record: dict) -> dict:
        c = self.config
        return {"loss": c.loss, "feedback": c.feedback, "beta": c.resolved_beta(), "base_adapter": c.adapter,
                "groups": {"file": c.groups, "total": len(self.groups), "with_pairs": self.with_pairs,
                           "without_pairs": len(self.groups) - self.with_pairs, "used": len(self.used),
                           "responses_used": sum(len(g["input_ids"]) for g in self.dataset)},
                "measured_on": "the training groups used"}


def align(config: AlignConfig) -> dict:
    """Setup -> train -> save (`AlignRecipe`); returns the summary written to align_summary.json."""
    return AlignRecipe(config).run()
