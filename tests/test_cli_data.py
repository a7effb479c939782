"""The real `reasonalign` console script: one line on success, one `error:` line and exit 2 on bad data."""

import json
from pathlib import Path

from conftest import cli

FIXTURES = Path(__file__).parent / "fixtures"


def test_validate_ok_prints_one_line():
    res = cli("data", "validate", str(FIXTURES / "tiny.csv"), "--method", "lr")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"ok: {FIXTURES / 'tiny.csv'}: 6 rows (3 ethical, 3 unethical), reasons on every row"]
    assert res.stderr == ""


def test_validate_options_reach_the_loader():
    res = cli("data", "validate", str(FIXTURES / "tiny.tsv"), "--columns", "statement=text,label=verdict",
              "--label-map", "no=ethical,yes=unethical")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith(": 2 rows (1 ethical, 1 unethical), no reasons")


def test_validate_bad_file_one_error_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('statement,label,reason\na,0,"two\nlines"\nb,maybe,r\n')
    res = cli("data", "validate", str(bad))
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.splitlines() == [f"error: {bad}:4: label 'maybe' is not one of 0, 1, ethical, unethical "
                                       "(map it with --label-map RAW=ethical,...)"]
    assert "Traceback" not in res.stderr


def test_bad_option_is_a_user_error_too():
    res = cli("data", "validate", "dfar:test", "--columns", "nonsense")
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1 and res.stderr.startswith("error: bad --columns")


def test_audit_json():
    res = cli("data", "audit", "--train", "dfar:train-all", "--test", "dfar:test", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["leaked_test_rows"] == 189 and report["clean_test_rows"] == 311
