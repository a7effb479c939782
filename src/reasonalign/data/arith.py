"""Multi-step arithmetic word problems: a reasoning task within reach of a 135M model.

GSM8K and AQuA are far beyond SmolLM2-135M (a few % right), so k sampled responses are nearly all
wrong and alignment has nothing to work with. These problems are generated from a seed, so they are
reproducible without a download, and every intermediate result of the chain of thought can be checked:

    Question: Mia has 7 apples. She buys 5 more. Then she gives away 3. How many apples does Mia have now?
    Answer: 7 + 5 = 12. 12 - 3 = 9.
    The answer is 9.

`steps` (the number of operations) is the difficulty knob. Records are written in GSM8K's format
(`question`, `answer` ending "#### N", plus `chain`: the gold intermediate results), so everything that
reads GSM8K (train --data, sample, eval --task answers) reads them; `chain_score` gives the ranking
feedback (how many of the gold intermediate results a response reaches, in order), like the paper's
GSM8K-RANK.
"""

import hashlib
import json
import random
import re
from pathlib import Path

from reasonalign.core.files import write_json, write_jsonl

NAMES = ("Mia", "Leo", "Ava", "Sam", "Zoe", "Max", "Ivy", "Ben", "Ada", "Tom", "Eva", "Kai")
THINGS = ("apples", "marbles", "stickers", "coins", "books", "cards", "shells", "pencils", "stamps", "cookies")
SPLIT_SIZES = {"train": 4000, "validation": 500, "test": 500}
# each split has its own seed stream, so growing one split never changes another
SPLIT_SEEDS = {"train": 1, "validation": 2, "test": 3}


def make_problem(rng: random.Random, steps: int, max_operand: int = 9) -> dict:
    """One problem of `steps` operations (+, -, x2/x3) on a start count: question, chain, answer."""
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    value = rng.randint(2, max_operand)
    sentences = [f"{name} has {value} {thing}."]
    chain, lines = [], []
    for _ in range(steps):
        op = rng.choice("+-*") if value <= 40 else rng.choice("+-")
        if op == "-" and value < 2:
            op = "+"
        if op == "+":
            n = rng.randint(1, max_operand)
            sentences.append(rng.choice([f"Then {name} gets {n} more.", f"Then {name} finds {n} more."]))
            new = value + n
        elif op == "-":
            n = rng.randint(1, min(max_operand, value - 1))
            sentences.append(rng.choice([f"Then {name} gives away {n}.", f"Then {name} loses {n}."]))
            new = value - n
        else:
            n = rng.choice((2, 3))
            sentences.append(f"Then the number of {thing} {'doubles' if n == 2 else 'triples'}.")
            new = value * n
        lines.append(f"{value} {op} {n} = {new}.")
        chain.append(new)
        value = new
    question = " ".join(sentences) + f" How many {thing} does {name} have now?"
    return {"question": question, "answer": " ".join(lines) + f"\n#### {value}", "chain": chain}


def make_split(split: str, steps: int, n: int | None = None, max_operand: int = 9) -> list[dict]:
    """The `split` problems of one difficulty: the same list for the same arguments, on every machine. No
    question repeats within a split or appears in an earlier one (train, then validation, then test)."""
    seen = set()
    for earlier in list(SPLIT_SEEDS)[: list(SPLIT_SEEDS).index(split)]:
        seen |= {p["question"] for p in make_split(earlier, steps, SPLIT_SIZES[earlier], max_operand)}
    rng = random.Random(f"arith:{split}:{SPLIT_SEEDS[split]}:{steps}:{max_operand}")
    problems = []
    for _ in range(100 * (n or SPLIT_SIZES[split])):
        if len(problems) == (n or SPLIT_SIZES[split]):
            break
        p = make_problem(rng, steps, max_operand)
        if p["question"] not in seen:
            seen.add(p["question"])
            problems.append(p)
    return problems


def write_splits(folder: Path, steps: int, max_operand: int = 9, sizes: dict | None = None) -> dict:
    """train/validation/test.jsonl and manifest.json (the generator's arguments and each file's sha256)."""
    folder = Path(folder)
    manifest = {"task": "arith", "steps": steps, "max_operand": max_operand, "files": {}}
    for split, size in (sizes or SPLIT_SIZES).items():
        path = write_jsonl(folder / f"{split}.jsonl", make_split(split, steps, size, max_operand))
        manifest["files"][split] = {"rows": size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    write_json(folder / "manifest.json", manifest)
    return manifest


_RESULT = re.compile(r"=\s*(-?\d+)")


def chain_score(text: str, chain: list[int]) -> int:
    """How many of the gold intermediate results `text` reaches, in order ("... = 12 ... = 9" against
    [12, 9, 18] -> 2): the ranking feedback of a sampled chain of thought."""
    got = [int(m.group(1)) for m in _RESULT.finditer(text)]
    k = 0
    for value in got:
        if k < len(chain) and value == chain[k]:
            k += 1
    return k


DEFAULT_STEPS = 6  # chosen on validation (configs/arith-difficulty-cpu.yaml): SFT reaches 54%, in the 25-75% wanted


def builtin_folder(steps: int = DEFAULT_STEPS) -> Path:
    """`arith:SPLIT` / `arithN:SPLIT`: the splits of N steps, written once into the cache folder and checked
    against the generator on every use (a changed file is regenerated, never silently read)."""
    from reasonalign.core.files import cache_dir

    folder = cache_dir() / "arith" / f"steps-{steps}"
    if all(_holds(folder / f"{split}.jsonl", make_split(split, steps)) for split in SPLIT_SIZES):
        return folder
    write_splits(folder, steps)
    return folder


def _holds(path: Path, records: list[dict]) -> bool:
    """Whether the JSON-lines file at `path` holds exactly `records`."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()] == records
    except (OSError, ValueError):
        return False
