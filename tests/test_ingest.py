"""Exactly-once ingestion of replica extracts (issue 2)."""

from __future__ import annotations

import gzip
import json
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

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


def test_an_ingest_says_where_its_seconds_went(tmp_path):
    """Examining the files, judging their lines, writing them: each phase timed, within the
    whole (the benchmark prints them); a delivery with nothing new only examines."""
    from orchestrate.ingest import PHASES, ingest

    extracts = tmp_path / "extracts"
    small_extracts(extracts)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        first = ingest(extracts, con, progress=False)
        assert set(first.phase_seconds) == set(PHASES) == {"examine", "judge", "write"}
        assert all(seconds > 0 for seconds in first.phase_seconds.values())
        assert sum(first.phase_seconds.values()) <= first.seconds
        again = ingest(extracts, con, progress=False)
        assert set(again.phase_seconds) == {"examine"} and again.phase_seconds["examine"] <= again.seconds
    finally:
        con.close()


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


# --------------------------------------------------------------------------------------
# The fast path (issue 16): clean lines are parsed once and judged by one condition; only
# the others are judged one by one. Both paths must load exactly the same thing.


def ingest_both_ways(tmp_path, extracts, batch_bytes=64_000_000):
    """Ingest `extracts` into two fresh warehouses, once with the fast path and once with
    every line on the careful path; per warehouse its IngestResult and its content (raw
    tables, quarantine and ledger without their load times), read on the ingest's own
    connection."""
    from orchestrate.contract import TABLES
    from orchestrate.ingest import ingest

    out = {}
    for fast in (True, False):
        con = duckdb.connect(str(tmp_path / f"{'fast' if fast else 'careful'}.duckdb"))
        try:
            result = ingest(extracts, con, progress=False, batch_bytes=batch_bytes, fast_path=fast)
            content = {t: con.execute(f"select * from raw.{t} order by _source_file, _source_line").fetchall()
                       for t in TABLES}
            content["quarantine"] = con.execute(
                "select source_file, line_number, table_name, reason, line from raw.quarantined_lines "
                "order by source_file, line_number").fetchall()
            content["ledger"] = con.execute(
                "select * exclude (loaded_at) from raw.ingest_ledger order by file_name").fetchall()
        finally:
            con.close()
        out[fast] = (result, content)
    return out


def careful_lines(result) -> int:
    return sum(f.lines_checked_carefully for f in result.loaded)


def text_lines(result) -> int:
    return sum(f.lines_read_as_text for f in result.loaded)


def test_clean_files_take_the_fast_path_and_load_what_the_careful_path_loads(tmp_path, sample_extracts):
    """The generated sample (every table; survey_responses with keys the contract does not
    list, flags as booleans and strings, open and scale answers as numbers and labels)."""
    both = ingest_both_ways(tmp_path, sample_extracts)
    (fast, fast_content), (careful, careful_content) = both[True], both[False]
    assert fast.rows_loaded == careful.rows_loaded > 50_000 and fast.lines_quarantined == 0
    assert careful_lines(fast) == 0, "a clean file takes the fast path"
    assert text_lines(fast) == 0, "a clean file is judged by the JSON reader, not from its text"
    assert careful_lines(careful) == careful.rows_loaded
    for name in fast_content:
        assert fast_content[name] == careful_content[name], name
    extras = [row for row in fast_content["survey_responses"] if row[-3] is not None]
    assert extras and all(json.loads(row[-3]).keys() == {"device_type"} for row in extras)


TRICKY = [  # (line, clean): lines a real delivery may hold, and what the fast path does with each
    (change("c", 1, response_id="r1", question_id="q1", value=4), True),
    (change("c", 2, response_id="r1", question_id="q2", value="Strongly agree"), True),
    (change("c", 3, response_id="r1", question_id="q3", value=None), True),
    (change("d", 4, response_id="r1", question_id="q3"), True),  # a delete: no value key
    (change("c", 5, response_id="r1", question_id="q4", value=4.5), True),
    (change("c", 6, response_id="r1", question_id="q5", value="caf\u00e9 \"quoted\" \\ back\\slash / \u2028"),
     True),
    (json.dumps({"_op": "c", "_ts": "2024-09-03T10:00:00Z", "_seq": 7, "response_id": "r\u00e9",
                 "question_id": "q6", "value": "\u00e9\u0001"}, ensure_ascii=True), True),
    (json.dumps({"value": 3, "question_id": "q7", "response_id": "r1", "_seq": 8, "_ts": "2024-09-03T10:00:00Z",
                 "_op": "u"}, indent=None, separators=(", ", ": ")), True),  # other key order, spaces
    (change("c", 9, "2024-09-03T10:00:00", response_id="r1", question_id="q8", value=1), True),  # no zone
    (change("c", 10, "2024-09-03T12:00:00+02:00", response_id="r1", question_id="q9", value=1), True),
    (change("c", 11, response_id="r1", question_id="q10", value=2, client="ios"), True),  # kept in _extra
    (change("c", 12, response_id="r1", question_id="q11", value=True), False),  # a boolean answer
    (change("c", 13, response_id="r1", question_id="q12", value=[1]), False),
    (change("c", 14, response_id="r1", question_id="q13", value={"a": 1}), False),
    (change("c", "15", response_id="r1", question_id="q14", value=1), False),
    (change("c", 16.0, response_id="r1", question_id="q15", value=1), False),
    (change("c", 2**64 - 1, response_id="r1", question_id="q16", value=1), False),
    (change("c", 17, response_id=17, question_id="q17", value=1), False),
    (change("c", 18, question_id="q18", value=1), False),
    (change("x", 19, response_id="r1", question_id="q19", value=1), False),
    (change("c", 20, "yesterday", response_id="r1", question_id="q20", value=1), False),
    (change("c", 21, 1725357600, response_id="r1", question_id="q21", value=1), False),
    ('{"_op":"c","_ts":"2024-09-03T10:00:00Z","_seq":22,', False),
    ("", False),
    ("   ", False),
    ("[1, 2]", False),
    ('"just a string"', False),
    (change("c", 1, response_id="r1", question_id="q22", value=5), True),  # _seq 1 again: a duplicate
]


def test_clean_lines_of_every_shape_are_judged_by_the_json_reader_as_the_careful_path_judges_them(tmp_path):
    """A file whose lines are all clean but not as the platform writes them (other key
    order and spaces, nulls, a delete without a value, numbers and labels, escapes, a time
    without a zone or with an offset, a key the contract does not list) is judged by the
    JSON reader alone, and loads exactly what the careful path loads, line numbers and
    `_extra` included; so does the next file of the run, numbered after it."""
    extracts = tmp_path / "extracts"
    clean = [line for line, ok in TRICKY if ok][:-1]  # the last one repeats _seq 1
    write_extract(extracts, "question_responses", DAY1, clean)
    write_extract(extracts, "question_responses", DAY2, [
        change("c", 100 + i, response_id=f"r{i}", question_id="q1", value=i % 5 + 1) for i in range(50)])
    both = ingest_both_ways(tmp_path, extracts)
    (fast, fast_content), (careful, careful_content) = both[True], both[False]
    for name in fast_content:
        assert fast_content[name] == careful_content[name], name
    assert fast.rows_loaded == len(clean) + 50 and fast.lines_quarantined == 0
    assert text_lines(fast) == 0 and careful_lines(fast) == 0
    rows = fast_content["question_responses"]
    assert [r[-1] for r in rows] == list(range(1, len(clean) + 1)) + list(range(1, 51))
    assert [json.loads(r[-3]) for r in rows if r[-3] is not None] == [{"client": "ios"}]


def test_empty_lines_the_json_reader_skips_keep_their_line_numbers_and_are_quarantined(tmp_path):
    """The JSON reader passes over empty and blank lines without a word: the counts tell,
    and the batch is judged from its text, so each such line is quarantined under its own
    number and the lines after it keep theirs, in its file and in the next one."""
    extracts = tmp_path / "extracts"
    lines = [change("c", i, response_id=f"r{i}", question_id="q1", value=1) for i in range(1, 7)]
    write_extract(extracts, "question_responses", DAY1, lines[:2] + [""] + lines[2:4] + ["   "] + lines[4:])
    write_extract(extracts, "question_responses", DAY2, [
        change("c", 10 + i, response_id=f"s{i}", question_id="q1", value=1) for i in range(3)])
    both = ingest_both_ways(tmp_path, extracts)
    assert both[True][1] == both[False][1]
    result, content = both[True]
    assert result.rows_loaded == 9 and result.lines_quarantined == 2
    first, second = (f.name for f in result.loaded)
    assert [(f, n, r) for f, n, _, r, _ in content["quarantine"]] == [
        (first, 3, "empty line"), (first, 6, "empty line")]
    assert [r[-1] for r in content["question_responses"] if r[-2] == first] == [1, 2, 4, 5, 7, 8]
    assert [r[-1] for r in content["question_responses"] if r[-2] == second] == [1, 2, 3]


def test_a_file_with_bad_lines_loads_the_same_on_both_paths_and_only_bad_lines_go_one_by_one(tmp_path):
    extracts = tmp_path / "extracts"
    good = [change("c", 100 + i, response_id=f"r{i}", question_id="q1", value=i % 5 + 1) for i in range(3_000)]
    lines = good[:1_000] + [line for line, _ in TRICKY] + good[1_000:]
    write_extract(extracts, "question_responses", DAY1, lines)
    # students: flags as strings, booleans and integers, a number as a flag, a boolean as a string
    students = [
        change("c", 1, student_id="s1", district_id="d1", hispanic_latino=True, iep="N", english_learner=0),
        change("c", 2, student_id="s2", district_id="d1", hispanic_latino=1.5),
        change("c", 3, student_id="s3", district_id="d1", grade_level=True),
    ]
    write_extract(extracts, "students", DAY1, students)
    write_extract(extracts, "schools", DAY1, [
        change("c", 1, school_id="k1", district_id="d1", frl_percent=40),
        change("c", 2, school_id="k2", district_id="d1", frl_percent="40"),
    ])
    write_extract(extracts, "survey_questions", DAY1, [
        change("c", 1, question_id="q1", survey_id="v1", position=1, response_options=[{"value": 1, "label": "No"}]),
        change("c", 2, question_id="q2", survey_id="v1", position=1.0, response_options=None),
        change("c", 3, question_id="q3", survey_id="v1", position=2, response_options="[]"),
    ])
    both = ingest_both_ways(tmp_path, extracts)
    (fast, fast_content), (careful, careful_content) = both[True], both[False]
    for name in fast_content:
        assert fast_content[name] == careful_content[name], name
    not_clean = sum(1 for _, clean in TRICKY if not clean)
    by_file = {f.table: f for f in fast.loaded}
    assert by_file["question_responses"].lines_checked_carefully == not_clean
    # the JSON reader refuses the file (a line that is not an object): judged from its text
    assert by_file["question_responses"].lines_read_as_text == by_file["question_responses"].lines
    # every line that is not clean is quarantined, and so is the clean repeat of _seq 1
    # (repeats are found after both paths)
    assert by_file["question_responses"].lines_quarantined == not_clean + 1
    assert by_file["students"].lines_checked_carefully == 2
    assert by_file["schools"].lines_checked_carefully == 1
    assert by_file["survey_questions"].lines_checked_carefully == 2
    reasons = [r for _, _, _, r, _ in fast_content["quarantine"]]
    for expected in ("duplicate _seq 1:", "empty line", "invalid JSON", "not a JSON object",
                     "wrong type for value", "wrong type for _seq", "_seq out of range",
                     "missing primary key response_id", "_op must be", "_ts must be",
                     "wrong type for hispanic_latino", "wrong type for frl_percent",
                     "wrong type for position", "wrong type for response_options"):
        assert any(r.startswith(expected) for r in reasons), expected


def test_only_the_files_with_bad_lines_are_read_as_text(tmp_path):
    """In one batch of seven daily files, the JSON reader judges the clean ones; a file it
    refuses (invalid JSON), one it reads short (an empty line) and one with a line of the
    wrong kind are each judged from their text alone, and the reader goes on after them:
    every line keeps its number, and the batch loads as the careful path loads it."""
    extracts = tmp_path / "extracts"
    bad = {1: (50, "not json", "invalid JSON"),
           3: (120, change("c", "15", response_id="x", question_id="q1", value=1), "wrong type for _seq"),
           4: (100, "", "empty line")}
    for day in range(7):
        lines = [change("c", 1000 * day + n, response_id=f"r{day}-{n}", question_id="q1", value=n % 5 + 1)
                 for n in range(1, 201)]
        if day in bad:
            number, line, _ = bad[day]
            lines.insert(number - 1, line)
        write_extract(extracts, "question_responses", DAY1 + timedelta(days=day), lines)
    both = ingest_both_ways(tmp_path, extracts)
    (fast, fast_content), (careful, careful_content) = both[True], both[False]
    for name in fast_content:
        assert fast_content[name] == careful_content[name], name
    assert [f.lines_read_as_text for f in fast.loaded] == [0, 201, 0, 201, 201, 0, 0]
    assert [f.lines_checked_carefully for f in fast.loaded] == [0, 1, 0, 1, 1, 0, 0]
    names = [f.name for f in fast.loaded]
    assert [(f, n, r.split(":")[0]) for f, n, _, r, _ in fast_content["quarantine"]] == [
        (names[day], number, reason) for day, (number, _, reason) in bad.items()]
    assert fast.rows_loaded == 7 * 200


def test_many_files_the_json_reader_refuses_or_reads_short_are_judged_in_a_few_statements(tmp_path):
    """A writer's quirk in every file of a backfill (here a blank last line, and in the last
    six of them a line that is not JSON): the reader reads the run's files once, plus once for
    each of its first refusals, not once per bad file, which took minutes and, one
    Python frame a file, failed the ingest past the recursion limit (here set to 120 in a
    process of its own); every file is judged from its text, with the careful path's rows,
    quarantine and line numbers."""
    extracts = tmp_path / "extracts"
    for day in range(300):
        lines = [change("c", 100 * day + n, response_id=f"r{day}-{n}", question_id="q1", value=1)
                 for n in range(1, 6)] + [""]
        if day >= 294:
            lines.insert(2, "{oops")
        write_extract(extracts, "question_responses", DAY1 + timedelta(days=day), lines)
    script = (
        "import sys, duckdb\n"
        "sys.setrecursionlimit(120)\n"
        "from orchestrate.ingest import ingest\n"
        f"con = duckdb.connect({str(tmp_path / 'fast.duckdb')!r})\n"
        "con.execute('set threads = 2')\n"
        f"result = ingest(__import__('pathlib').Path({str(extracts)!r}), con, progress=False)\n"
        "print(result.rows_loaded, result.lines_quarantined, sum(f.lines_read_as_text for f in result.loaded))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(300 * 5), str(300 + 6), str(300 * 6 + 6)]
    careful = ingest_both_ways(tmp_path, extracts)[False][1]
    con = duckdb.connect(str(tmp_path / "fast.duckdb"), read_only=True)
    try:
        assert con.execute("select * from raw.question_responses order by _source_file, _source_line"
                           ).fetchall() == careful["question_responses"]
        assert con.execute("select source_file, line_number, table_name, reason, line from "
                           "raw.quarantined_lines order by source_file, line_number"
                           ).fetchall() == careful["quarantine"]
    finally:
        con.close()


def test_a_line_that_repeats_a_key_is_quarantined_and_the_rest_of_its_file_loads(tmp_path):
    """A JSON object that names a key twice is ambiguous (which value is the change?):
    whether the key is the contract's or not, the line is quarantined with the key named,
    on every path, and the lines around it load. (A repeated key the contract does not list
    used to fail the whole batch: "Map keys must be unique".)"""
    extracts = tmp_path / "extracts"
    write_extract(extracts, "question_responses", DAY1, [
        change("c", n, response_id=f"r{n}", question_id="q1", value=1) for n in range(1, 4)])
    write_extract(extracts, "question_responses", DAY2, [
        change("c", 10, response_id="r10", question_id="q1", value=1),
        '{"_op":"c","_ts":"2024-09-03T10:00:00Z","_seq":11,"response_id":"r11","question_id":"q1",'
        '"value":2,"value":3}',
        '{"_op":"c","_ts":"2024-09-03T10:00:00Z","_seq":12,"response_id":"r12","question_id":"q1",'
        '"value":2,"client":"ios","client":"web"}',
        change("c", 13, response_id="r13", question_id="q1", value=1)])
    both = ingest_both_ways(tmp_path, extracts)
    assert both[True][1] == both[False][1]
    result, content = both[True]
    assert result.rows_loaded == 5 and result.lines_quarantined == 2
    assert [(n, reason) for _, n, _, reason, _ in content["quarantine"]] == [
        (2, "repeated key value"), (3, "repeated key client")]


def test_a_large_file_of_bad_lines_is_quarantined_whole_on_both_paths(tmp_path):
    """More than a DuckDB row group (122,880 rows) of lines, none loadable: every one is
    quarantined with its reason, none lost, on both paths (the careful path judges a whole
    batch's lines again in place), as the ingest's own connection sees it."""
    extracts = tmp_path / "extracts"
    n = 130_000
    write_extract(extracts, "question_responses", DAY1,
                  [change("c", str(i), response_id=f"r{i}", question_id="q1", value=1) for i in range(1, n + 1)])
    both = ingest_both_ways(tmp_path, extracts)
    for fast in (True, False):
        result, content = both[fast]
        assert result.rows_loaded == 0 and result.lines_quarantined == n
        assert content["question_responses"] == []
        assert len(content["quarantine"]) == n  # seen by the ingest's own connection
        assert {r for _, _, _, r, _ in content["quarantine"]} == {
            "wrong type for _seq: expected integer, got varchar"}
    assert both[True][1] == both[False][1]


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "lone-cr"])
def test_line_ends_other_than_newline_keep_line_numbers_on_both_paths(tmp_path, newline):
    """Files are judged in runs, numbered from the examined line counts; a file whose lines
    the reader ends elsewhere (carriage returns) is numbered as the reader reads it, and
    loads as the careful path loads it. Two files, so the second one's numbers depend on
    the first one's count."""
    extracts = tmp_path / "extracts"
    for day, first in ((DAY1, 1), (DAY2, 100)):
        lines = [change("c", first + i, response_id=f"r{first + i}", question_id="q1", value=1)
                 for i in range(5)] + ["not json"]
        path = write_extract(extracts, "question_responses", day, [])
        with gzip.open(path, "wb") as fh:
            fh.write(newline.join(lines).encode() + newline.encode())
    both = ingest_both_ways(tmp_path, extracts)
    assert both[True][1] == both[False][1]
    result, content = both[True]
    assert result.rows_loaded + result.lines_quarantined == sum(f.lines for f in result.loaded)
    bad = [(f, n) for f, n, _, _, _ in content["quarantine"]]
    # the reader ends lines at a CR too: six lines per file, the bad one last
    assert result.rows_loaded == 10 and sorted(n for _, n in bad) == [6, 6]
    assert [f.lines for f in result.loaded] == [6, 6]


def test_a_file_gone_while_its_batch_is_judged_loads_nothing_and_leaves_no_work_behind(tmp_path):
    """The batch's files are judged in runs at once (here two, one per thread); a run that
    fails (its file removed after the ingest examined it) stops the batch: nothing of it is
    loaded or recorded, DuckDB's error names the file, and the batch's in-memory work
    database is detached."""
    from orchestrate.contract import TABLES
    from orchestrate.ingest import discover, ensure_raw_schema, load_batch, plan

    extracts = tmp_path / "extracts"
    for i, day in enumerate((DAY1, DAY2)):
        write_extract(extracts, "question_responses", day, [
            change("c", 10 * i + n, response_id=f"r{i}{n}", question_id="q1", value=1) for n in range(1, 6)])
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        con.execute("set threads = 2")
        ensure_raw_schema(con)
        new, _ = plan(con, discover(extracts).files)
        assert len(new) == 2
        new[1][1].unlink()
        with pytest.raises(duckdb.Error, match=new[1][0].name):
            load_batch(con, TABLES["question_responses"], new)
        assert con.execute("select count(*) from raw.question_responses").fetchone()[0] == 0
        assert con.execute("select count(*) from raw.ingest_ledger").fetchone()[0] == 0
        assert not con.execute(
            "select database_name from duckdb_databases() where database_name like 'ingest_work_%'").fetchall()
        # the file delivered again loads whole
        write_extract(extracts, "question_responses", DAY2, [
            change("c", 10 + n, response_id=f"r1{n}", question_id="q1", value=1) for n in range(1, 6)])
        new, _ = plan(con, discover(extracts).files)
        assert sum(f.rows_loaded for f in load_batch(con, TABLES["question_responses"], new)) == 10
    finally:
        con.close()


def ledger_load_times(db) -> dict[str, datetime]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("select file_name, loaded_at from raw.ingest_ledger").fetchall())
    finally:
        con.close()


def test_load_times_are_utc_whatever_the_machines_time_zone(tmp_path, warehouse):
    """The ledger's loaded_at is UTC (as on Snowflake, and as source freshness reads it),
    not the wall clock of the machine that ran the ingest: a laptop in Tokyo writes the
    same time as a server in UTC."""
    extracts = tmp_path / "extracts"
    small_extracts(extracts)
    with gzip.open(extracts / "question_responses" / "question_responses__20240905T000000Z__"
                   "20240906T000000Z__0000.ndjson.gz", "wt") as bad:
        bad.write("not json\n")
    before = datetime.now(timezone.utc).replace(tzinfo=None)
    run_cli("ingest", "--extracts", str(extracts), env={"TZ": "Asia/Tokyo"}, check=True)
    after = datetime.now(timezone.utc).replace(tzinfo=None)
    for name, loaded_at in ledger_load_times(warehouse).items():
        assert before - timedelta(seconds=1) <= loaded_at <= after + timedelta(seconds=1), (name, loaded_at)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        (quarantined_at,) = con.execute("select max(quarantined_at) from raw.quarantined_lines").fetchone()
    finally:
        con.close()
    assert before - timedelta(seconds=1) <= quarantined_at <= after + timedelta(seconds=1)


def test_a_later_load_is_never_earlier_than_an_earlier_one(tmp_path, warehouse):
    """Incremental builds take the files loaded after the ledger's high-water: a file whose
    loaded_at fell below it would never be built. A clock set back, a change of time zone
    (the ledger of a machine east of UTC, written in local time before loads were UTC) or
    the autumn's repeated hour must not put a new file below it."""
    extracts = tmp_path / "extracts"
    small_extracts(extracts)
    day2 = sorted((extracts / "question_responses").iterdir())[-1]
    held = tmp_path / day2.name
    day2.rename(held)
    run_cli("ingest", "--extracts", str(extracts), check=True)
    con = duckdb.connect(str(warehouse))
    try:  # the earlier loads, as a machine nine hours east of UTC wrote them
        con.execute("update raw.ingest_ledger set loaded_at = loaded_at + interval 9 hour")
        (high_water,) = con.execute("select max(loaded_at) from raw.ingest_ledger").fetchone()
    finally:
        con.close()
    held.rename(day2)
    run_cli("ingest", "--extracts", str(extracts), check=True)
    assert ledger_load_times(warehouse)[day2.name] > high_water
