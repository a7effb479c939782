"""`reasonalign baselines`: SVM, RF, GB, LogReg (TF-IDF) and a fine-tuned encoder on the same rows as eval."""

import re

from reasonalign.core import config as cfg
from reasonalign.baselines.config import BaselinesConfig


def register(sub) -> None:
    p = sub.add_parser("baselines",
                       help="the paper's non-generative baselines: SVM, RF, GB, LogReg, fine-tuned encoder",
                       description="Fit TF-IDF + LinearSVC / RandomForest / GradientBoosting / LogisticRegression "
                                   "(hyper-parameters by stratified cross-validation on the training rows) and a "
                                   "fine-tuned encoder classifier, and score them like `eval --task labels`: "
                                   "one folder per model with eval/metrics.json and predictions.jsonl, plus "
                                   "baselines.json.")
    cfg.add_arguments(p, BaselinesConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    # heavy (scikit-learn, torch, transformers, rich): imported when the command runs, not for --help
    from rich.console import Console
    from rich.table import Table

    from reasonalign.baselines.run import run_baselines

    from reasonalign.cli import locked

    config = cfg.build(BaselinesConfig, args)
    with locked(config.output, "baselines"):
        report = run_baselines(config)
    models = report["models"]
    splits = {k: v["n"] for m in models.values() for k, v in m["splits"].items()}
    table = Table(title=f"baselines on {report['data']}: accuracy ({report['train_rows']} training rows, "
                        f"seed {report['seed']})")
    # ethos:/long/path/Ethos_Dataset_Binary.csv -> ethos:Ethos_Dataset_Binary.csv, so the table fits 80 columns
    for column in ("model", "fit s", "CV acc", *(f"{re.sub(r'[^:]*/', '', k)}\nn={n}" for k, n in splits.items())):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, m in models.items():
        cells = [f"{m['splits'][k]['accuracy']:.1%}" if k in m["splits"] else "" for k in splits]
        table.add_row(name, f"{m['fit_seconds']}", f"{m['cv_accuracy']:.1%}", *cells)
    Console().print(table)
    print(f"-> {config.output}/baselines.json")
    return 0
