"""Supervised fine-tuning with LoRA: labels (L), labels + reasons (L+R), chain of thought (cot).

What makes it beat the naive TRL recipe on a small CPU budget (docs/methods.md §3), each a default
you can switch off:
- loss on the answer only (`loss_on: completion`), projected onto the vocabulary only there;
- for L+R, `label_weight` weighs the label against the reason as two tasks (`losses.label_reason_loss`);
- class-balanced training subset (`train_rows`);
- batches grouped by length, so little compute goes to padding; on a GPU, token-budget batches
  (`batch_tokens`), optionally packed into one row (`pack`), keep it busy;
- a label-prior threshold fitted on held-out *training* rows (`calibration_rows`), saved in the
  run record (and calibration.json) and used by `reasonalign eval`.
"""

import json
import sys
import time

import torch
import torch.nn.functional as F
from transformers import TrainerCallback

from reasonalign.core.files import write_text
from reasonalign.core.batching import LABEL, SHAPE_MULTIPLE, BatchCollator, Collator, PackedCollator, encode, token_batches
from reasonalign.core.distributed import is_main
from reasonalign.core.errors import UserError
from reasonalign.core.verdict import LABELS
from reasonalign.data import split_off, stratified_sample
from reasonalign.finetune.recipe import AutocastTrainer, FinetuneRecipe
from reasonalign.losses import label_reason_loss
from reasonalign.prompts import get_template
from reasonalign.scoring import fit_threshold, label_logits, score_labels
from reasonalign.tasks import task_for
from reasonalign.train.config import TrainConfig


class CompletionTrainer(AutocastTrainer):
    """Cross-entropy on the answer tokens only, counting real (non-padding) tokens for tokens/s.

    Batches with `segments` (L+R with `--label-weight`) get the label/reason two-task loss, per example
    also in packed rows (`example` says which example each token belongs to).
    `real_tokens`: the tokens a resumed run trained on before (this process's share of the sum);
    `max_tokens`: the token budget (`--max-tokens`)."""

    real_tokens = 0
    label_weight: float | None = None

    def __init__(self, *args, label_weight: float | None = None, real_tokens: int = 0, max_tokens: int | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.label_weight, self.real_tokens = label_weight, real_tokens
        # the two-task loss is a per-batch mean, not normalised by num_items_in_batch: the Trainer divides it by the
        # gradient accumulation steps; unset, the Trainer's own rule holds (scaled when num_items_in_batch was used)
        if label_weight is not None:
            self.loss_is_scaled_for_ga = False
        self.clock = _Clock(self, max_tokens)
        self.add_callback(self.clock)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits, targets, keep = label_logits(model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"],
                                             position_ids=inputs.get("position_ids"))
        if targets.numel() == 0:
            raise UserError("a training batch has no trainable label tokens (every answer was masked or truncated); "
                            "check --max-length and the template's answer part")
        self.real_tokens += int(inputs["attention_mask"].sum())
        if self.label_weight is None:
            loss = F.cross_entropy(logits, targets, reduction="sum")
            if num_items_in_batch is None:
                return loss / targets.numel()
            # num_items_in_batch counts every process's tokens, and DDP averages the processes' gradients:
            # scaled back by the process count, as Trainer.compute_loss does (1 in one process)
            scale = self.accelerator.num_processes if self.args.average_tokens_across_devices else 1
            return loss / num_items_in_batch * scale
        token_nll = F.cross_entropy(logits, targets, reduction="none")
        is_label = inputs["segments"][:, 1:][keep] == LABEL
        if "example" in inputs:  # a packed row: the target at position t belongs to the example of token t + 1
            examples = inputs["example"][:, 1:]
            return label_reason_loss(token_nll, examples[keep], is_label, int(examples.max()) + 1, self.label_weight)
        return label_reason_loss(token_nll, keep.nonzero()[:, 0], is_label, keep.shape[0], self.label_weight)

    def total_real_tokens(self) -> int:
        """Real tokens trained on, summed over the processes under a launcher (every process must call it)."""
        if self.accelerator.num_processes == 1:
            return self.real_tokens
        return int(self.accelerator.reduce(torch.tensor(self.real_tokens, device=self.args.device), "sum"))

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:
            elapsed = time.time() - self.clock.started
            logs["real_tokens"] = self.real_tokens
            # this segment's tokens over this segment's time (a resumed run starts with the earlier total)
            logs["tokens_per_s"] = round((self.real_tokens - self.clock.tokens_at_start) / max(elapsed, 1e-9), 1)
        super().log(logs, *args, **kwargs)


WARMUP_STEPS = 3  # steps left out of the steady-state tokens/s (first kernels, allocator, compilation)


class _Clock(TrainerCallback):
    """The tokens/s clock (when this segment started, with how many tokens; when each step ended, with how
    many: `marks`) and the token budget (`max_tokens`)."""

    def __init__(self, trainer, max_tokens: int | None):
        self.trainer, self.max_tokens = trainer, max_tokens
        self.started, self.tokens_at_start, self.marks = time.time(), trainer.real_tokens, []

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.tokens_at_start, self.marks = time.time(), self.trainer.real_tokens, []

    def steady(self) -> dict:
        """Tokens/s after the first `WARMUP_STEPS` steps of this segment (None with too few steps to tell)."""
        warmup = min(WARMUP_STEPS, len(self.marks) // 2)
        if len(self.marks) < 2 or warmup < 1:
            return {"steady_tokens_per_s": None, "warmup_steps": warmup}
        (t0, n0), (t1, n1) = self.marks[warmup - 1], self.marks[-1]
        return {"steady_tokens_per_s": round((n1 - n0) / max(t1 - t0, 1e-9), 1), "warmup_steps": warmup}

    def on_step_end(self, args, state, control, **kwargs):
        self.marks.append((time.time(), self.trainer.real_tokens))
        if not self.max_tokens:
            return
        # every process's tokens: under a launcher all must stop at the same step, or the others
        # would wait forever for the gradients of the one that stopped
        if self.trainer.total_real_tokens() >= self.max_tokens:
            control.should_training_stop = True


def training_task(config: TrainConfig):
    """The task of `--data`, checked against `--method` (cot needs answers, l/lr need labels)."""
    task = task_for(config.data, expect="answers" if config.method == "cot" else "labels")
    if (config.method == "cot") != (task.kind == "answers"):
        raise UserError(f"--data {config.data}: method cot needs gsm8k:train, aqua:dev or a GSM8K/AQuA JSONL file"
                        if config.method == "cot" else
                        f"--data {config.data}: {task.name} has no labels; train it with --method cot")
    return task


def select_rows(config: TrainConfig, task=None):
    """(dataset, training rows, calibration rows): calibration rows never overlap training rows.

    Answers tasks (method cot) have no labels to balance or calibrate: the first N rows of a
    seeded shuffle. `task`: `training_task(config)`, when the caller has it already."""
    task = task or training_task(config)
    dataset = task.load(config.data, method=None if config.method == "cot" else config.method,
                        columns=config.columns, label_map=config.label_map)
    if task.kind == "answers":
        return dataset, task.rows(dataset.examples, config.train_rows, config.seed), []
    pool, calibration = split_off(dataset.examples, min(config.calibration_rows, len(dataset) // 5), config.seed)
    rows = stratified_sample(pool, min(config.train_rows, len(pool)), config.seed) if config.train_rows else pool
    check_classes(dataset.path, rows, calibration)
    return dataset, rows, calibration


MIN_TRAIN_ROWS = 8


def check_classes(path, rows, calibration) -> None:
    """One class only is an error (nothing to tell apart, no threshold to fit); very few rows, or a
    calibration set of one class, a loud warning: the run is legal but its numbers mean little."""
    labels = {ex.label for ex in rows}
    if len(labels) < 2:
        which = f"all have label {LABELS[next(iter(labels))]!r}" if labels else "are none"
        raise UserError(f"{path}: the {len(rows)} training row(s) {which}; a classifier needs both labels")
    if len(rows) < MIN_TRAIN_ROWS:
        print(f"warning: {path}: only {len(rows)} training rows; the run will say little", file=sys.stderr)
    if calibration and len({ex.label for ex in calibration}) < 2:
        print(f"warning: {path}: the {len(calibration)} calibration rows have one label only; the fitted "
              f"threshold is unreliable (use more data or --calibration-rows 0)", file=sys.stderr)


class SFTRecipe(FinetuneRecipe):
    stage, summary_file = "train", "train_summary.json"

    def __init__(self, config: TrainConfig, rows=None):
        super().__init__(config)
        self.rows = rows  # replaces the selected rows (benchmarks train on exactly a reference run's rows)

    def build_dataset(self, tokenizer) -> list[dict]:
        c = self.config
        self.template = get_template(c.template)
        self.task = training_task(c)
        self.data, selected, self.calibration = select_rows(c, self.task)
        self.rows = selected if self.rows is None else self.rows
        method = None if c.method == "cot" else c.method
        special = self.task.add_special_tokens(self.template)
        weighted = c.label_weight is not None
        encoded = [encode(tokenizer, self.task.prompt(ex, self.template, method, tokenizer),
                          self.task.answer(ex, self.template, method), max_length=c.max_length, loss_on=c.loss_on,
                          where=f"{self.data.path}:{ex.row}", chat=not special,
                          label_text=self.template.label_part(ex.label, method) if weighted else None)
                   for ex in self.rows]
        if c.batch_tokens:  # the dataset's items are whole batches, shuffled by the Trainer one batch at a time
            return [[encoded[i] for i in b] for b in token_batches([f["length"] for f in encoded], c.batch_tokens,
                                                                    pack=c.pack)]
        return encoded

    def batch_size(self) -> int:
        return 1 if self.config.batch_tokens else self.config.batch_size

    def extra_arguments(self) -> dict:
        grouped = self.config.group_by_length and not self.config.batch_tokens  # token batches are grouped already
        return {"train_sampling_strategy": "group_by_length" if grouped else "random"}

    def collator(self, pad_id: int):
        c = self.config
        if not c.batch_tokens:
            return Collator(pad_id)
        return BatchCollator(PackedCollator(pad_id) if c.pack else Collator(pad_id, SHAPE_MULTIPLE))

    def check(self) -> None:
        super().check()
        c = self.config
        if c.label_weight is not None and (c.method != "lr" or c.loss_on != "completion"):
            raise UserError("--label-weight weighs label and reason tokens of the answer: it needs --method lr "
                            "and --loss-on completion")
        if c.label_weight is not None and not 0 <= c.label_weight <= 1:
            raise UserError(f"--label-weight {c.label_weight}: must be between 0 and 1")
        if c.pack and not c.batch_tokens:
            raise UserError("--pack puts a token-budget batch in one row: it needs --batch-tokens N")

    def trainer(self, model, args, dataset, tokenizer):
        # a resumed run starts from the earlier total; one process holds it, so the sum over processes stays right
        earlier = (self.prior.get("real_tokens") or 0) if is_main() else 0
        return CompletionTrainer(model=model, args=args, train_dataset=dataset,
                                 data_collator=self.collator(tokenizer.pad_token_id), precision=self.precision,
                                 label_weight=self.config.label_weight, real_tokens=earlier,
                                 max_tokens=self.config.max_tokens)

    def save_extra(self, model, tokenizer) -> dict:
        """The label-prior threshold, fitted on the held-out training rows (labels tasks only)."""
        calibration = None
        if self.calibration:
            method = self.config.method
            prompts = [self.task.prompt(ex, self.template, method, tokenizer) for ex in self.calibration]
            scores = score_labels(model, tokenizer, prompts, self.template.label_continuations(),
                                  add_special_tokens=self.task.add_special_tokens(self.template))
            calibration = {"threshold": fit_threshold(scores, [ex.label for ex in self.calibration]),
                                     "rows": len(self.calibration), "source": self.data.name,
                                     "fitted_on": "held-out training rows (never the test split)",
                                     "file": "calibration.json"}
            if is_main():
                write_text(self.out / "calibration.json", json.dumps(calibration, indent=2))
        return {"calibration": calibration}

    def record(self) -> dict:
        cot = self.task.kind == "answers"
        return {"task": self.task.name, "method": self.config.method,
                "template": "cot" if cot else self.config.template,  # cot: data/cot.py's Question:/Answer: format
                "data": {"spec": self.config.data, "sha256": self.data.sha256, "rows": len(self.data)}}

    def summary(self, record: dict) -> dict:
        c, trainer = self.config, self.hf_trainer
        tokens = trainer.total_real_tokens()  # every process runs summary()
        return {"method": c.method, "task": record["task"], "template": record["template"],
                "loss_on": c.loss_on, "label_weight": c.label_weight, "epochs": c.epochs, "train_rows": len(self.rows),
                "real_tokens": tokens, "tokens_per_s": round(tokens / max(self.seconds, 1e-9), 1),
                **trainer.clock.steady(),
                "data": record["data"], "calibration": record["calibration"]}


def train(config: TrainConfig, rows=None) -> dict:
    """Setup -> train -> save (`SFTRecipe`); returns the summary written to train_summary.json."""
    return SFTRecipe(config, rows).run()
