"""`reasonalign demo`: untuned vs L vs L+R on DFAR test (full and clean), in minutes on a CPU.

Recipe: evaluate the untuned model -> train L and L+R on one fixed class-balanced DFAR
subset -> evaluate both -> print and save the table. Accuracy is scored on the whole test
set and reported on it and on its clean part (rows not repeated from train) side by side;
the misalignment rate (MAR) judges reasons generated for a fixed stratified part of the test
set (`mar_rows`) with the offline reference judge. Every model is asked for a reason with
the same L+R prompt. Every threshold is fitted on held-out *training* rows.
"""

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from reasonalign.core import config as cfg
from reasonalign.core.config import option, to_dict


@dataclass
class DemoConfig:
    model: str = option("smollm2-135m-instruct", "base model: short name, hub id or folder")
    train_data: str = option("dfar:train", "training data for L and L+R")
    test_data: str = option("dfar:test", "evaluation data (dfar:test is also reported on its clean part: test minus "
                                         "rows repeated from train)")
    train_rows: int = option(300, "class-balanced training subset (METHODS.md §3 budget: 300 rows)")
    test_rows: int | None = option(None, "evaluate a fixed stratified part of the test data (default: all)")
    epochs: float = option(1.0, "passes over the training subset (chosen on a validation split of train)")
    lr: float = option(1e-3, "learning rate (chosen on a validation split of train)")
    calibration_rows: int = option(200, "held-out training rows for the label-prior threshold")
    mar_rows: int = option(96, "test rows (stratified) whose generated reasons the reference judge rates (0 = no MAR)")
    mar_max_new_tokens: int = option(48, "tokens generated per reason for MAR")
    template: str = option("dfar-llama", "prompt template")
    output: str = option("runs/demo", "folder for the adapters, metrics and the results table")
    seed: int = option(0, "seed for sampling, training and the bootstrap")


def register(sub) -> None:
    p = sub.add_parser("demo", help="untuned vs L vs L+R: accuracy and MAR on DFAR test, full and clean (what `make demo` runs)",
                       description=__doc__)
    cfg.add_arguments(p, DemoConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    run_demo(cfg.build(DemoConfig, args))
    return 0


def run_demo(config: DemoConfig) -> list[dict]:
    from rich.console import Console

    from reasonalign.eval.reasons import ReasonsConfig, evaluate_reasons
    from reasonalign.eval.labels import EvalConfig, evaluate
    from reasonalign.train.sft import TrainConfig, train

    console, out = Console(), Path(config.output)
    evaluation = EvalConfig(model=config.model, data=config.test_data, rows=config.test_rows, template=config.template,
                            seed=config.seed)
    reasons = ReasonsConfig(model=config.model, data=config.test_data, rows=config.mar_rows, template=config.template,
                            method="lr", max_new_tokens=config.mar_max_new_tokens, seed=config.seed)
    results = []

    def mar(folder: Path, adapter: str | None) -> dict | None:
        if not config.mar_rows:
            return None
        return evaluate_reasons(replace(reasons, adapter=adapter, output=str(folder / "eval-reasons")))

    console.rule("[bold]1/3 untuned model")
    m = evaluate(replace(evaluation, method="lr", calibrate_on=config.train_data,
                         calibration_rows=config.calibration_rows, output=str(out / "untuned" / "eval")))
    results.append(_row("untuned", m, None, mar(out / "untuned", None)))

    for step, method in ((2, "l"), (3, "lr")):
        name = {"l": "L (labels)", "lr": "L+R (labels + reasons)"}[method]
        console.rule(f"[bold]{step}/3 {name}: train on {config.train_rows} rows, then evaluate")
        adapter = out / method
        summary = train(TrainConfig(method=method, model=config.model, data=config.train_data,
                                    template=config.template, output=str(adapter), train_rows=config.train_rows,
                                    calibration_rows=config.calibration_rows, epochs=config.epochs, lr=config.lr,
                                    seed=config.seed, save_steps=0, overwrite=True))
        m = evaluate(replace(evaluation, adapter=str(adapter), output=str(adapter / "eval")))
        results.append(_row(name, m, summary, mar(adapter, str(adapter))))

    table = _table(results, config)
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"config": to_dict(config), "results": results}, indent=2))
    (out / "results.md").write_text(_markdown(results, config))
    console.print(f"saved {out / 'results.md'} and {out / 'results.json'}")
    return results


def _row(name: str, metrics: dict, summary: dict | None, reasons: dict | None) -> dict:
    splits = metrics.get("splits") or {metrics["data"]: metrics}
    return {"model": name, "accuracy": {k: {f: v[f] for f in ("accuracy", "ci95", "n")} for k, v in splits.items()},
            "majority_baseline": {k: v["majority_baseline"] for k, v in splits.items()},
            "threshold_source": metrics["threshold_source"], "accuracy_threshold_0": metrics["accuracy_threshold_0"],
            "mar": None if reasons is None else {
                k: {f: v[f] for f in ("mar", "ci95", "n")} for k, v in (reasons["splits"] or
                                                                         {reasons["data"]: reasons}).items()},
            "mar_criteria": None if reasons is None else reasons["criteria_rates"],
            "judge": None if reasons is None else f"{reasons['judge']} {reasons['judge_version']}",
            "train_seconds": summary["seconds"] if summary else 0.0, "eval_seconds": metrics["seconds"],
            "mar_seconds": reasons["seconds"] if reasons else 0.0,
            "train_tokens": summary["real_tokens"] if summary else 0}


def _columns(results) -> list[str]:
    acc, mar = results[0]["accuracy"], results[0]["mar"] or {}
    return (["model"] + [f"acc {k} (n={v['n']})" for k, v in acc.items()]
            + [f"MAR {k} (n={v['n']})" for k, v in mar.items()] + ["train s", "eval s"])


def _cells(r: dict) -> list[str]:
    """One results row as text: the same cells in the terminal table and in results.md."""
    def cell(value, ci):
        return f"{value:.1%} [{ci[0]:.1%}–{ci[1]:.1%}]"

    return ([r["model"]] + [cell(v["accuracy"], v["ci95"]) for v in r["accuracy"].values()]
            + [cell(v["mar"], v["ci95"]) for v in (r["mar"] or {}).values()]
            + [f"{r['train_seconds']:.0f}", f"{r['eval_seconds'] + r['mar_seconds']:.0f}"])


def _caption(results, config) -> str:
    majority = ", ".join(f"{k} {v:.1%}" for k, v in results[0]["majority_baseline"].items())
    text = (f"Majority class: {majority}. Accuracy CI: bootstrap (2000 resamples); thresholds fitted on "
            f"{config.calibration_rows} held-out training rows.")
    if results[0]["mar"]:
        text += (f" MAR: share of {config.mar_rows} generated reasons judged misaligned by the reference judge "
                 f"({results[0]['judge']}; Wilson CI); lower is better.")
    return text


def _table(results, config):
    from rich.table import Table

    table = Table(title=f"{config.model} on {config.test_data} (seed {config.seed})")
    for col in _columns(results):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        table.add_row(*_cells(r))
    table.caption = _caption(results, config)
    return table


def _markdown(results, config) -> str:
    columns = _columns(results)
    lines = [f"# reasonalign demo: {config.model} on {config.test_data} (seed {config.seed})", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in results]
    lines += ["", _caption(results, config) + f" Written {time.strftime('%Y-%m-%d %H:%M')}."]
    return "\n".join(lines) + "\n"
