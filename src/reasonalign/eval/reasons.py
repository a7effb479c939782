"""`reasonalign eval --task reasons`: the Misalignment Rate (MAR) of generated reasons.

Generate (or read `generations.jsonl` from `reasonalign generate`) -> judge every reason with
one or more judges -> metrics.json with MAR, n, 95% CI, judge identity and version, the rate
of each criterion and, when several judges or raters covered the same items, their agreement.

Judges (see `reasonalign.judges`): `reference` (offline, default), `llm` (a local model or an
OpenAI-compatible endpoint applying the versioned rubric), `human` (a blinded rating sheet is
exported with `--export-ratings`; filled sheets come back with `--ratings`).
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

from reasonalign.config import option, to_dict
from reasonalign.errors import UserError, at, read_jsonl
from reasonalign.eval.generate import GenerateConfig
from reasonalign.verdict import LABELS

JUDGES = ("reference", "llm", "human")
NO_GOLD_REASONS = ("this data has no human reasons: the reference judge uses only verdict consistency and "
                   "degeneracy (empty, too short, repetitive, copies the statement); low_similarity is not applied")


@dataclass
class ReasonsConfig(GenerateConfig):
    output: str = option("runs/eval-reasons", "folder for metrics.json, judgements.jsonl (and generations.jsonl)")
    generations: str | None = option(None, "judge this generations.jsonl (from `reasonalign generate`) instead of "
                                           "generating; with --export-ratings, several comma-separated files")
    judge: str = option("reference", "reference, llm or human; several comma-separated (e.g. reference,llm) are "
                                     "each reported, with their agreement (kappa)")
    vote: bool = option(False, "headline MAR = majority vote of the judges (ties count as misaligned)")
    similarity_threshold: float | None = option(None, "reference judge: cosine threshold (default 0.37, chosen on "
                                                      "DFAR train; see ReferenceJudgeConfig)")
    judge_url: str | None = option(None, "llm judge: OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000")
    judge_model: str | None = option(None, "llm judge: model name at --judge-url, or without a URL a local model "
                                           "(short name or folder); comma-separated for several voting LLM judges")
    judge_key_env: str = option("REASONALIGN_JUDGE_API_KEY", "llm judge: environment variable holding the API key")
    judge_concurrency: int = option(4, "llm judge: requests in flight at once")
    judge_timeout: float = option(60.0, "llm judge: seconds per request before a retry")
    judge_retries: int = option(3, "llm judge: retries with exponential backoff on timeouts, 429 and 5xx")
    judge_cache: str | None = option(None, "llm judge: answer cache folder (default: OUTPUT/judge-cache); a rerun "
                                           "resumes from it")
    ratings: str | None = option(None, "human judge: filled rating sheet(s) (item_id, [rater,] aligned), "
                                       "comma-separated")
    export_ratings: str | None = option(None, "human judge: write a blinded, shuffled rating sheet (and its key) "
                                              "here and stop")


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
    from reasonalign.judges import JudgeItem

    return [JudgeItem(item_id=str(r["row"]), statement=r["statement"], gold_label=LABELS.index(r["gold"]),
                      gold_reason=r.get("gold_reason") or None, reason=r["reason"] or "",
                      verdict=None if r["verdict"] is None else LABELS.index(r["verdict"])) for r in records]


def judge_names(config: ReasonsConfig) -> list[str]:
    names = [j.strip() for j in config.judge.split(",") if j.strip()]
    if not names or any(j not in JUDGES for j in names):
        raise UserError(f"--judge {config.judge!r}: choose from {', '.join(JUDGES)} (comma-separated)")
    return names


def build_judges(config: ReasonsConfig, out: Path) -> list:
    """The requested judges other than `human` (human ratings are read, not computed)."""
    from reasonalign.judges import HFBackend, HTTPBackend, LLMJudge, ReferenceJudge, ReferenceJudgeConfig

    judges = []
    for name in judge_names(config):
        if name == "reference":
            ref = ReferenceJudgeConfig()
            if config.similarity_threshold is not None:
                ref = ReferenceJudgeConfig(similarity_threshold=config.similarity_threshold)
            judges.append(ReferenceJudge(ref))
        elif name == "llm":
            if not config.judge_model:
                raise UserError("--judge llm needs --judge-model (a model at --judge-url, or a local model)")
            cache = config.judge_cache or str(out / "judge-cache")
            for model in [m.strip() for m in config.judge_model.split(",") if m.strip()]:
                if config.judge_url:
                    backend = HTTPBackend(config.judge_url, model, api_key_env=config.judge_key_env,
                                          max_workers=config.judge_concurrency, timeout=config.judge_timeout,
                                          retries=config.judge_retries)
                else:
                    from reasonalign.models import load_model, load_tokenizer

                    backend = HFBackend(load_model(model, trust_remote_code=config.trust_remote_code),
                                        load_tokenizer(model, config.trust_remote_code))
                judges.append(LLMJudge(backend, cache_dir=cache))
    return judges


def _ratings(config: ReasonsConfig):
    from reasonalign.judges import import_ratings

    if not config.ratings:
        raise UserError("--judge human needs --ratings FILLED.csv (export a sheet first with --export-ratings)")
    return [r for path in config.ratings.split(",") for r in import_ratings(path.strip())]


# ---------------------------------------------------------------- recipe


def evaluate_reasons(config: ReasonsConfig) -> dict:
    from reasonalign.judges import VotingJudge, agreement, export_for_raters, human_mar, misalignment_rate
    from reasonalign.judges.human import key_path_for, ratings_by_rater

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
    if config.generations:
        records, source = read_generations(config.generations), config.generations
    else:
        from reasonalign.eval.generate import generate

        records, source = generate(config), str(out / "generations.jsonl")
    items = judge_items(records)
    data = _data_name(config)
    gold_reasons = sum(it.gold_reason is not None for it in items)

    judges = build_judges(config, out)
    results = {}  # judge name -> judgements
    for judge in judges:
        name = judge.name
        while name in results:
            name += "'"
        results[name] = judge.judge(items)
    metrics: dict = {"task": "reasons", "generations": source, "n_items": len(items),
                     "items_with_gold_reason": gold_reasons}
    if gold_reasons < len(items):
        metrics["note"] = NO_GOLD_REASONS if gold_reasons == 0 else (
            f"{len(items) - gold_reasons} item(s) have no human reason: low_similarity is not applied to them")

    if "human" in judge_names(config):
        ratings = _ratings(config)
        key = key_path_for(config.ratings.split(",")[0].strip())
        metrics["human"] = human_mar(ratings, key if key.is_file() else None)
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
        metrics["splits"] = leakage_splits(data, records, headline)
        _write_judgements(out, records, results)

    metrics.update(data=data, seconds=round(time.time() - started, 1), seed=config.seed, config=to_dict(config))
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _data_name(config: ReasonsConfig) -> str | None:
    """Which data the generations came from (their generate_summary.json says; None if unknown)."""
    if not config.generations:
        return config.data
    summary = Path(config.generations).with_name("generate_summary.json")
    return json.loads(summary.read_text()).get("data") if summary.is_file() else None


def leakage_splits(data: str, records: list[dict], judgements) -> dict:
    """MAR on the full DFAR test set and on its clean part, side by side ({} for other data)."""
    from reasonalign.data.tables import clean_rows
    from reasonalign.judges import misalignment_rate

    clean = clean_rows(data)
    if clean is None:
        return {}
    keep = [j for r, j in zip(records, judgements) if r["row"] in clean]
    return {data: misalignment_rate(list(judgements)), "dfar:test-clean": misalignment_rate(keep)}


def _write_judgements(out: Path, records: list[dict], results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "judgements.jsonl", "w", encoding="utf-8") as f:
        for i, r in enumerate(records):
            f.write(json.dumps({"row": r["row"], "statement": r["statement"], "gold": r["gold"],
                                "verdict": r["verdict"], "reason": r["reason"],
                                "judges": {name: {"aligned": js[i].aligned, "criteria": js[i].criteria,
                                                  "rationale": js[i].rationale, "error": js[i].error}
                                           for name, js in results.items()}}, ensure_ascii=False) + "\n")


def headline(m: dict, config: ReasonsConfig) -> str:
    if "exported" in m:
        return (f"rating sheet with {m['n']} items from {', '.join(m['models'])} -> {m['exported']} "
                f"(key: {m['key']}; keep it from the raters)")
    lo, hi = m["ci95"]
    line = (f"MAR {m['mar']:.1%} (95% CI {lo:.1%}-{hi:.1%}, n={m['n']}, judge {m['judge']}, seed {m['seed']})")
    if m.get("splits"):
        c = m["splits"]["dfar:test-clean"]
        line += f"; clean split {c['mar']:.1%} (n={c['n']})"
    if m.get("agreement"):
        a = m["agreement"]
        line += f"; {a['kind']} kappa {a['kappa']:.2f}, agreement {a['raw_agreement']:.1%}"
    return line + f" -> {config.output}/metrics.json"
