"""The training losses: group-wise alignment losses (AFT, Wang et al., 2023, and the comparison
losses DPO, RRHF, PRO) and, at the end, the label-and-reason SFT loss.

Conventions (every loss in this module):

- A batch holds G prompts ("groups"), each with up to K sampled responses, as padded tensors:
  ``scores`` float [G, K] is the per-response score, normally the length-normalised
  log-likelihood ``s(c) = (1/|c|) Σ_j log P(c_j | c_<j, q)`` (computed by the trainer);
  ``mask`` bool [G, K] marks the slots that hold a real response (groups are ragged).
- Feedback is one pair tensor ``pairs`` bool [G, K, K]: ``pairs[g, i, j]`` is True when response
  i is strictly better than response j. Build it with :func:`pairs_from_ranks` (lower rank =
  better, equal ranks are ties and form no pair) or :func:`pairs_from_binary` (binary feedback is
  the special case rank 0 for positives, 1 for negatives). The listwise losses (PRO,
  Plackett–Luce) take ``rank`` itself.
- Reduction: each loss is computed per group, then averaged over the groups that have at least
  one pair. Groups without a pair (all positive, all negative, all tied, a single response)
  contribute nothing: they are neither in the numerator nor in the denominator. The sampler keeps
  such groups (their positives still feed the trainer's likelihood/SFT term), so a batch may have
  none with a pair: the loss is then an exact 0 that is still computed from ``scores``, so it has
  a grad_fn (when ``scores`` requires grad), ``backward()`` works and every gradient is 0.
- Padded slots may hold anything (-inf, NaN): they are replaced by 0 before any arithmetic and
  excluded from every sum, so they produce no NaN/inf in the forward pass and get a 0 gradient.
- The ``log(1 + Σ exp(x))`` forms are computed as ``logsumexp([0, x...])``.
- The SFT / cross-entropy term on positives (AFT) or on the best response (RRHF, PRO) is NOT in
  this module: the trainer adds it with its own, configurable weight.

Unverified points of the paper (docs/methods.md §2) and the choices made here are marked "Choice:".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reasonalign.core.errors import UserError
from reasonalign.loss_table import LOSS_TABLE

# --------------------------------------------------------------------------- feedback -> pairs


def pairs_from_ranks(rank: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """bool [G, K, K]: ``pairs[g, i, j]`` = both slots real and ``rank[g, i] < rank[g, j]``.

    Lower rank = better; equal ranks are ties and form no pair.
    """
    valid = mask[:, :, None] & mask[:, None, :]
    return (rank[:, :, None] < rank[:, None, :]) & valid


def pairs_from_binary(positive: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """bool [G, K, K]: every (positive i, negative j) of a group; binary = rank 0 / rank 1."""
    return pairs_from_ranks((~positive).long(), mask)


# --------------------------------------------------------------------------- shared pieces


def _prepare(scores: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor):
    """Zero the padded slots (no NaN/inf can leak, their gradient is 0) and restrict pairs to real slots."""
    scores = scores.masked_fill(~mask, 0.0)
    pairs = pairs & mask[:, :, None] & mask[:, None, :]
    return scores, pairs


def _group_mean(per_group: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Mean of per_group [G] over the groups with at least one pair (0 with a grad_fn if none)."""
    has_pair = pairs.flatten(1).any(dim=1).to(per_group.dtype)
    return (per_group * has_pair).sum() / has_pair.sum().clamp(min=1.0)


def _log1p_sum_exp(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``log(1 + Σ_{valid} exp(logits))`` per group: logits, valid [G, ...] -> [G]."""
    logits = logits.flatten(1).masked_fill(~valid.flatten(1), float("-inf"))
    zero = logits.new_zeros(logits.shape[0], 1)
    return torch.logsumexp(torch.cat([zero, logits], dim=1), dim=1)


def _boundary_logits(s: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """[G, i, j] = ``T_ij − s_j`` with ``T_ij = 2 B_j − s_i``, boundary [G, K] indexed by the worse j."""
    return 2 * boundary[:, None, :] - s[:, :, None] - s[:, None, :]


def _rank_boundary(s: torch.Tensor, pairs: torch.Tensor, beta: float, detach: bool) -> torch.Tensor:
    """[G, K]: ``B_j = min_{i ranked above j} s_i − β`` (0 where j is worse in no pair; never used there)."""
    above = s[:, :, None].expand_as(pairs).masked_fill(~pairs, float("inf"))
    boundary = torch.where(pairs.any(dim=1), above.amin(dim=1) - beta, torch.zeros_like(s))
    return boundary.detach() if detach else boundary


def _listwise_nll(r: torch.Tensor, rank: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Plackett–Luce negative log-likelihood per group [G]: ``−Σ_k log(exp(r_k) / Σ_{i≥k} exp(r_i))``.

    Choice (ties): response k competes against itself and the responses ranked strictly below it,
    never against the responses tied with it. Without ties this is exactly the sum above over the
    sorted list; it is symmetric in tied responses (no arbitrary order), the last tie block
    contributes 0 like the last response does, and an all-tied group gives 0 (ties form no pair).
    """
    r = r.masked_fill(~mask, 0.0)
    below = pairs_from_ranks(rank, mask)  # below[g, k, i]: i ranked strictly below k
    self_ = torch.eye(r.shape[1], dtype=torch.bool, device=r.device)
    competitors = below | self_  # [G, k, i]
    denom = torch.logsumexp(r[:, None, :].expand_as(competitors).masked_fill(~competitors, float("-inf")), dim=2)
    return torch.where(mask, denom - r, torch.zeros_like(r)).sum(dim=1)


# --------------------------------------------------------------------------- AFT (Wang et al., 2023)


def aft_alignment(scores: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Alignment only: ``L_A = log(1 + Σ_{p∈G_P} Σ_{n∈G_N} exp(s_n − s_p))``."""
    s, pairs = _prepare(scores, pairs, mask)
    logits = s[:, None, :] - s[:, :, None]  # [g, p, n] = s_n − s_p
    return _group_mean(_log1p_sum_exp(logits, pairs), pairs)


def aft_detached(scores: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Detached constraint: ``L_DC = log(1 + Σ_p Σ_n exp(sg(s_n) − s_p))``; negatives are not pushed down."""
    s, pairs = _prepare(scores, pairs, mask)
    logits = s.detach()[:, None, :] - s[:, :, None]
    return _group_mean(_log1p_sum_exp(logits, pairs), pairs)


def aft_boundary(
    scores: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor, beta: float, detach_boundary: bool = True
) -> torch.Tensor:
    """Boundary constraint: ``L_BC = log(1 + Σ_p Σ_n [exp(s_n − s_p) + exp(T − s_n)])``,

    ``B = min_{p∈G_P} s_p − β``, ``T = 2B − s_p``. Then ``∂L/∂s_n ∝ Σ_p e^{−s_p} (e^{s_n} − e^{2B − s_n})``,
    which vanishes at ``s_n = B``: negatives are pushed down only to the boundary.
    Meant for binary feedback: G_P = the responses that are better in some pair (for ranking
    feedback use :func:`aft_rank`, which equals this under binary feedback).
    Choice: ``detach_boundary=True`` stops the gradient through B (s_p inside T keeps its gradient).
    """
    s, pairs = _prepare(scores, pairs, mask)
    is_pos = pairs.any(dim=2)
    b = s.masked_fill(~is_pos, float("inf")).amin(dim=1, keepdim=True) - beta  # [G, 1]
    b = torch.where(is_pos.any(dim=1, keepdim=True), b, torch.zeros_like(b))
    b = (b.detach() if detach_boundary else b).expand_as(s)
    logits = torch.cat([(s[:, None, :] - s[:, :, None]).flatten(1), _boundary_logits(s, b).flatten(1)], dim=1)
    return _group_mean(_log1p_sum_exp(logits, torch.cat([pairs.flatten(1)] * 2, dim=1)), pairs)


def aft_rank(
    scores: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor, beta: float, detach_boundary: bool = True
) -> torch.Tensor:
    """Boundary constraint for ranking feedback (c_1 ≻ c_2 ≻ … ≻ c_k):

    ``L = log(1 + Σ_{(i≻j)} [exp(s_j − s_i) + exp(T_ij − s_j)])``, ``B_j = min_{i≻j} s_i − β``,
    ``T_ij = 2 B_j − s_i``. Choice (the paper's exact form is unverified): every ordered pair
    (better i, worse j) acts as (p, n) and j's boundary comes from the responses ranked above it;
    the gradient on s_j from the pairs where j is the worse one still vanishes at ``s_j = B_j``.
    Under binary feedback B_j = min_p s_p − β for every negative: exactly :func:`aft_boundary`.
    """
    s, pairs = _prepare(scores, pairs, mask)
    b = _rank_boundary(s, pairs, beta, detach_boundary)
    logits = torch.cat([(s[:, None, :] - s[:, :, None]).flatten(1), _boundary_logits(s, b).flatten(1)], dim=1)
    return _group_mean(_log1p_sum_exp(logits, torch.cat([pairs.flatten(1)] * 2, dim=1)), pairs)


def boundary_constraint(
    scores: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor, beta: float, detach_boundary: bool = True
) -> torch.Tensor:
    """The constraint alone, to ADD to rrhf / pro / dpo: ``log(1 + Σ_{(i≻j)} exp(T_ij − s_j))``.

    B_j and T_ij as in :func:`aft_rank` (so with binary feedback ``B = min_p s_p − β``, ``T = 2B − s_p``).
    Choice (unverified in the paper): a separate ``log(1 + Σ exp(T − s_n))`` term, so the base loss
    keeps its own form; it acts on the scores s (length-normalised log-likelihoods) even for DPO.
    Alone it only pushes scores up; added to a loss that pushes negatives down it stops them near B.
    """
    s, pairs = _prepare(scores, pairs, mask)
    b = _rank_boundary(s, pairs, beta, detach_boundary)
    return _group_mean(_log1p_sum_exp(_boundary_logits(s, b), pairs), pairs)


# --------------------------------------------------------------------------- comparison losses


def dpo_pairwise(
    policy_logps: torch.Tensor, ref_logps: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """DPO on every pair of the group: ``−log σ(β[(π_w − ref_w) − (π_l − ref_l)])``.

    ``policy_logps`` / ``ref_logps`` [G, K] are SUMMED response log-probs (as in TRL), not the
    length-normalised scores. Mean over the pairs of a group, then over groups, so a group with
    many pairs does not outweigh the others (equals TRL's batch mean when all groups have one pair).
    """
    logratio, pairs = _prepare(policy_logps - ref_logps, pairs, mask)
    per_pair = -F.logsigmoid(beta * (logratio[:, :, None] - logratio[:, None, :]))
    per_pair = torch.where(pairs, per_pair, torch.zeros_like(per_pair))
    n_pairs = pairs.flatten(1).sum(dim=1).clamp(min=1)
    return _group_mean(per_pair.flatten(1).sum(dim=1) / n_pairs, pairs)


def dpo_plackett_luce(
    policy_logps: torch.Tensor, ref_logps: torch.Tensor, rank: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """Listwise DPO: Plackett–Luce NLL of the ranking under implicit rewards ``r = β(π − ref)``,

    ``−Σ_k log(exp(r_k) / Σ_{i≥k} exp(r_i))`` over responses sorted by rank (summed log-probs, as
    :func:`dpo_pairwise`); ties as in the PL helper (tied responses never compete with each other).
    With K=2 it is exactly pairwise DPO.
    """
    r = beta * (policy_logps - ref_logps)  # padded slots are zeroed in _listwise_nll
    return _group_mean(_listwise_nll(r, rank, mask), pairs_from_ranks(rank, mask))


def rrhf(scores: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RRHF ranking term: ``Σ_{(i≻j)} max(0, s_j − s_i)`` (sum over the pairs of a group).

    The cross-entropy term on the best response is added by the trainer.
    """
    s, pairs = _prepare(scores, pairs, mask)
    hinge = torch.relu(s[:, None, :] - s[:, :, None])
    return _group_mean(torch.where(pairs, hinge, torch.zeros_like(hinge)).flatten(1).sum(dim=1), pairs)


def pro(scores: torch.Tensor, rank: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PRO: ``−Σ_k log(exp(r_k) / Σ_{i≥k} exp(r_i))`` over responses sorted by rank, r = scores.

    Ties as in the Plackett–Luce helper. The SFT term on the best response is added by the trainer.
    """
    return _group_mean(_listwise_nll(scores, rank, mask), pairs_from_ranks(rank, mask))


def rft(scores: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rejection-sampling fine-tuning: no ordering term at all. With the trainer's likelihood term on the
    correct responses (`sft_weight`) this is "VFT continued on its own correct samples", the fair baseline
    for "more training" that every alignment loss must beat. Zero, but attached to the graph (masked slots
    may hold NaN, so they are zeroed first rather than multiplied)."""
    return torch.where(mask, scores, 0).sum() * 0


# --------------------------------------------------------------------------- registry, dispatcher, stats

# What each loss needs (feedback form, reference, β, built-in boundary) is in the torch-free `loss_table`.
LOSSES = {name: globals()[spec.function] for name, spec in LOSS_TABLE.items()}
CONSTRAINTS = {"boundary": boundary_constraint}


def compute_alignment_loss(
    name: str,
    *,
    scores: torch.Tensor,
    mask: torch.Tensor,
    positive: torch.Tensor | None = None,
    rank: torch.Tensor | None = None,
    beta: float | None = None,
    constraint: str | None = None,
    constraint_beta: float | None = None,
    detach_boundary: bool = True,
    policy_logps: torch.Tensor | None = None,
    ref_logps: torch.Tensor | None = None,
) -> torch.Tensor:
    """The trainer's single call site: ``LOSSES[name]`` (+ ``CONSTRAINTS[constraint]``) on one batch.

    Feedback: exactly one of ``positive`` (binary) or ``rank``. ``beta`` is the loss's own β (the
    boundary margin of aft-bc / aft-rank, the DPO temperature of dpo / dpo-pl); ``constraint_beta``
    is the margin of the added constraint; they are separate because their scales differ.
    The arguments each loss takes follow from its `LOSS_TABLE` entry.
    """
    if name not in LOSSES:
        raise UserError(f"unknown alignment loss {name!r}; choose from {', '.join(LOSSES)}")
    spec = LOSS_TABLE[name]
    if (positive is None) == (rank is None):
        raise ValueError("give exactly one of positive= (binary feedback) or rank= (ranking feedback)")
    if rank is None:
        rank = (~positive).long()
    pairs = pairs_from_ranks(rank, mask)
    if spec.needs_beta and beta is None:
        raise UserError(f"alignment loss {name!r} needs beta")

    if spec.reference:
        if policy_logps is None or ref_logps is None:
            raise ValueError(f"{name!r} needs policy_logps= and ref_logps= (summed response log-probs)")
        args = [policy_logps, ref_logps]
    else:
        args = [scores]
    args += [rank if spec.feedback == "rank" else pairs, mask]
    args += [beta] if spec.needs_beta else []
    args += [detach_boundary] if spec.boundary else []
    loss = LOSSES[name](*args)

    if constraint is not None:
        if constraint not in CONSTRAINTS:
            raise UserError(f"unknown constraint {constraint!r}; choose from {', '.join(CONSTRAINTS)}")
        if spec.boundary:
            raise UserError(f"{name!r} already contains the boundary constraint")
        if constraint_beta is None:
            raise UserError("a constraint needs constraint_beta")
        loss = loss + CONSTRAINTS[constraint](scores, pairs, mask, constraint_beta, detach_boundary)
    return loss


@torch.no_grad()
def ordering_stats(scores: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Logging / "assessment alignment": does the score order the responses like the feedback does?

    ``score_pos`` / ``score_neg``: mean score of the responses that are better / worse in at least
    one pair (under ranking feedback a middle response counts in both); ``margin``: mean
    ``s_better − s_worse`` over pairs; ``pair_accuracy``: share of pairs with ``s_better > s_worse``;
    ``n_pairs``. NaN where there is nothing to average.
    """
    s, pairs = _prepare(scores.float(), pairs, mask)
    nan = float("nan")
    is_pos, is_neg = pairs.any(dim=2), pairs.any(dim=1)
    diff = (s[:, :, None] - s[:, None, :])[pairs]
    n = int(diff.numel())
    return {
        "score_pos": s[is_pos].mean().item() if is_pos.any() else nan,
        "score_neg": s[is_neg].mean().item() if is_neg.any() else nan,
        "margin": diff.mean().item() if n else nan,
        "pair_accuracy": (diff > 0).float().mean().item() if n else nan,
        "n_pairs": n,
    }


# --------------------------------------------------------------------------- SFT: label and reason as two tasks


def label_reason_loss(token_nll: torch.Tensor, row: torch.Tensor, is_label: torch.Tensor, n_rows: int,
                      label_weight: float) -> torch.Tensor:
    """α · L_label + (1 − α) · L_reason, each a per-sequence mean, averaged over the n_rows sequences.

    ``token_nll`` [M] is the NLL of every answer token of the batch, ``row`` [M] its sequence and
    ``is_label`` [M] whether it spells the label. A token mean over an L+R answer gives its one
    label word ~1% of the gradient (~80 reason tokens follow); the two-task form of distilling
    step-by-step (Hsieh et al., 2023) weighs the label as much as the whole reason at α = 0.5.
    Choice: a sequence without label (or reason) tokens, e.g. one truncated by --max-length,
    adds 0 for that term rather than being dropped.
    """
    def per_row_mean(keep):
        total = token_nll.new_zeros(n_rows).index_add(0, row[keep], token_nll[keep])
        count = token_nll.new_zeros(n_rows).index_add(0, row[keep], torch.ones_like(token_nll[keep]))
        return total / count.clamp(min=1)

    per_row = label_weight * per_row_mean(is_label) + (1 - label_weight) * per_row_mean(~is_label)
    return per_row.mean()
