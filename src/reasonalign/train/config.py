"""`TrainConfig`: every option of `reasonalign train`, its default and its help, in one place.

Kept apart from the trainer so that the command line can list options without importing torch.
"""

from dataclasses import dataclass

from reasonalign.config import option


@dataclass
class TrainConfig:
    method: str = option("lr", "l = labels only, lr = labels + reasons, cot = chain-of-thought on GSM8K/AQuA",
                         ["l", "lr", "cot"])
    model: str = option("smollm2-135m-instruct", "short name (smollm2-135m-instruct, gemma3-270m), hub id or folder")
    data: str = option("dfar:train", "dfar:train, a CSV/TSV/JSONL path, or ethos:PATH; "
                                     "method cot: gsm8k:train, aqua:dev or a GSM8K/AQuA JSONL path")
    columns: str | None = option(None, "column map for your own file, e.g. statement=text,label=y,reason=why")
    label_map: str | None = option(None, "label map for your own file, e.g. 0=ethical,1=unethical")
    template: str = option("dfar-llama", "dfar-llama, dfar-mistral, chat, or a template .yaml")
    output: str = option("runs/train", "folder for the adapter, checkpoints, logs and train_summary.json")
    train_rows: int | None = option(None, "train on a class-balanced subset of this many rows (method cot: the "
                                          "first N of a seeded shuffle) (default: all)")
    calibration_rows: int = option(200, "held-out training rows used to fit the label-prior threshold "
                                        "(0 = off; method cot has no labels and never calibrates)")
    loss_on: str = option("completion", "completion = loss on the answer only; full = whole text (notebooks)",
                          ["completion", "full"])
    max_length: int = option(512, "truncate examples to this many tokens (the answer keeps its label)")
    epochs: float = option(1.0, "passes over the training rows")
    max_steps: int = option(-1, "stop after this many optimizer steps (-1 = use epochs)")
    max_tokens: int | None = option(None, "stop once this many real (non-padding) tokens were trained on")
    batch_size: int = option(8, "sequences per optimizer step (length-grouped)")
    grad_accum: int = option(1, "gradient accumulation steps")
    lr: float = option(2e-4, "learning rate (authors: 2e-4)")
    lr_scheduler: str = option("constant", "constant (authors), cosine or linear", ["constant", "cosine", "linear"])
    warmup_ratio: float = option(0.03, "share of steps for learning-rate warmup")
    weight_decay: float = option(0.001, "AdamW weight decay (authors: 0.001)")
    max_grad_norm: float = option(0.3, "gradient clipping (authors: 0.3)")
    lora_r: int = option(64, "LoRA rank (authors: 64)")
    lora_alpha: int = option(16, "LoRA alpha (authors: 16)")
    lora_dropout: float = option(0.1, "LoRA dropout (authors: 0.1)")
    lora_targets: str = option("auto", "comma-separated module names, all-linear, or auto (peft's default: q,v)")
    lora_layers: int | None = option(None, "LoRA in the top N transformer layers only: the backward pass stops "
                                           "below them, so steps are faster (default: all layers)")
    group_by_length: bool = option(True, "batch examples of similar length together (less padding)")
    precision: str = option("auto", "auto = bf16 where the hardware runs it fast, else fp32", ["auto", "fp32", "bf16", "fp16"])
    qlora: bool = option(False, "load the base model in 4-bit NF4 (needs a CUDA GPU and bitsandbytes)")
    seed: int = option(0, "seed for data sampling, LoRA init and shuffling")
    logging_steps: int = option(5, "log loss and tokens/s every N steps (progress bar and TensorBoard)")
    save_steps: int = option(100, "checkpoint every N steps (0 = only at the end)")
    resume: bool = option(False, "continue from the last checkpoint in --output")
    overwrite: bool = option(False, "replace an existing finished run in --output")
    trust_remote_code: bool = option(False, "allow model code from the hub (off unless you ask)")
