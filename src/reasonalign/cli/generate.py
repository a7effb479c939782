"""`reasonalign generate`: verdict + reason per statement -> generations.jsonl."""

from reasonalign.core import config as cfg
from reasonalign.eval.config import GenerateConfig


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate verdicts and reasons (batched, KV cache)",
                       description="Generate a verdict and a reason for every statement; write generations.jsonl.")
    cfg.add_arguments(p, GenerateConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    from reasonalign.eval.reasons import generate

    config = cfg.build(GenerateConfig, args)
    from reasonalign.cli import locked

    with locked(config.output, "generate"):
        records = generate(config)
    unparseable = sum(r["verdict"] is None for r in records)
    print(f"{len(records)} generations ({unparseable} without a verdict) -> {config.output}/generations.jsonl")
    return 0
