"""Checkpoints that can be trusted on `--resume`, and what a run has done before it was resumed.

- A checkpoint counts only when it is complete (trainer_state.json and the adapter weights): a
  run killed or out of disk while saving leaves a half folder, and `--resume` falls back to the
  newest complete one instead of crashing on it.
- Every checkpoint gets `reasonalign_progress.json`: the run's options, its real tokens and
  seconds so far. A resumed run compares its options with them (weights trained with one lr must
  not be recorded under another) and adds the earlier tokens and seconds to its own, so the
  summary counts the whole run, not the last segment.
"""

import json
import re
import time
from pathlib import Path

from transformers import TrainerCallback

from reasonalign.core.config import to_dict
from reasonalign.core.distributed import is_main
from reasonalign.core.errors import UserError
from reasonalign.core.files import write_json

PROGRESS_FILE = "reasonalign_progress.json"
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
# options that change where or how often files are written, not the weights
NOT_TRAINING = {"output", "resume", "overwrite", "logging_steps", "save_steps"}


def _step(path: Path) -> int:
    m = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(m.group(1)) if m else -1


def checkpoints(out) -> list[Path]:
    """checkpoint-N folders of `out`, newest first."""
    return sorted((p for p in Path(out).glob("checkpoint-*") if p.is_dir() and _step(p) >= 0), key=_step, reverse=True)


def complete(checkpoint: Path) -> bool:
    return (checkpoint / "trainer_state.json").is_file() and any((checkpoint / w).is_file() for w in WEIGHTS)


def latest_complete(out) -> Path | None:
    """The newest checkpoint that has its trainer state and adapter weights (None if there is none)."""
    return next((c for c in checkpoints(out) if complete(c)), None)


def progress(checkpoint: Path | None) -> dict:
    """What the run had done when `checkpoint` was saved ({} for checkpoints written before this file existed)."""
    path = checkpoint / PROGRESS_FILE if checkpoint else None
    if not path or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path}: not a JSON progress record; resume from another checkpoint or --overwrite") from None
    return data if isinstance(data, dict) else {}


def changed_options(saved: dict, config) -> list[str]:
    """Training options whose value differs from the checkpoint's."""
    now = to_dict(config)
    return sorted(k for k in now if k not in NOT_TRAINING and k in saved and saved[k] != now[k])


def check_resume(config, checkpoint: Path) -> dict:
    """The progress of `checkpoint`, after refusing options that differ from its own (unless --overwrite)."""
    done = progress(checkpoint)
    changed = changed_options(done.get("config") or {}, config)
    if changed and not config.overwrite:
        saved = done["config"]
        listed = ", ".join(f"{k} {saved[k]!r} -> {getattr(config, k)!r}" for k in changed)
        raise UserError(f"{checkpoint}: was trained with other options ({listed}); resume with the same options, "
                        f"or pass --overwrite to continue with the new ones anyway")
    return done


class SaveProgress(TrainerCallback):
    """Writes PROGRESS_FILE into each checkpoint as it is saved."""

    def __init__(self, recipe):
        self.recipe = recipe

    def on_save(self, args, state, control, **kwargs):
        r = self.recipe
        tokens = r.real_tokens_so_far()  # every process takes part (a sum over processes under a launcher)
        if is_main():
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                write_json(folder / PROGRESS_FILE, {
                    "config": to_dict(r.config), "step": state.global_step, "real_tokens": tokens,
                    "seconds": round(r.prior.get("seconds", 0) + time.time() - r.started, 1),
                    "segments": r.prior.get("segments", 0) + 1})
