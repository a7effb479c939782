"""`AlignConfig` and `SampleConfig`: every option of `reasonalign align` and `reasonalign sample`, its
default and its help, in one place.

The options every fine-tuning command shares come from `FinetuneConfig`; fields re-declared here
change a default (a small fresh LoRA on top of the SFT model, no checkpoints). Kept apart from
the trainer so that the command line can list options without importing torch (the losses, their
help and default β come from the torch-free `loss_table`).
"""

from dataclasses import dataclass

from reasonalign.core.config import (DEFAULT_MODEL, MODEL_HELP, option, precision_option, redefault,
                                     trust_remote_code_option)
from reasonalign.finetune.config import FinetuneConfig
from reasonalign.loss_table import LOSS_NAMES, LOSS_TABLE, loss_help


@dataclass
class AlignConfig(FinetuneConfig):
    model: str = option(DEFAULT_MODEL, MODEL_HELP)
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


@dataclass
class SampleConfig:
    model: str = option(DEFAULT_MODEL, MODEL_HELP)
    adapter: str | None = option(None, "LoRA adapter folder from `reasonalign train` (sample from the tuned model)")
    data: str = option("gsm8k:train", "gsm8k:train, aqua:dev, dfar:train, a GSM8K/AQuA JSONL or a DFAR-style "
                                      "CSV/TSV/JSONL path")
    rows: int | None = option(None, "prompts to sample for: the first N of one seeded order (labels: every prefix "
                                    "keeps the label shares); None = all")
    skip_rows: int = option(0, "leave out the rows `--rows M` would take with the same seed (held-out groups): "
                               "--rows M for held-out, --rows N --skip-rows M for training")
    k: int = option(4, "responses sampled per prompt")
    temperature: float = option(0.8, "sampling temperature (0 = greedy, only with --k 1)")
    top_p: float = option(0.95, "nucleus sampling mass")
    repetition_penalty: float = option(1.0, "penalise tokens already in the prompt or the response: 1.0 = off, above 1 "
                                            "discourages loops (e.g. 1.2)")
    no_repeat_ngram_size: int = option(0, "never repeat an n-gram of this many tokens in a response: 0 = off")
    max_new_tokens: int = option(256, "tokens per response (stops earlier at EOS; cot also at '\\nQuestion:'); "
                                      "DFAR verdict + reason needs about 64")
    batch_size: int = option(8, "prompts per generate call (each gives k sequences); changes which samples "
                                "a seed draws")
    seed: int = option(0, "seed for row selection and sampling: the same seed gives the same groups")
    kv_cache: str = option("auto", "auto (static on a GPU, dynamic on a CPU), dynamic, or static: a fixed-size KV "
                                   "cache, for which transformers compiles the decoding step on a GPU (the first "
                                   "batches compile; prompts are padded to a multiple of 64 tokens so their shapes "
                                   "repeat)", ["auto", "dynamic", "static"])
    scorer: str = option("none", "rank within a group: none = 0 correct / 1 incorrect; length = correct "
                                 "responses by length, shortest first, incorrect after them; steps (arith data) = "
                                 "correct first, then by how many gold intermediate results a response reaches; "
                                 "reason (DFAR) = label-correct responses by their reason's similarity to the "
                                 "human reason, the rest after them", ["none", "length", "steps", "reason"])
    template: str | None = option(None, "DFAR prompt template (default: the adapter's, else dfar-llama)")
    method: str | None = option(None, "DFAR prompt variant l or lr (default: the adapter's, else lr)", ["l", "lr"])
    output: str = option("runs/sample/groups.jsonl", "groups file; sample_summary.json is written beside it")
    overwrite: bool = option(False, "replace an existing groups file")
    precision: str = precision_option()
    trust_remote_code: bool = trust_remote_code_option()
