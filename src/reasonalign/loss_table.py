"""What each alignment loss needs, in one torch-free table: read by `losses.compute_alignment_loss`
(which arguments to pass), the align trainer (a reference model? the boundary built in?) and
`align/config.py` (the `--loss` choices, help and default β), which builds `--help` without torch.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class LossSpec:
    function: str  # its name in `reasonalign.losses`
    feedback: str  # "pairs": the (better, worse) pair tensor; "rank": the ranks themselves (listwise)
    blurb: str = ""  # what `--loss` help says about it
    reference: bool = False  # needs the reference model's summed log-probs (policy_logps, ref_logps)
    default_beta: float | None = None  # set = the loss takes a β, this one when --beta is not given
    boundary: bool = False  # the boundary constraint is built in (takes detach_boundary; no --constraint)
    ordering: bool = True  # False = no ordering term: the trainer's likelihood term is the whole loss

    @property
    def needs_beta(self) -> bool:
        return self.default_beta is not None


# Choice (the paper's β values are unverified here): the boundary margin is in nats per token of the
# length-normalised score; 0.1 is DPO's usual temperature.
LOSS_TABLE = {
    "aft": LossSpec("aft_alignment", "pairs", "alignment only"),
    "aft-dc": LossSpec("aft_detached", "pairs", "detached constraint"),
    "aft-bc": LossSpec("aft_boundary", "pairs", "boundary constraint", default_beta=0.5, boundary=True),
    "aft-rank": LossSpec("aft_rank", "pairs", "boundary, ranking feedback", default_beta=0.5, boundary=True),
    "dpo": LossSpec("dpo_pairwise", "pairs", reference=True, default_beta=0.1),
    "dpo-pl": LossSpec("dpo_plackett_luce", "rank", "listwise DPO", reference=True, default_beta=0.1),
    "rrhf": LossSpec("rrhf", "pairs"),
    "pro": LossSpec("pro", "rank"),
    "rft": LossSpec("rft", "pairs", "no ordering term: the likelihood of the correct responses only = "
                                    "rejection-sampling fine-tuning, the baseline", ordering=False),
}
LOSS_NAMES = list(LOSS_TABLE)


def loss_help() -> str:
    """The `--loss` help: every name, with its blurb where it has one."""
    return "alignment loss: " + ", ".join(f"{name} ({spec.blurb})" if spec.blurb else name
                                          for name, spec in LOSS_TABLE.items())
