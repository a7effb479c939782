"""Loss values against arithmetic written out by hand (math.exp / math.log on small numbers)."""

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from reasonalign.core.errors import UserError
from reasonalign.losses import (
    LOSSES,
    aft_alignment,
    aft_boundary,
    aft_detached,
    aft_rank,
    boundary_constraint,
    compute_alignment_loss,
    dpo_pairwise,
    dpo_plackett_luce,
    ordering_stats,
    pairs_from_binary,
    pairs_from_ranks,
    pro,
    rrhf,
)

exp, log = math.exp, math.log


def t(rows, requires_grad=False):
    return torch.tensor(rows, dtype=torch.float64, requires_grad=requires_grad)


def neg_logsigmoid(x):
    return log(1 + exp(-x))


# One group: positives s = -1.0, -1.5; negatives s = -2.0, -0.5.
S4 = [[-1.0, -1.5, -2.0, -0.5]]
POS4 = torch.tensor([[True, True, False, False]])
MASK4 = torch.ones(1, 4, dtype=torch.bool)
PAIRS4 = pairs_from_binary(POS4, MASK4)
# Σ_p Σ_n exp(s_n − s_p)
ALIGN4 = exp(-2.0 + 1.0) + exp(-0.5 + 1.0) + exp(-2.0 + 1.5) + exp(-0.5 + 1.5)
# β = 0.5: B = min(-1, -1.5) − 0.5 = -2.0; T = 2B − s_p = -3.0 (p=-1.0), -2.5 (p=-1.5); Σ exp(T − s_n)
BOUND4 = exp(-3.0 + 2.0) + exp(-3.0 + 0.5) + exp(-2.5 + 2.0) + exp(-2.5 + 0.5)


def test_pairs_from_ranks_and_binary():
    rank = torch.tensor([[0, 1, 1, 2]])
    mask = torch.tensor([[True, True, True, False]])
    pairs = pairs_from_ranks(rank, mask)
    assert pairs[0].nonzero().tolist() == [[0, 1], [0, 2]]  # tie (1, 2) forms no pair; slot 3 is padding
    assert PAIRS4[0].nonzero().tolist() == [[0, 2], [0, 3], [1, 2], [1, 3]]


def test_aft_alignment_and_detached_values():
    assert aft_alignment(t(S4), PAIRS4, MASK4).item() == pytest.approx(log(1 + ALIGN4))
    assert aft_detached(t(S4), PAIRS4, MASK4).item() == pytest.approx(log(1 + ALIGN4))


def test_aft_boundary_value():
    loss = aft_boundary(t(S4), PAIRS4, MASK4, beta=0.5)
    assert loss.item() == pytest.approx(log(1 + ALIGN4 + BOUND4))
    # without stop-gradient the value is the same
    assert aft_boundary(t(S4), PAIRS4, MASK4, 0.5, detach_boundary=False).item() == pytest.approx(loss.item())


def test_boundary_constraint_value():
    assert boundary_constraint(t(S4), PAIRS4, MASK4, beta=0.5).item() == pytest.approx(log(1 + BOUND4))


def test_ragged_batch_with_padding_and_group_without_negatives():
    nan, inf = float("nan"), float("inf")
    scores = t([[-1.0, -2.0, -inf], [-0.5, -0.7, -3.0], [-1.0, -1.2, nan]])
    mask = torch.tensor([[True, True, False], [True, True, True], [True, True, False]])
    positive = torch.tensor([[True, False, True], [True, True, True], [False, True, True]])
    pairs = pairs_from_binary(positive, mask)
    g0 = log(1 + exp(-2.0 + 1.0))  # p=-1.0, n=-2.0
    g2 = log(1 + exp(-1.0 + 1.2))  # p=-1.2, n=-1.0; group 1 (all positive) does not count
    assert aft_alignment(scores, pairs, mask).item() == pytest.approx((g0 + g2) / 2)
    # β = 0.5, boundary: group 0 B=-1.5, T=2B−s_p=-2.0; group 2 B=-1.7, T=-2.2
    b0 = log(1 + exp(-2.0 + 1.0) + exp(-2.0 + 2.0))
    b2 = log(1 + exp(-1.0 + 1.2) + exp(-2.2 + 1.0))
    assert aft_boundary(scores, pairs, mask, 0.5).item() == pytest.approx((b0 + b2) / 2)
    assert rrhf(scores, pairs, mask).item() == pytest.approx((0.0 + (-1.0 + 1.2)) / 2)


def test_aft_detached_gives_no_gradient_to_negatives():
    s = t(S4, requires_grad=True)
    aft_detached(s, PAIRS4, MASK4).backward()
    assert s.grad[0, 2:].tolist() == [0.0, 0.0]
    assert (s.grad[0, :2] < 0).all()  # positives are pushed up


@pytest.mark.parametrize("detach", [True, False])
def test_aft_boundary_gradient_vanishes_at_the_boundary(detach):
    # one pair: s_p = -1.0, β = 0.5 -> B = -1.5; put s_n exactly there
    s = t([[-1.0, -1.5]], requires_grad=True)
    pairs = pairs_from_binary(torch.tensor([[True, False]]), torch.ones(1, 2, dtype=torch.bool))
    aft_boundary(s, pairs, torch.ones(1, 2, dtype=torch.bool), 0.5, detach).backward()
    assert s.grad[0, 1].item() == pytest.approx(0.0, abs=1e-12)
    # same with two positives and two negatives: B = -2.0 for both negatives
    s = t([[-1.0, -1.5, -2.0, -2.0]], requires_grad=True)
    aft_boundary(s, PAIRS4, MASK4, 0.5, detach).backward()
    assert s.grad[0, 2:].tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    # above the boundary the negative is pushed down (positive gradient), below it is pulled up
    for s_n, sign in [(-1.2, 1), (-1.8, -1)]:
        s = t([[-1.0, s_n]], requires_grad=True)
        aft_boundary(s, pairs, torch.ones(1, 2, dtype=torch.bool), 0.5, detach).backward()
        assert sign * s.grad[0, 1].item() > 0


def test_aft_rank_value_and_boundary_per_response():
    # c0 ≻ c1 ≻ c2, s = -1.0, -1.5, -1.2, β = 0.5: B_1 = -1.0 − 0.5 = -1.5, B_2 = min(-1.0, -1.5) − 0.5 = -2.0
    s = t([[-1.0, -1.5, -1.2]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    pairs = pairs_from_ranks(torch.tensor([[0, 1, 2]]), mask)
    expected = log(
        1
        + exp(-1.5 + 1.0) + exp((2 * -1.5 + 1.0) + 1.5)  # (0, 1): T = 2B_1 − s_0 = -2.0
        + exp(-1.2 + 1.0) + exp((2 * -2.0 + 1.0) + 1.2)  # (0, 2): T = 2B_2 − s_0 = -3.0
        + exp(-1.2 + 1.5) + exp((2 * -2.0 + 1.5) + 1.2)  # (1, 2): T = 2B_2 − s_1 = -2.5
    )
    assert aft_rank(s, pairs, mask, 0.5).item() == pytest.approx(expected)


def test_aft_rank_reduces_to_aft_boundary_under_binary_feedback():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(5, 6, generator=g, dtype=torch.float64)
    mask = torch.rand(5, 6, generator=g) > 0.2
    positive = torch.rand(5, 6, generator=g) > 0.5
    pairs = pairs_from_binary(positive, mask)
    for detach in (True, False):
        a = scores.clone().requires_grad_()
        b = scores.clone().requires_grad_()
        la, lb = aft_boundary(a, pairs, mask, 0.3, detach), aft_rank(b, pairs, mask, 0.3, detach)
        la.backward()
        lb.backward()
        assert la.item() == pytest.approx(lb.item())
        assert torch.allclose(a.grad, b.grad)


def test_dpo_pairwise_value_with_ties():
    # implicit log-ratios π − ref = 1, -1, 0; β = 0.1; rank 0, 1, 1 -> pairs (0, 1), (0, 2)
    pol, ref = t([[-10.0, -12.0, -11.0]]), t([[-11.0, -11.0, -11.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    pairs = pairs_from_ranks(torch.tensor([[0, 1, 1]]), mask)
    expected = (neg_logsigmoid(0.1 * (1 - -1)) + neg_logsigmoid(0.1 * (1 - 0))) / 2
    assert dpo_pairwise(pol, ref, pairs, mask, 0.1).item() == pytest.approx(expected)


def test_dpo_pairwise_matches_trl_sigmoid_loss():
    """Run TRL 1.16's own DPOTrainer._compute_loss (trl/trainer/dpo_trainer.py, loss_type "sigmoid")
    on a stub trainer whose model returns the given summed log-probs, with precomputed ref log-probs."""
    DPOTrainer = pytest.importorskip("trl.trainer.dpo_trainer").DPOTrainer
    g = torch.Generator().manual_seed(1)
    pol = -10 * torch.rand(2, 4, generator=g, dtype=torch.float64)
    ref = -10 * torch.rand(2, 4, generator=g, dtype=torch.float64)
    positive = torch.tensor([[True, False, True, False], [False, True, False, True]])  # 4 pairs per group
    mask = torch.ones(2, 4, dtype=torch.bool)
    pairs = pairs_from_binary(positive, mask)
    ours = dpo_pairwise(pol, ref, pairs, mask, 0.1)

    g_idx, w_idx, l_idx = pairs.nonzero(as_tuple=True)
    logps = torch.cat([pol[g_idx, w_idx], pol[g_idx, l_idx]])  # TRL batch layout: [chosen..., rejected...]
    n = logps.shape[0]
    outputs = SimpleNamespace(
        log_probs=logps[:, None],  # one completion token per sequence: its log-prob is the sum
        entropy=torch.zeros(n, 1),
        mean_logits=torch.zeros(n, 1),
        is_top1=torch.zeros(n, 1, dtype=torch.bool),
    )
    inputs = {
        "input_ids": torch.zeros(n, 2, dtype=torch.long),
        "attention_mask": torch.ones(n, 2, dtype=torch.long),
        "completion_mask": torch.ones(n, 2, dtype=torch.long),
        "ref_chosen_logps": ref[g_idx, w_idx],
        "ref_rejected_logps": ref[g_idx, l_idx],
    }
    stub = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=SimpleNamespace(device="cpu", gather=lambda x: x, gather_for_metrics=lambda x: x),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=["sigmoid"],
        loss_weights=[1.0],
        beta=0.1,
        use_weighting=False,
        _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0,
        _tp_size=1,
    )
    theirs = DPOTrainer._compute_loss(stub, lambda **kwargs: outputs, inputs, return_outputs=False)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)


def test_plackett_luce_values_and_ties():
    pol, ref = t([[-10.0, -12.0, -11.0]]), t([[-11.0, -11.0, -11.0]])  # r = β(π − ref) = 0.1, -0.1, 0.0
    mask = torch.ones(1, 3, dtype=torch.bool)
    strict = -(0.1 - log(exp(0.1) + exp(-0.1) + exp(0.0))) - (-0.1 - log(exp(-0.1) + exp(0.0)))
    assert dpo_plackett_luce(pol, ref, torch.tensor([[0, 1, 2]]), mask, 0.1).item() == pytest.approx(strict)
    # ties (1, 2): each competes only with itself and what is strictly below it -> only response 0 counts
    tied = -(0.1 - log(exp(0.1) + exp(-0.1) + exp(0.0)))
    assert dpo_plackett_luce(pol, ref, torch.tensor([[0, 1, 1]]), mask, 0.1).item() == pytest.approx(tied)
    # all tied: no pair, no loss
    assert dpo_plackett_luce(pol, ref, torch.tensor([[0, 0, 0]]), mask, 0.1).item() == 0.0


def test_plackett_luce_with_two_responses_equals_pairwise_dpo():
    g = torch.Generator().manual_seed(2)
    pol = -10 * torch.rand(4, 2, generator=g, dtype=torch.float64)
    ref = -10 * torch.rand(4, 2, generator=g, dtype=torch.float64)
    rank = torch.tensor([[0, 1], [1, 0], [0, 1], [1, 0]])
    mask = torch.ones(4, 2, dtype=torch.bool)
    pl = dpo_plackett_luce(pol, ref, rank, mask, 0.2)
    assert pl.item() == pytest.approx(dpo_pairwise(pol, ref, pairs_from_ranks(rank, mask), mask, 0.2).item())


def test_rrhf_values_and_ties():
    s = t([[-2.0, -1.0, -1.5]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    # c0 ≻ c1 ≻ c2: max(0, -1 + 2) + max(0, -1.5 + 2) + max(0, -1.5 + 1)
    assert rrhf(s, pairs_from_ranks(torch.tensor([[0, 1, 2]]), mask), mask).item() == pytest.approx(1.0 + 0.5 + 0.0)
    # tie between c1 and c2 removes their pair only
    s2 = t([[-2.0, -1.0, -0.5]])
    assert rrhf(s2, pairs_from_ranks(torch.tensor([[0, 1, 1]]), mask), mask).item() == pytest.approx(1.0 + 1.5)


def test_pro_values_and_ties():
    s = t([[-1.0, -2.0, -1.5]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    # order by rank: c0 (-1.0), c2 (-1.5), c1 (-2.0)
    expected = -(-1.0 - log(exp(-1.0) + exp(-1.5) + exp(-2.0))) - (-1.5 - log(exp(-1.5) + exp(-2.0)))
    assert pro(s, torch.tensor([[0, 2, 1]]), mask).item() == pytest.approx(expected)
    # c0 and c2 tied at the top: each competes with itself and c1
    tied = -(-1.0 - log(exp(-1.0) + exp(-2.0))) - (-1.5 - log(exp(-1.5) + exp(-2.0)))
    assert pro(s, torch.tensor([[0, 1, 0]]), mask).item() == pytest.approx(tied)


def _batch(seed=3):
    """Two groups with padding holding garbage, plus one all-positive group."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False], [True, True, True, True]])
    rank = torch.tensor([[0, 2, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    garbage = torch.tensor([float("-inf"), float("nan"), float("inf")])

    def padded(x):
        x = x.clone()
        x[~mask] = garbage[torch.arange(int((~mask).sum())) % 3].to(x.dtype)
        return x.requires_grad_()

    scores = padded(-torch.rand(3, 4, generator=g, dtype=torch.float64))
    pol = padded(-10 * torch.rand(3, 4, generator=g, dtype=torch.float64))
    ref = -10 * torch.rand(3, 4, generator=g, dtype=torch.float64)
    ref[~mask] = float("nan")
    return scores, pol, ref, rank, mask


@pytest.mark.parametrize(
    "name, constraint",
    [(n, None) for n in LOSSES if n != "rft"] + [(n, "boundary") for n in LOSSES if n not in ("aft-bc", "aft-rank")],
)
def test_masked_slots_are_finite_and_get_zero_gradient(name, constraint):
    scores, pol, ref, rank, mask = _batch()
    loss = compute_alignment_loss(
        name, scores=scores, mask=mask, rank=rank, beta=0.5, constraint=constraint, constraint_beta=0.5,
        detach_boundary=False, policy_logps=pol, ref_logps=ref,
    )
    loss.backward()
    assert torch.isfinite(loss)
    for x in (scores, pol):
        if x.grad is not None:
            assert torch.isfinite(x.grad).all()
            assert (x.grad[~mask] == 0).all()
    assert loss.item() > 0


@pytest.mark.parametrize("name", list(LOSSES))
def test_batch_without_any_pair_gives_zero_loss_that_backpropagates(name):
    scores = t([[-1.0, -2.0], [-0.5, -0.7]], requires_grad=True)
    pol = t([[-10.0, -12.0], [-9.0, -8.0]], requires_grad=True)
    ref = t([[-11.0, -11.0], [-11.0, -11.0]])
    mask = torch.tensor([[True, True], [True, False]])
    positive = torch.tensor([[True, True], [False, False]])  # all positive / all negative
    loss = compute_alignment_loss(
        name, scores=scores, mask=mask, positive=positive, beta=0.5, policy_logps=pol, ref_logps=ref
    )
    assert loss.item() == 0.0
    assert loss.grad_fn is not None
    loss.backward()
    for x in (scores, pol):
        assert x.grad is None or (x.grad == 0).all()


def test_rft_has_no_ordering_term():
    """Rejection-sampling fine-tuning: the alignment term is exactly 0 with zero gradient (its trainer keeps only
    the likelihood of the correct responses), also beside NaN in masked slots."""
    scores, pol, ref, rank, mask = _batch()
    loss = compute_alignment_loss("rft", scores=scores, mask=mask, rank=rank)
    loss.backward()
    assert loss.item() == 0.0 and (scores.grad == 0).all()


def test_dispatcher_adds_constraint_and_validates():
    pol, ref = t([[-10.0, -12.0, -11.0, -9.0]]), t([[-11.0, -11.0, -11.0, -11.0]])
    kw = dict(scores=t(S4), mask=MASK4, positive=POS4)
    loss = compute_alignment_loss("dpo", **kw, beta=0.1, constraint="boundary", constraint_beta=0.5,
                                  policy_logps=pol, ref_logps=ref)
    assert loss.item() == pytest.approx(dpo_pairwise(pol, ref, PAIRS4, MASK4, 0.1).item() + log(1 + BOUND4))
    assert compute_alignment_loss("aft-bc", **kw, beta=0.5).item() == pytest.approx(log(1 + ALIGN4 + BOUND4))
    # binary feedback given as ranks is the same thing
    rank = (~POS4).long()
    assert compute_alignment_loss("pro", scores=t(S4), mask=MASK4, rank=rank).item() == pytest.approx(
        compute_alignment_loss("pro", **kw).item()
    )
    with pytest.raises(UserError):
        compute_alignment_loss("nope", **kw)
    with pytest.raises(UserError):
        compute_alignment_loss("aft-bc", **kw)  # no beta
    with pytest.raises(UserError):
        compute_alignment_loss("aft-bc", **kw, beta=0.5, constraint="boundary", constraint_beta=0.5)
    with pytest.raises(UserError):
        compute_alignment_loss("rrhf", **kw, constraint="boundary")  # no constraint_beta
    with pytest.raises(ValueError):
        compute_alignment_loss("dpo", **kw, beta=0.1)  # no log-probs
    with pytest.raises(ValueError):
        compute_alignment_loss("aft", scores=t(S4), mask=MASK4)  # no feedback


def test_ordering_stats():
    stats = ordering_stats(t(S4), PAIRS4, MASK4)
    assert stats["score_pos"] == pytest.approx((-1.0 - 1.5) / 2)
    assert stats["score_neg"] == pytest.approx((-2.0 - 0.5) / 2)
    # pairs (p, n): -1 − -2 = 1, -1 − -0.5 = -0.5, -1.5 − -2 = 0.5, -1.5 − -0.5 = -1
    assert stats["margin"] == pytest.approx((1.0 - 0.5 + 0.5 - 1.0) / 4)
    assert stats["pair_accuracy"] == pytest.approx(2 / 4)
    assert stats["n_pairs"] == 4
    empty = ordering_stats(t([[-1.0, -2.0]]), torch.zeros(1, 2, 2, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool))
    assert empty["n_pairs"] == 0 and math.isnan(empty["margin"])


# --------------------------------------------------------------------------- SFT: label and reason


def test_label_reason_loss_value_and_reduction():
    """Per-sequence means of the label and of the reason tokens, weighted, then averaged over sequences."""
    from reasonalign.losses import label_reason_loss

    nll = torch.tensor([1.0, 2.0, 4.0, 0.5, 2.5, 3.0], requires_grad=True)
    row = torch.tensor([0, 0, 0, 1, 1, 1])
    is_label = torch.tensor([True, False, False, True, True, False])
    loss = label_reason_loss(nll, row, is_label, 2, 0.25)
    # seq 0: 0.25 * 1.0 + 0.75 * mean(2, 4) = 2.5; seq 1: 0.25 * mean(0.5, 2.5) + 0.75 * 3.0 = 2.625
    assert loss.item() == pytest.approx((2.5 + 2.625) / 2)
    loss.backward()
    # d/d nll: seq 0 label 0.25/1/2, reasons 0.75/2/2 each; seq 1 labels 0.25/2/2 each, reason 0.75/2
    assert nll.grad.tolist() == pytest.approx([0.125, 0.1875, 0.1875, 0.0625, 0.0625, 0.375])


def test_label_reason_loss_extremes_and_a_sequence_without_reason():
    from reasonalign.losses import label_reason_loss

    nll = torch.tensor([1.0, 3.0, 5.0, 2.0])
    row = torch.tensor([0, 0, 0, 1])
    is_label = torch.tensor([True, False, False, True])  # sequence 1 was truncated to its label
    assert label_reason_loss(nll, row, is_label, 2, 1.0).item() == pytest.approx((1.0 + 2.0) / 2)
    assert label_reason_loss(nll, row, is_label, 2, 0.0).item() == pytest.approx((4.0 + 0.0) / 2)
    # a token mean would weigh the label 1 in 4 here; alpha 0.5 weighs it as much as the whole reason
    assert label_reason_loss(nll, row, is_label, 2, 0.5).item() == pytest.approx((0.5 * 1 + 0.5 * 4 + 0.5 * 2) / 2)
