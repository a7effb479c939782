"""Load statement/label/reason tables and refuse bad ones before any work starts.

Every problem is reported as one line `FILE:ROW: problem` (a `UserError`), where ROW is what a
user finds in an editor: for CSV the physical line where the record starts (header = line 1),
for JSON lines the line number. All rows are checked in one pass so the message can say how many
more problems are waiting, instead of making the user fix them one run at a time.
"""

import csv
import hashlib
import re
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from reasonalign.core.errors import UserError, at
from reasonalign.core.verdict import LABELS
from reasonalign.data.hub import is_dataset_spec, read_dataset

BUILTIN = Path(__file__).parent / "builtin"
DFAR_SPLITS = {"train": "dfar_train.csv", "test": "dfar_test.csv"}
# dfar:validation: 500 rows of the DFAR train file, held out once and for all (label shares kept),
# so every run can show an in-distribution score no run has fitted anything on; dfar:train is the
# other 4,000 rows and dfar:train-all the whole file.
VALIDATION_ROWS, VALIDATION_SEED = 500, 2024
FIELDS = ("statement", "label", "reason")
DEFAULT_LABEL_MAP = {"0": 0, "1": 1, **{word: i for i, word in enumerate(LABELS)}}
DELIMITERS = {".csv": ",", ".tsv": "\t"}
JSON_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class Example:
    statement: str
    label: int  # 0 ethical, 1 unethical
    reason: str | None  # None when the source has no reason for this row
    row: int  # CSV: line where the record starts (header = 1); JSON lines: line number


@dataclass
class Dataset:
    name: str  # "dfar:train", "ethos:PATH" or the file path
    path: str
    examples: list[Example]
    sha256: str  # of the file bytes, so a run summary pins exactly what was trained on
    has_reasons: bool  # every row has a non-empty reason

    def __len__(self):
        return len(self.examples)

    def __iter__(self):
        return iter(self.examples)

    def __getitem__(self, i):
        return self.examples[i]

    def labels(self) -> list[int]:
        return [e.label for e in self.examples]


def normalize_statement(text: str) -> str:
    """Key used to spot the same statement twice (DFAR test/train leakage, duplicates):
    case-insensitive, whitespace stripped and collapsed. Shared by `dfar:test-clean` and audit."""
    return " ".join(text.split()).casefold()


# ---------------------------------------------------------------- option parsing


def _pairs(text: str, what: str, example: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not (sep and key and value):
            raise UserError(f"bad {what} {text!r}: expected KEY=VALUE pairs separated by commas, e.g. {example!r}")
        pairs.append((key, value))
    return pairs


def parse_columns(text: str) -> dict[str, str]:
    """'statement=text,label=y' -> {'statement': 'text', 'label': 'y'}; unnamed fields keep defaults."""
    example = "statement=text,label=y,reason=why"
    columns = {}
    for field, name in _pairs(text, "--columns", example):
        field = field.lower()
        if field not in FIELDS:
            raise UserError(f"bad --columns {text!r}: unknown field {field!r} (fields: {', '.join(FIELDS)})")
        if field in columns:
            raise UserError(f"bad --columns {text!r}: {field!r} given twice")
        columns[field] = name
    return columns


def parse_label_map(text: str) -> dict[str, int]:
    """'no=ethical,yes=unethical' -> {'no': 0, 'yes': 1}; raw values are matched case-insensitively."""
    label_map = {}
    for raw, word in _pairs(text, "--label-map", "0=ethical,1=unethical"):
        if word.lower() not in LABELS:
            raise UserError(f"bad --label-map {text!r}: {word!r} is not a label (labels: {', '.join(LABELS)})")
        label_map[raw.lower()] = LABELS.index(word.lower())
    return label_map


# ---------------------------------------------------------------- loading


def load(spec: str, *, method: str | None = None, columns: dict[str, str] | None = None,
         label_map: dict[str, int] | None = None) -> Dataset:
    """Load `dfar[:train|validation|train-all|test|test-clean]`, `ethos:PATH`, a .csv/.tsv/.jsonl/.json
    (JSON lines) file, or through `datasets` (`data/hub.py`): `hf:NAME[:CONFIG][@SPLIT]`, a `save_to_disk`
    folder (`FOLDER[@SPLIT]`) or a .parquet file.

    `method="lr"` (labels + reasons) requires a non-empty reason on every row. `columns` and
    `label_map` apply to plain files only: the DFAR and ETHOS formats are fixed.
    """
    if method not in (None, "l", "lr"):
        raise UserError(f"unknown method {method!r} (methods: l, lr)")
    if spec == "dfar" or spec.startswith("dfar:"):
        return _load_dfar(spec.partition(":")[2] or "train", method)
    if spec.startswith("ethos:"):
        return _load_ethos(spec, spec[len("ethos:"):], method)
    if spec == "ethos":
        raise UserError("ethos needs a path: ethos:PATH/Ethos_Dataset_Binary.csv (ETHOS is GPL and not bundled)")
    path = Path(spec)
    fields = {"statement": "statement", "label": "label", "reason": "reason", **(columns or {})}
    label_of = _mapper(DEFAULT_LABEL_MAP if label_map is None else label_map)
    if is_dataset_spec(spec):
        sha256, rows, problems = read_dataset(spec, fields)
        return _build(spec, spec, b"", _Records(rows, problems), label_of, method, sha256=sha256)
    suffix = path.suffix.lower()
    data = _read_bytes(path)
    if suffix not in (*DELIMITERS, *JSON_SUFFIXES):
        raise at(path, None, f"unknown file type {suffix or '(no extension)'!r}; use .csv, .tsv, .jsonl, .json (JSON lines), "
                             f".parquet, a save_to_disk folder or hf:NAME")
    text = _decode(path, data)
    if suffix in JSON_SUFFIXES:
        records = _json_records(path, text, fields)
    else:
        records = _csv_records(path, text, DELIMITERS[suffix], fields, require_reason=method == "lr")
    return _build(str(path), path, data, records, label_of, method)


def _load_dfar(split: str, method: str | None) -> Dataset:
    dfar = {"statement": "statement", "label": "label", "reason": "reason"}
    label_of = _mapper(DEFAULT_LABEL_MAP)

    def read(name):
        path = BUILTIN / DFAR_SPLITS[name]
        data = _read_bytes(path)
        records = _csv_records(path, _decode(path, data), ",", dfar, require_reason=True)
        return _build(f"dfar:{name}", path, data, records, label_of, method)

    # sha256 stays the file's in every derived split: the name tells them apart, the hash pins the bytes
    if split == "test":
        return read("test")
    if split in ("train", "validation", "train-all"):
        data = read("train")
        if split == "train-all":
            data.name = "dfar:train-all"  # run records must not call the whole file "dfar:train"
            return data
        fit, held_out = split_off(data.examples, VALIDATION_ROWS, VALIDATION_SEED)
        data.name, data.examples = f"dfar:{split}", (fit if split == "train" else held_out)
        return data
    if split != "test-clean":
        raise UserError(f"unknown DFAR split {split!r} (splits: train, validation, train-all, test, test-clean)")
    # The test file repeats 189 training statements; a clean split drops them (docs/methods.md §1).
    seen = {normalize_statement(e.statement) for e in read("train")}
    test = read("test")
    test.name = "dfar:test-clean"
    test.examples = [e for e in test.examples if normalize_statement(e.statement) not in seen]
    return test


def clean_rows(name: str | None) -> set[int] | None:
    """Rows of DFAR test that are not repeated from train, when `name` is a DFAR test split.

    Reports show every DFAR test result on the full published test set and on this clean
    part side by side; None for any other data."""
    if name not in ("dfar:test", "dfar:test-clean"):
        return None
    return {e.row for e in _load_dfar("test-clean", None).examples}


def _load_ethos(name: str, spec_path: str, method: str | None) -> Dataset:
    """ETHOS binary: `comment;isHate`, isHate = share of annotators who saw hate; >= 0.5 -> unethical."""
    if method == "lr":
        raise at(spec_path, None, "ETHOS has no reasons, so it cannot be used with method lr")
    path = Path(spec_path)
    data = _read_bytes(path)
    fields = {"statement": "comment", "label": "isHate"}
    records = _csv_records(path, _decode(path, data), ";", fields, require_reason=False)
    return _build(name, path, data, records, _hate_label, method)


def _hate_label(raw) -> int | str:
    """Label id, or a problem message (kept as text so all rows can be checked in one pass)."""
    try:
        share = float(raw)
    except ValueError:
        share = float("nan")
    if not 0.0 <= share <= 1.0:
        return f"isHate must be a number in [0, 1], got {_show(raw)}"
    return int(share >= 0.5)


def _mapper(label_map: dict[str, int]):
    label_map = {str(raw).strip().lower(): label for raw, label in label_map.items()}
    accepted = ", ".join(label_map)

    def label_of(raw) -> int | str:
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)  # JSON 1.0 means 1
        key = str(raw).strip().lower()
        if key in label_map:
            return label_map[key]
        return f"label {_show(raw)} is not one of {accepted} (map it with --label-map RAW=ethical,...)"

    return label_of


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control(field: str, text) -> str | None:
    """A NUL or other control character (tab and newlines are text) is a broken export, not a statement."""
    m = _CONTROL.search(text) if isinstance(text, str) else None
    return f"control character U+{ord(m.group()):04X} in the {field} (a broken export?)" if m else None


def _build(name, path, data, records, label_of, method, sha256: str | None = None) -> Dataset:
    """Turn (row, statement, raw label, reason) records into examples, collecting every problem."""
    problems = list(records.problems)
    examples = []
    for row, statement, raw_label, reason in records.rows:
        label = label_of(raw_label)
        if not statement:
            problems.append((row, "empty statement"))
        for field, text in (("statement", statement), ("reason", reason)):
            if problem := _control(field, text):
                problems.append((row, problem))
        if isinstance(label, str):
            problems.append((row, label))
        if method == "lr" and not reason:
            problems.append((row, "empty reason (method lr trains on reasons, so every row needs one)"))
        examples.append(Example(statement, label, reason or None, row))
    if problems:
        problems.sort(key=lambda p: p[0])
        row, problem = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise at(path, row, problem + more)
    if not examples:
        raise at(path, None, "no rows (the file is empty or has only a header)")
    return Dataset(name=name, path=str(path), examples=examples, sha256=sha256 or hashlib.sha256(data).hexdigest(),
                   has_reasons=all(e.reason is not None for e in examples))


def _show(value, limit=40) -> str:
    """repr() of a bad value, cut short so the error stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


# ---------------------------------------------------------------- file formats


@dataclass
class _Records:
    rows: list  # (row, statement, raw label, reason or None)
    problems: list  # (row, message)


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise at(path, None, "no such file")
    if path.is_dir():
        raise at(path, None, "is a directory, not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise at(path, None, f"cannot read: {exc.strerror}") from exc


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 with an optional BOM (DFAR's test file has one); anything else is named by line and byte."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data.count(b"\n", 0, offset) + 1
        bad_lines = sum(not _is_utf8(chunk) for chunk in data[start:].split(b"\n"))  # \n never occurs inside a UTF-8 character
        more = f" (and {bad_lines - 1} more problems)" if bad_lines > 1 else ""
        raise at(path, line, f"not UTF-8: byte 0x{data[offset]:02x} at byte offset {offset}; "
                             f"re-save the file as UTF-8{more}") from None


def _is_utf8(chunk: bytes) -> bool:
    try:
        chunk.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _csv_records(path: Path, text: str, delimiter: str, fields: dict, require_reason: bool) -> _Records:
    lines = list(io.StringIO(text, newline=""))  # physical lines, endings kept, as an editor counts them
    reader = csv.reader(lines, delimiter=delimiter)
    records = _Records([], [])
    header = None
    end = 0  # reader.line_num after the previous record
    while True:
        start = end + 1
        try:
            fields_ = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. field larger than the limit: usually a runaway quote
            opened = _open_quote_line(lines[start - 1:], delimiter, start)
            problem = _unterminated(opened) if opened else f"unreadable CSV record: {exc}"
            records.problems.append((opened or start, problem))
            return records
        end = reader.line_num
        if end == len(lines):  # last record: did a quote swallow the rest of the file?
            opened = _open_quote_line(lines[start - 1:], delimiter, start)
            if opened:
                records.problems.append((opened, _unterminated(opened)))
                return records
        if not fields_:
            continue  # blank line
        if header is None:
            header = fields_
            index = _column_index(path, header, fields, require_reason)
            continue
        if len(fields_) != len(header):
            more_less = "many" if len(fields_) > len(header) else "few"
            records.problems.append((start, f"too {more_less} fields: {len(fields_)}, the header has {len(header)}"
                                            + (" (quote fields that contain the separator)" if more_less == "many" else "")))
            continue
        statement, label, reason = (fields_[index[f]].strip() if f in index else None for f in FIELDS)
        records.rows.append((start, statement, label, reason))
    return records


def _unterminated(line: int) -> str:
    return f"quote opened on line {line} is never closed (the rest of the file would be read as one field)"


def _column_index(path, header: list[str], fields: dict, require_reason: bool) -> dict[str, int]:
    by_name = {name.strip().lower(): i for i, name in enumerate(header)}
    index = {}
    for field, name in fields.items():
        if name.lower() in by_name:
            index[field] = by_name[name.lower()]
        elif field != "reason" or require_reason:
            what = f"no {name!r} column" if name.lower() == field else f"no column {name!r} (for the {field})"
            raise at(path, 1, f"{what} (columns: {', '.join(header)}); map it with --columns {field}=NAME")
    return index


def _open_quote_line(lines: list[str], delimiter: str, first_line: int) -> int | None:
    """Line where a never-closed quote opens, following the csv module's (non-strict) rules.

    The csv module does not complain about such a quote: it silently reads the rest of the file
    into one field. Only the last record can be affected, so only its lines are scanned.
    """
    state, opened = "start", None
    for n, line in enumerate(lines, first_line):
        for ch in line:
            if state == "quoted":
                state = "quote?" if ch == '"' else "quoted"
            elif ch == delimiter or ch in "\r\n":
                state = "start"
            elif state == "start" and ch == '"':
                state, opened = "quoted", n
            elif state == "quote?" and ch == '"':
                state = "quoted"  # "" is an escaped quote
            else:
                state = "field"
    return opened if state == "quoted" else None


def _json_records(path: Path, text: str, fields: dict) -> _Records:
    records = _Records([], [])
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines(): JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = " (this looks like a JSON array; write one object per line)" if n == 1 and line.strip() == "[" else ""
            records.problems.append((n, f"broken JSON: {exc.msg} at column {exc.colno}{hint}"))
            continue
        if not isinstance(obj, dict):
            records.problems.append((n, f"JSON line is {type(obj).__name__}, not an object with keys "
                                        f"{', '.join(fields.values())}"))
            continue
        keys = {str(k).lower(): k for k in obj}
        missing = [name for f, name in fields.items() if f != "reason" and name.lower() not in keys]
        if missing:
            records.problems.append((n, f"no key {missing[0]!r} (keys: {', '.join(map(str, obj))}); "
                                        f"map it with --columns"))
            continue
        values = {f: obj.get(keys.get(name.lower())) for f, name in fields.items()}
        statement, reason = (None if v is None else str(v).strip() for v in (values["statement"], values.get("reason")))
        records.rows.append((n, statement, values["label"], reason))
    return records


# ---------------------------------------------------------------- sampling


def _draw(examples, quota, seed: int) -> list[int]:
    """Indices of `quota[label]` examples per label, drawn reproducibly."""
    rng = random.Random(seed)
    by_label: dict[int, list[int]] = {}
    for i, e in enumerate(examples):
        by_label.setdefault(e.label, []).append(i)
    chosen = []
    for label in sorted(by_label):
        idx = by_label[label]
        chosen += rng.sample(idx, quota.get(label, 0))
    rng.shuffle(chosen)
    return chosen


def _counts(examples) -> dict[int, int]:
    counts: dict[int, int] = {}
    for e in examples:
        counts[e.label] = counts.get(e.label, 0) + 1
    return counts


def _check_n(examples, n):
    if not 0 <= n <= len(examples):
        raise UserError(f"cannot draw {n} examples from {len(examples)}")


def stratified_sample(examples: list[Example], n: int, seed: int) -> list[Example]:
    """`n` examples with the labels as balanced as the data allows (n//2 each for two labels).

    Balanced because a small training budget on a skewed sample teaches the majority label
    (docs/methods.md §3). A label with too few examples gives them all; the others fill the gap.
    """
    _check_n(examples, n)
    counts = _counts(examples)
    quota, left = {}, n
    for k, label in enumerate(sorted(counts, key=lambda lab: (counts[lab], lab))):  # scarcest label first
        quota[label] = min(counts[label], left // (len(counts) - k))  # fair share of what is left
        left -= quota[label]
    return [examples[i] for i in _draw(examples, quota, seed)]


def split_off(examples: list[Example], n: int, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out `n` examples (e.g. validation/calibration from train, never from test).

    Returns (rest, held_out); `rest` keeps the original order. The held-out part keeps the label
    shares of `examples` (largest remainder), so it measures what the full data would.
    """
    _check_n(examples, n)
    counts = _counts(examples)
    exact = {lab: n * c / len(examples) for lab, c in counts.items()} if examples else {}
    quota = {lab: int(x) for lab, x in exact.items()}
    for lab in sorted(exact, key=lambda lab: (-(exact[lab] - quota[lab]), lab))[: n - sum(quota.values())]:
        quota[lab] += 1
    chosen = _draw(examples, quota, seed)
    taken = set(chosen)
    return [e for i, e in enumerate(examples) if i not in taken], [examples[i] for i in chosen]


def take_rows(examples: list, n: int | None, seed: int, skip: int = 0, label=None) -> list:
    """What `--rows N [--skip-rows M]` means in every command: rows M to M+N of one seeded order.

    All rows in file order when neither is set. With `label` (example -> label) the order
    interleaves the labels so that every prefix keeps the data's label shares: `--rows 100`
    measures what the whole data would, and `--rows 100` and `--rows 400 --skip-rows 100` (same
    seed) never share a row, so held-out and training rows come from one order.
    """
    if n is not None and n < 1:
        raise UserError(f"--rows {n}: must be at least 1")
    if skip < 0:
        raise UserError(f"--skip-rows {skip}: must be 0 or more")
    if not n and not skip:
        return list(examples)
    if skip >= len(examples):
        raise UserError(f"--skip-rows {skip}: leaves no rows (the data has {len(examples)})")
    rng = random.Random(seed)
    if label is None:
        order = list(examples)
        rng.shuffle(order)
    else:
        queues: dict = {}
        for e in examples:
            queues.setdefault(label(e), []).append(e)
        for q in queues.values():
            rng.shuffle(q)
        share = {k: len(q) / len(examples) for k, q in queues.items()}
        taken = dict.fromkeys(queues, 0)
        order = []
        for i in range(1, len(examples) + 1):  # next: the label furthest below its share of the first i rows
            k = max((k for k in queues if taken[k] < len(queues[k])), key=lambda k: (share[k] * i - taken[k], -k))
            order.append(queues[k][taken[k]])
            taken[k] += 1
    return order[skip:skip + n] if n else order[skip:]
