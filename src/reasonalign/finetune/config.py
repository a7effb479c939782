"""`FinetuneConfig`: the options every fine-tuning command has, with the L/L+R authors' LoRA recipe as defaults.

`TrainConfig` and `AlignConfig` extend it (and re-declare a field where their default differs).
Kept free of torch so the command line lists options without importing it.
"""

from dataclasses import dataclass

from reasonalign.core.config import DEFAULT_MODEL, option, precision_option, trust_remote_code_option


@dataclass
class FinetuneConfig:
    model: str = option(DEFAULT_MODEL, "short name (smollm2-135m-instruct, gemma3-270m), hub id or folder")
    output: str = option("runs/train", "folder for the adapter, run.json, the summary, checkpoints and logs")
    max_length: int = option(512, "truncate examples to this many tokens (the answer keeps its label)")
    epochs: float = option(1.0, "passes over the training data")
    max_steps: int = option(-1, "stop after this many optimizer steps (-1 = use epochs)")
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
    precision: str = precision_option()
    qlora: bool = option(False, "load the base model in 4-bit NF4 (needs a CUDA GPU and bitsandbytes)")
    seed: int = option(0, "seed for data sampling, LoRA init and shuffling")
    logging_steps: int = option(5, "log loss and tokens/s every N steps (progress bar and --report-to)")
    report_to: str = option("tensorboard", "where the Trainer logs: tensorboard (OUTPUT/runs), mlflow "
                                           "($MLFLOW_TRACKING_URI: a server, or file:./mlruns with "
                                           "MLFLOW_ALLOW_FILE_STORE=true; pip install mlflow-skinny), "
                                           "wandb (WANDB_MODE=offline works offline; pip install wandb) or none",
                            ["tensorboard", "mlflow", "wandb", "none"])
    save_steps: int = option(100, "checkpoint every N steps (0 = only at the end)")
    resume: bool = option(False, "continue from the last checkpoint in --output")
    overwrite: bool = option(False, "replace an existing finished run in --output")
    trust_remote_code: bool = trust_remote_code_option()
