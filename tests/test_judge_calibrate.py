"""`reasonalign judge calibrate`: the reference judge's threshold from training reasons, as a command.

The real console script and the real bundled MiniLM encoder (24 short reasons encode in seconds)."""

import json

from conftest import cli, write_rows


def test_calibrate_writes_the_record(tmp_path):
    data = write_rows(tmp_path / "train.csv")
    out = tmp_path / "cal" / "calibration.json"
    r = cli("judge", "calibrate", "--data", str(data), "--max-items", "16", "--seed", "1", "--output", str(out))
    assert r.returncode == 0, r.stderr
    record = json.loads(out.read_text())
    assert -1 < record["threshold"] < 1
    assert 0 <= record["balanced_accuracy"] <= 1
    assert record["n_pos"] == 16 and record["n_neg"] > 0
    assert record["seed"] == 1 and record["max_items"] == 16
    assert record["data"] == str(data) and record["rows_with_reason"] == 24
    assert f"threshold          {record['threshold']}" in r.stdout
    assert "balanced accuracy" in r.stdout and "positive median" in r.stdout


def test_calibrate_with_false_alarm(tmp_path):
    data = write_rows(tmp_path / "train.csv")
    out = tmp_path / "cal.json"
    r = cli("judge", "calibrate", "--data", str(data), "--max-items", "8", "--false-alarm", "0.25",
            "--output", str(out))
    assert r.returncode == 0, r.stderr
    record = json.loads(out.read_text())
    assert record["method"].startswith("false-alarm rate 0.25") and -1 < record["threshold"] < 1


def test_data_without_reasons_is_one_line_and_writes_nothing(tmp_path):
    ethos = tmp_path / "ethos.csv"
    ethos.write_text("comment;isHate\nyou are lovely;0.0\nget lost you idiot;1.0\nhave a nice day;0.0\n"
                     "i hate you all;0.9\n", encoding="utf-8")
    out = tmp_path / "cal.json"
    r = cli("judge", "calibrate", "--data", f"ethos:{ethos}", "--max-items", "4", "--output", str(out))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "reason" in lines[0]
    assert not out.exists()


def test_bad_false_alarm_is_refused(tmp_path):
    data = write_rows(tmp_path / "train.csv", n_per_class=2)
    r = cli("judge", "calibrate", "--data", str(data), "--false-alarm", "1.5")
    assert r.returncode == 2 and r.stderr.startswith("error: --false-alarm")
