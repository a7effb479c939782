"""`reasonalign generate` and `reasonalign eval --task reasons`: generated reasons and their Misalignment Rate (MAR).

`generate`: a verdict + reason for every statement, batched (left padding, KV cache) ->
generations.jsonl. `eval --task reasons`: generate (or read `--generations`) -> judge every reason with
one or more judges -> metrics.json with MAR, n, 95% CI, judge identity and version, the rate
of each criterion and, when several judges or raters covered the same items, their agreement.

Judges (see `reasonalign.judges`): `reference` (offline, default), `llm` (a local model or an
OpenAI-compatible endpoint applying the versioned rubric), `human` (a blinded rating sheet is
exported with `--export-ratings`; filled sheets come back with `--ratings`).
"""

import json
import time
from pathlib import Path

from reasonalign.core.config import to_dict
from reasonalign.core.errors import UserError, at
from reasonalign.core.distributed import is_main
from reasonalign.core.files import read_jsonl, write_jsonl, write_text
from reasonalign.core.run_record import read_run
from reasonalign.core.verdict import LABELS, parse_verdict, split_reason
from reasonalign.eval.config import GenerateConfig, ReasonsConfig
from reasonalign.eval.labels import prompts_for
from reasonalign.judging import build_judges, judge_names
from reasonalign.tasks import task_for

def generate(config: GenerateConfig) -> list[dict]:
    """Verdict + reason for every selected statement -> generations.jsonl + generate_summary.json."""
    # heavy (torch, transformers): imported when the command runs, not when the CLI imports this module for
    # its configs, so `reasonalign --help` starts fast (tests/test_layers.py checks it); so are the judges (sklearn)
    from reasonalign.core.generation import generate_texts
    from reasonalign.core.precision import autocast, model_device
    from reasonalign.models import load_model, load_tokenizer
    from reasonalign.prompts import get_template

    decoding, precision = check_generation(config)  # bad options fail here, before any model loads
    record = read_run(config.adapter)  # once, for the prompt format and model loading
    template = get_template(config.template_name(record))
    task, dataset, examples = config.load_rows(config.seed)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    model = load_model(config.model, config.adapter, trust_remote_code=config.trust_remote_code, record=record)
    prompts = prompts_for(task, template, examples, config.method, tokenizer)
    sampling = {"temperature": config.temperature, "top_p": config.top_p} if config.temperature > 0 else {}
    started = time.time()
    with autocast(precision, model_device(model)):
        texts = generate_texts(model, tokenizer, prompts, add_special_tokens=task.add_special_tokens(template),
                               max_new_tokens=config.max_new_tokens, batch_size=config.batch_size, seed=config.seed,
                               repetition_penalty=config.repetition_penalty,
                               no_repeat_ngram_size=config.no_repeat_ngram_size,
                               min_new_tokens=config.min_new_tokens, **sampling)
    seconds = time.time() - started
    records = []
    for ex, prompt, text in zip(examples, prompts, texts):
        verdict = parse_verdict(text)
        records.append({"row": ex.row, "statement": ex.statement, "gold": LABELS[ex.label],
                        "gold_reason": ex.reason, "prompt": prompt, "output": text,
                        "verdict": None if verdict is None else LABELS[verdict], "reason": split_reason(text)})
    out = Path(config.output)
    if not is_main():  # under a launcher every process has all generations; one writes them
        return records
    write_jsonl(out / "generations.jsonl", records)
    write_text(out / "generate_summary.json", json.dumps(
        {"n": len(records), "seconds": round(seconds, 1), "data": dataset.name, "data_sha256": dataset.sha256,
         "decoding": decoding, "precision": precision, "config": to_dict(config)}, indent=2))
    return records


def check_generation(config: GenerateConfig) -> tuple[dict, str]:
    """(the decoding record, the resolved precision); one-line `UserError` for a bad option. Loads no model."""
    from reasonalign.core.generation import check_decoding, decoding  # heavy (torch): see generate
    from reasonalign.core.precision import resolve
    from reasonalign.models import default_device

    check_decoding(temperature=config.temperature, top_p=config.top_p, repetition_penalty=config.repetition_penalty,
                   no_repeat_ngram_size=config.no_repeat_ngram_size)
    if config.max_new_tokens < 1 or config.batch_size < 1:
        raise UserError("--max-new-tokens and --batch-size must be at least 1")
    if not 0 <= config.min_new_tokens <= config.max_new_tokens:
        raise UserError(f"--min-new-tokens {config.min_new_tokens}: must be between 0 and --max-new-tokens "
                        f"({config.max_new_tokens})")
    precision = resolve(config.precision, default_device())  # load_model puts the model on default_device()
    return decoding(config.temperature, config.top_p, config.repetition_penalty, config.no_repeat_ngram_size,
                    config.max_new_tokens, config.min_new_tokens), precision


NO_GOLD_REASONS = ("this data has no human reasons: the reference judge uses only verdict consistency and "
                   "degeneracy (empty, too short, repetitive, copies the statement); low_similarity is not applied")


# ---------------------------------------------------------------- inputs


def read_generations(path: str | Path) -> list[dict]:
    """Records of a generations.jsonl, checked: one clear `file:row:` error for a bad line."""
    records = []
    for n, r in read_jsonl(path):
        missing = [k for k in ("row", "statement", "gold", "reason", "verdict") if k not in r]
        if missing:
            raise at(path, n, f"missing field(s) {', '.join(missing)}")
        for key in ("gold", "verdict"):
            if r[key] is not None and r[key] not in LABELS:
                raise at(path, n, f"{key} {r[key]!r} is not one of {', '.join(LABELS)}")
        if r["gold"] is None:
            raise at(path, n, "gold label is empty")
        records.append(r)
    if not records:
        raise at(path, None, "no generations in the file")
    return records


def judge_items(records: list[dict]):
    from reasonalign.judges import JudgeItem  # heavy: see generate

    return [JudgeItem(item_id=str(r["row"]), statement=r["statement"], gold_label=LABELS.index(r["gold"]),
                      gold_reason=r.get("gold_reason") or None, reason=r["reason"] or "",
                      verdict=None if r["verdict"] is None else LABELS.index(r["verdict"])) for r in records]


def flagged_rows(path: str) -> set:
    """Rows a `data check-reasons` file flags (its records with non-empty `flags`)."""
    if not Path(path).is_file():
        raise UserError(f"--exclude-gold {path}: no such file (write one with `reasonalign data check-reasons "
                        f"DATA --output FILE.jsonl`)")
    rows = set()
    for n, record in read_jsonl(path):
        if not isinstance(record, dict) or "row" not in record or not isinstance(record.get("flags"), list):
            raise at(path, n, "not a `data check-reasons` record (row and flags expected)")
        if record["flags"]:
            rows.add(record["row"])
    return rows


def _ratings(config: ReasonsConfig):
    """(ratings, key) from filled sheets (key: the first sheet's key file, if there) or from a study."""
    from reasonalign.judges import import_ratings  # heavy: see generate
    from reasonalign.judges.human import key_path_for
    from reasonalign.judges.study import read_study_ratings

    if not config.ratings:
        raise UserError("--judge human needs --ratings FILLED.csv or STUDY.sqlite (export a sheet with "
                        "--export-ratings, or run a study with `reasonalign annotate`)")
    paths = [p.strip() for p in config.ratings.split(",") if p.strip()]
    if any(Path(p).suffix in (".sqlite", ".sqlite3", ".db") for p in paths):
        if len(paths) > 1:
            raise UserError(f"--ratings {config.ratings}: a study (.sqlite) holds all its raters; give it alone")
        return read_study_ratings(paths[0])
    key = key_path_for(paths[0])
    return [r for path in paths for r in import_ratings(path)], key if key.is_file() else None


# ---------------------------------------------------------------- recipe


def evaluate_reasons(config: ReasonsConfig) -> dict:
    # heavy: see generate
    from reasonalign.judges import VotingJudge, agreement, export_for_raters, human_mar, misalignment_rate
    from reasonalign.judges.human import ratings_by_rater

    out = Path(config.output)
    if config.export_ratings:
        paths = [p.strip() for p in (config.generations or "").split(",") if p.strip()]
        if not paths:
            raise UserError("--export-ratings needs --generations FILE[,FILE...] (one per model)")
        by_model = {Path(p).parent.name or Path(p).stem: judge_items(read_generations(p)) for p in paths}
        if len(by_model) != len(paths):
            raise UserError("--generations: give each model's file its own folder (the folder name is the model id)")
        key = export_for_raters(by_model, config.export_ratings, config.seed)
        return {"exported": config.export_ratings, "key": str(key), "n": sum(map(len, by_model.values())),
                "models": sorted(by_model)}

    started = time.time()
    flagged = flagged_rows(config.exclude_gold) if config.exclude_gold else None  # a bad file: before any work
    if config.generations:
        records, source = read_generations(config.generations), config.generations
        decoding, precision = _generated_with(config.generations)
    elif judge_names(config) == ["human"]:  # the ratings are the judgements: nothing to generate
        records, source = [], None
        decoding = precision = None
    else:
        records, source = generate(config), str(out / "generations.jsonl")
        decoding, precision = _generated_with(source)
    if not is_main():  # the generations are written; judging and the metrics are one process's job
        return {}
    excluded = None
    if flagged is not None:
        excluded = {"file": config.exclude_gold, "rows": sorted(r["row"] for r in records if r["row"] in flagged)}
        records = [r for r in records if r["row"] not in flagged]
    items = judge_items(records)
    data = _data_name(config)
    gold_reasons = sum(it.gold_reason is not None for it in items)

    judges = build_judges(config, out, config.trust_remote_code)
    results = {}  # judge name -> judgements
    judge_precision = None
    for judge in judges:
        name = judge.name
        while name in results:
            name += "'"
        context, judge_precision = _judge_autocast(config, judge, judge_precision)
        with context:
            results[name] = judge.judge(items)
    metrics: dict = {"task": "reasons", "generations": source, "n_items": len(items),
                     "items_with_gold_reason": gold_reasons, "decoding": decoding, "precision": precision,
                     # beside MAR: a model that writes no reason is misaligned for a different cause than a bad one
                     "empty_reason_rate": sum(not it.reason.strip() for it in items) / len(items) if items else None}
    if excluded is not None:
        metrics["excluded_gold"] = excluded
    if judge_precision is not None:
        metrics["judge_precision"] = judge_precision
    if gold_reasons < len(items):
        metrics["note"] = NO_GOLD_REASONS if gold_reasons == 0 else (
            f"{len(items) - gold_reasons} item(s) have no human reason: low_similarity is not applied to them")

    if "human" in judge_names(config):
        ratings, key = _ratings(config)
        metrics["human"] = human_mar(ratings, key)
        per_rater = ratings_by_rater(ratings)
        if len(per_rater) > 1:
            metrics["human"]["agreement"] = agreement(per_rater)
        if not results:  # human only: the pooled rating is the headline
            metrics.update({k: metrics["human"]["pooled"][k] for k in ("mar", "n", "ci95", "criteria_rates")},
                           judge="human", judge_version="ratings: " + config.ratings)

    if results:
        per_judge = {name: misalignment_rate(js) for name, js in results.items()}
        for name, judge in zip(results, judges):
            per_judge[name].update(version=judge.version, **({"metadata": judge.metadata} if hasattr(judge, "metadata")
                                                             else {}))
        headline_name, headline = next(iter(results)), next(iter(results.values()))
        if config.vote and len(results) > 1:
            vote = VotingJudge(judges)
            headline = vote.combine(items, list(results.values()))
            headline_name, per_judge[vote.name] = vote.name, {**misalignment_rate(headline), "version": vote.version}
        metrics.update({k: per_judge[headline_name][k] for k in ("mar", "n", "ci95", "errors", "criteria_rates")},
                       judge=headline_name, judge_version=per_judge[headline_name]["version"], judges=per_judge)
        metrics["ci_method"] = "Wilson score interval, 95%"
        if len(results) > 1:
            metrics["agreement"] = agreement(results)
        metrics["splits"] = split_mar(data, records, headline)
        _write_judgements(out, records, results)

    metrics.update(data=data, seconds=round(time.time() - started, 1), seed=config.seed, config=to_dict(config))
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _generate_summary(generations: str | Path) -> dict:
    """The generate_summary.json beside a generations.jsonl ({} if there is none or it is unreadable)."""
    summary = Path(generations).with_name("generate_summary.json")
    try:
        found = json.loads(summary.read_text()) if summary.is_file() else {}
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _generated_with(generations: str | Path) -> tuple[dict | None, str | None]:
    """(decoding, precision) the generations were made with, from their generate_summary.json (None if unknown)."""
    summary = _generate_summary(generations)
    return summary.get("decoding"), summary.get("precision")


def _judge_autocast(config: ReasonsConfig, judge, precision: str | None):
    """The context a judge runs in: a local model (llm judge without --judge-url) runs its forward passes
    in the resolved --precision, like generation; every other judge runs as it is."""
    import contextlib

    from reasonalign.judges import HFBackend  # heavy: see generate

    backend = getattr(judge, "backend", None)
    if not isinstance(backend, HFBackend):
        return contextlib.nullcontext(), precision
    from reasonalign.core.precision import autocast, model_device, resolve

    device = model_device(backend.model)
    precision = resolve(config.precision, device)
    return autocast(precision, device), precision


def _data_name(config: ReasonsConfig) -> str | None:
    """Which data the generations came from (their generate_summary.json says; None if unknown)."""
    if not config.generations:
        return config.data
    return _generate_summary(config.generations).get("data")


def split_mar(data: str | None, records: list[dict], judgements) -> dict:
    """MAR on each split the task reports (DFAR test: full and clean, side by side; {} otherwise)."""
    from reasonalign.judges import misalignment_rate  # heavy: see generate

    splits = task_for(data).splits(data, [r["row"] for r in records]) if data else None
    if splits is None:
        return {}
    return {name: misalignment_rate([j for j, k in zip(judgements, keep) if k]) for name, keep in splits.items()}


def _write_judgements(out: Path, records: list[dict], results: dict) -> None:
    write_jsonl(out / "judgements.jsonl", [
        {"row": r["row"], "statement": r["statement"], "gold": r["gold"], "verdict": r["verdict"], "reason": r["reason"],
         "judges": {name: {"aligned": js[i].aligned, "criteria": js[i].criteria, "rationale": js[i].rationale,
                           "error": js[i].error} for name, js in results.items()}}
        for i, r in enumerate(records)])


def headline(m: dict, config: ReasonsConfig) -> str:
    if "exported" in m:
        return (f"rating sheet with {m['n']} items from {', '.join(m['models'])} -> {m['exported']} "
                f"(key: {m['key']}; keep it from the raters)")
    lo, hi = m["ci95"]
    line = (f"MAR {m['mar']:.1%} (95% CI {lo:.1%}-{hi:.1%}, n={m['n']}, judge {m['judge']}, seed {m['seed']})")
    if m.get("decoding"):
        from reasonalign.core.generation import describe  # heavy (torch): see generate

        line += f"; reasons decoded {describe(m['decoding'])}"
        if m.get("precision"):
            line += f" in {m['precision']}"
    elif m.get("generations"):
        line += "; decoding unknown (no generate_summary.json beside the generations)"
    if m.get("splits"):
        c = m["splits"]["dfar:test-clean"]
        line += f"; clean split {c['mar']:.1%} (n={c['n']})"
    if m.get("agreement"):
        a = m["agreement"]
        line += f"; {a['kind']} kappa {a['kappa']:.2f}, agreement {a['raw_agreement']:.1%}"
    line += f" -> {config.output}/metrics.json"
    human = m.get("human") or {}
    for model, x in (human.get("per_model") or {}).items():  # raters' MAR per model, and paired differences
        line += f"\n  {model}: MAR {x['mar']:.1%} (95% CI {x['ci95'][0]:.1%}-{x['ci95'][1]:.1%}, n={x['n']})"
    for pair, x in (human.get("paired") or {}).items():
        line += (f"\n  {pair}: {x['difference']:+.1%} (95% CI {x['ci95'][0]:+.1%} to {x['ci95'][1]:+.1%}, "
                 f"n={x['n']} items rated for both, McNemar p {x['mcnemar_p']:.2g})")
    return line
