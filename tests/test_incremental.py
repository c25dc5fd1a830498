"""Incremental builds equal a full refresh (issues 4 and 16).

fct_question_responses (issue 4):

The sample extracts arrive in three batches by interval date, with a `dbt build` after
each. The batches contain what makes incremental models go wrong: answers corrected (`u`)
and deleted (`d`) after the batch that created them, responses withdrawn with their
answers, and files that arrive late, after files with higher `_seq`. Before the last
build a crosswalk edit unmaps questions whose answers are already built. Then the table
must equal, row by row, a --full-refresh build of the same data.

The models partitioned by school year (issue 16): a realistic day (the last day of new
responses of the current school year's window, held back from the first load, and late
corrections to 0.1% of the year's earlier answers) rebuilds only the current year; a late
correction to a closed year's answer rebuilds that year, a roster change the years its
student responded in; after each, every partitioned table equals a full refresh row by
row. That a year was not recomputed is seen by a marker: one row per year gets a value
the models never produce; a rebuilt year loses it, a year left alone keeps it.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import change, run_cli, warehouse_env, write_extract
from orchestrate import bench, contract
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


# The models partitioned by school year (the aggregates), each with a column to mark a row in.
PARTITIONED = {
    "intermediate.int_topic_results_aggregated": "respondents",
    "intermediate.int_item_results_aggregated": "respondents",
    "intermediate.int_result_cells_ranked": "respondents",
    "intermediate.int_result_relations_listed": "respondents",
    "intermediate.int_result_cells_suppressed": "respondents",
    "marts.topic_results": "substantive_answers",
    "marts.item_results": "substantive_answers",
    "marts.participation": "invited",
    "marts.benchmarks": "schools",
    "marts.reliability": "items",
    "marts.item_reliability": "items",
}
MARK = -7  # no model produces it
# The models maintained by response (macros/survey/response_deltas.sql), each with a
# column to mark a row in (numeric or text: the mark is written as the text '-7').
BY_RESPONSE = {
    "intermediate.int_response_items_scored": "substantive_answers",
    "intermediate.int_response_items_listwise_filtered": "item_score",
    "intermediate.int_response_topics_scored": "items_answered",
    "marts.fct_survey_responses": "questions_answered",
    "marts.respondents_wide": "stu_belonging_score",
    "intermediate.int_respondent_subgroups_assigned": "subgroup_value",
}
# (int_survey_responses_enriched is maintained by response too, but not marked: the tables
# above read its columns for the responses they rebuild, and would copy a mark. It is
# compared with a full refresh below.)
# Tables maintained by response that are built from responses, not answers: a day of
# answer corrections alone rebuilds none of their responses.
ANSWER_FREE = {"intermediate.int_respondent_subgroups_assigned"}
INCREMENTAL = {**PARTITIONED, **BY_RESPONSE, "intermediate.int_survey_responses_enriched": None}


def mark_responses(db: str, response_ids: list[str]) -> dict:
    """Mark every row of these responses in every table maintained by response; return
    what to restore."""
    con = duckdb.connect(db)
    try:
        saved = {}
        for table, column in BY_RESPONSE.items():
            where = "where list_contains(?, response_id)"
            saved[table] = con.execute(f"select rowid, {column} from {table} {where}", [response_ids]).fetchall()
            con.execute(f"update {table} set {column} = '{MARK}' {where}", [response_ids])
        return saved
    finally:
        con.close()


def unmark_responses(db: str, saved: dict) -> None:
    con = duckdb.connect(db)
    try:
        for table, rows in saved.items():
            column = BY_RESPONSE[table]
            con.executemany(f"update {table} set {column} = ? where rowid = ? and {column} = '{MARK}'",
                            [(value, rowid) for rowid, value in rows])
    finally:
        con.close()


def marked_responses(db: str) -> dict[str, set[str]]:
    con = duckdb.connect(db, read_only=True)
    try:
        return {table: {r for (r,) in con.execute(
                    f"select distinct response_id from {table} where {column} = '{MARK}'").fetchall()}
                for table, column in BY_RESPONSE.items()}
    finally:
        con.close()


def put_markers(db: str, years: list[str]) -> dict:
    """Mark one row of each year in every partitioned table; return what to restore."""
    con = duckdb.connect(db)
    try:
        saved = {}
        for table, column in PARTITIONED.items():
            for year in years:
                row = con.execute(f"select min(rowid) from {table} where school_year = ?", [year]).fetchone()[0]
                assert row is not None, (table, year)
                saved[table, year] = con.execute(f"select {column} from {table} where rowid = ?", [row]).fetchone()[0]
                con.execute(f"update {table} set {column} = {MARK} where rowid = ?", [row])
        return saved
    finally:
        con.close()


def marked_years(db: str) -> dict[str, set[str]]:
    con = duckdb.connect(db, read_only=True)
    try:
        return {table: {y for (y,) in con.execute(f"select distinct school_year from {table} where {column} = {MARK}").fetchall()}
                for table, column in PARTITIONED.items()}
    finally:
        con.close()


def clear_markers(db: str, saved: dict) -> None:
    con = duckdb.connect(db)
    try:
        for (table, year), value in saved.items():
            column = PARTITIONED[table]
            con.execute(f"update {table} set {column} = ? where {column} = {MARK} and school_year = ?", [value, year])
    finally:
        con.close()


def ingest_and_build_by_response_first(project: Path, env: dict[str, str], arrivals: Path,
                                        responses: list[str]) -> dict[str, set[str]]:
    """Mark every row of `responses` in the tables maintained by response, ingest the new
    files, build those tables (with what they are built from) and return which marked
    responses kept their marks, then unmark them: the aggregates after them, built next,
    never read a marker."""
    saved = mark_responses(env["DBT_DUCKDB_PATH"], responses)
    run_cli("ingest", "--extracts", str(arrivals), "--quiet", env=env, check=True)
    proc = dbt(project, env, "run", "--select", *["+" + t.split(".")[1] for t in BY_RESPONSE])
    assert proc.returncode == 0, proc.stdout[-3000:]
    still_marked = marked_responses(env["DBT_DUCKDB_PATH"])
    unmark_responses(env["DBT_DUCKDB_PATH"], saved)
    return still_marked


def partitioned_tables(db: str) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(db, read_only=True)
    try:
        out = {}
        for table in INCREMENTAL:
            df = con.execute(f"select * from {table}").df()
            out[table] = df.sort_values(list(df.columns)).reset_index(drop=True)
        return out
    finally:
        con.close()


def assert_equals_full_refresh(project: Path, env: dict[str, str], folder: Path) -> None:
    """Every partitioned table, and every table maintained by response, equals, row by row,
    a --full-refresh of a copy of the warehouse."""
    full_env = warehouse_env(folder)
    folder.mkdir(parents=True)
    shutil.copy2(env["DBT_DUCKDB_PATH"], full_env["DBT_DUCKDB_PATH"])
    years = sorted(query(full_env["DBT_DUCKDB_PATH"], "select distinct school_year from marts.topic_results").school_year)
    put_markers(full_env["DBT_DUCKDB_PATH"], years)
    proc = dbt(project, full_env, "run", "--full-refresh", "--select",
               *[t.split(".")[1] for t in INCREMENTAL])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert all(not marked for marked in marked_years(full_env["DBT_DUCKDB_PATH"]).values()), \
        "--full-refresh rebuilds every year"
    incremental, full = partitioned_tables(env["DBT_DUCKDB_PATH"]), partitioned_tables(full_env["DBT_DUCKDB_PATH"])
    for table in INCREMENTAL:
        assert len(full[table]) > 0, table
        pd.testing.assert_frame_equal(incremental[table], full[table], check_exact=False, rtol=1e-12, obj=table)


def response_ids(paths: list[Path]) -> set[str]:
    """The responses that the lines of these extract files change."""
    ids = set()
    for path in paths:
        with gzip.open(path, "rt") as lines:
            ids |= {json.loads(line)["response_id"] for line in lines if line.strip()}
    return ids


def years_of_responses(db: str, response_ids: set[str]) -> set[str]:
    df = query(db, "select response_id, school_year from intermediate.int_survey_responses_enriched")
    return set(df[df.response_id.isin(response_ids)].school_year)


@pytest.fixture(scope="module")
def realistic_day(sample_extracts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("realistic_day")
    env = warehouse_env(folder)
    db = env["DBT_DUCKDB_PATH"]
    project = project_copy(folder)
    arrivals = folder / "arrivals"
    files = bench.extract_files(sample_extracts)
    held = bench.realistic_day_files(files)
    deliver([p for p in files if p not in held], arrivals)
    run_cli("ingest", "--extracts", str(arrivals), "--quiet", env=env, check=True)
    proc = dbt(project, env, "build")
    assert proc.returncode == 0, proc.stdout[-5000:]
    years = sorted(query(db, "select distinct school_year from marts.topic_results").school_year)
    saved = put_markers(db, years)

    deliver(held, arrivals)
    con = duckdb.connect(db)
    try:
        corrections = bench.write_next_day(con, arrivals, share=0.001, current_year_only=True, pending=held)
    finally:
        con.close()
    # rows by response: every row of a few responses the day corrects, and of a few it
    # does not touch in each year (the current one too; complete ones, in every table)
    built = query(db, "select distinct response_id, school_year "
                      "from intermediate.int_response_items_listwise_filtered order by 1")
    corrected = sorted(response_ids([corrections]) & set(built.response_id))
    untouched = built[~built.response_id.isin(response_ids(held + [corrections]))]
    marked = {"corrected": corrected[:5],
              "untouched": list(untouched.groupby("school_year").head(3).response_id)}
    responses = marked["corrected"] + marked["untouched"]
    marked["before"] = {t: set(responses) & set(query(db, f"select distinct response_id from {t}").response_id)
                        for t in BY_RESPONSE}
    rebuilt_responses = {"marked": marked,
                         "still_marked": ingest_and_build_by_response_first(project, env, arrivals, responses)}
    # `run`, not `build`: the markers left in closed years would fail their data tests
    proc = dbt(project, env, "run")
    assert proc.returncode == 0, proc.stdout[-5000:]
    rebuilt = marked_years(db)
    clear_markers(db, saved)
    return env, project, folder, arrivals, years, held, corrections, rebuilt, rebuilt_responses


def test_realistic_day_changes_only_the_current_year(realistic_day):
    env, _, _, _, years, held, corrections, _, _ = realistic_day
    db = env["DBT_DUCKDB_PATH"]
    changed = response_ids(held + [corrections])
    new = [p for p in held if p.parent.name == "survey_responses"]
    assert new and any(json.loads(line)["_op"] == "c" for p in new for line in gzip.open(p, "rt"))
    with gzip.open(corrections, "rt") as lines:
        assert sum(1 for _ in lines) > 0, "some earlier answers are corrected"
    assert years_of_responses(db, changed) == {years[-1]}, "the day touches the current year only"


def test_realistic_day_recomputes_no_closed_year(realistic_day):
    _, _, _, _, years, _, _, rebuilt, _ = realistic_day
    for table, marked in rebuilt.items():
        assert marked == set(years[:-1]), f"{table}: closed years keep their rows, the current year is rebuilt"


def test_realistic_day_recomputes_only_the_responses_it_changes(realistic_day):
    """The tables maintained by response replace the responses the day's files change and
    keep every other response's rows as they were, in every year."""
    *_, rebuilt = realistic_day
    corrected, untouched = rebuilt["marked"]["corrected"], rebuilt["marked"]["untouched"]
    assert corrected and len(untouched) >= 3
    for table, before in rebuilt["marked"]["before"].items():
        assert before == set(corrected) | set(untouched), f"{table}: every marked response has rows"
    for table, still_marked in rebuilt["still_marked"].items():
        if table in ANSWER_FREE:
            assert still_marked == set(corrected) | set(untouched), f"{table}: answers alone rebuild nothing"
            continue
        assert not still_marked & set(corrected), f"{table}: the corrected responses are rebuilt"
        assert still_marked, f"{table}: the untouched responses keep their rows"
        assert still_marked <= set(untouched), table
    # every untouched response keeps its rows in the table every response is in
    assert rebuilt["still_marked"]["marts.fct_survey_responses"] == set(untouched)


def test_realistic_day_equals_full_refresh(realistic_day):
    env, project, folder, *_ = realistic_day
    assert_equals_full_refresh(project, env, folder / "full_after_day")


def test_closed_year_correction_and_roster_change_rebuild_their_years(realistic_day):
    env, project, folder, arrivals, years, *_ = realistic_day
    db = env["DBT_DUCKDB_PATH"]
    oldest, middle = years[0], years[1]
    seq = int(query(db, "select max(_seq) as s from raw.question_responses").s[0]) + 1
    # a late correction to one answer of the oldest (closed) year
    answer = query(db, f"""
        select a.response_id, a.question_id, a.option_value from intermediate.int_question_responses_scored as a
        inner join intermediate.int_survey_responses_enriched as r on a.response_id = r.response_id
        where r.school_year = '{oldest}' and a.is_substantive order by 1, 2 limit 1""").iloc[0]
    write_extract(arrivals, "question_responses", datetime(2025, 7, 1), [change(
        "u", seq, "2025-07-01T09:00:00.000Z", response_id=answer.response_id, question_id=answer.question_id,
        value=1 if answer.option_value != 1 else 2)])
    saved = put_markers(db, years)
    run_cli("ingest", "--extracts", str(arrivals), "--quiet", env=env, check=True)
    proc = dbt(project, env, "run")
    assert proc.returncode == 0, proc.stdout[-3000:]
    for table, marked in marked_years(db).items():
        assert marked == set(years) - {oldest}, f"{table}: only {oldest} is rebuilt"
    clear_markers(db, saved)

    # a roster change (gender) of a student who responded in the middle year only
    student = query(db, f"""
        select student_id from intermediate.int_survey_responses_enriched where student_id is not null
        group by student_id having min(school_year) = '{middle}' and max(school_year) = '{middle}'
        order by 1 limit 1""").student_id[0]
    latest = query(db, f"""select _source_file, _source_line from raw.students
                           where student_id = '{student}' order by _seq desc limit 1""").iloc[0]
    with gzip.open(arrivals / "students" / latest._source_file, "rt") as lines:
        roster = json.loads(lines.readlines()[int(latest._source_line) - 1])
    assert roster["student_id"] == student
    roster = {k: v for k, v in roster.items() if not k.startswith("_")}
    roster["gender"] = "F" if roster.get("gender") != "F" else "M"
    student_seq = int(query(db, "select max(_seq) as s from raw.students").s[0]) + 1
    write_extract(arrivals, "students", datetime(2025, 7, 2), [change("u", student_seq, "2025-07-02T09:00:00.000Z", **roster)])
    saved = put_markers(db, years)
    some = list(query(db, "select distinct response_id from intermediate.int_response_items_listwise_filtered "
                          "order by 1 limit 4").response_id)
    # a roster file rebuilds every response of the tables maintained by response built
    # from students (respondents_wide, the subgroups), and none of the others
    still_marked = ingest_and_build_by_response_first(project, env, arrivals, some)
    from_students = {"marts.respondents_wide", "intermediate.int_respondent_subgroups_assigned"}
    assert still_marked == {t: set() if t in from_students else set(some) for t in BY_RESPONSE}
    proc = dbt(project, env, "run")
    assert proc.returncode == 0, proc.stdout[-3000:]
    for table, marked in marked_years(db).items():
        assert marked == set(years) - {middle}, f"{table}: only {middle}, when the student responded, is rebuilt"
    clear_markers(db, saved)

    # an invitations file: no table maintained by response is built from invitations
    invitation = query(db, "select * exclude (_op, _ts, _seq, _extra, _source_file, _source_line) "
                           "from raw.survey_invitations order by _seq desc limit 1").iloc[0].to_dict()
    invitation_seq = int(query(db, "select max(_seq) as s from raw.survey_invitations").s[0]) + 1
    write_extract(arrivals, "survey_invitations", datetime(2025, 7, 3),
                  [change("u", invitation_seq, "2025-07-03T09:00:00.000Z", **invitation)])
    still_marked = ingest_and_build_by_response_first(project, env, arrivals, some)
    assert still_marked == {t: set(some) for t in BY_RESPONSE}, "an invitations file rebuilds no response"
    proc = dbt(project, env, "run")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert_equals_full_refresh(project, env, folder / "full_after_corrections")


def responses_read_by_uniqueness_test(env: dict[str, str], table: str) -> set[str]:
    """The responses the last run of the uniqueness test of a table maintained by response
    read: its SQL as dbt ran it (target/run), its filtered relation queried."""
    name = table.split(".")[1]
    [sql_file] = (Path(env["DBT_TARGET_PATH"]) / "run").rglob(f"{name}.yml/unique*.sql")
    found = re.search(r"\(select \* from (\S+) where (.*)\) dbt_subquery", sql_file.read_text(), re.S)
    assert found, f"{sql_file.name}: the test reads a filtered relation"
    relation, condition = found.groups()
    return set(query(env["DBT_DUCKDB_PATH"], f"select distinct response_id from {relation} where {condition}").response_id)


def ingest_corrections(env: dict[str, str], arrivals: Path) -> Path:
    """Late corrections to 0.2% of the current school year's answers, written and ingested."""
    con = duckdb.connect(env["DBT_DUCKDB_PATH"])
    try:
        day = bench.write_next_day(con, arrivals, share=0.002, current_year_only=True)
    finally:
        con.close()
    run_cli("ingest", "--extracts", str(arrivals), "--quiet", env=env, check=True)
    return day


def test_uniqueness_tests_of_tables_maintained_by_response_read_the_rebuilt_responses(realistic_day):
    """A day's build tests the uniqueness of a table maintained by response (and of the
    answers' fact) on the responses rebuilt since its tests last passed (a key holding
    response_id can only repeat within one response, and no other response's rows
    changed since their last test); a plain `dbt test`, a full refresh and a build from
    scratch test every row."""
    env, project, _, arrivals, *_ = realistic_day
    db = env["DBT_DUCKDB_PATH"]
    # the tables maintained by response, and the answers' fact (rescored by answer, then
    # tested by response)
    # (not the tables built from responses alone: answer corrections rebuild none of theirs)
    checked = [*(t for t in BY_RESPONSE if t not in ANSWER_FREE), "marts.fct_question_responses"]
    models = [t.split(".")[1] for t in checked]
    # the builds before were `dbt run`s: their responses are tested by the next build
    proc = dbt(project, env, "build", "--select", *["+" + m for m in models], "--exclude-resource-type", "unit_test")
    assert proc.returncode == 0, proc.stdout[-3000:]
    day = ingest_corrections(env, arrivals)
    proc = dbt(project, env, "build", "--select", *["+" + m for m in models], "--exclude-resource-type", "unit_test")
    assert proc.returncode == 0, proc.stdout[-3000:]
    changed = response_ids([day])
    every = {t: set(query(db, f"select distinct response_id from {t}").response_id) for t in checked}
    for table in checked:
        tested = responses_read_by_uniqueness_test(env, table)
        assert tested == changed & every[table], f"{table}: the day's build tests the responses it rebuilt"
        assert 0 < len(tested) < len(every[table]) / 10, table

    proc = dbt(project, env, "test", "--select", *models)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for table in checked:
        assert responses_read_by_uniqueness_test(env, table) == every[table], f"{table}: `dbt test` tests every row"

    # a build whose tests did not pass (or did not run: `dbt run`) does not move the
    # window: the next build tests its responses again, and still finds a duplicate
    later = ingest_corrections(env, arrivals)
    proc = dbt(project, env, "run", "--select", *["+" + m for m in models])
    assert proc.returncode == 0, proc.stdout[-3000:]
    table = "intermediate.int_response_topics_scored"
    duplicated = sorted(response_ids([later]) & set(query(db, f"select response_id from {table}").response_id))[0]
    con = duckdb.connect(db)
    try:
        con.execute(f"insert into {table} select * from {table} where response_id = ? limit 1", [duplicated])
    finally:
        con.close()
    proc = dbt(project, env, "build", "--select", *["+" + m for m in models], "--exclude-resource-type", "unit_test")
    assert proc.returncode != 0 and "unique_combination_int_response_topics_scored" in proc.stdout, proc.stdout[-3000:]
    assert duplicated in responses_read_by_uniqueness_test(env, table)
    con = duckdb.connect(db)
    try:
        con.execute(f"delete from {table} where rowid = (select max(rowid) from {table} where response_id = ?)",
                    [duplicated])
    finally:
        con.close()
    proc = dbt(project, env, "build", "--select", *["+" + m for m in models], "--exclude-resource-type", "unit_test")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert duplicated in responses_read_by_uniqueness_test(env, table), "still tested: the last build failed"
    every = {t: set(query(db, f"select distinct response_id from {t}").response_id) for t in checked}

    tables = list(BY_RESPONSE)
    proc = dbt(project, env, "build", "--full-refresh", "--select", models[0], "--exclude-resource-type", "unit_test")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert responses_read_by_uniqueness_test(env, tables[0]) == every[tables[0]], f"{tables[0]}: a full refresh tests every row"

    con = duckdb.connect(db)
    try:
        con.execute(f"drop table {tables[2]}")
    finally:
        con.close()
    proc = dbt(project, env, "build", "--select", models[2], "--exclude-resource-type", "unit_test")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert responses_read_by_uniqueness_test(env, tables[2]) == every[tables[2]], f"{tables[2]}: a build from scratch tests every row"


def test_project_changes_rebuild_incremental_models_in_full():
    """A project change is not applied to the changed school years only: the orchestrator
    builds it with --full-refresh (a build of new files alone stays incremental)."""
    from orchestrate import scope

    data_only = {"kind": "changed", "select": ["source:replica.question_responses+"], "state": "kept",
                 "unit_tests": False, "modified": []}
    assert "--full-refresh" not in scope.dbt_args(data_only, {})
    project = {**data_only, "select": ["state:modified+", "source:replica.question_responses+"],
               "unit_tests": True, "modified": ["int_response_items_scored"]}
    assert "--full-refresh" in scope.dbt_args(project, {})
    assert "--full-refresh" in scope.dbt_args({"kind": "all"}, {})  # e.g. the environment fingerprint changed


def test_unit_tests_run_for_what_the_project_changed_only():
    """Unit tests check code on fixed inputs: a build runs them for a project change (the
    changed models' own, through state:modified+) or a changed environment fingerprint,
    not for new files, a first run or --full-refresh (dbt's advice for production builds;
    CI runs them all), and a --select build runs what is asked."""
    from orchestrate import scope

    excluded = ["--exclude-resource-type", "unit_test"]

    def leaves_them_out(s: dict, options: dict | None = None) -> bool:
        args = scope.dbt_args(s, options or {})
        return any(args[i:i + 2] == excluded for i in range(len(args)))

    data_only = {"kind": "changed", "select": ["source:replica.question_responses+"], "state": "kept",
                 "unit_tests": False, "modified": []}
    project = {**data_only, "select": ["state:modified+"], "unit_tests": True, "modified": ["item_results"]}
    assert leaves_them_out(data_only) and not leaves_them_out(project)
    assert leaves_them_out({"kind": "all"})  # a first run, no kept build
    assert leaves_them_out({"kind": "all"}, {"full_refresh": True})
    assert not leaves_them_out({"kind": "all", "unit_tests": True})  # dbt or the vars changed
    assert not leaves_them_out({"kind": "selected"}, {"select": ["item_results"]})
