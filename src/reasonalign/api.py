"""The Python API: what the CLI does, callable from a user's own code without shelling out.

    from reasonalign import Classifier
    clf = Classifier.from_pretrained("runs/lr")            # an adapter folder, or an `export` folder
    clf.predict(["I kept the wallet I found."], reasons=True)
    # [Prediction(verdict='unethical', p_unethical=0.81, reason='Keeping ... is dishonest.')]

`Classifier` scores exactly as `reasonalign eval --scoring loglik` does (`eval.labels.score_examples`:
log P(" ethical") vs log P(" unethical") after the run's prompt, batched, in the resolved precision)
and decides with the run's calibration threshold, so its verdicts are eval's predictions.jsonl.
The entry points `train`, `align`, `evaluate` and `export` take the same config dataclasses the
commands are built from (`TrainConfig`, `AlignConfig`, `EvalConfig`, `ExportConfig`: every field is a
`--flag` of the command, with the same default and help) and return what the command writes as JSON.
User mistakes raise `reasonalign.core.errors.UserError` with the one-line message the CLI prints.

Heavy libraries load on first use, so `import reasonalign` stays light. Import the entry points from
here (`from reasonalign.api import train`): `reasonalign.train` is the package of the SFT code.
"""

import math
from pathlib import Path
from typing import NamedTuple

from reasonalign.align.config import AlignConfig
from reasonalign.core.errors import UserError
from reasonalign.core.run_record import prompt_format, read_run
from reasonalign.core.verdict import LABELS
from reasonalign.eval.config import EvalConfig
from reasonalign.export.config import ExportConfig
from reasonalign.train.config import TrainConfig

__all__ = ["Classifier", "Prediction", "UserError", "TrainConfig", "AlignConfig", "EvalConfig", "ExportConfig",
           "train", "align", "evaluate", "export"]


class Prediction(NamedTuple):
    verdict: str  # "ethical" or "unethical"
    p_unethical: float  # the two-label probability shifted by the threshold: > 0.5 exactly when unethical
    reason: str | None  # the generated reason (predict(reasons=True)), else None


class Classifier:
    """A fine-tuned (or untuned) model as an ethical/unethical classifier with optional reasons."""

    def __init__(self, model, tokenizer, *, template, method: str, threshold: float, precision: str,
                 batch_size: int = 32, source: str | None = None):
        self.model, self.tokenizer, self.template, self.method = model, tokenizer, template, method
        self.threshold, self.precision, self.batch_size, self.source = threshold, precision, batch_size, source

    @classmethod
    def from_pretrained(cls, path: str, *, model: str | None = None, threshold: float | None = None,
                        template: str | None = None, precision: str = "auto", batch_size: int = 32,
                        trust_remote_code: bool = False) -> "Classifier":
        """`path`: an adapter folder (`train`/`align`; base model from its run.json unless `model` is
        given), an `export` folder, or any model (short name, hub id, folder: threshold 0 unless given).
        The prompt template, method and threshold come from the run record, as in `eval`."""
        from reasonalign.core.precision import resolve
        from reasonalign.models import default_device, load_model, load_tokenizer
        from reasonalign.prompts import get_template

        is_adapter = (Path(path) / "adapter_config.json").is_file()
        record = read_run(path) if Path(path).is_dir() else None
        if is_adapter:
            base = model or (record.base_model if record and record.base_model else None)
            if not base:
                raise UserError(f"{path}: no run.json names the adapter's base model; pass model=")
            net = load_model(base, path, trust_remote_code=trust_remote_code, record=record)
            tokenizer = load_tokenizer(path if (Path(path) / "tokenizer_config.json").is_file() else base,
                                       trust_remote_code)
        else:
            net = load_model(path, trust_remote_code=trust_remote_code)
            tokenizer = load_tokenizer(path, trust_remote_code)
        template_name, method = prompt_format(record, template)
        if template_name == "cot":
            raise UserError(f"{path}: a chain-of-thought (cot) run answers questions; it has no ethical/unethical prompt")
        if threshold is None:
            threshold = float(record.calibration["threshold"]) if record and record.calibration else 0.0
        return cls(net, tokenizer, template=get_template(template_name), method=method if method in ("l", "lr") else "lr",
                   threshold=threshold, precision=resolve(precision, default_device()), batch_size=batch_size,
                   source=path)

    def scores(self, statements: list[str]):
        """[N, 2] numpy array: log P(" ethical"), log P(" unethical") after each statement's prompt."""
        from reasonalign.core.precision import autocast, model_device
        from reasonalign.data.tables import Example
        from reasonalign.eval.labels import score_examples

        examples = [Example(s, 0, None, i) for i, s in enumerate(_statements(statements))]
        with autocast(self.precision, model_device(self.model)):
            return score_examples(self.model, self.tokenizer, self.template, examples, self.method,
                                  self.batch_size, progress=False)

    def predict(self, statements: list[str] | str, *, reasons: bool = False, max_new_tokens: int = 64,
                no_repeat_ngram_size: int = 3) -> list[Prediction]:
        """One `Prediction` per statement. The verdict is log-likelihood scoring with the threshold (eval's);
        with `reasons=True` the model also generates, greedily, its verdict + reason after the L+R prompt
        (generate's decoding defaults), and `reason` is that text minus its leading verdict."""
        from reasonalign.scoring import predict_from_scores

        statements = _statements(statements)
        scores = self.scores(statements)
        verdicts = predict_from_scores(scores, self.threshold)
        texts = self._reasons(statements, max_new_tokens, no_repeat_ngram_size) if reasons else [None] * len(statements)
        return [Prediction(LABELS[int(v)], _sigmoid(float(s[1] - s[0]) - self.threshold), t)
                for v, s, t in zip(verdicts, scores, texts)]

    def _reasons(self, statements, max_new_tokens: int, no_repeat_ngram_size: int) -> list[str]:
        from reasonalign.core.precision import autocast, model_device
        from reasonalign.data.tables import Example
        from reasonalign.eval.labels import generate_answers
        from reasonalign.core.verdict import split_reason

        examples = [Example(s, 0, None, i) for i, s in enumerate(statements)]
        with autocast(self.precision, model_device(self.model)):
            texts = generate_answers(self.model, self.tokenizer, self.template, examples, "lr",
                                     max_new_tokens=max_new_tokens, batch_size=self.batch_size, progress=False,
                                     no_repeat_ngram_size=no_repeat_ngram_size)
        return [split_reason(t) for t in texts]


def _statements(statements) -> list[str]:
    statements = [statements] if isinstance(statements, str) else list(statements)
    bad = next((i for i, s in enumerate(statements) if not isinstance(s, str) or not s.strip()), None)
    if bad is not None:
        raise UserError(f"statement {bad}: expected non-empty text, got {statements[bad]!r}")
    return statements


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def train(config: TrainConfig) -> dict:
    """`reasonalign train`: L / L+R / cot LoRA fine-tuning; returns the summary (train_summary.json)."""
    from reasonalign.train.sft import train as run

    return run(config)


def align(config: AlignConfig) -> dict:
    """`reasonalign align`: AFT / DPO / RRHF / PRO on groups.jsonl; returns align_summary.json's content."""
    from reasonalign.align.trainer import align as run

    return run(config)


def evaluate(config: EvalConfig) -> dict:
    """`reasonalign eval --task labels`: accuracy with n and CI; returns metrics.json's content."""
    from reasonalign.eval.labels import evaluate as run

    return run(config)


def export(config: ExportConfig) -> dict:
    """`reasonalign export`: a merged standalone model folder with a model card; returns export.json's content."""
    from reasonalign.export.merge import export as run

    return run(config)
