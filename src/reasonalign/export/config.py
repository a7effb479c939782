"""`ExportConfig`: the options of `reasonalign export`. Kept free of torch so `--help` stays fast."""

from dataclasses import dataclass

from reasonalign.core.config import option


@dataclass
class ExportConfig:
    adapter: str | None = option(None, "LoRA adapter folder from `reasonalign train` or `reasonalign align` "
                                       "(an aligned one is merged with the SFT adapter it sits on)")
    output: str | None = option(None, "new folder for the merged model (must not exist unless --overwrite)")
    model: str | None = option(None, "base model the adapter applies to (default: the one its run.json names)")
    dtype: str = option("fp32", "dtype of the saved weights: fp32 (scores equal base + adapter within fp32 "
                                "tolerance), bf16 or fp16 (half the size; scores move by rounding)",
                        ["fp32", "bf16", "fp16"])
    license: str | None = option(None, "licence id for the model card (default: the base model's, else other)")
    overwrite: bool = option(False, "replace an existing --output folder")
