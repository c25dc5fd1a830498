"""`python -m orchestrate bench` (issue 7) at a tiny scale: it measures every step on the
same data, its incremental day is a day of updates and deletes that the run builds with
the changed-only scope, and it writes its figures. No figure is compared with a time."""

from __future__ import annotations

import gzip
import json

import duckdb

from conftest import run_cli


def test_bench_measures_a_full_run_and_an_incremental_day(tmp_path):
    cache, out = tmp_path / "bench", tmp_path / "figures.json"
    proc = run_cli("bench", "--scale", "0.005", "--seed", "3", "--cache-dir", str(cache),
                   "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    for label in ("floor (scan)", "ingest", "dbt build", "checks", "run (whole)",
                  "incremental day run", "ratio incremental / full", "peak resident memory"):
        assert label in proc.stdout, label

    [result] = json.loads(out.read_text())
    steps = {s["name"]: s for s in result["steps"]}
    assert all(s["seconds"] > 0 for s in steps.values())
    assert steps["floor (scan)"]["rows"] == steps["ingest"]["rows"] == result["lines"] > 0
    assert set(result["ratios"]) == {"ingest / floor", "full run / floor", "incremental / full"}
    assert result["peak_rss_mb"] > 0

    # the day: about 1% of the current answers, four in five updated, one in five deleted
    day = steps["incremental day run"]
    day_file = next((cache / "work" / "extracts" / "question_responses").glob(day["note"]))
    with gzip.open(day_file, "rt") as lines:
        changes = [json.loads(line) for line in lines]
    assert len(changes) == day["rows"]
    ops = {op: sum(c["_op"] == op for c in changes) for op in ("u", "d")}
    assert ops["u"] > ops["d"] > 0 and ops["u"] + ops["d"] == len(changes)
    con = duckdb.connect(str(cache / "work" / "warehouse.duckdb"), read_only=True)
    try:
        (answers,) = con.execute("select count(*) from marts.fct_question_responses").fetchone()
        deleted = con.execute(
            "select count(*) from marts.fct_question_responses as f "
            f"inner join read_json('{day_file}') as d "
            "on f.response_id = d.response_id and f.question_id = d.question_id where d._op = 'd'"
        ).fetchone()[0]
    finally:
        con.close()
    assert 0.005 <= len(changes) / answers <= 0.02
    assert deleted == 0  # the run that followed removed them

    # and the run built only what the day changes
    assert steps["  of which dbt build"]["note"].startswith("only what changed since run")
    assert steps["  of which dbt build"]["note"].endswith("downstream of question_responses")
