"""Loading intervals out of order, or late, gives the same current state (issue 2)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import duckdb

from datetime import datetime

from conftest import change, dbt_build, run_cli, warehouse_env, write_extract
from orchestrate.contract import TABLES

STAGING = [f"stg_replica__{t}" for t in TABLES]


def staging_state(db: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {m: sorted(con.execute(f"select * from staging.{m}").fetchall(), key=repr) for m in STAGING}
    finally:
        con.close()


def test_out_of_order_and_late_loading_gives_the_same_current_state(tmp_path, sample_extracts):
    in_order = warehouse_env(tmp_path / "in_order")
    run_cli("ingest", "--extracts", str(sample_extracts), "--quiet", env=in_order, check=True)
    dbt_build(in_order, "--select", "staging", "--indirect-selection", "cautious")

    # The same files in a random order, in five deliveries: most files arrive after files
    # of later intervals, and each delivery is a separate ingest run.
    files = sorted(sample_extracts.glob("*/*.ndjson.gz"))
    random.Random(3).shuffle(files)
    shuffled = warehouse_env(tmp_path / "shuffled")
    inbox = tmp_path / "inbox"
    for batch in range(5):
        for path in files[batch::5]:
            (inbox / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, inbox / path.parent.name / path.name)
        run_cli("ingest", "--extracts", str(inbox), "--quiet", env=shuffled, check=True)
    dbt_build(shuffled, "--select", "staging", "--indirect-selection", "cautious")

    expected = staging_state(Path(in_order["DBT_DUCKDB_PATH"]))
    assert all(expected[m] for m in STAGING), "every staging model has rows"
    actual = staging_state(Path(shuffled["DBT_DUCKDB_PATH"]))
    for model in STAGING:
        assert actual[model] == expected[model], model


def test_staging_drops_deleted_rows_and_keeps_the_latest_change(built_warehouse):
    """Independent check of current state: recompute it in pandas from the raw change log."""
    raw = built_warehouse.df(
        "select response_id, question_id, _op, _seq, value from raw.question_responses"
    )
    latest = raw.sort_values("_seq").groupby(["response_id", "question_id"]).tail(1)
    current = latest[latest["_op"] != "d"]
    staged = built_warehouse.df(
        "select response_id, question_id, answer_value from staging.stg_replica__question_responses"
    )
    assert len(raw) > len(current) > 0
    assert (raw["_op"] == "d").any() and (raw["_op"] == "u").any()
    merged = current.merge(staged, on=["response_id", "question_id"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    same = merged["value"].fillna("<null>").str.strip() == merged["answer_value"].fillna("<null>")
    assert same.all()


def test_a_change_that_clears_a_value_leaves_it_cleared(tmp_path):
    """Current state is the whole latest change, nulls included: an update that clears an
    answer leaves no answer, not the value before it. (A grouping with max_by(value, _seq)
    would return the last non-null value instead: DuckDB's max_by skips null arguments.)"""
    env = warehouse_env(tmp_path)
    extracts = tmp_path / "extracts"
    write_extract(extracts, "question_responses", datetime(2024, 9, 3), [
        change("c", 1, response_id="r1", question_id="q1", value="4"),
        change("c", 2, response_id="r1", question_id="q2", value="3"),
        change("c", 3, response_id="r1", question_id="q3", value="2"),
    ])
    write_extract(extracts, "question_responses", datetime(2024, 9, 4), [
        change("u", 4, ts="2024-09-04T10:00:00.000Z", response_id="r1", question_id="q1", value=None),
        change("u", 5, ts="2024-09-04T10:00:00.000Z", response_id="r1", question_id="q2", value="5"),
        change("d", 6, ts="2024-09-04T10:00:00.000Z", response_id="r1", question_id="q3"),
    ])
    run_cli("ingest", "--extracts", str(extracts), "--quiet", env=env, check=True)
    dbt_build(env, "--select", "stg_replica__question_responses", "--indirect-selection", "cautious")
    con = duckdb.connect(env["DBT_DUCKDB_PATH"], read_only=True)
    try:
        rows = con.execute("select question_id, answer_value, change_seq from "
                           "staging.stg_replica__question_responses order by question_id").fetchall()
    finally:
        con.close()
    assert rows == [("q1", None, 4), ("q2", "5", 5)]
