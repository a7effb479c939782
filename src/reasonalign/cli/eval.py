"""`reasonalign eval`: accuracy with n, 95% CI and per-class scores."""

from reasonalign import config as cfg
from reasonalign.eval.run import EvalConfig


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure classification accuracy",
                       description="Score a model (optionally with a LoRA adapter) and write metrics.json.")
    cfg.add_arguments(p, EvalConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    from reasonalign.eval.run import evaluate

    config = cfg.build(EvalConfig, args)
    m = evaluate(config)
    lo, hi = m["ci95"]
    print(f"accuracy {m['accuracy']:.1%} (95% CI {lo:.1%}-{hi:.1%}, n={m['n']}, seed {m['seed']}) "
          f"in {m['seconds']} s -> {config.output}/metrics.json")
    return 0
