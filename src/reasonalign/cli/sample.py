"""`reasonalign sample`: k graded responses per prompt -> groups.jsonl for alignment fine-tuning."""

from reasonalign.core import config as cfg
from reasonalign.align.config import SampleConfig


def register(sub) -> None:
    p = sub.add_parser("sample", help="sample k responses per prompt and grade them (groups for alignment)",
                       description="Sample k responses per prompt (GSM8K, AQuA or DFAR), mark each correct or "
                                   "incorrect with the task's checker, and write groups.jsonl + sample_summary.json.")
    cfg.add_arguments(p, SampleConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    from reasonalign.align.sample import sample

    config = cfg.build(SampleConfig, args)
    from pathlib import Path

    from reasonalign.cli import locked

    with locked(Path(config.output).parent, "sample"):
        s = sample(config)
    share = "n/a" if s["positive_share"] is None else f"{s['positive_share']:.1%}"
    print(f"{s['n_groups']} groups, {s['n_responses']} responses ({s['duplicates_removed']} duplicates removed), "
          f"{share} correct; {s['groups_mixed']} mixed, {s['groups_all_positive']} all correct, "
          f"{s['groups_all_negative']} all wrong, in {s['seconds']} s -> {config.output}")
    return 0
