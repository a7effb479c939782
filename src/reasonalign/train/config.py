"""`TrainConfig`: every option of `reasonalign train`, its default and its help, in one place.

The options every fine-tuning command shares (LoRA, schedule, precision, checkpoints) come from
`FinetuneConfig`; these are the SFT-specific ones. Kept apart from the trainer so that the
command line can list options without importing torch.
"""

from dataclasses import dataclass

from reasonalign.core.config import option
from reasonalign.finetune.config import FinetuneConfig


@dataclass
class TrainConfig(FinetuneConfig):
    method: str = option("lr", "l = labels only, lr = labels + reasons, cot = chain-of-thought on GSM8K/AQuA",
                         ["l", "lr", "cot"])
    data: str = option("dfar:train", "dfar:train (DFAR train minus the 500 dfar:validation rows), a CSV/TSV/JSONL/parquet path, a save_to_disk "
                                     "folder[@SPLIT], hf:NAME[:CONFIG][@SPLIT] (a Hub dataset; offline: from the cache), or ethos:PATH; "
                                     "method cot: gsm8k:train, aqua:dev or a GSM8K/AQuA JSONL path")
    columns: str | None = option(None, "column map for your own file, e.g. statement=text,label=y,reason=why")
    label_map: str | None = option(None, "label map for your own file, e.g. 0=ethical,1=unethical")
    template: str = option("dfar-llama", "dfar-llama, dfar-mistral, chat, or a template .yaml")
    output: str = option("runs/train", "folder for the adapter, run.json, train_summary.json, checkpoints and logs")
    train_rows: int | None = option(None, "train on a class-balanced subset of this many rows (method cot: the "
                                          "first N of a seeded shuffle) (default: all)")
    calibration_rows: int = option(200, "held-out training rows used to fit the label-prior threshold "
                                        "(0 = off; method cot has no labels and never calibrates)")
    loss_on: str = option("completion", "completion = loss on the answer only; full = whole text (notebooks)",
                          ["completion", "full"])
    label_weight: float | None = option(None, "method lr: loss = a * (per-sequence mean over the label tokens) + (1 - a) * "
                                              "(mean over the reason tokens), distilling step-by-step's two-task form; "
                                              "unset = mean over all answer tokens, where one label word weighs ~1/80 "
                                              "of the loss")
    max_tokens: int | None = option(None, "stop once this many real (non-padding) tokens were trained on")
    batch_size: int = option(8, "sequences per optimizer step (length-grouped)")
    group_by_length: bool = option(True, "batch examples of similar length together (less padding)")
    batch_tokens: int | None = option(None, "token-budget batches: each optimizer step takes as many examples as fit "
                                            "in N tokens, padding included (widths rounded up to a multiple of 64), "
                                            "instead of --batch-size sequences; a GPU's setting (e.g. 4096)")
    pack: bool = option(False, "with --batch-tokens: the examples of a batch side by side in one row, attention "
                               "kept inside each example (no padding between them)")
