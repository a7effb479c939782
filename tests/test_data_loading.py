"""Loading and validation: every bad-file class gives one `FILE:ROW: problem` line."""

from collections import Counter
from pathlib import Path

import pytest

from reasonalign.data import load, normalize_statement, parse_columns, parse_label_map, split_off, stratified_sample
from reasonalign.data.tables import Example
from reasonalign.core.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"
ETHOS = Path(__file__).parents[2] / "shared" / "data" / "ethos" / "Ethos_Dataset_Binary.csv"
HEADER = "statement,label,reason\n"


def write(tmp_path, name, content) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def error(spec, **kw) -> str:
    with pytest.raises(UserError) as exc:
        load(str(spec), **kw)
    message = str(exc.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- good files


def test_tiny_csv_rows_labels_and_multiline_reason():
    ds = load(str(FIXTURES / "tiny.csv"))
    assert len(ds) == 6 and ds.has_reasons
    assert ds.labels() == [0, 1, 0, 1, 0, 1]
    assert [e.row for e in ds] == [2, 3, 5, 6, 7, 8]  # the cookie reason spans lines 3-4
    assert ds[1].reason.endswith("small act of selfishness.") and "\n" in ds[1].reason
    assert ds[2].statement == 'I said "thank you" to the driver.'
    assert len(ds.sha256) == 64


def test_jsonl_blank_lines_and_missing_reason():
    ds = load(str(FIXTURES / "tiny.jsonl"))
    assert [e.row for e in ds] == [1, 2, 4]
    assert ds.labels() == [0, 1, 0]
    assert ds[2].reason is None and not ds.has_reasons
    assert error(FIXTURES / "tiny.jsonl", method="lr").endswith("tiny.jsonl:4: empty reason (method lr trains on reasons, so every row needs one)")


def test_tsv_with_columns_and_label_map():
    ds = load(str(FIXTURES / "tiny.tsv"), columns=parse_columns("statement=TEXT, label=verdict"),
              label_map=parse_label_map("no=ethical,YES=unethical"))
    assert [(e.statement, e.label, e.reason) for e in ds] == [("I fed the cat.", 0, None), ("I stole a bike.", 1, None)]


def test_bom_is_accepted_silently(tmp_path):
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + b"Statement,Label\r\nI shared my lunch.,0\r\n")
    ds = load(str(path))
    assert ds[0].statement == "I shared my lunch." and ds[0].row == 2


def test_loading_writes_nothing(tmp_path):
    path = write(tmp_path, "a.csv", HEADER + "x,0,y\n")
    load(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


# ---------------------------------------------------------------- one test per error class


def test_missing_file(tmp_path):
    assert error(tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'}: no such file"


def test_directory(tmp_path):
    assert error(tmp_path) == f"{tmp_path}: is a directory, not a file"


def test_unknown_extension(tmp_path):
    assert "unknown file type '.xlsx'" in error(write(tmp_path, "a.xlsx", HEADER))


def test_missing_column_names_existing_ones(tmp_path):
    msg = error(write(tmp_path, "a.csv", "text,label\nx,0\n"))
    assert msg.startswith(f"{tmp_path / 'a.csv'}:1: no 'statement' column (columns: text, label)")


def test_missing_reason_column_only_matters_for_lr(tmp_path):
    path = write(tmp_path, "a.csv", "statement,label\nx,0\n")
    assert not load(str(path), method="l").has_reasons
    assert "no 'reason' column" in error(path, method="lr")


def test_empty_statement(tmp_path):
    assert error(write(tmp_path, "a.csv", HEADER + "x,0,r\n  ,1,r\n")).endswith("a.csv:3: empty statement")


def test_label_outside_map_shows_value_and_accepted(tmp_path):
    msg = error(write(tmp_path, "a.csv", HEADER + "x,maybe,r\n"))
    assert "a.csv:2: label 'maybe' is not one of 0, 1, ethical, unethical" in msg


def test_custom_label_map_replaces_default(tmp_path):
    path = write(tmp_path, "a.csv", HEADER + "x,0,r\n")
    assert "a.csv:2: label '0' is not one of no, yes" in error(path, label_map=parse_label_map("no=ethical,yes=unethical"))
    assert load(str(write(tmp_path, "b.csv", HEADER + "x,Yes,r\n")), label_map={"YES": 1})[0].label == 1


def test_empty_reason_only_for_lr(tmp_path):
    path = write(tmp_path, "a.csv", HEADER + "x,0,r\ny,1,\n")
    assert load(str(path))[1].reason is None
    assert error(path, method="lr").startswith(f"{path}:3: empty reason")


def test_too_many_and_too_few_fields(tmp_path):
    assert "a.csv:3: too many fields: 4, the header has 3" in error(write(tmp_path, "a.csv", HEADER + "x,0,r\ny,1,r,extra\n"))
    assert "b.csv:2: too few fields: 2, the header has 3" in error(write(tmp_path, "b.csv", HEADER + "x,0\n"))


def test_unterminated_quote_names_opening_line(tmp_path):
    # csv.reader would silently read lines 4-6 into one field and report nothing.
    body = HEADER + 'a,0,"multi\nline"\nb,1,"never closed\nc,0,r\nd,1,r\n'
    msg = error(write(tmp_path, "a.csv", body))
    assert msg == f"{tmp_path / 'a.csv'}:4: quote opened on line 4 is never closed (the rest of the file would be read as one field)"


def test_unterminated_quote_on_last_line_without_newline(tmp_path):
    assert ":3: quote opened on line 3" in error(write(tmp_path, "a.csv", HEADER + 'a,0,r\n"b,1,r'))


def test_quotes_inside_unquoted_field_are_fine(tmp_path):
    ds = load(str(write(tmp_path, "a.csv", HEADER + 'He said "hi,0,r\n')))
    assert ds[0].statement == 'He said "hi'


def test_bad_encoding_names_line_and_byte_offset(tmp_path):
    data = (HEADER + "caf").encode() + b"\xe9,0,r\n" + b"ok,1,r\nna\xefve,0,r\n"
    msg = error(write(tmp_path, "a.csv", data))
    offset = len(HEADER) + 3
    assert msg.startswith(f"{tmp_path / 'a.csv'}:2: not UTF-8: byte 0xe9 at byte offset {offset}")
    assert msg.endswith("(and 1 more problems)")


def test_empty_file_and_header_only(tmp_path):
    assert error(write(tmp_path, "a.csv", b"")).endswith("a.csv: no rows (the file is empty or has only a header)")
    assert error(write(tmp_path, "b.csv", HEADER)).endswith("b.csv: no rows (the file is empty or has only a header)")
    assert error(write(tmp_path, "c.jsonl", "\n")).endswith("c.jsonl: no rows (the file is empty or has only a header)")


def test_broken_json_line(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"statement": "x", "label": 0}\n{"statement": "y", "label": 1\n')
    assert error(path).startswith(f"{path}:2: broken JSON: Expecting ',' delimiter")


def test_json_line_not_an_object(tmp_path):
    assert "a.jsonl:1: JSON line is list, not an object" in error(write(tmp_path, "a.jsonl", '["x", 0]\n'))


def test_json_missing_key(tmp_path):
    assert "a.jsonl:1: no key 'label' (keys: statement, y)" in error(write(tmp_path, "a.jsonl", '{"statement": "x", "y": 0}\n'))


def test_first_problem_reported_with_count_and_right_row_after_multiline_reason(tmp_path):
    body = HEADER + 'a,0,"reason over\ntwo lines"\nb,7,r\n,1,r\nc,0,r,x\n'
    msg = error(write(tmp_path, "a.csv", body))
    assert msg.startswith(f"{tmp_path / 'a.csv'}:4: label '7' is not one of")
    assert msg.endswith("(and 2 more problems)")


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("text", ["statement", "statement=", "foo=bar", "label=a,label=b"])
def test_parse_columns_rejects_bad_syntax(text):
    with pytest.raises(UserError):
        parse_columns(text)


def test_parse_label_map():
    assert parse_label_map("0=ethical,1=unethical") == {"0": 0, "1": 1}
    with pytest.raises(UserError, match="'good' is not a label"):
        parse_label_map("yes=good")
    with pytest.raises(UserError):
        parse_label_map("yes")


def test_unknown_method_and_dfar_split():
    with pytest.raises(UserError, match="unknown method"):
        load("dfar", method="x")
    with pytest.raises(UserError, match="unknown DFAR split"):
        load("dfar:dev")


# ---------------------------------------------------------------- built-in DFAR and ETHOS


def test_dfar_counts():
    train, test, clean = load("dfar:train-all"), load("dfar:test"), load("dfar:test-clean")
    assert (len(train), len(test), len(clean)) == (4500, 500, 311)
    assert Counter(train.labels()) == {0: 2588, 1: 1912}
    assert Counter(test.labels()) == {0: 298, 1: 202}
    assert train.has_reasons and test.has_reasons and load("dfar:train", method="lr").name == "dfar:train"
    assert test[0].row == 2 and not test[0].statement.startswith("\ufeff")
    seen = {normalize_statement(e.statement) for e in train}
    assert not any(normalize_statement(e.statement) in seen for e in clean)


def test_dfar_validation_is_held_out_of_train():
    """dfar:validation: 500 train-file rows with the file's label shares, never in dfar:train; fixed
    whatever seed a command uses."""
    fit, validation, whole = load("dfar:train"), load("dfar:validation"), load("dfar:train-all")
    assert (len(fit), len(validation)) == (4000, 500) and load("dfar").name == "dfar:train"
    assert Counter(validation.labels()) == {0: 288, 1: 212}  # 2588/4500 and 1912/4500 of 500, rounded
    assert not {e.row for e in fit} & {e.row for e in validation}
    assert {e.row for e in fit} | {e.row for e in validation} == {e.row for e in whole}
    assert [e.row for e in load("dfar:validation")] == [e.row for e in validation]
    assert validation.sha256 == whole.sha256 and validation.name == "dfar:validation"


def test_ethos_bad_is_hate(tmp_path):
    path = write(tmp_path, "e.csv", "comment;isHate\nnice;0.0\nmean;1.5\n")
    assert error(f"ethos:{path}").startswith(f"{path}:3: isHate must be a number in [0, 1], got '1.5'")
    assert "no reasons" in error(f"ethos:{path}", method="lr")


def test_ethos_real_file():
    if not ETHOS.exists():
        pytest.skip(f"ETHOS (GPL, not in the repo) not found at {ETHOS}")
    ds = load(f"ethos:{ETHOS}")
    assert len(ds) == 998 and Counter(ds.labels()) == {0: 565, 1: 433}
    assert not ds.has_reasons and ds[0].reason is None


# ---------------------------------------------------------------- sampling


def examples(n_ethical, n_unethical):
    return [Example(f"s{i}", int(i >= n_ethical), None, i + 2) for i in range(n_ethical + n_unethical)]


def test_stratified_sample_balanced_and_deterministic():
    data = examples(70, 30)
    a = stratified_sample(data, 40, seed=1)
    assert Counter(e.label for e in a) == {0: 20, 1: 20}
    assert a == stratified_sample(data, 40, seed=1)
    assert a != stratified_sample(data, 40, seed=2)
    assert [e.label for e in a] != sorted(e.label for e in a)  # shuffled, not grouped
    short = stratified_sample(data, 81, seed=0)  # only 30 unethical: the ethical side fills the gap
    assert Counter(e.label for e in short) == {0: 51, 1: 30}
    with pytest.raises(UserError):
        stratified_sample(data, 101, seed=0)


def test_split_off_keeps_shares_and_partitions():
    data = examples(70, 30)
    rest, held = split_off(data, 10, seed=3)
    assert Counter(e.label for e in held) == {0: 7, 1: 3}
    assert len(rest) == 90 and {e.row for e in rest}.isdisjoint(e.row for e in held)
    assert rest == [e for e in data if e in rest]  # original order kept
    assert split_off(data, 10, seed=3) == (rest, held)


def test_unterminated_quote_in_a_large_file(tmp_path):
    # Past csv's field size limit the module raises instead of swallowing; same message.
    path = write(tmp_path, "a.csv", 'statement,label\n"a,0\n' + "b,1\n" * 40000)
    assert error(path) == f"{path}:2: quote opened on line 2 is never closed (the rest of the file would be read as one field)"
