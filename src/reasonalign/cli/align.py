"""`reasonalign align`: alignment fine-tuning on sampled groups (AFT and the comparison losses)."""

from reasonalign.core import config as cfg
from reasonalign.align.config import AlignConfig


def register(sub) -> None:
    p = sub.add_parser("align", help="align the SFT model on sampled responses (AFT, DPO, RRHF, PRO)",
                       description="Train a LoRA on top of the SFT model so that it scores better responses "
                                   "(groups.jsonl from `reasonalign sample`) above worse ones.")
    cfg.add_arguments(p, AlignConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    from reasonalign.align.trainer import align

    from reasonalign.cli import locked

    config = cfg.build(AlignConfig, args)
    with locked(config.output, "align"):
        s = align(config)
    before, after = s["ordering_before"]["pair_accuracy"], s["ordering_after"]["pair_accuracy"]
    print(f"done: pairs ordered {before:.1%} -> {after:.1%} on {s['groups']['used']} training groups, "
          f"loss {s['first_loss']:.4f} -> {s['final_loss']:.4f}, {s['steps']} steps in {s['seconds']} s "
          f"-> {s['config']['output']}")
    return 0
