"""One task registry: what a data spec is, and how its examples become prompts, answers and grades.

Two kinds of task:

- labels (`dfar`, `ethos`): a statement gets a verdict (ethical/unethical) and, with method lr,
  a reason; prompts come from a `PromptTemplate`; an answer is right when its parsed verdict
  is the gold label; metrics are classification metrics. A user's CSV/TSV/JSONL with
  statement/label[/reason] columns is DFAR-style data, so it is the `dfar` task.
- answers (`gsm8k`, `aqua`): a question gets a chain of thought ending in a final answer,
  read by the task's extractor; metrics are answer accuracy.

`task_for(spec)` is the only place that decides which task a spec names; `train`, `sample`,
`align` (via groups.jsonl's `task`) and `eval` ask the task instead of testing strings.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from reasonalign.core.errors import UserError
from reasonalign.core.verdict import LABELS, parse_verdict
from reasonalign.data import cot
from reasonalign.data.tables import Dataset, clean_rows, load, parse_columns, parse_label_map, take_rows


@dataclass(frozen=True)
class LabelsTask:
    """Verdict (+ reason) tasks: DFAR and DFAR-style files, ETHOS."""

    name: str
    kind: str = "labels"
    stop: tuple[str, ...] = ()  # a verdict + reason ends at EOS

    def load(self, spec: str, *, method: str | None = None, columns: str | None = None,
             label_map: str | None = None) -> Dataset:
        return load(spec, method=method, columns=parse_columns(columns) if columns else None,
                    label_map=parse_label_map(label_map) if label_map else None)

    def rows(self, examples: list, n: int | None, seed: int, skip: int = 0) -> list:
        """`--rows`: the first N of one seeded order that keeps the label shares in every prefix."""
        return take_rows(examples, n, seed, skip, label=lambda e: e.label)

    def prompt(self, example, template, method: str, tokenizer=None) -> str:
        return template.prompt(example.statement, method, tokenizer)

    def answer(self, example, template, method: str) -> str:
        return template.answer(example.label, example.reason, method)

    def add_special_tokens(self, template) -> bool:
        """Plain templates let the tokenizer add BOS; a chat template already holds its tokens."""
        return not template.chat

    def gold(self, example) -> str:
        return LABELS[example.label]

    def extract(self, text: str) -> str | None:
        verdict = parse_verdict(text)
        return None if verdict is None else LABELS[verdict]

    def is_correct(self, text: str, gold: str) -> bool:
        return self.extract(text) == gold

    def splits(self, data_name: str, rows: list[int]) -> dict[str, list[bool]] | None:
        """Which rows count in each reported split: DFAR test is reported in full and on its clean
        part (rows not repeated from train) side by side; None for other data."""
        clean = clean_rows(data_name)
        if clean is None:
            return None
        return {data_name: [True] * len(rows), "dfar:test-clean": [r in clean for r in rows]}

    def split_metrics(self, data_name: str, examples, gold, pred, seed: int) -> dict:
        """Accuracy on each split `splits` reports (DFAR test: full and clean, side by side; {} otherwise):
        the `splits` of every labels metrics.json, from eval and from the baselines alike."""
        import numpy as np

        from reasonalign.core.stats import classification_metrics  # scipy, sklearn: only when scoring

        splits = self.splits(data_name, [ex.row for ex in examples])
        pick = ("accuracy", "n", "ci95", "majority_baseline")
        out = {}
        for split, keep in (splits or {}).items():
            keep = np.array(keep)
            m = classification_metrics(np.asarray(gold)[keep], np.asarray(pred)[keep], seed=seed)
            out[split] = {k: m[k] for k in pick}
        return out


@dataclass(frozen=True)
class AnswersTask:
    """Chain-of-thought tasks with a checkable final answer: GSM8K (a number), AQuA (an option letter)."""

    name: str
    kind: str = "answers"
    stop: tuple[str, ...] = cot.STOP  # a base model goes on with the next "Question:"

    def load(self, spec: str, *, method: str | None = None, columns: str | None = None,
             label_map: str | None = None) -> Dataset:
        if columns or label_map:
            raise UserError(f"{spec}: --columns and --label-map apply to statement/label files, not {self.name}")
        path, fmt = cot.cot_source(spec)  # resolved once: for arith: it also checks the generated files
        examples = cot.load_file(path, fmt)  # fmt None: sniffed from the file itself
        return Dataset(spec, str(path), examples, hashlib.sha256(path.read_bytes()).hexdigest(), True)

    def rows(self, examples: list, n: int | None, seed: int, skip: int = 0) -> list:
        """`--rows`: the first N of one seeded shuffle (no labels to keep shares of)."""
        return take_rows(examples, n, seed, skip)

    def prompt(self, example, template=None, method: str | None = None, tokenizer=None) -> str:
        return cot.format_prompt(example)

    def answer(self, example, template=None, method: str | None = None) -> str:
        return cot.format_target(example)

    def add_special_tokens(self, template=None) -> bool:
        return True  # plain text: the tokenizer adds its special tokens, in training and generation

    def gold(self, example) -> str:
        return example.answer

    def extract(self, text: str) -> str | None:
        return cot.extract_gsm8k(text) if self.name == "gsm8k" else cot.extract_aqua(text)

    def is_correct(self, text: str, gold: str) -> bool:
        return cot.is_correct(self.name, text, gold)

    def splits(self, data_name: str, rows: list[int]) -> None:
        return None


TASKS = {"dfar": LabelsTask("dfar"), "ethos": LabelsTask("ethos"),
         "gsm8k": AnswersTask("gsm8k"), "aqua": AnswersTask("aqua")}


def task_for(spec: str, expect: str | None = None):
    """The task a data spec names: `dfar:...`, `ethos:PATH`, `gsm8k:...`, `aqua:...`, `arith[N]:...`, or a file.

    A CSV/TSV file is DFAR-style; a JSON-lines file is GSM8K or AQuA when its first record has
    their fields, else DFAR-style. A JSON-lines file that cannot be read goes to the loader of
    the kind the command `expect`s ("labels" or "answers"), which names what is wrong."""
    prefix = spec.partition(":")[0]
    if prefix in TASKS and (prefix in ("dfar", "ethos") or ":" in spec):
        return TASKS[prefix]
    if cot.is_arith(spec):  # generated arithmetic problems, written in GSM8K's format (data/arith.py)
        return TASKS["gsm8k"]
    path = Path(spec)
    if path.suffix.lower() in (".jsonl", ".json"):
        record = None
        if path.is_file():
            with open(path, encoding="utf-8", errors="replace") as f:
                first = next((line for line in f if line.strip()), "")
            try:
                record = json.loads(first)
            except json.JSONDecodeError:
                pass
        if isinstance(record, dict) and (found := cot.answer_format(record)):
            return TASKS[found]
        if expect == "answers" and not (isinstance(record, dict) and "statement" in record):
            return TASKS["gsm8k"]  # its loader reads GSM8K or AQuA and names the problem
    return TASKS["dfar"]


def check(task: str, text: str, gold: str) -> bool:
    """Whether a response is right: its final answer (gsm8k, aqua) or its verdict (dfar, ethos) is `gold`."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r} (tasks: {', '.join(TASKS)})")
    return TASKS[task].is_correct(text, gold)
