"""Chain-of-thought data (GSM8K, AQuA-RAT): loading, prompt format, final-answer extraction.

Alignment fine-tuning labels each *sampled* response correct or incorrect by its final answer
(docs/methods.md §2), so the extractors decide what lands in G_P and G_N. They are deliberately
conservative: an answer they cannot find is None (counted incorrect), never a guess.

Prompt format (plain text, for base models; `format_prompt(ex) + format_target(ex)` is the
whole training text, the tokenizer adds EOS)::

    Question: <question>
    Options:            <- AQuA only, one option per line as "A) 32400"
    A) 32400
    ...
    Answer: <rationale ending in the canonical line "The answer is X.">

The prompt ends with "Answer:" and the target starts with one space, so the split point is a
clean token boundary for most BPE vocabularies.
"""

import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from reasonalign.core.errors import UserError, at
from reasonalign.core.files import read_jsonl

SPLITS = {"gsm8k": {"train": "train.jsonl", "test": "test.jsonl"},
          "aqua": {"dev": "dev.json", "test": "test.json"}}
LETTERS = "ABCDE"


@dataclass(frozen=True)
class CotExample:
    """One question with its gold rationale; `row` is the 1-based line in the source file."""

    question: str
    rationale: str  # cleaned, ends with "The answer is <answer>."
    answer: str  # GSM8K: normalised number string; AQuA: option letter
    row: int
    options: tuple[str, ...] = ()  # AQuA: the raw "A)…" strings, in order
    chain: tuple[int, ...] = ()  # arith: the gold intermediate results (ranking feedback: data/arith.py)


# ---------------------------------------------------------------- loading

def data_root() -> Path:
    """Where the shared data lives: $REASONALIGN_SHARED_DATA, ../shared/data, or beside the repo."""
    env = os.environ.get("REASONALIGN_SHARED_DATA")
    if env:
        return Path(env)
    beside_cwd = Path.cwd() / ".." / "shared" / "data"
    if beside_cwd.is_dir():
        return beside_cwd
    return Path(__file__).parents[3] / ".." / "shared" / "data"


def load_cot(spec: str) -> list[CotExample]:
    """Load `gsm8k:train|test`, `aqua:dev|test`, or a JSONL path whose format is sniffed."""
    return load_file(*cot_source(spec))


_ARITH = re.compile(r"arith(\d*)")


def is_arith(spec: str) -> bool:
    """`arith:SPLIT` or `arithN:SPLIT` (N steps): the generated problems of data/arith.py."""
    task, sep, _ = spec.partition(":")
    return bool(sep) and _ARITH.fullmatch(task) is not None


def cot_source(spec: str) -> tuple[Path, str | None]:
    """(file, task or None = sniff it) for a data spec, without reading the file."""
    task, _, split = spec.partition(":")
    if (m := _ARITH.fullmatch(task)) and split:
        from reasonalign.data import arith

        if split not in arith.SPLIT_SIZES:
            raise UserError(f"{spec}: unknown split (arith has {', '.join(arith.SPLIT_SIZES)})")
        steps = int(m.group(1) or arith.DEFAULT_STEPS)
        if not 1 <= steps <= 8:
            raise UserError(f"{spec}: arith problems have 1 to 8 steps (arith1:... to arith8:...)")
        return arith.builtin_folder(steps) / f"{split}.jsonl", "gsm8k"
    if task in SPLITS and split:
        if split not in SPLITS[task]:
            known = ", ".join(f"{t}:{s}" for t in SPLITS for s in SPLITS[t])
            raise UserError(f"{spec}: unknown data set (known: {known}, or a file path)")
        return data_root() / task / SPLITS[task][split], task
    return Path(spec), None


def load_file(path: Path, task: str | None) -> list[CotExample]:
    """The examples of one GSM8K/AQuA JSON-lines file (`task` None: sniffed from its first record)."""
    examples = []
    for row, record in read_jsonl(path):
        task = task or _sniff(record, path, row)
        parse = _parse_gsm8k if task == "gsm8k" else _parse_aqua
        examples.append(parse(record, path, row))
    if not examples:
        raise at(path, None, "no examples in file")
    return examples


def answer_format(record: dict) -> str | None:
    """'aqua' or 'gsm8k' from a record's fields (the two share none); None for anything else."""
    if "options" in record or "correct" in record:
        return "aqua"
    if "answer" in record:
        return "gsm8k"
    return None


def _sniff(record: dict, path: Path, row: int) -> str:
    if found := answer_format(record):
        return found
    raise at(path, row, "cannot tell the format: expected GSM8K fields (question, answer) "
             "or AQuA fields (question, options, rationale, correct)")


def _field(record: dict, name: str, path: Path, row: int, kind=str):
    if name not in record:
        raise at(path, row, f"missing field '{name}'")
    if not isinstance(record[name], kind):
        raise at(path, row, f"field '{name}' must be a {kind.__name__}")
    return record[name]


def _parse_gsm8k(record: dict, path: Path, row: int) -> CotExample:
    question = _field(record, "question", path, row)
    body, sep, final = _field(record, "answer", path, row).rpartition("####")
    if not sep:
        raise at(path, row, "GSM8K answer has no '#### <number>' final line")
    if not _NUMBER.fullmatch(final.strip()):
        raise at(path, row, f"GSM8K final answer is not a number: {final.strip()!r}")
    answer = normalise_number(final)
    body = re.sub(r"<<[^<>]*>>", "", body).strip()  # calculator annotations are not reasoning
    rationale = f"{body}\nThe answer is {answer}." if body else f"The answer is {answer}."
    chain = record.get("chain") or []
    if not isinstance(chain, list) or not all(isinstance(v, int) for v in chain):
        raise at(path, row, "field 'chain' must be a list of whole numbers (the intermediate results)")
    return CotExample(question, rationale, answer, row, chain=tuple(chain))


# A trailing "Answer: C" / "ANS:C" / "Correct answer - C" / "(C) is the answer" / bare "C",
# at the end of the last line. Only stripped when its letter is the gold one.
_AQUA_TAIL = re.compile(
    r"(?:^|(?<=[\s.]))(?:"
    r"(?:(?:hence|so|thus),?\s*)?(?:the\s+)?(?:correct\s+)?(?:answer|ans|option|choice)"
    r"(?:\s+(?:is|will be))?\s*[:=\-.]?\s*(?:option\s*[:\-]?\s*)?\(?(?P<a>[A-E])\)?"
    r"|(?:hence\s+)?\(?(?P<b>[A-E])\)?\s+is\s+(?:the\s+)?(?:correct\s+)?(?:answer|choice|option)"
    r"|^\(?(?P<c>[A-E])\)?"  # a line that is just the letter
    r")\s*\.?\s*$",
    re.IGNORECASE)


def _parse_aqua(record: dict, path: Path, row: int) -> CotExample:
    question = _field(record, "question", path, row)
    options = _field(record, "options", path, row, list)
    rationale = _field(record, "rationale", path, row)
    correct = _field(record, "correct", path, row).strip().upper()
    letters = [_option_letter(o) for o in options]
    if None in letters:
        raise at(path, row, "options must be strings like 'A)…'")
    if correct not in letters:
        raise at(path, row, f"correct answer {correct!r} is not one of the options "
                 f"{''.join(letters)}")
    lines = rationale.strip().split("\n")
    tail = _AQUA_TAIL.search(lines[-1])
    if tail and (tail["a"] or tail["b"] or tail["c"]).upper() == correct:
        lines[-1] = lines[-1][:tail.start()].rstrip()
    body = "\n".join(lines).strip()
    rationale = f"{body}\nThe answer is {correct}." if body else f"The answer is {correct}."
    return CotExample(question, rationale, correct, row, tuple(options))


def _option_letter(option) -> str | None:
    m = re.match(r"\s*\(?([A-Ea-e])\)", option) if isinstance(option, str) else None
    return m[1].upper() if m else None


# ---------------------------------------------------------------- prompt format

def format_prompt(example: CotExample) -> str:
    """`Question: …` (+ AQuA options, one per line) + `\\nAnswer:`; see the module docstring."""
    parts = [f"Question: {example.question.strip()}"]
    if example.options:
        parts.append("Options:")
        for option in example.options:
            letter, _, text = option.strip().partition(")")
            parts.append(f"{letter.strip('( ').upper()}) {text.strip()}")
    parts.append("Answer:")
    return "\n".join(parts)


def format_target(example: CotExample) -> str:
    """The completion: a space, then the cleaned rationale ending in `The answer is X.`"""
    return " " + example.rationale


# ---------------------------------------------------------------- answer extraction

# A number: optional attached sign (not a binary minus as in '10-3'), optional '$',
# thousands commas, decimals, or a simple fraction 'a/b' (kept as a fraction).
_NUMBER = re.compile(
    r"(?:(?<![\w)\]])(?P<sign>[-+\u2212])(?=\$?\d|\$?\.\d))?\$?"
    r"(?<![\d.])(?P<num>\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:/(?P<den>\d+)(?!\d|\.\d))?")
# What may stand between an answer marker and its number: ': ', '**', '\boxed{', 'about '.
_NEAR_MARKER = re.compile(r"[ \t:=*(\[{]*(?:\\boxed\{)?(?:[A-Za-z]+ )?" + _NUMBER.pattern)
_CONTINUATION = re.compile(r"\n\s*Question:")
# Where generation stops: a base model writes the next exercise after its answer (not its answer).
STOP = ("\nQuestion:",)


def normalise_number(text: str) -> str | None:
    """The first number in `text`, canonical: '1,000.00' -> '1000', '$0.50' -> '0.5', '-3'."""
    m = _NUMBER.search(text)
    return _canonical(m) if m else None


def _canonical(m: re.Match) -> str | None:
    try:
        value = format(Decimal(m["num"].replace(",", "")).normalize(), "f")
    except InvalidOperation:
        return None
    sign = "-" if m["sign"] in ("-", "\u2212") and value != "0" else ""
    return f"{sign}{value}/{m['den']}" if m["den"] else f"{sign}{value}"


def _own_answer(text: str) -> str:
    """Drop a hallucinated next 'Question:' (base models keep going past their answer)."""
    text = text.lstrip()
    return _CONTINUATION.split(text, maxsplit=1)[0]


def extract_gsm8k(text: str) -> str | None:
    """Final numeric answer: after the last '####', else after the last 'The answer is',
    else the last number. The number must follow its marker closely (at most one word
    between); a marker with no such number gives None: the model announced an answer and
    did not give one ('The answer is unknown, after 3 steps' is not 3)."""
    text = _own_answer(text)
    for marker in (r"####", r"(?i:the answer is)"):
        markers = list(re.finditer(marker, text))
        if markers:
            for m in reversed(markers):
                if number := _NEAR_MARKER.match(text, m.end()):
                    return _canonical(number)
            return None
    numbers = list(_NUMBER.finditer(text))
    return _canonical(numbers[-1]) if numbers else None


_AQUA_MARKER = re.compile(
    r"\b(?i:answer|ans)\b(?:\s+(?i:is))?\s*[:=\-]?\s*(?:(?i:option)\s*)?"
    r"(?:\((?P<p>[A-Ea-e])\)|(?P<b>[A-Ea-e])\)|(?P<u>[B-E]|A(?!\s+[a-z]))\b"
    r"|(?P<l>[a-e])(?=[ \t]*\.?[ \t]*(?:\n|$)))")
# '(C)' not glued to a word ('P(A)'), 'C)' only at a word start ('P(A/B)' holds no option).
_AQUA_PAREN = re.compile(r"(?<!\w)\(([A-E])\)|(?:^|(?<=\s))([A-E])\)")
# 'A' followed by a lowercase word is the article, not option A.
_AQUA_LONE = re.compile(r"(?<![\w'])(?:[B-E]|A(?!\s+[a-z]))(?![\w'])")


def extract_aqua(text: str) -> str | None:
    """Option letter: the last 'The answer is X' / 'Answer: (x)' / 'answer is C)', else the
    last '(C)' or 'C)', else the last standalone capital A–E (not the article 'A'); else None.
    Lowercase letters count only right after an answer marker; 'A' followed by a lowercase
    word ('A train…', even 'answer: A car') reads as the article, never as option A."""
    text = _own_answer(text)
    marked = list(_AQUA_MARKER.finditer(text))
    if marked:
        m = marked[-1]
        return (m["p"] or m["b"] or m["u"] or m["l"]).upper()
    paren = [m for m in _AQUA_PAREN.finditer(text) if m[1] or not _inside_parens(text, m.start())]
    if paren:
        return paren[-1][1] or paren[-1][2]
    lone = list(_AQUA_LONE.finditer(text))
    return lone[-1][0] if lone else None


def _inside_parens(text: str, pos: int) -> bool:
    """'B)' closing '(A n B)' is math, not option B: is an earlier '(' on its line still open?"""
    line = text[text.rfind("\n", 0, pos) + 1:pos]
    return line.count("(") > line.count(")")


def is_correct(task: str, text: str, gold: str) -> bool:
    """Whether response `text` reaches `gold` ('gsm8k' compares canonical numbers)."""
    if task == "gsm8k":
        pred, want = extract_gsm8k(text), normalise_number(gold)
    elif task == "aqua":
        pred, want = extract_aqua(text), gold.strip().upper()
    else:
        raise ValueError(f"unknown task {task!r} (expected 'gsm8k' or 'aqua')")
    return pred is not None and pred == want
