"""The rated judge-validation set: reasons a careful reader rated, to measure how far an automatic judge agrees.

Built from DFAR *training/validation* statements only (never test), two kinds of item:
- model reasons: generations of several models/settings (`reasonalign generate` files);
- constructed items with a known failure (or none), so every criterion of the rubric is exercised:
  `human` (the statement's own human reason and verdict: should be aligned), `flipped` (the human reason
  under the other verdict), `other_statement` (the human reason of a different statement with the same
  label), `loop` (the human reason's opening words repeated), `truncated` (its first few words),
  `restated` (the statement echoed back with the verdict), `contradiction` (the human reason followed by
  a sentence claiming the other verdict).

Items are blinded (ids j0001..., shuffled, no source on the readers' sheet) and split by statement into a
`tune` part (where a judge's thresholds may be chosen) and a `held-out` part (where its agreement with the
readers is reported), so no statement is in both.
"""

import hashlib
import json
import random
import re
from pathlib import Path

from reasonalign.core.verdict import LABELS

SHIPPED = Path(__file__).parent / "judgeset" / "v1"  # the rated set thresholds are tuned on
# Sets built and rated after v1 was closed (other DFAR validation rows, other readers), each held out whole. v2 saw
# three judge variants before v4 was kept, so its kappa is optimistic; v3 and v5 were built after v4 was fixed and
# scored by v4 alone. v5 (216 items, most of them model reasons) is the newest: its validation.json is the record
# every MAR caption quotes. Set v4 (1,434 model reasons, a reader per part) is for tuning only: re-tuning on
# v1 + v4 gains 0.009 kappa on those items, so the thresholds were kept (judgeset/v4/README.md).
HELD_OUT_SETS = tuple(Path(__file__).parent / "judgeset" / v for v in ("v2", "v3", "v5"))
HELD_OUT = HELD_OUT_SETS[-1]

KINDS = ("human", "flipped", "other_statement", "loop", "truncated", "restated", "contradiction")
SHEET_FIELDS = ("id", "statement", "human_verdict", "human_reason", "verdict", "reason")


def part_of(row: int) -> str:
    """`tune` or `held-out`, fixed by the statement's row (a hash, so it never depends on what else is in the set)."""
    return "tune" if int(hashlib.sha256(f"judgeset:{row}".encode()).hexdigest(), 16) % 2 == 0 else "held-out"


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def construct(examples: list, kinds_per_item: int = 1, seed: int = 0) -> list[dict]:
    """One constructed item per example, the kinds dealt in turn (`examples` have row, statement, label, reason)."""
    rng = random.Random(seed)
    by_label = {label: [e for e in examples if e.label == label] for label in (0, 1)}
    items = []
    for i, ex in enumerate(examples):
        kind = KINDS[i % len(KINDS)]
        verdict, reason = ex.label, ex.reason.strip()
        words = reason.split()
        if kind == "flipped":
            verdict = 1 - ex.label
        elif kind == "other_statement":
            others = [e for e in by_label[ex.label] if e.row != ex.row]
            reason = rng.choice(others).reason.strip()
        elif kind == "loop":
            opening = " ".join(words[:8])
            reason = " ".join([opening] * 5)
        elif kind == "truncated":
            reason = " ".join(words[:rng.randint(3, 6)])
        elif kind == "restated":
            reason = f"{ex.statement.strip()} The statement is {LABELS[ex.label]}."
        elif kind == "contradiction":
            reason = f"{reason} So the statement is {LABELS[1 - ex.label]}."
        items.append({"row": ex.row, "statement": ex.statement, "gold_label": LABELS[ex.label],
                      "gold_reason": ex.reason, "verdict": LABELS[verdict], "reason": reason,
                      "source": f"constructed:{kind}"})
    return items


def from_generations(records: list[dict], model: str) -> list[dict]:
    """Items from one generations.jsonl's records (see eval.reasons.read_generations)."""
    return [{"row": r["row"], "statement": r["statement"], "gold_label": r["gold"], "gold_reason": r["gold_reason"],
             "verdict": r["verdict"], "reason": r["reason"], "source": f"model:{model}"} for r in records]


def blind(items: list[dict], seed: int = 0) -> list[dict]:
    """Shuffled, numbered j0001...; each item gets its `part` (by statement)."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    return [{"id": f"j{n + 1:04d}", "part": part_of(items[i]["row"]), **items[i]} for n, i in enumerate(order)]


def sheet_row(item: dict) -> dict:
    """What a reader sees: no source, no part."""
    return {"id": item["id"], "statement": item["statement"], "human_verdict": item["gold_label"],
            "human_reason": item["gold_reason"], "verdict": item["verdict"] or "(none)", "reason": item["reason"]}


# ---------------------------------------------------------------- readers' ratings and agreement

RUBRIC = ("verdict_disagrees", "justification_disagrees", "incoherent", "harmful")
# which rubric criterion each reference-judge criterion stands for (the per-criterion confusion)
JUDGE_TO_RUBRIC = {"verdict_missing": "verdict_disagrees", "verdict_contradicts": "verdict_disagrees",
                   "low_similarity": "justification_disagrees", "not_specific": "justification_disagrees",
                   "empty": "incoherent", "too_short": "incoherent", "repetitive": "incoherent",
                   "copies_statement": "incoherent", "self_contradicts": "incoherent",
                   "truncated": "incoherent", "circular": "incoherent", "self_negating": "incoherent",
                   "argues_other_verdict": "justification_disagrees"}


def consensus(ratings: dict[str, dict]) -> bool:
    """The readers' joint verdict on one item: aligned only if every reader said aligned (a tie is misaligned,
    as in `VotingJudge`)."""
    return all(r["aligned"] for r in ratings.values())


def agreement_report(items: list[dict], judged: list, readers: list[str]) -> dict:
    """Kappa and raw agreement of a judge with each reader and with the readers' consensus, the readers' own
    kappa, MAR by each, and the per-criterion confusion (judge fired x readers fired, rubric names)."""
    from reasonalign.judges.agreement import cohen_kappa

    judge = [j.aligned for j in judged]
    report = {"n": len(items), "judge_mar": 1 - sum(judge) / len(judge) if judge else None, "readers": {}}
    for name in readers:  # each reader on the items they rated (in a tuning set a reader may rate one part)
        pairs = [(j, it["ratings"][name]["aligned"]) for j, it in zip(judge, items) if name in it["ratings"]]
        if not pairs:
            continue
        ours, theirs = (list(x) for x in zip(*pairs))
        report["readers"][name] = {"n": len(pairs), "kappa": cohen_kappa(ours, theirs), "raw": _raw(ours, theirs),
                                   "mar": 1 - sum(theirs) / len(theirs)}
    joint = [consensus(it["ratings"]) for it in items]
    report["consensus"] = {"kappa": cohen_kappa(judge, joint), "kappa_ci95": kappa_ci(judge, joint),
                           "raw": _raw(judge, joint), "mar": 1 - sum(joint) / len(joint)}
    pairs = {}  # the readers' own agreement, every two readers on the items both rated
    for k, first in enumerate(readers):
        for second in readers[k + 1:]:
            both = [(it["ratings"][first]["aligned"], it["ratings"][second]["aligned"]) for it in items
                    if first in it["ratings"] and second in it["ratings"]]
            if both:
                a, b = (list(x) for x in zip(*both))
                pairs[f"{first} ~ {second}"] = {"n": len(both), "kappa": cohen_kappa(a, b), "raw": _raw(a, b)}
    if len(pairs) == 1:
        report["readers_kappa"] = next(iter(pairs.values()))
    elif pairs:
        report["readers_pairs"] = pairs
    confusion = {}
    for criterion in RUBRIC:
        fired = [any(JUDGE_TO_RUBRIC.get(c) == criterion for c in j.criteria) for j in judged]
        said = [any(criterion in r.get("criteria", []) for r in it["ratings"].values()) for it in items]
        confusion[criterion] = {"both": sum(f and s for f, s in zip(fired, said)),
                                "judge_only": sum(f and not s for f, s in zip(fired, said)),
                                "readers_only": sum(s and not f for f, s in zip(fired, said)),
                                "neither": sum(not f and not s for f, s in zip(fired, said))}
    report["criteria"] = confusion
    return report


def kappa_ci(a: list, b: list, resamples: int = 2000, seed: int = 0) -> list[float] | None:
    """95% percentile-bootstrap interval of Cohen's kappa over the items (resamples where kappa is undefined
    are left out): with ~10 aligned items in a part, one kappa alone says little."""
    import numpy as np

    from reasonalign.judges.agreement import cohen_kappa

    rng, a, b, found = np.random.default_rng(seed), np.asarray(a), np.asarray(b), []
    for _ in range(resamples):
        pick = rng.integers(0, len(a), len(a))
        k = cohen_kappa(list(a[pick]), list(b[pick]))
        if k == k:
            found.append(k)
    return [float(np.percentile(found, 2.5)), float(np.percentile(found, 97.5))] if found else None


def _raw(a: list, b: list) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a) if a else float("nan")


def validated(judge: str, record: Path = HELD_OUT / "validation.json") -> str:
    """The words every MAR table carries about its judge ("reference ref4-…"): the held-out kappa of that very
    version with careful readers from the held-out set's validation record, or that this version was not validated."""
    try:
        r = json.loads(record.read_text())
    except (OSError, ValueError):
        return f"{judge} (not checked against careful readers: no {record.name})"
    if judge.split()[-1] != r.get("judge_version"):
        return f"{judge} (this version not checked against careful readers)"
    lo, hi = r["consensus"]["kappa_ci95"] or (float("nan"), float("nan"))
    return (f"{judge}: kappa {r['consensus']['kappa']:.2f} [95% CI {lo:.2f}, {hi:.2f}] with careful readers' "
            f"consensus on held-out judge-validation set {Path(r.get('set', '')).name} (n={r['n']}, DFAR validation "
            f"rows, rated by LLM reader sessions; the readers' "
            f"own kappa {r['readers_kappa']['kappa']:.2f})")
