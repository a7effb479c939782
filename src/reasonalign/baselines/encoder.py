"""The paper's fine-tuned encoder baseline (BERT/DistilBERT there): a sequence classifier on the statement.

Default: the bundled all-MiniLM-L6-v2 (a 6-layer BERT, no download), so the baseline runs offline;
`--encoder distilbert-base-uncased` gives the paper's model on a connected machine. 10% of the
training rows (stratified, seeded) are held out; the model is scored on them after every epoch and
the epoch with the best held-out accuracy is kept (the earliest on ties), so the number of epochs is
chosen without looking at any test row.
"""

import time
from pathlib import Path

from reasonalign.core.errors import UserError

DEFAULT = "all-minilm-l6-v2"


def resolve(name: str) -> tuple[str, bool]:
    """(what from_pretrained gets, whether it is a local folder) for `--encoder`."""
    from reasonalign.judges.reference import minilm_path  # the judges package loads scikit-learn

    if name == DEFAULT:
        return str(minilm_path()), True
    return name, Path(name).is_dir()


def check(name: str) -> None:
    """Refuse an encoder that cannot be loaded, before any baseline is fitted or written."""
    from transformers import AutoConfig  # heavy: only when the encoder is asked for

    path, local = resolve(name)
    if not local and (name.startswith(("/", ".", "~")) or Path(name).exists()):
        raise UserError(f"--encoder {name}: no such folder (or give all-minilm-l6-v2 or a hub id)")
    try:
        AutoConfig.from_pretrained(path, local_files_only=local)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--encoder {name}: cannot load it ({first})") from None


class _Rows:
    """Tokenized statements (+ labels, for training rows only) as the list of dicts a Trainer reads."""

    def __init__(self, tokenizer, texts, max_length, labels=None):
        enc = tokenizer(texts, truncation=True, max_length=max_length)
        self.items = [{k: v[i] for k, v in enc.items()} for i in range(len(texts))]
        for item, y in zip(self.items, labels or []):
            item["labels"] = int(y)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def fit_predict(name: str, train: list, tests: list[list], *, epochs: int, lr: float, batch_size: int,
                max_length: int, seed: int, workdir: Path):
    """Fine-tune on the `train` examples and score the statements of each example list in `tests`.

    Returns (per test: (predicted labels, P(unethical), seconds), a summary: fit seconds, held-out
    rows and accuracy per epoch, the epoch kept, the training loss log)."""
    import numpy as np
    import torch
    from sklearn.model_selection import train_test_split
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainerCallback, TrainingArguments, set_seed)

    path, local = resolve(name)
    texts, labels = [e.statement for e in train], [e.label for e in train]
    fit_idx, hold_idx = train_test_split(np.arange(len(texts)), test_size=max(2, round(0.1 * len(texts))),
                                         stratify=labels, random_state=seed)
    started = time.time()
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, local_files_only=local)

    def rows(idx):
        return _Rows(tokenizer, [texts[i] for i in idx], max_length, [labels[i] for i in idx])

    class KeepBest(TrainerCallback):
        """Copies the weights whenever the held-out accuracy beats every earlier epoch."""

        def __init__(self):
            self.best, self.best_epoch, self.state_dict, self.per_epoch = -1.0, None, None, []

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            acc = metrics["eval_accuracy"]
            self.per_epoch.append({"epoch": round(state.epoch), "heldout_accuracy": round(acc, 4),
                                   "heldout_loss": round(metrics["eval_loss"], 4)})
            if acc > self.best:
                self.best, self.best_epoch = acc, round(state.epoch)
                self.state_dict = {k: v.detach().clone() for k, v in model.state_dict().items()}

    steps = epochs * -(-len(fit_idx) // batch_size)
    keep = KeepBest()
    trainer = Trainer(
        model=model, processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
        train_dataset=rows(fit_idx), eval_dataset=rows(hold_idx), callbacks=[keep],
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
        args=TrainingArguments(
            output_dir=str(workdir), num_train_epochs=epochs, learning_rate=lr, per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size, eval_strategy="epoch", save_strategy="no",
            logging_strategy="steps", logging_steps=max(1, steps // 20), seed=seed, data_seed=seed, report_to=[],
            use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0))
    trainer.train()
    model.load_state_dict(keep.state_dict)
    fit_seconds = time.time() - started

    outputs = []
    for test in tests:
        started = time.time()
        logits = trainer.predict(_Rows(tokenizer, [e.statement for e in test], max_length)).predictions
        p = torch.softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)[:, 1].numpy()
        outputs.append(([int(x) for x in logits.argmax(-1)], [float(x) for x in p], time.time() - started))
    summary = {
        "seconds": fit_seconds,
        "encoder": name, "encoder_path": path, "epochs": epochs, "lr": lr, "batch_size": batch_size,
        "max_length": max_length, "fit_rows": len(fit_idx), "heldout_n": len(hold_idx),
        "heldout_rows": sorted(train[i].row for i in hold_idx), "per_epoch": keep.per_epoch,
        "best_epoch": keep.best_epoch,
        "loss_log": [{"step": int(h["step"]), "loss": float(h["loss"])} for h in trainer.state.log_history
                     if "loss" in h],
    }
    return outputs, summary
