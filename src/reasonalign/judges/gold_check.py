"""Human reasons that cannot serve as gold: written for another statement, or arguing the other label.

MAR compares a model's reason with the row's human reason, so a wrong gold reason makes a good reason
look misaligned. Careful reading of DFAR test found both kinds (a reason about scrambled eggs under a
statement about blue jeans; "... is an ethical decision" under the label *unethical*). Two checks, each
reported per row so a reader can confirm it:

- `other_statement`: the reason's MiniLM embedding is closer to at least `min_rank` other statements of
  the data than to its own, and its cosine with its own statement is below `max_cosine`;
- `argues_other_label`: a stance classifier of human reasons (reference.stance_classifier) gives the row's
  label less than `min_stance`, or the reason claims the other verdict in so many words
  (reference.verdict_claims) and the classifier gives the label less than an even chance.

The stance classifier is fitted on `pool` (e.g. DFAR train for DFAR test) or, without one, on the checked
data itself out of fold (5-fold), so no row is judged by a model that saw it.
"""

from dataclasses import dataclass

import numpy as np

from reasonalign.judges.reference import embed, load_minilm, stance_classifier, verdict_claims


@dataclass(frozen=True)
class GoldCheckConfig:
    min_rank: int = 10
    max_cosine: float = 0.3
    min_stance: float = 0.1


def check_gold_reasons(examples: list, pool: list[tuple[int, str]] | None = None,
                       config: GoldCheckConfig = GoldCheckConfig(), encoder=None) -> list[dict]:
    """One record per example with a reason: row, label, statement, reason, `flags` (empty = usable as gold)
    and the numbers behind them. `examples` have row, label, statement, reason; `pool`: (label, reason)."""
    rows = [ex for ex in examples if ex.reason]
    if not rows:
        return []
    reasons, labels = [ex.reason for ex in rows], np.array([ex.label for ex in rows])
    if pool:
        stance = stance_classifier().fit([r for _, r in pool], [y for y, _ in pool]).predict_proba(reasons)
    else:
        from sklearn.model_selection import cross_val_predict

        stance = cross_val_predict(stance_classifier(), reasons, labels, cv=5, method="predict_proba")
    own_label = stance[np.arange(len(rows)), labels]
    vecs = embed(encoder or load_minilm(), reasons + [ex.statement for ex in rows])
    to_statements = vecs[: len(rows)] @ vecs[len(rows):].T
    own = np.diag(to_statements)
    closer = (to_statements > own[:, None]).sum(axis=1)
    out = []
    for k, ex in enumerate(rows):
        claims = verdict_claims(ex.reason)
        claims_other = bool(claims) and sum(c != ex.label for c in claims) > len(claims) / 2
        flags = []
        if closer[k] >= config.min_rank and own[k] < config.max_cosine:
            flags.append("other_statement")
        if own_label[k] < config.min_stance or (claims_other and own_label[k] < 0.5):
            flags.append("argues_other_label")
        out.append({"row": ex.row, "label": int(ex.label), "statement": ex.statement, "reason": ex.reason,
                    "flags": flags, "statements_closer": int(closer[k]), "cosine_own_statement": round(float(own[k]), 3),
                    "stance_own_label": round(float(own_label[k]), 3), "verdict_claims": claims})
    return out
