"""Several processes under `accelerate launch` / `torchrun`: who am I, my share of the work, everyone's results back.

Training is distributed by the Hugging Face Trainer (accelerate: DDP, FSDP, DeepSpeed), which
reads the launcher's environment itself. Everything else (generation, sampling, label and
group scoring) goes through `map_chunks`: the batches of a command are dealt round-robin to the
processes, each runs its own, and every process gets all results back in batch order. A batch
is processed exactly as in one process (same rows, same padding, its own sampling seed), so the
outputs do not depend on the number of processes. Only the main process writes files.

One process (no launcher) is the degenerate case: rank 0 of 1, no process group, no accelerate
import. A rank that dies makes the launcher stop the others and exit non-zero (torch elastic).
"""

import os
from functools import lru_cache


def world_size() -> int:
    """Processes in the run (the launcher's WORLD_SIZE; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True in the one process that writes outputs and prints."""
    return rank() == 0


@lru_cache(maxsize=1)
def state():
    """accelerate's process state (joins the process group once).

    `cpu=True` without CUDA: accelerate chooses gloo only when told the run is on CPU, else it
    would see no GPU and run every process as a separate single-process job."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def device() -> str:
    """This process's device: its own GPU under a launcher, else cuda / cpu."""
    import torch

    if world_size() > 1 and state().device.type != "cpu":
        return str(state().device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def map_chunks(fn, chunks: list) -> list:
    """[fn(chunk) for chunk in chunks], with the chunks shared among the processes.

    Chunk i runs in process i % world_size; the results are gathered (as Python objects) and
    returned in chunk order to every process, so callers go on as if they had done all of it.
    """
    if world_size() == 1:
        return [fn(chunk) for chunk in chunks]
    from accelerate.utils import gather_object

    s = state()
    mine = {i: fn(chunk) for i, chunk in enumerate(chunks) if i % s.num_processes == s.process_index}
    merged: dict = {}
    for part in gather_object([mine]):
        merged.update(part)
    return [merged[i] for i in range(len(chunks))]
