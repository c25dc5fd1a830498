"""Exactly-once ingestion of replica extracts (issue 2)."""

from __future__ import annotations

import gzip
import json
import random
import signal
import subprocess
import sys
import time
from datetime import datetime

import duckdb
import pytest

from conftest import PROJECT_DIR, change, run_cli, table_fingerprints, warehouse_env, write_extract

DAY1 = datetime(2024, 9, 3)
DAY2 = datetime(2024, 9, 4)


def small_extracts(root):
    write_extract(
        root,
        "districts",
        DAY1,
        [
            change("c", 1, district_id="d01", name="North", state="WA", nces_lea_id="5300001", locale="City"),
            change("c", 2, district_id="d02", name="South", state="OR", nces_lea_id=None, locale="42"),
        ],
    )
    write_extract(
        root,
        "question_responses",
        DAY1,
        [
            change("c", 10, response_id="r1", question_id="q1", value=4),
            change("c", 11, response_id="r1", question_id="q2", value="Agree"),
            change("c", 12, response_id="r2", question_id="q1", value=2),
        ],
    )
    write_extract(
        root,
        "question_responses",
        DAY2,
        [
            change("u", 13, "2024-09-04T08:00:00Z", response_id="r1", question_id="q1", value=5),
            change("d", 14, "2024-09-04T09:00:00Z", response_id="r2", question_id="q1"),
        ],
    )


def counts(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: con.execute(f"select count(*) from raw.{t}").fetchone()[0]
            for t in ("districts", "question_responses", "quarantined_lines", "ingest_ledger")
        }
    finally:
        con.close()


def test_ingesting_twice_loads_nothing_new(tmp_path, warehouse):
    extracts = tmp_path / "extracts"
    small_extracts(extracts)
    first = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 3 new files (7 rows" in first.stdout
    assert "[ingest 3/3 files]" in first.stderr
    after_first = table_fingerprints(warehouse)
    second = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 0 new files" in second.stdout
    assert "skipped 3 already loaded" in second.stdout
    assert table_fingerprints(warehouse) == after_first
    assert counts(warehouse) == {
        "districts": 2,
        "question_responses": 5,
        "quarantined_lines": 0,
        "ingest_ledger": 3,
    }


def test_identical_redelivery_under_another_name_is_skipped(tmp_path, warehouse):
    extracts = tmp_path / "extracts"
    small_extracts(extracts)
    run_cli("ingest", "--extracts", str(extracts), check=True)
    original = next((extracts / "districts").iterdir())
    copy = original.with_name(original.name.replace("__0000.", "__0001."))
    copy.write_bytes(original.read_bytes())
    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 0 new files" in proc.stdout
    assert "same content as" in proc.stderr and original.name in proc.stderr
    assert counts(warehouse)["districts"] == 2


def test_altered_redelivery_is_refused_and_changes_nothing(tmp_path, warehouse):
    extracts = tmp_path / "extracts"
    small_extracts(extracts)
    run_cli("ingest", "--extracts", str(extracts), check=True)
    before = table_fingerprints(warehouse)

    altered = next((extracts / "districts").iterdir())
    with gzip.open(altered, "wt") as fh:
        fh.write(change("c", 1, district_id="d01", name="Renamed", state="WA") + "\n")
    # a genuinely new file in the same batch must not be loaded either
    write_extract(extracts, "districts", DAY2, [change("c", 3, district_id="d03", name="East", state="ID")])

    proc = run_cli("ingest", "--extracts", str(extracts))
    assert proc.returncode == 2
    assert altered.name in proc.stderr
    assert "different content" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert table_fingerprints(warehouse) == before


def test_malformed_lines_are_quarantined_with_file_line_and_reason(tmp_path, warehouse):
    extracts = tmp_path / "extracts"
    good = [change("c", i, response_id=f"r{i}", question_id="q1", value=i % 5 + 1) for i in range(1, 200_001)]
    lines = list(good)
    bad = {
        17: ('{"_op":"c","_ts":"2024-09-03T10:00:00Z","_seq":', "invalid JSON"),
        1_000: (change("c", 900_001, question_id="q1", value=3), "missing primary key response_id"),
        54_321: (change("c", "900002", response_id="x", question_id="q1", value=3), "wrong type for _seq"),
        123_456: (change("c", 900_003, response_id=7, question_id="q1", value=3), "wrong type for response_id"),
        150_000: (change("c", 900_004, response_id="x", question_id="q1", value=[1]), "wrong type for value"),
        199_999: (change("x", 900_005, response_id="x", question_id="q1", value=1), "_op must be"),
    }
    for line_no in sorted(bad):
        lines.insert(line_no - 1, bad[line_no][0])
    path = write_extract(extracts, "question_responses", DAY1, lines)

    run_cli("ingest", "--extracts", str(extracts), check=True)
    con = duckdb.connect(str(warehouse), read_only=True)
    quarantined = con.execute(
        "select line_number, reason, line, source_file from raw.quarantined_lines order by 1"
    ).fetchall()
    assert [q[0] for q in quarantined] == sorted(bad)
    for line_no, reason, line, source_file in quarantined:
        assert bad[line_no][1] in reason
        assert line == bad[line_no][0]
        assert source_file == path.name
    loaded = con.execute(
        "select count(*), count(distinct _source_line), min(_seq), max(_seq) from raw.question_responses"
    ).fetchone()
    assert loaded == (len(good), len(good), 1, len(good))
    # every loaded row carries the line it came from
    mismatched = con.execute(
        "select count(*) from raw.question_responses "
        "where response_id <> 'r' || _seq or _source_line <> _seq + "
        "(select count(*) from raw.quarantined_lines q where q.line_number <= _source_line)"
    ).fetchone()[0]
    assert mismatched == 0
    ledger = con.execute("select line_count, rows_loaded, lines_quarantined from raw.ingest_ledger").fetchone()
    assert ledger == (len(lines), len(good), len(bad))


def test_keys_the_contract_does_not_list_are_kept(tmp_path, warehouse):
    extracts = tmp_path / "extracts"
    write_extract(
        extracts,
        "survey_responses",
        DAY1,
        [
            change("c", 1, response_id="r1", survey_id="s1", school_id="k1", started_at="2024-09-03T10:00:00Z"),
            change("c", 2, response_id="r2", survey_id="s1", school_id="k1", started_at="2024-09-03T10:00:00Z",
                   device_type="tablet", client={"app": "ios", "v": [1, 2]}),
        ],
    )
    run_cli("ingest", "--extracts", str(extracts), check=True)
    con = duckdb.connect(str(warehouse), read_only=True)
    extras = dict(con.execute("select response_id, _extra from raw.survey_responses").fetchall())
    assert extras["r1"] is None
    assert json.loads(extras["r2"]) == {"device_type": "tablet", "client": {"app": "ios", "v": [1, 2]}}


def test_kill_9_mid_file_then_rerun_loads_every_row_exactly_once(tmp_path):
    env = warehouse_env(tmp_path)
    extracts = tmp_path / "extracts"
    n_per_file = 600_000
    for f in range(3):
        rows = (
            change("c", f * n_per_file + i, response_id=f"r{f}_{i // 20}", question_id=f"q{i % 20}", value=i % 5 + 1)
            for i in range(n_per_file)
        )
        write_extract(extracts, "question_responses", datetime(2024, 9, 3 + f), list(rows))

    proc = subprocess.Popen(
        # one file per transaction, so the kill can land between files
        [sys.executable, "-m", "orchestrate", "ingest", "--extracts", str(extracts), "--batch-mb", "0.001"],
        cwd=PROJECT_DIR,
        env={**__import__("os").environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait until the first file is committed, then kill during the second
    for line in proc.stderr:
        if line.startswith("[ingest 1/3 files]"):
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    con = duckdb.connect(env["DBT_DUCKDB_PATH"])
    partial = con.execute("select count(*) from raw.ingest_ledger").fetchone()[0]
    con.close()
    assert partial in (1, 2), "the kill should land after the first file and before the last"

    run_cli("ingest", "--extracts", str(extracts), env=env, check=True)
    con = duckdb.connect(env["DBT_DUCKDB_PATH"], read_only=True)
    total, distinct = con.execute(
        "select count(*), count(distinct (_source_file, _source_line)) from raw.question_responses"
    ).fetchone()
    assert total == distinct == 3 * n_per_file
    per_file = con.execute(
        "select l.file_name, l.rows_loaded, count(q._seq) from raw.ingest_ledger l "
        "left join raw.question_responses q on q._source_file = l.file_name group by all"
    ).fetchall()
    assert len(per_file) == 3
    assert all(ledger_rows == n_per_file == actual for _, ledger_rows, actual in per_file)


def test_file_names_outside_the_contract_are_refused(tmp_path, warehouse):
    extracts = tmp_path / "extracts"
    small_extracts(extracts)
    (extracts / "districts" / "districts_latest.ndjson.gz").write_bytes(b"")
    proc = run_cli("ingest", "--extracts", str(extracts))
    assert proc.returncode == 2
    assert "districts_latest.ndjson.gz" in proc.stderr
    assert not warehouse.exists() or counts(warehouse)["ingest_ledger"] == 0
