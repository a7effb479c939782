"""`reasonalign demo`: untuned vs L vs L+R on the clean DFAR test split, in minutes on a CPU.

Recipe: evaluate the untuned model -> train L and L+R on one fixed class-balanced DFAR
subset -> evaluate both -> print and save the table. Every threshold is fitted on held-out
*training* rows; the test split is only ever scored once per model.
"""

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from reasonalign import config as cfg
from reasonalign.config import option, to_dict


@dataclass
class DemoConfig:
    model: str = option("smollm2-135m-instruct", "base model: short name, hub id or folder")
    train_data: str = option("dfar:train", "training data for L and L+R")
    test_data: str = option("dfar:test-clean", "evaluation data (dfar:test-clean = test minus rows leaked from train)")
    train_rows: int = option(300, "class-balanced training subset (METHODS.md §3 budget: 300 rows)")
    test_rows: int | None = option(None, "evaluate a fixed stratified part of the test data (default: all)")
    epochs: float = option(1.0, "passes over the training subset (chosen on a validation split of train)")
    lr: float = option(1e-3, "learning rate (chosen on a validation split of train)")
    calibration_rows: int = option(200, "held-out training rows for the label-prior threshold")
    template: str = option("dfar-llama", "prompt template")
    output: str = option("runs/demo", "folder for the adapters, metrics and the results table")
    seed: int = option(0, "seed for sampling, training and the bootstrap")


def register(sub) -> None:
    p = sub.add_parser("demo", help="untuned vs L vs L+R on the clean DFAR test split (what `make demo` runs)",
                       description=__doc__)
    cfg.add_arguments(p, DemoConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    run_demo(cfg.build(DemoConfig, args))
    return 0


def run_demo(config: DemoConfig) -> list[dict]:
    from rich.console import Console

    from reasonalign.eval.run import EvalConfig, evaluate
    from reasonalign.train.sft import TrainConfig, train

    console, out = Console(), Path(config.output)
    evaluation = EvalConfig(model=config.model, data=config.test_data, rows=config.test_rows, template=config.template,
                            seed=config.seed)
    results = []

    console.rule("[bold]1/3 untuned model")
    m = evaluate(replace(evaluation, method="lr", calibrate_on=config.train_data,
                         calibration_rows=config.calibration_rows, output=str(out / "untuned" / "eval")))
    results.append(_row("untuned", m, None))

    for step, method in ((2, "l"), (3, "lr")):
        name = {"l": "L (labels)", "lr": "L+R (labels + reasons)"}[method]
        console.rule(f"[bold]{step}/3 {name}: train on {config.train_rows} rows, then evaluate")
        adapter = out / method
        summary = train(TrainConfig(method=method, model=config.model, data=config.train_data,
                                    template=config.template, output=str(adapter), train_rows=config.train_rows,
                                    calibration_rows=config.calibration_rows, epochs=config.epochs, lr=config.lr,
                                    seed=config.seed, save_steps=0, overwrite=True))
        m = evaluate(replace(evaluation, adapter=str(adapter), output=str(adapter / "eval")))
        results.append(_row(name, m, summary))

    table = _table(results, config)
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"config": to_dict(config), "results": results}, indent=2))
    (out / "results.md").write_text(_markdown(results, config))
    console.print(f"saved {out / 'results.md'} and {out / 'results.json'}")
    return results


def _row(name: str, metrics: dict, summary: dict | None) -> dict:
    return {"model": name, "accuracy": metrics["accuracy"], "ci95": metrics["ci95"], "n": metrics["n"],
            "majority_baseline": metrics["majority_baseline"], "threshold_source": metrics["threshold_source"],
            "accuracy_threshold_0": metrics["accuracy_threshold_0"],
            "train_seconds": summary["seconds"] if summary else 0.0, "eval_seconds": metrics["seconds"],
            "train_tokens": summary["real_tokens"] if summary else 0}


def _cells(r: dict) -> list[str]:
    """One results row as text: the same cells in the terminal table and in results.md."""
    lo, hi = r["ci95"]
    return [r["model"], f"{r['accuracy']:.1%}", f"{lo:.1%}–{hi:.1%}", str(r["n"]),
            f"{r['train_seconds']:.0f}", f"{r['eval_seconds']:.0f}"]


def _table(results, config):
    from rich.table import Table

    table = Table(title=f"{config.model} on {config.test_data} (seed {config.seed})")
    for col in ("model", "accuracy", "95% CI", "n", "train s", "eval s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        table.add_row(*_cells(r))
    table.caption = f"majority class: {results[0]['majority_baseline']:.1%}; CI: bootstrap, 2000 resamples"
    return table


def _markdown(results, config) -> str:
    lines = [f"# reasonalign demo: {config.model} on {config.test_data} (seed {config.seed})", "",
             "| model | accuracy | 95% CI | n | train s | eval s |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in results]
    lines += ["", f"Majority class: {results[0]['majority_baseline']:.1%}. Thresholds fitted on "
              f"{config.calibration_rows} held-out training rows. Written {time.strftime('%Y-%m-%d %H:%M')}."]
    return "\n".join(lines) + "\n"
