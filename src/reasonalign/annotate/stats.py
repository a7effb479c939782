"""`annotate stats`: what a rating study says, with its uncertainty and how far raters agree.

MAR per rater (Wilson 95% CI: one rater, independent items), per model and pooled (items
resampled whole by the bootstrap, since two raters' ratings of one item are not independent);
Cohen's kappa for every pair of raters, Fleiss' kappa over all raters (on the items every rater
rated); and, with `--judge`, the automatic judges on the same items: their MAR and their
agreement with each rater and with all ratings pooled. Models are unblinded only here.
"""

from itertools import combinations
from pathlib import Path

from reasonalign.core.errors import UserError
from reasonalign.core.stats import bootstrap_groups
from reasonalign.judging import build_judges, judge_names
from reasonalign.judges import agreement, cohen_kappa, misalignment_rate
from reasonalign.judges.base import Judgement
from reasonalign.judges import study


def _pooled(ratings: list[dict], seed: int) -> dict:
    """MAR over ratings, CI by a bootstrap over items (an item's ratings move together)."""
    per_item: dict[str, list[int]] = {}
    for r in ratings:
        per_item.setdefault(r["blind_id"], []).append(0 if r["aligned"] else 1)
    bad = [sum(v) for v in per_item.values()]
    count = [len(v) for v in per_item.values()]
    n = sum(count)
    return {"mar": sum(bad) / n if n else None, "n_ratings": n, "n_items": len(per_item),
            "ci95": bootstrap_groups(bad, count, seed) if n else None,
            "ci_method": "percentile bootstrap over items, 95%"}


def _judgements(ratings: list[dict]) -> dict[str, list[Judgement]]:
    out: dict[str, list[Judgement]] = {}
    for r in ratings:
        out.setdefault(r["rater"], []).append(
            Judgement(r["blind_id"], r["aligned"], f"human rater {r['rater']}", list(r["criteria"]) or
                      ([] if r["aligned"] else ["rated_misaligned"])))
    return out


def _versus(judge: list[Judgement], ratings: list[dict]) -> dict:
    """Agreement of a judge with every rating of the items it judged: pairs (rating, judge's verdict)."""
    verdict = {j.item_id: j.aligned for j in judge if j.error is None}
    pairs = [(r["aligned"], verdict[r["blind_id"]]) for r in ratings if r["blind_id"] in verdict]
    if not pairs:
        return {"n_pairs": 0, "kappa": None, "raw_agreement": None}
    humans, machine = zip(*pairs)
    return {"n_pairs": len(pairs), "kappa": cohen_kappa(list(humans), list(machine)),
            "raw_agreement": sum(h == m for h, m in pairs) / len(pairs)}


def study_stats(config) -> dict:
    """Every number of `annotate stats` (config: cli.annotate.StatsConfig)."""
    with study.opened(config.db) as conn:
        ratings, items, raters = study.ratings(conn), study.items(conn), study.raters(conn)
    if not ratings:
        raise UserError(f"{config.db}: no ratings yet; raters rate at `reasonalign annotate serve`")
    names = judge_names(config) if config.judge.strip() else []
    if "human" in names:
        raise UserError("--judge: the raters are the human judge here; choose from reference, llm")

    model_of = {it.item_id: model for model, it in items}
    by_rater = _judgements(ratings)
    stats: dict = {
        "db": config.db, "seed": config.seed, "items": len(items), "rated_items": len({r["blind_id"] for r in ratings}),
        "raters": {r["name"]: {"done": r["done"], "total": r["total"], "revoked": bool(r["revoked_at"]),
                               **misalignment_rate(by_rater.get(r["name"], []))} for r in raters},
        "pooled": _pooled(ratings, config.seed),
        "per_model": {m: {**_pooled([r for r in ratings if r["model"] == m], config.seed),
                          "per_rater": {name: misalignment_rate([j for j in js if model_of[j.item_id] == m])["mar"]
                                        for name, js in sorted(by_rater.items())}}
                      for m in sorted(set(model_of.values()))},
    }
    rated = sorted(by_rater)
    stats["agreement"] = {
        "pairs": {f"{a} vs {b}": agreement({a: by_rater[a], b: by_rater[b]}) for a, b in combinations(rated, 2)},
        "all": agreement(by_rater) if len(rated) > 2 else None,
    }

    if names:
        rated_ids = {r["blind_id"] for r in ratings}
        to_judge = [it for _, it in items if it.item_id in rated_ids]
        cache = Path(config.output).parent if config.output else Path(config.db).parent
        stats["judges"] = {}
        for judge in build_judges(config, cache):
            found = judge.judge(to_judge)
            stats["judges"][judge.name] = {
                "version": judge.version, **misalignment_rate(found),
                "per_model": {m: misalignment_rate([j for j in found if model_of[j.item_id] == m])["mar"]
                              for m in stats["per_model"]},
                "vs_raters": {name: agreement({name: js, judge.name: found}) for name, js in sorted(by_rater.items())},
                "vs_all_ratings": _versus(found, ratings)}
    return stats


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _ci(ci) -> str:
    return "" if not ci or ci[0] != ci[0] else f" [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]"


def _kappa(a: dict) -> str:
    if a is None or a.get("kappa") is None:
        return "—"
    k = a["kappa"]
    return f"kappa {'undefined' if k != k else f'{k:.3f}'} ({a.get('kind') or 'cohen'}), raw agreement " \
           f"{_pct(a['raw_agreement'])}, n={a.get('n_items', a.get('n_pairs'))}"


def format_stats(s: dict) -> str:
    """The stats as the lines `annotate stats` prints."""
    lines = [f"{s['db']}: {s['rated_items']} of {s['items']} items rated; MAR = share of ratings 'misaligned' "
             f"(95% CI; seed {s['seed']})", "", "per rater (Wilson CI):"]
    for name, r in s["raters"].items():
        state = ", revoked" if r["revoked"] else ""
        lines.append(f"  {name}: {_pct(r['mar'])}{_ci(r['ci95'])}, n={r['n']} ({r['done']}/{r['total']} rated{state})")
    lines.append("per model (ratings pooled over raters; CI: bootstrap over items):")
    for model, m in s["per_model"].items():
        raters = ", ".join(f"{k} {_pct(v)}" for k, v in m["per_rater"].items())
        lines.append(f"  {model}: {_pct(m['mar'])}{_ci(m['ci95'])}, {m['n_ratings']} ratings of {m['n_items']} "
                     f"items ({raters})")
    p = s["pooled"]
    lines.append(f"pooled: {_pct(p['mar'])}{_ci(p['ci95'])}, {p['n_ratings']} ratings of {p['n_items']} items")
    lines.append("agreement between raters (on the items both rated):")
    for pair, a in s["agreement"]["pairs"].items():
        lines.append(f"  {pair}: {_kappa(a)}")
    if not s["agreement"]["pairs"]:
        lines.append("  — (one rater)")
    if s["agreement"]["all"]:
        lines.append(f"  all raters: {_kappa(s['agreement']['all'])}")
    for name, j in s.get("judges", {}).items():
        per_model = ", ".join(f"{m} {_pct(v)}" for m, v in j["per_model"].items())
        lines.append(f"judge {name} ({j['version']}) on the rated items: MAR {_pct(j['mar'])}{_ci(j['ci95'])}, "
                     f"n={j['n']} ({per_model})")
        for rater, a in j["vs_raters"].items():
            lines.append(f"  vs {rater}: {_kappa(a)}")
        lines.append(f"  vs all ratings: {_kappa(j['vs_all_ratings'])}")
    return "\n".join(lines)
