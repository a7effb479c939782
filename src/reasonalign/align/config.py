"""`AlignConfig`: every option of `reasonalign align`, its default and its help, in one place.

The options every fine-tuning command shares come from `FinetuneConfig`; fields re-declared here
change a default (a small fresh LoRA on top of the SFT model, no checkpoints). Kept apart from
the trainer so that the command line can list options without importing torch (the losses, their
help and default β come from the torch-free `loss_table`).
"""

from dataclasses import dataclass

from reasonalign.core.config import option, redefault
from reasonalign.finetune.config import FinetuneConfig
from reasonalign.loss_table import LOSS_NAMES, LOSS_TABLE, loss_help


@dataclass
class AlignConfig(FinetuneConfig):
    model: str = option("smollm2-135m-instruct", "short name, hub id or folder of the base model")
    output: str = option("runs/align", "folder for the aligned adapter, run.json, align_summary.json and logs")
    lr: float = redefault(FinetuneConfig, "lr", 1e-4)
    warmup_ratio: float = redefault(FinetuneConfig, "warmup_ratio", 0.0)
    weight_decay: float = redefault(FinetuneConfig, "weight_decay", 0.0)
    max_grad_norm: float = redefault(FinetuneConfig, "max_grad_norm", 1.0)
    lora_r: int = redefault(FinetuneConfig, "lora_r", 16)  # a small fresh LoRA on top of the merged SFT model
    lora_alpha: int = redefault(FinetuneConfig, "lora_alpha", 32)
    lora_dropout: float = redefault(FinetuneConfig, "lora_dropout", 0.05)
    logging_steps: int = redefault(FinetuneConfig, "logging_steps", 1)
    save_steps: int = redefault(FinetuneConfig, "save_steps", 0)
    adapter: str | None = option(None, "SFT adapter folder from `reasonalign train`: merged into the model, so "
                                       "the SFT model is the starting point and the DPO reference")
    groups: str = option("runs/sample/groups.jsonl", "groups.jsonl from `reasonalign sample` (k responses per prompt)")
    loss: str = option("aft-bc", loss_help(), LOSS_NAMES)
    feedback: str = option("binary", "binary = correct responses beat incorrect ones; rank = use each response's "
                                     "rank (lower = better)", ["binary", "rank"])
    constraint: str = option("none", "add the boundary constraint to aft, aft-dc, dpo, dpo-pl, rrhf or pro",
                             ["none", "boundary"])
    beta: float | None = option(None, "the loss's β: boundary margin of aft-bc/aft-rank (default 0.5, nats per "
                                      "token) or temperature of dpo/dpo-pl (default 0.1)")
    constraint_beta: float = option(0.5, "margin of --constraint boundary (nats per token)")
    detach_boundary: bool = option(True, "stop the gradient through the boundary B = min positive score - β")
    sft_weight: float = option(1.0, "weight of the likelihood term on correct responses (mean length-normalised "
                                    "NLL), as AFT, RRHF and PRO add it; 0 = alignment loss only (plain DPO)")
    groups_per_step: int = option(4, "groups (prompts) per optimizer step; all their responses share one forward")
    max_responses: int | None = option(8, "use at most this many responses per group, better and worse kept "
                                          "in balance (0 = all)")

    def resolved_beta(self) -> float | None:
        """--beta, else the loss's default β (None for a loss without one)."""
        spec = LOSS_TABLE.get(self.loss)
        return self.beta if self.beta is not None else (spec.default_beta if spec else None)
