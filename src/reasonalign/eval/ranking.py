"""`reasonalign eval --task ranking`: assessment alignment on held-out groups.

Does the model score better responses above worse ones? Each response's score is its
length-normalised log-likelihood, computed exactly as the aligned trainer computes it
(`scoring.group_scores`). Over every (better, worse) pair of every group: the share ordered
right (``pair_accuracy``; a tie counts as wrong), the mean margin ``s_better - s_worse`` and the
mean score of better / worse responses (`losses.ordering_stats`). The 95% CI is a percentile
bootstrap over groups (pairs of one group are not independent), seeded.
"""

import json
import time
from pathlib import Path

from reasonalign.core.files import write_text
from reasonalign.core.config import to_dict
from reasonalign.core.distributed import is_main
from reasonalign.eval.config import RankingConfig


def group_pairs(scores: list[float], rank: list[int]) -> tuple[int, int]:
    """(pairs ordered right, pairs) of one group: pairs are (i, j) with rank_i < rank_j."""
    pairs = [(s_i > s_j) for s_i, r_i in zip(scores, rank) for s_j, r_j in zip(scores, rank) if r_i < r_j]
    return sum(pairs), len(pairs)


def evaluate_ranking(config: RankingConfig) -> dict:
    # heavy (torch, scipy): imported when the command runs, so `--help` starts fast
    from reasonalign.core.stats import bootstrap_groups
    from reasonalign.data.groups import encode_group, read_groups
    from reasonalign.models import load_model, load_tokenizer
    from reasonalign.scoring import ordering, score_groups

    groups = read_groups(config.groups)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    encoded = [encode_group(tokenizer, g, config.feedback, config.max_length) for g in groups]
    model = load_model(config.model, config.adapter, trust_remote_code=config.trust_remote_code)
    started = time.time()
    scores = score_groups(model, encoded, tokenizer.pad_token_id, config.batch_size)
    seconds = time.time() - started

    ranks = [g["rank"] for g in encoded]
    counts = [group_pairs(s, r) for s, r in zip(scores, ranks)]
    stats = ordering(scores, ranks)
    metrics = {
        "pair_accuracy": stats["pair_accuracy"], "n_pairs": stats["n_pairs"],
        "ci95": bootstrap_groups([c[0] for c in counts], [c[1] for c in counts], config.seed),
        "ci_method": f"percentile bootstrap over groups, 2000 resamples, seed {config.seed}",
        "margin": stats["margin"], "score_pos": stats["score_pos"], "score_neg": stats["score_neg"],
        "n_groups": len(groups), "n_groups_with_pairs": sum(c[1] > 0 for c in counts),
        "n_responses": sum(len(s) for s in scores), "feedback": config.feedback,
        "score": "length-normalised log-likelihood (mean log-prob per response token, EOS included)",
        "groups": config.groups, "model": config.model, "adapter": config.adapter,
        "seconds": round(seconds, 1), "seed": config.seed, "config": to_dict(config),
    }
    if not is_main():  # under a launcher every process has all results; one writes them
        return metrics
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "group_scores.jsonl", "".join(
        json.dumps({"id": g["id"], "row": g["row"], "scores": s, "ranks": r,
                    "correct": [x["correct"] for x in g["responses"]], "pairs": n, "pairs_ordered": ok}) + "\n"
        for g, s, r, (ok, n) in zip(groups, scores, ranks, counts)))
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))  # last: it marks the evaluation finished
    return metrics


def headline(m: dict, config: RankingConfig) -> str:
    lo, hi = m["ci95"]
    return (f"pairs ordered right {m['pair_accuracy']:.1%} (95% CI {lo:.1%}-{hi:.1%}, {m['n_pairs']} pairs in "
            f"{m['n_groups_with_pairs']} of {m['n_groups']} groups, seed {m['seed']}), margin {m['margin']:+.3f} "
            f"in {m['seconds']} s -> {config.output}/metrics.json")
