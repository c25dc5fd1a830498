"""fct_question_responses built incrementally equals a full refresh (issue 4).

The sample extracts arrive in three batches by interval date, with a `dbt build` after
each. The batches contain what makes incremental models go wrong: answers corrected (`u`)
and deleted (`d`) after the batch that created them, responses withdrawn with their
answers, and files that arrive late, after files with higher `_seq`. Before the last
build a crosswalk edit unmaps questions whose answers are already built. Then the table
must equal, row by row, a --full-refresh build of the same data.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli, warehouse_env
from orchestrate import contract
from test_survey_mapping import CROSSWALK, dbt, project_copy, query

FIRST_CUT = datetime(2023, 11, 15)
SECOND_CUT = datetime(2024, 10, 15)
LATE = (datetime(2023, 11, 15), datetime(2023, 11, 25))  # held back from batch 2 to batch 3
LATE_TABLES = ("question_responses", "survey_responses")
SELECT = ("--select", "+fct_question_responses", "--indirect-selection", "cautious")
IGNORED = ["ingested_through"]  # the watermark: the ingest each row was built from


def batches(extracts: Path) -> list[list[Path]]:
    out: list[list[Path]] = [[], [], []]
    for table in contract.TABLES:
        for path in sorted((extracts / table).glob("*.ndjson.gz")):
            start = contract.parse_file_name(path.name).interval_start.replace(tzinfo=None)
            if start < FIRST_CUT:
                out[0].append(path)
            elif start < SECOND_CUT and not (table in LATE_TABLES and LATE[0] <= start < LATE[1]):
                out[1].append(path)
            else:
                out[2].append(path)
    return out


def deliver(files: list[Path], arrivals: Path) -> None:
    for path in files:
        target = arrivals / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def fct(db: str) -> pd.DataFrame:
    df = query(db, "select * from marts.fct_question_responses")
    return df.sort_values(["response_id", "question_id"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def incremental(sample_extracts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("incremental")
    env = warehouse_env(folder)
    project = project_copy(folder)
    arrivals = folder / "arrivals"
    built = []
    parts = batches(sample_extracts)
    for number, files in enumerate(parts, start=1):
        deliver(files, arrivals)
        run_cli("ingest", "--extracts", str(arrivals), "--quiet", env=env, check=True)
        if number == len(parts):
            # a reviewed crosswalk change: d01's rewordings are unmapped again
            crosswalk = project / CROSSWALK
            lines = crosswalk.read_text(encoding="utf-8").splitlines(keepends=True)
            crosswalk.write_text("".join(l for l in lines if not l.startswith("d01,")), encoding="utf-8")
        proc = dbt(project, env, "build", *SELECT)
        assert proc.returncode == 0, proc.stdout[-5000:]
        built.append(fct(env["DBT_DUCKDB_PATH"]))
    return env, project, parts, built


def test_batches_exercise_late_changes(incremental):
    """The scenario is not trivial: later batches change and delete what earlier ones built."""
    env, _, parts, built = incremental
    db = env["DBT_DUCKDB_PATH"]
    later_files = tuple(p.name for p in parts[1] + parts[2])
    changed = query(db, f"""
        select _op, count(*) as n from raw.question_responses as later
        where _source_file in {later_files}
          and exists (select 1 from raw.question_responses as earlier
                      where earlier.response_id = later.response_id and earlier.question_id = later.question_id
                        and earlier._seq < later._seq and earlier._source_file not in {later_files})
        group by _op""").set_index("_op").n
    assert changed.get("u", 0) > 0 and changed.get("d", 0) > 0
    withdrawn = query(db, f"""
        select count(*) as n from raw.survey_responses
        where _op = 'd' and _source_file in {later_files}""").n[0]
    assert withdrawn > 0
    late = query(db, """
        select count(*) as n from raw.ingest_ledger as l
        where l.table_name = 'question_responses'
          and exists (select 1 from raw.ingest_ledger as e
                      where e.table_name = l.table_name and e.loaded_at < l.loaded_at
                        and e.interval_start > l.interval_start)""").n[0]
    assert late > 0, "some files arrive after files of later intervals"
    assert len(built[0]) < len(built[1]) < len(built[2])


def test_deleted_answers_and_withdrawn_responses_are_gone(incremental):
    env, _, _, built = incremental
    db = env["DBT_DUCKDB_PATH"]
    answers = query(db, "select response_id, question_id from staging.stg_replica__question_responses")
    responses = query(db, "select response_id from staging.stg_replica__survey_responses")
    final = built[-1]
    keys = final.merge(answers, on=["response_id", "question_id"], how="left", indicator=True)
    assert (keys._merge == "both").all(), "no deleted answer survives"
    assert final.response_id.isin(responses.response_id).all(), "no answer of a withdrawn response survives"
    earlier = built[0].merge(final[["response_id", "question_id"]], how="left", indicator=True)
    assert (earlier._merge == "left_only").sum() > 0, "rows built in batch 1 were deleted later"


def test_crosswalk_edit_reached_rows_built_before(incremental):
    env, _, _, built = incremental
    db = env["DBT_DUCKDB_PATH"]
    d01 = query(db, "select question_id from intermediate.int_questions_mapped where district_id = 'd01' and mapping_method = 'crosswalk'")
    assert d01.empty
    before = built[1].merge(query(db, "select question_id, district_id from intermediate.int_questions_mapped"), on="question_id")
    assert (before[before.district_id == "d01"].mapping_method == "crosswalk").any()
    final = built[-1].merge(query(db, "select question_id, district_id from intermediate.int_questions_mapped"), on="question_id")
    assert not (final[final.district_id == "d01"].mapping_method == "crosswalk").any()


def test_incremental_equals_full_refresh(incremental):
    env, project, _, built = incremental
    db = env["DBT_DUCKDB_PATH"]
    # a run with nothing new changes nothing
    proc = dbt(project, env, "run", "--select", "fct_question_responses")
    assert proc.returncode == 0, proc.stdout[-3000:]
    pd.testing.assert_frame_equal(fct(db), built[-1])

    proc = dbt(project, env, "run", "--full-refresh", "--select", "fct_question_responses")
    assert proc.returncode == 0, proc.stdout[-3000:]
    full = fct(db)
    incremental_rows = built[-1]
    assert len(full) == len(incremental_rows) > 10_000
    pd.testing.assert_frame_equal(full.drop(columns=IGNORED), incremental_rows.drop(columns=IGNORED))
