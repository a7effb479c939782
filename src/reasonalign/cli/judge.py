"""`reasonalign judge calibrate`: the reference judge's similarity threshold, fitted on training reasons.

`ReferenceJudgeConfig.similarity_threshold` (0.37) is the output of this command on DFAR train;
run it on your own labelled data with reasons to get the threshold for that data, and pass the
JSON record to `ReferenceJudge(calibration=...)`.
"""

import time
from pathlib import Path

from reasonalign.core import config as cfg
from reasonalign.core.errors import UserError, at
from reasonalign.core.files import read_jsonl, write_json, write_jsonl
from reasonalign.core.verdict import LABELS
from reasonalign.judging import JUDGESET, BuildSetConfig, CalibrateConfig, ValidateConfig


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
    register_judgeset(actions)


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


# ---------------------------------------------------------------- the rated judge-validation set

def register_judgeset(actions) -> None:
    p = actions.add_parser("build-set", help="build the blinded judge-validation set (model reasons + constructed "
                                             "hard cases) for careful readers to rate",
                           description=BuildSetConfig.__doc__)
    cfg.add_arguments(p, BuildSetConfig)
    p.set_defaults(run=run_build_set)
    p = actions.add_parser("validate", help="a judge's agreement with the readers of a rated judge-validation set "
                                            "(kappa, raw agreement, per-criterion confusion)",
                           description=ValidateConfig.__doc__)
    cfg.add_arguments(p, ValidateConfig)
    p.set_defaults(run=run_validate)


def run_build_set(args) -> int:
    import csv

    from reasonalign.eval.reasons import read_generations
    from reasonalign.judges import judgeset
    from reasonalign.tasks import task_for

    config = cfg.build(BuildSetConfig, args)
    if "test" in config.data:
        raise UserError(f"--data {config.data}: the judge-validation set is built from training/validation rows "
                        f"only, never test")
    if not config.generations:
        raise UserError("--generations NAME=generations.jsonl[,...] is required")
    sources = {}
    for part in [p.strip() for p in config.generations.split(",") if p.strip()]:
        name, sep, path = part.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--generations {part!r}: expected NAME=generations.jsonl")
        sources[name] = read_generations(path)
    task = task_for(config.data)
    examples = task.rows(list(task.load(config.data)), config.skip_rows + config.constructed_rows, config.seed)
    constructed = examples[config.skip_rows:]
    used = {r["row"] for records in sources.values() for r in records}
    if used & {ex.row for ex in constructed}:
        raise UserError("--skip-rows: the constructed items' rows overlap the generations' rows; raise --skip-rows")
    items = [it for name, records in sources.items() for it in judgeset.from_generations(records, name)]
    items = judgeset.blind(items + judgeset.construct(constructed, seed=config.seed), config.seed)
    out = Path(config.output)
    write_jsonl(out / "items.jsonl", items)
    with open(out / "sheet.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=judgeset.SHEET_FIELDS)
        writer.writeheader()
        writer.writerows(judgeset.sheet_row(it) for it in items)
    parts = {p: sum(it["part"] == p for it in items) for p in ("tune", "held-out")}
    print(f"{len(items)} items ({len(items) - len(constructed)} model reasons, {len(constructed)} constructed; "
          f"tune {parts['tune']}, held-out {parts['held-out']}) -> {out / 'items.jsonl'} and {out / 'sheet.csv'}")
    return 0


def read_judgeset(folder: Path) -> tuple[list[dict], list[str]]:
    """(items with their readers' ratings, reader names) from items.jsonl and ratings-NAME.csv files (the item in
    column `id`, or `item_id` as in `eval --task reasons --export-ratings` sheets; NAME.key.csv files are keys, not
    ratings). Every item needs a rating; a reader may rate only a part (set v4: ten readers, a part each)."""
    import csv

    if not (folder / "items.jsonl").is_file():
        raise UserError(f"{folder}: no items.jsonl (build one with `reasonalign judge build-set`)")
    items = {r["id"]: {**r, "ratings": {}} for _, r in read_jsonl(folder / "items.jsonl")}
    readers = []
    for path in sorted(p for p in folder.glob("ratings-*.csv") if not p.name.endswith(".key.csv")):
        name = path.stem.removeprefix("ratings-")
        readers.append(name)
        with open(path, newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                row["id"] = row.get("id", row.get("item_id"))
                if row["id"] not in items:
                    raise at(path, n, f"unknown item id {row['id']!r}")
                aligned = (row.get("aligned") or "").strip().lower()
                if aligned not in ("yes", "no"):
                    raise at(path, n, f"aligned must be yes or no, not {row.get('aligned')!r}")
                criteria = [c.strip() for c in (row.get("criteria") or "").replace(",", ";").split(";") if c.strip()]
                items[row["id"]]["ratings"][name] = {"aligned": aligned == "yes", "criteria": criteria}
    if not readers:
        raise UserError(f"{folder}: no ratings-NAME.csv from any reader")
    missing = [i for i, it in items.items() if not it["ratings"]]
    if missing:
        raise UserError(f"{folder}: {len(missing)} item(s) not rated by any reader, e.g. {missing[0]}")
    return list(items.values()), readers


TUNE_GRID = {"similarity_threshold": [0.3, 0.37, 0.45, 0.5, 0.55, 0.6, 0.65],
             "max_pool_share": [1.0, 0.2, 0.1, 0.05, 0.02, 0.01],
             "min_stance": [0.0, 0.3, 0.4, 0.5, 0.6, 0.7],
             "explanation_threshold": [0.0, 0.3, 0.4, 0.5, 0.6],
             "self_contradiction": [True, False]}


def run_validate(args) -> int:
    from reasonalign.eval.reasons import judge_items
    from reasonalign.judges import judgeset
    from reasonalign.judging import build_judges, judge_names

    def as_judged(rated: list[dict]) -> list:  # a rated set's items as the judge reads them (id as the row)
        return judge_items([{**it, "row": it["id"], "gold": it["gold_label"]} for it in rated])

    config = cfg.build(ValidateConfig, args)
    names = judge_names(config)
    if names not in (["reference"], ["llm"]):
        raise UserError(f"--judge {config.judge}: validate checks one judge at a time, reference or llm")
    if config.tune_set and not config.tune:
        raise UserError("--tune-set needs --tune")
    if config.tune and names == ["llm"]:
        raise UserError("--tune: only the reference judge has thresholds to tune")
    if names == ["llm"] and len([m for m in (config.judge_model or "").split(",") if m.strip()]) > 1:
        raise UserError("--judge-model: validate checks one LLM judge at a time")
    items, readers = read_judgeset(Path(config.set))
    # another rated set, all of it: --set then holds only items no threshold has seen (read before any embedding)
    tune_sets = [Path(f.strip()) for f in (config.tune_set or "").split(",") if f.strip()]
    tune_items = [it for folder in tune_sets for it in read_judgeset(folder)[0]]
    judge_input = as_judged(items)
    keep = [k for k, it in enumerate(items) if config.part == "all" or it["part"] == config.part]
    started = time.time()
    if names == ["llm"]:  # an LLM judge (local model or endpoint), answers cached beside --output
        out = Path(config.output).parent if config.output else Path("runs/judge-validate")
        judge = build_judges(config, out)[0]
        judged = judge.judge([judge_input[k] for k in keep])
        extra = {"judge": judge.name, "judge_version": judge.version}
    else:
        judged, extra = _validate_reference(config, items, judge_input, keep, tune_sets, tune_items, as_judged)
    report = judgeset.agreement_report([items[k] for k in keep], judged, readers)
    shown = Path(config.set).resolve()  # the shipped set by its place in the package, not this machine's path
    shown = shown.relative_to(JUDGESET.parents[3]) if shown.is_relative_to(JUDGESET.parents[3]) else shown
    report.update(part=config.part, set=str(shown), **extra, seconds=round(time.time() - started, 1),
                  judge_errors=sum(bool(j.error) for j in judged))  # an LLM's unreadable answers count misaligned
    by_source = {}  # per model and per construction: does the judge rank models as the readers do?
    for k, j in zip(keep, judged):
        entry = by_source.setdefault(items[k]["source"], {"n": 0, "judge_misaligned": 0, "readers_misaligned": 0})
        entry["n"] += 1
        entry["judge_misaligned"] += not j.aligned
        entry["readers_misaligned"] += not judgeset.consensus(items[k]["ratings"])
    report["by_source"] = by_source
    _print_validation(report, readers)
    if config.output:
        print(f"-> {write_json(config.output, report)}")
    return 0


def _validate_reference(config, items, judge_input, keep, tune_sets, tune_items, as_judged) -> tuple[list, dict]:
    """The reference judge's judgements of the kept items, with thresholds tuned first when asked (`--tune`),
    and what the report records about it."""
    import itertools
    from dataclasses import replace

    from reasonalign.judges import ReferenceJudge, ReferenceJudgeConfig, judgeset
    from reasonalign.judges.agreement import cohen_kappa
    from reasonalign.judging import judge_pool

    given = None if config.similarity_threshold is None else replace(
        ReferenceJudgeConfig(), similarity_threshold=config.similarity_threshold)
    judge = ReferenceJudge(given, pool=judge_pool(config.judge_pool))
    sims = judge.similarities(judge_input)  # embedded once; every setting below re-applies only thresholds
    chosen = judge.config
    if config.tune:
        if tune_sets:
            tune_input = as_judged(tune_items)
            tune_sims = judge.similarities(tune_input)
        else:
            keep_tune = [k for k, it in enumerate(items) if it["part"] == "tune"]
            tune_items = [items[k] for k in keep_tune]
            tune_input, tune_sims = [judge_input[k] for k in keep_tune], [sims[k] for k in keep_tune]
        joint = [judgeset.consensus(it["ratings"]) for it in tune_items]
        measured = [judge.measure(x, *found) for x, found in zip(tune_input, tune_sims)]  # once; thresholds below
        best = None
        for values in itertools.product(*TUNE_GRID.values()):
            setting = replace(judge.config, **dict(zip(TUNE_GRID, values)))
            judge.config = setting
            aligned = [not judge.criteria(x, d) for x, d in zip(tune_input, measured)]
            kappa = cohen_kappa(aligned, joint)
            if best is None or kappa > best[0] + 1e-12:
                best = (kappa, setting)
        judge.config = shipped = given or ReferenceJudgeConfig()  # how far the given thresholds are from the best
        shipped_kappa = cohen_kappa([not judge.criteria(x, d) for x, d in zip(tune_input, measured)], joint)
        chosen = best[1]
        where = "every item of " + ", ".join(map(str, tune_sets)) if tune_sets else "the tune part"
        print(f"tuned on {len(tune_items)} items ({where}): kappa {best[0]:.3f} with the readers' consensus at "
              + ", ".join(f"{k}={getattr(chosen, k)}" for k in TUNE_GRID)
              + f"; the {'given' if given else 'shipped'} thresholds ({ReferenceJudge(shipped).version}): "
                f"kappa {shipped_kappa:.3f}")
    judge.config = chosen
    extra = {"judge": judge.name, "judge_version": ReferenceJudge(chosen).version,
             "judge_config": {k: getattr(chosen, k) for k in TUNE_GRID},
             "stance_classifier": stance_accuracy(judge, "dfar:validation")}
    if tune_sets:
        extra["tuned_on"] = ",".join(str(folder) for folder in tune_sets)
    return [judge._one(judge_input[k], *sims[k]) for k in keep], extra


def stance_accuracy(judge, spec: str) -> dict | None:
    """How often the judge's stance classifier (fitted on its pool) reads the label of held-out human reasons
    right: P(label | reason) > 0.5 (None without a pool)."""
    from reasonalign.judges.base import JudgeItem
    from reasonalign.tasks import task_for

    rows = [ex for ex in task_for(spec).load(spec) if ex.reason]
    probs = judge.stances([JudgeItem(str(ex.row), ex.statement, ex.label, ex.reason, ex.reason, ex.label) for ex in rows])
    if not rows or probs[0] is None:
        return None
    return {"data": spec, "n": len(rows), "accuracy": round(sum(p > 0.5 for p in probs) / len(rows), 4)}


def _print_validation(r: dict, readers: list[str]) -> None:
    print(f"{r['judge']} judge {r['judge_version']} on the {r['part']} part: n={r['n']}, judge MAR {r['judge_mar']:.1%}, "
          f"readers' consensus MAR {r['consensus']['mar']:.1%}")
    if r.get("judge_errors"):
        print(f"  {r['judge_errors']} judge error(s) (no usable answer), counted misaligned")
    ci = r["consensus"]["kappa_ci95"]
    print(f"  vs consensus     kappa {r['consensus']['kappa']:.3f}" + (f" [95% CI {ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
          + f"  agreement {r['consensus']['raw']:.1%}")
    for name, x in r["readers"].items():
        print(f"  vs {name:<13} kappa {x['kappa']:.3f}  agreement {x['raw']:.1%}  (reader MAR {x['mar']:.1%}, "
              f"n={x['n']})")
    if "readers_kappa" in r:
        x = r["readers_kappa"]
        print(f"  readers' own    kappa {x['kappa']:.3f}  agreement {x['raw']:.1%}  (n={x['n']} items two readers rated)")
    for pair, x in r.get("readers_pairs", {}).items():
        print(f"  {pair:<24} kappa {x['kappa']:.3f}  agreement {x['raw']:.1%}  (n={x['n']})")
    if r.get("stance_classifier"):
        sc = r["stance_classifier"]
        print(f"  stance classifier (argues_other_verdict): {sc['accuracy']:.1%} of {sc['n']} human reasons of "
              f"{sc['data']} read as their own label")
    models = {k.split(":", 1)[1]: v for k, v in r.get("by_source", {}).items() if k.startswith("model:")}
    if models:
        print("  MAR per model, judge / readers' consensus: " + ", ".join(
            f"{name} {v['judge_misaligned'] / v['n']:.1%} / {v['readers_misaligned'] / v['n']:.1%} (n={v['n']})"
            for name, v in models.items()))
    print("  per criterion (judge fired / readers said): both, judge only, readers only, neither")
    for name, c in r["criteria"].items():
        print(f"    {name:<24} {c['both']:>4} {c['judge_only']:>4} {c['readers_only']:>4} {c['neither']:>4}")
