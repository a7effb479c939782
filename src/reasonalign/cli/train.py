"""`reasonalign train`: L or L+R LoRA fine-tuning."""

from reasonalign.core import config as cfg
from reasonalign.train.config import TrainConfig


def register(sub) -> None:
    p = sub.add_parser("train", help="fine-tune with labels (l) or labels + reasons (lr)",
                       description="Fine-tune a causal LM with LoRA on labels (l) or labels + reasons (lr).")
    cfg.add_arguments(p, TrainConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    from reasonalign.train.sft import train

    from reasonalign.cli import locked

    config = cfg.build(TrainConfig, args)
    with locked(config.output, "train"):
        summary = train(config)
    print(f"done: {summary['steps']} steps, {summary['real_tokens']} tokens in {summary['seconds']} s "
          f"({summary['tokens_per_s']} tokens/s), final loss {summary['final_loss']:.4f} -> {summary['config']['output']}")
    return 0

