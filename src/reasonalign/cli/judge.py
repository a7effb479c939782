"""`reasonalign judge calibrate`: the reference judge's similarity threshold, fitted on training reasons.

`ReferenceJudgeConfig.similarity_threshold` (0.37) is the output of this command on DFAR train;
run it on your own labelled data with reasons to get the threshold for that data, and pass the
JSON record to `ReferenceJudge(calibration=...)`.
"""

import time
from dataclasses import dataclass

from reasonalign.core import config as cfg
from reasonalign.core.config import option
from reasonalign.core.errors import UserError
from reasonalign.core.files import write_json
from reasonalign.core.verdict import LABELS


@dataclass
class CalibrateConfig:
    data: str = option("dfar:train", "labelled TRAINING data with human reasons: dfar:train, dfar:train-all, or a "
                                     "CSV/TSV/JSONL path with a reason column (never calibrate on test)")
    columns: str | None = option(None, "column map for your own file, e.g. statement=text,label=y,reason=why")
    label_map: str | None = option(None, "label map for your own file, e.g. 0=ethical,1=unethical")
    max_items: int = option(1000, "gold reasons (of 10+ words) sampled to build the pairs: one positive and one "
                                  "negative pair each, so 4 encodes per item (1000 DFAR rows: about 3 minutes on "
                                  "2 CPU cores)")
    seed: int = option(0, "seed of the item sample and of the negative pairing")
    false_alarm: float | None = option(None, "instead of max balanced accuracy, the threshold that flags at most "
                                             "this share of positive pairs, e.g. 0.05")
    output: str | None = option(None, "also write the calibration record to this JSON file")


def register(sub) -> None:
    judge = sub.add_parser("judge", help="calibrate the reference judge of reason alignment")
    actions = judge.add_subparsers(dest="judge_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "calibrate", help="fit the reference judge's similarity threshold on training reasons",
        description="Fit the reference judge's similarity threshold (the cosine of MiniLM embeddings below which "
                    "a reason is low_similarity) on the human reasons of training data: positives pair the two "
                    "halves of one gold reason, negatives pair halves of gold reasons of different statements "
                    "with the same label. Prints the record and writes it as JSON with --output.")
    cfg.add_arguments(p, CalibrateConfig)
    p.set_defaults(run=run_calibrate)


def run_calibrate(args) -> int:
    # heavy (sentence_transformers via the judges, torch): imported when the command runs, not for --help
    from reasonalign.eval.reasons import judge_items
    from reasonalign.judges import calibrate_threshold
    from reasonalign.tasks import task_for

    config = cfg.build(CalibrateConfig, args)
    if config.max_items < 2:
        raise UserError(f"--max-items {config.max_items}: need at least 2")
    if config.false_alarm is not None and not 0 < config.false_alarm < 1:
        raise UserError(f"--false-alarm {config.false_alarm}: expected a share between 0 and 1")
    task = task_for(config.data)
    if task.kind != "labels":
        raise UserError(f"--data {config.data}: {task.name} has no human reasons to calibrate on "
                        f"(use dfar:train or a file with a reason column)")
    dataset = task.load(config.data, columns=config.columns, label_map=config.label_map)
    examples = [ex for ex in dataset if ex.reason]
    if not examples:
        raise UserError(f"--data {config.data}: no row has a human reason; the reference judge's threshold is "
                        f"calibrated on gold reasons (use dfar:train or a file with a reason column)")
    # each human reason stands in as its own generation: the records of generations.jsonl, so the judges'
    # items are built by the same code as in `eval --task reasons`
    items = judge_items([{"row": ex.row, "statement": ex.statement, "gold": LABELS[ex.label],
                          "gold_reason": ex.reason, "reason": ex.reason, "verdict": LABELS[ex.label]}
                         for ex in examples])
    started = time.time()
    record = calibrate_threshold(items, max_items=config.max_items, seed=config.seed,
                                 false_alarm=config.false_alarm)
    seconds = time.time() - started
    # the spec as given: dfar:train-all loads under the file's name, dfar:train
    record = {**record, "data": config.data, "data_sha256": dataset.sha256, "rows_with_reason": len(examples)}
    print(f"reference judge calibration on {config.data} ({len(examples)} rows with reasons, "
          f"max {config.max_items} items, seed {config.seed}, {seconds:.0f} s)")
    for label, key in (("threshold", "threshold"), ("balanced accuracy", "balanced_accuracy"),
                       ("positive median", "positive_median"), ("negative median", "negative_median"),
                       ("positive pairs", "n_pos"), ("negative pairs", "n_neg"), ("seed", "seed")):
        print(f"  {label:<18} {record[key]}")
    print(f"  {'method':<18} {record['method'].split(';')[0]}")
    if config.output:
        print(f"-> {write_json(config.output, record)}")
    return 0
