"""`reasonalign export`: a LoRA adapter merged into a standalone Hugging Face model folder with a model card."""

from reasonalign.core import config as cfg
from reasonalign.export.config import ExportConfig


def register(sub) -> None:
    p = sub.add_parser("export", help="merge an adapter into a standalone model folder with a model card",
                       description="Merge a LoRA adapter (and the SFT adapter an aligned one sits on) into its base "
                                   "model and write a standalone Hugging Face folder: safetensors, tokenizer, "
                                   "generation config, README.md model card (Hub format), run.json and "
                                   "calibration.json. Verified: its label log-likelihoods equal base + adapter.")
    cfg.add_arguments(p, ExportConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    from reasonalign.export.merge import export

    info = export(cfg.build(ExportConfig, args))
    print(f"exported {' + '.join(info['merged_adapters'])} merged into {info['base_model']} ({info['dtype']}; "
          f"label log-likelihoods within {info['probe_max_abs_logprob_diff']:.1e} of base + adapter) "
          f"-> {info['output']}")
    return 0
