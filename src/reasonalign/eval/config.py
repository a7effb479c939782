"""The options of `reasonalign eval` (one dataclass per task) and `reasonalign generate`, in one place.

Kept apart from the implementations so that the command line lists options without importing them (or
torch); options with the same name mean the same thing in every task (`cli/eval.py` shows them once).
"""

from dataclasses import dataclass

from reasonalign.core.config import DEFAULT_MODEL, MODEL_HELP, option, precision_option, trust_remote_code_option
from reasonalign.core.errors import UserError
from reasonalign.core.run_record import RunRecord, prompt_format, read_run
from reasonalign.judging import JudgeOptions
from reasonalign.tasks import task_for


@dataclass
class ScoringInputs:
    """Which model reads which rows: the options of every command that prompts with statements
    (`eval --task labels|reasons`, `generate`)."""

    model: str = option(DEFAULT_MODEL, MODEL_HELP)
    adapter: str | None = option(None, "LoRA adapter folder from `reasonalign train` or `reasonalign align`")
    data: str = option("dfar:test", "dfar:test (reported with its clean part side by side), dfar:test-clean, "
                                    "dfar:validation (500 held-out train rows), ethos:PATH, a CSV/TSV/JSONL/parquet path, a "
                                    "save_to_disk folder[@SPLIT] or hf:NAME[:CONFIG][@SPLIT]")
    columns: str | None = option(None, "column map for your own file, e.g. statement=text,label=y")
    label_map: str | None = option(None, "label map for your own file, e.g. 0=ethical,1=unethical")
    rows: int | None = option(None, "use the first N rows of a seeded order that keeps the label shares in every "
                                    "prefix (the same rows for the same seed in every command) (default: all)")
    template: str | None = option(None, "prompt template (default: the adapter's, else dfar-llama)")
    precision: str = precision_option()
    trust_remote_code: bool = trust_remote_code_option()

    def template_name(self, record: RunRecord | None = None) -> str:
        """The template asked for, else the adapter's, else dfar-llama. `record`: the adapter's run record,
        when the caller has read it already (read here otherwise)."""
        return prompt_format(record or read_run(self.adapter), self.template)[0]

    def method_name(self, requested: str | None, record: RunRecord | None = None) -> str:
        """The prompt variant: the one asked for, else the adapter's (l or lr), else lr."""
        method = prompt_format(record or read_run(self.adapter), method=requested)[1]
        return method if method in ("l", "lr") else "lr"

    def load_rows(self, seed: int) -> tuple:
        """(task, dataset, the examples to use)."""
        task = task_for(self.data)
        if task.kind != "labels":
            raise UserError(f"--data {self.data}: {task.name} has no ethical/unethical labels; "
                            f"use eval --task answers")
        dataset = task.load(self.data, columns=self.columns, label_map=self.label_map)
        return task, dataset, task.rows(dataset.examples, self.rows, seed)


@dataclass
class EvalConfig(ScoringInputs):
    method: str | None = option(None, "prompt variant l or lr (default: the adapter's, else lr)", ["l", "lr"])
    scoring: str = option("loglik", "loglik = compare label log-likelihoods; generate = generate and parse",
                          ["loglik", "generate"])
    calibration: str = option("auto", "auto = the adapter's threshold (run record) if any; none; or a JSON file")
    calibrate_on: str | None = option(None, "fit the label-prior threshold on this (training) data instead")
    calibration_rows: int = option(200, "rows of --calibrate-on used to fit the threshold")
    batch_size: int = option(32, "sequences per forward pass")
    max_new_tokens: int = option(16, "generate: tokens to generate per item")
    output: str = option("runs/eval", "folder for metrics.json and predictions.jsonl")
    seed: int = option(0, "seed for row selection and the bootstrap")


@dataclass
class GenerateConfig(ScoringInputs):
    method: str = option("lr", "prompt variant: lr asks for a reason, l for the label only", ["l", "lr"])
    max_new_tokens: int = option(64, "tokens to generate per statement (stops earlier at EOS)")
    min_new_tokens: int = option(0, "forbid EOS before this many new tokens, so a model trained to stop after its "
                                    "label (L) or an untuned one still writes a reason: MAR then rates every "
                                    "model's reasons, not whether it wrote one (0 = off)")
    temperature: float = option(0.0, "0 = greedy; above 0 samples")
    top_p: float = option(1.0, "nucleus sampling mass (with temperature > 0)")
    repetition_penalty: float = option(1.0, "penalise tokens already in the prompt or the reason (greedy and "
                                            "sampling): 1.0 = off, above 1 discourages loops (e.g. 1.2)")
    no_repeat_ngram_size: int = option(3, "never repeat an n-gram of this many tokens (greedy and sampling): 0 = off; "
                                          "3 had the lowest MAR on dfar:validation (configs/sweep-decoding.yaml)")
    batch_size: int = option(16, "statements per generate call (left-padded)")
    output: str = option("runs/generate", "folder for generations.jsonl")
    seed: int = option(0, "seed for row selection and sampling")


@dataclass
class ReasonsConfig(JudgeOptions, GenerateConfig):
    output: str = option("runs/eval-reasons", "folder for metrics.json, judgements.jsonl (and generations.jsonl)")
    generations: str | None = option(None, "judge this generations.jsonl (from `reasonalign generate`) instead of "
                                           "generating; with --export-ratings, several comma-separated files")
    vote: bool = option(False, "headline MAR = majority vote of the judges (ties count as misaligned)")
    ratings: str | None = option(None, "human judge: filled rating sheet(s) (item_id, [rater,] aligned), "
                                       "comma-separated, or a study (.sqlite) from `reasonalign annotate`")
    export_ratings: str | None = option(None, "human judge: write a blinded, shuffled rating sheet (and its key) "
                                              "here and stop")
    exclude_gold: str | None = option(None, "leave out of MAR the rows whose human reason `reasonalign data "
                                            "check-reasons --output FILE.jsonl` flagged (generations keep every row)")


@dataclass
class AnswersConfig:
    model: str = option(DEFAULT_MODEL, MODEL_HELP)
    adapter: str | None = option(None, "LoRA adapter folder from `reasonalign train --method cot`")
    data: str = option("gsm8k:test", "gsm8k:test, aqua:test (or their train/dev splits), or a GSM8K/AQuA JSONL path")
    rows: int | None = option(None, "evaluate the first N rows of a seeded shuffle; None = all, in file order")
    max_new_tokens: int = option(256, "tokens of reasoning per question (stops earlier at EOS or '\\nQuestion:')")
    batch_size: int = option(16, "questions per generate call (left-padded, KV cache)")
    output: str = option("runs/eval-answers", "folder for metrics.json and predictions.jsonl")
    seed: int = option(0, "seed for row selection")
    precision: str = precision_option()
    trust_remote_code: bool = trust_remote_code_option()


@dataclass
class RankingConfig:
    model: str = option(DEFAULT_MODEL, MODEL_HELP)
    adapter: str | None = option(None, "LoRA adapter folder from `reasonalign train` or `reasonalign align`")
    groups: str = option("runs/sample/held_out.jsonl", "groups.jsonl from `reasonalign sample` (held-out prompts)")
    feedback: str = option("binary", "binary = correct beats incorrect; rank = each response's rank (lower = better)",
                           ["binary", "rank"])
    batch_size: int = option(32, "sequences per forward pass (whole groups)")
    max_length: int = option(512, "truncate prompt + response to this many tokens")
    output: str = option("runs/eval-ranking", "folder for metrics.json and group_scores.jsonl")
    seed: int = option(0, "seed for the bootstrap")
    trust_remote_code: bool = trust_remote_code_option()
