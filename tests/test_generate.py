"""The sample generator: deterministic, contract-valid, and as messy as it says.

The line validator here is written against the contract (via orchestrate.contract's
tables and kinds), not against the generator's code.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from orchestrate import contract
from orchestrate import generate as gen
from orchestrate import sample_design as sd

PROJECT_DIR = Path(__file__).resolve().parent.parent
SEEDS = PROJECT_DIR / "seeds" / "survey"
SCALE = 0.02
SEED = 11
SMALL = 0.005
PART_BYTES = 40_000


def run_generate(out: Path, scale: float, seed: int, **kwargs) -> gen.Summary:
    return gen.generate(out, scale, seed, log=io.StringIO(), **kwargs)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "a"
    run_generate(out, SCALE, SEED, threads=2)
    return out


@pytest.fixture(scope="module")
def data(sample) -> "Extracts":
    return load(sample)


@pytest.fixture(scope="module")
def parts_sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "parts"
    run_generate(out, SMALL, SEED, max_part_bytes=PART_BYTES)
    return out


# --------------------------------------------------------------------------------------
# Reading and validating extracts, independently of the generator

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
NAME = re.compile(r"^(?P<table>[a-z_]+)__(?P<start>\d{8}T\d{6}Z)__(?P<end>\d{8}T\d{6}Z)__(?P<part>\d{4})\.ndjson\.gz$")


@dataclass
class Row:
    file: contract.ExtractFile
    line: int
    change: dict

    @property
    def ts(self) -> datetime:
        return datetime.strptime(self.change["_ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


@dataclass
class Extracts:
    root: Path
    files: dict[str, list[contract.ExtractFile]]
    rows: dict[str, list[Row]]  # in file (interval, part) order, then line order

    def current(self, table: str) -> dict[tuple, dict]:
        """Current state: the change with the highest _seq per key, deletes dropped."""
        pk = contract.TABLES[table].primary_key
        last: dict[tuple, dict] = {}
        for r in self.rows[table]:
            key = tuple(r.change[k] for k in pk)
            if key not in last or r.change["_seq"] > last[key]["_seq"]:
                last[key] = r.change
        return {k: v for k, v in last.items() if v["_op"] != "d"}


def check_value(table: str, column: str, kind: str, value, where: str) -> None:
    if value is None:
        return
    if kind == contract.STRING:
        assert isinstance(value, str), f"{where}: {column} should be a string, got {value!r}"
    elif kind == contract.INTEGER:
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {column}={value!r}"
    elif kind == contract.NUMBER:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: {column}={value!r}"
    elif kind == contract.FLAG:
        assert isinstance(value, (str, bool)), f"{where}: {column}={value!r}"
    elif kind == contract.SCALAR:
        assert isinstance(value, (int, float, str)) and not isinstance(value, bool), f"{where}: {column}={value!r}"
    elif kind == contract.OPTIONS:
        assert isinstance(value, list), f"{where}: {column}={value!r}"
        for option in value:
            assert set(option) == {"value", "label"}, f"{where}: option {option!r}"
            assert isinstance(option["value"], int) and not isinstance(option["value"], bool), where
            assert isinstance(option["label"], str), where
    else:
        raise AssertionError(f"unknown kind {kind}")


def load(root: Path, max_part_bytes: int = contract.MAX_UNCOMPRESSED_BYTES) -> Extracts:
    files: dict[str, list[contract.ExtractFile]] = {}
    rows: dict[str, list[Row]] = {}
    for table, spec in contract.TABLES.items():
        parsed = []
        for path in (root / table).iterdir():
            assert NAME.match(path.name), f"{path.name}: bad file name"
            ef = contract.parse_file_name(path.name)
            assert ef.table == table, f"{path.name} is in folder {table}"
            parsed.append(ef)
        parsed.sort(key=lambda f: (f.interval_start, f.part))
        files[table] = parsed
        rows[table] = []
        last_seq = None
        for ef in parsed:
            raw = (root / table / ef.name).read_bytes()
            assert raw[:2] == b"\x1f\x8b", f"{ef.name}: not gzip"
            assert raw[4:8] == b"\0\0\0\0", f"{ef.name}: gzip header carries a time"
            assert not raw[3] & 0x08, f"{ef.name}: gzip header carries a file name"
            text = gzip.decompress(raw)
            assert 0 < len(text) <= max_part_bytes, f"{ef.name}: {len(text)} bytes"
            assert text.endswith(b"\n")
            for n, line in enumerate(text.decode("utf-8").splitlines(), start=1):
                where = f"{ef.name}:{n}"
                obj = json.loads(line)
                assert isinstance(obj, dict), where
                for key in contract.ENVELOPE:
                    assert key in obj, f"{where}: no {key}"
                assert obj["_op"] in contract.OPS, where
                assert isinstance(obj["_seq"], int) and not isinstance(obj["_seq"], bool), where
                assert last_seq is None or obj["_seq"] > last_seq, f"{where}: _seq {obj['_seq']} after {last_seq}"
                last_seq = obj["_seq"]
                assert isinstance(obj["_ts"], str) and TS.match(obj["_ts"]), f"{where}: _ts {obj['_ts']!r}"
                row = Row(ef, n, obj)
                assert ef.interval_start <= row.ts < ef.interval_end, f"{where}: _ts outside the file's interval"
                for key in spec.primary_key:
                    assert isinstance(obj.get(key), str) and obj[key], f"{where}: primary key {key} missing"
                if obj["_op"] != "d":
                    for column, kind in spec.columns.items():
                        check_value(table, column, kind, obj.get(column), where)
                rows[table].append(row)
    return Extracts(root, files, rows)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


# --------------------------------------------------------------------------------------
# Determinism


def test_same_seed_same_bytes_whatever_the_threads(sample, tmp_path):
    again = tmp_path / "again"
    run_generate(again, SCALE, SEED, threads=1)
    first, second = file_bytes(sample), file_bytes(again)
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert not different, f"differ: {different[:5]}"
    assert any(name.startswith("_truth/") for name in first)


def test_different_seed_different_data(sample, tmp_path):
    other = tmp_path / "other"
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrate", "generate", "--out", str(other), "--scale", str(SCALE),
         "--seed", str(SEED + 1)],
        cwd=PROJECT_DIR, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    summary = proc.stderr.strip().splitlines()[-1]
    assert re.search(r"\d+ files, [\d,]+ lines, [\d,]+ bytes .* in [\d.]+ s", summary), summary
    assert "question_responses" in proc.stderr  # progress per table
    first, second = file_bytes(sample), file_bytes(other)
    qr = [n for n in first if n.startswith("question_responses/") and n in second]
    assert qr and all(first[n] != second[n] for n in qr[:20])
    assert first["_truth/students.csv"] != second["_truth/students.csv"]
    # the design does not depend on the seed: same questions, same wordings
    assert first["_truth/questions.csv"] == second["_truth/questions.csv"]


def test_refuses_to_mix_with_existing_extracts(sample):
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrate", "generate", "--out", str(sample), "--scale", str(SMALL)],
        cwd=PROJECT_DIR, capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "--overwrite" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------------------
# Contract


def test_every_line_follows_the_contract(data):
    # load() validated every line; here: every table is there and not trivially small
    counts = {t: len(rows) for t, rows in data.rows.items()}
    assert all(counts[t] > 0 for t in contract.TABLES), counts
    assert counts["question_responses"] > 10 * counts["survey_responses"]


def test_intervals_are_days_or_hours_and_some_days_are_hourly(data):
    lengths = Counter()
    for files in data.files.values():
        for f in files:
            length = f.interval_end - f.interval_start
            assert length in (timedelta(days=1), timedelta(hours=1)), f.name
            assert f.interval_start.minute == 0 and f.interval_start.second == 0
            if length == timedelta(days=1):
                assert f.interval_start.hour == 0, f.name
            lengths[length] += 1
    assert lengths[timedelta(hours=1)] > 0 and lengths[timedelta(days=1)] > 0
    hourly_days = {f.interval_start.date() for fs in data.files.values() for f in fs
                   if f.interval_end - f.interval_start == timedelta(hours=1)}
    daily_days = {f.interval_start.date() for fs in data.files.values() for f in fs
                  if f.interval_end - f.interval_start == timedelta(days=1)}
    assert hourly_days and not hourly_days & daily_days


def test_parts_split_at_the_size_cap(parts_sample):
    extracts = load(parts_sample, max_part_bytes=PART_BYTES)  # checks every part's size
    by_interval = defaultdict(list)
    for files in extracts.files.values():
        for f in files:
            by_interval[(f.table, f.interval_start)].append(f.part)
    split = {k: sorted(v) for k, v in by_interval.items() if len(v) > 1}
    assert split, "no interval was split into parts"
    for parts in by_interval.values():
        assert sorted(parts) == list(range(len(parts)))


def test_extra_key_appears_only_from_its_date(data):
    cutoff = datetime.combine(sd.EXTRA_KEY_FROM, datetime.min.time(), tzinfo=timezone.utc)
    listed = set(contract.TABLES[sd.EXTRA_KEY_TABLE].columns) | set(contract.ENVELOPE)
    before = after = 0
    for r in data.rows[sd.EXTRA_KEY_TABLE]:
        extra = set(r.change) - listed
        if r.ts < cutoff:
            assert not extra, f"{r.file.name}:{r.line}: {extra} before {cutoff}"
            before += 1
        else:
            assert extra == {sd.EXTRA_KEY}, f"{r.file.name}:{r.line}"
            after += 1
    assert before and after
    for table, rows in data.rows.items():
        if table != sd.EXTRA_KEY_TABLE:
            allowed = set(contract.TABLES[table].columns) | set(contract.ENVELOPE)
            assert all(set(r.change) <= allowed for r in rows), table


# --------------------------------------------------------------------------------------
# Messiness, one check per kind


@pytest.fixture(scope="module")
def survey_model(data):
    surveys = {k[0]: v for k, v in data.current("surveys").items()}
    questions = {k[0]: v for k, v in data.current("survey_questions").items()}
    ns_labels = {r["option_label"] for r in read_csv(SEEDS / "non_substantive_options.csv")}
    return surveys, questions, ns_labels


def scale_points(question: dict, ns_labels: set[str]) -> int:
    return sum(1 for o in question["response_options"] or [] if o["label"] not in ns_labels)


def test_labels_non_substantive_and_open_text_answers(data, survey_model):
    surveys, questions, ns_labels = survey_model
    kinds = Counter()
    for r in data.rows["question_responses"]:
        c = r.change
        if c["_op"] == "d":
            continue
        q = questions[c["question_id"]]
        value, options = c.get("value"), q["response_options"]
        if value is None:
            kinds["null"] += 1
        elif options is None:
            assert isinstance(value, str)
            kinds["open_text"] += 1
        elif isinstance(value, str):
            labels = {o["label"]: o["value"] for o in options}
            assert value in labels, f"{r.file.name}:{r.line}: {value!r} is no option of {c['question_id']}"
            kinds["label_non_substantive" if value in ns_labels else "label"] += 1
        else:
            assert isinstance(value, int), f"{r.file.name}:{r.line}: {value!r} is not an option's integer value"
            by_value = {o["value"]: o["label"] for o in options}
            assert value in by_value, f"{r.file.name}:{r.line}: {value} is no option"
            k = scale_points(q, ns_labels)
            if by_value[value] in ns_labels:
                assert not 1 <= value <= k
                kinds["non_substantive"] += 1
            else:
                kinds["value"] += 1
    for kind in ("null", "open_text", "label", "label_non_substantive", "non_substantive", "value"):
        assert kinds[kind] > 0, kinds


def test_non_substantive_options_are_off_scale(survey_model):
    surveys, questions, ns_labels = survey_model
    with_ns = [q for q in questions.values() if any(o["label"] in ns_labels for o in q["response_options"] or [])]
    assert with_ns
    for q in with_ns:
        k = scale_points(q, ns_labels)
        for o in q["response_options"]:
            if o["label"] in ns_labels:
                assert not 1 <= o["value"] <= k
    descending = [q for q in questions.values() if q["response_options"] and len(q["response_options"]) >= 5
                  and q["response_options"][0]["value"] > q["response_options"][1]["value"]]
    assert descending, "no form shows its options from the top of the scale"


def test_late_corrections_land_in_a_later_interval(data):
    created = {}
    late = corrected = 0
    for r in data.rows["question_responses"]:
        key = (r.change["response_id"], r.change["question_id"])
        if r.change["_op"] == "c":
            created[key] = r
        elif r.change["_op"] == "u":
            corrected += 1
            c = created[key]
            assert r.change["value"] != c.change["value"]
            if r.file.interval_start > c.file.interval_end and r.ts - c.ts > timedelta(days=2):
                late += 1
    assert corrected and late and late < corrected


def test_deletes_and_withdrawn_responses(data):
    qr_deletes = [r for r in data.rows["question_responses"] if r.change["_op"] == "d"]
    assert qr_deletes and all(set(r.change) == {"_op", "_ts", "_seq", "response_id", "question_id"}
                              for r in qr_deletes)
    withdrawn = {r.change["response_id"] for r in data.rows["survey_responses"] if r.change["_op"] == "d"}
    assert withdrawn
    alive = data.current("question_responses")
    assert not [k for k in alive if k[0] in withdrawn]
    had_answers = {r.change["response_id"] for r in data.rows["question_responses"]}
    assert withdrawn & had_answers


def test_anonymous_staff_and_family_surveys(data, survey_model):
    surveys, questions, _ = survey_model
    responses = data.current("survey_responses").values()
    by_survey = defaultdict(list)
    for r in responses:
        by_survey[r["survey_id"]].append(r)
    kinds = Counter(s["respondent_type"] for s in surveys.values())
    assert kinds["student"] and kinds["staff"] and kinds["family"]
    anonymous_student = named_student = 0
    for survey_id, rs in by_survey.items():
        rtype = surveys[survey_id]["respondent_type"]
        ids = {r["student_id"] is None for r in rs}
        if rtype != "student":
            assert ids == {True}
        elif ids == {True}:
            anonymous_student += 1
        else:
            assert ids == {False}
            named_student += 1
    assert anonymous_student and named_student
    for inv in data.current("survey_invitations").values():
        rtype = surveys[inv["survey_id"]]["respondent_type"]
        assert (inv["student_id"] is None) == (rtype != "student")


def test_unfinished_responses_answer_fewer_questions(data, survey_model):
    surveys, questions, _ = survey_model
    n_questions = Counter(q["survey_id"] for q in questions.values())
    answered = Counter(k[0] for k in data.current("question_responses"))
    unfinished = [r for r in data.current("survey_responses").values() if r["submitted_at"] is None]
    assert unfinished
    assert all(answered[r["response_id"]] < n_questions[r["survey_id"]] for r in unfinished)
    submitted = [r for r in data.rows["survey_responses"] if r.change["_op"] == "u"]
    assert all(r.change["submitted_at"] == r.change["_ts"] for r in submitted)


def test_scales_reverse_coding_and_three_school_years(data, sample, survey_model):
    surveys, questions, ns_labels = survey_model
    items = {r["canonical_item_id"]: r for r in read_csv(SEEDS / "canonical_items.csv")}
    truth = {r["question_id"]: r for r in read_csv(sample / "_truth" / "questions.csv")}
    points, reverse = Counter(), Counter()
    for qid, q in questions.items():
        item = truth[qid]["canonical_item_id"]
        if item:
            assert scale_points(q, ns_labels) == int(items[item]["scale_points"]), qid
            points[int(items[item]["scale_points"])] += 1
            reverse[items[item]["reverse_coded"]] += 1
    assert points[5] and points[7] and reverse["true"] and reverse["false"]
    assert {s["school_year"] for s in surveys.values()} >= {"2022-23", "2023-24", "2024-25"}
    for s in surveys.values():
        opens, closes = (datetime.strptime(s[k], "%Y-%m-%d") for k in ("opens_on", "closes_on"))
        assert timedelta(days=7) <= closes - opens <= timedelta(days=45)


def test_students_are_coded_each_districts_way(data):
    students = data.current("students").values()
    races = [s["race"] for s in students if isinstance(s["race"], str)]
    for sep in ",;|":
        assert any(sep in r for r in races), f"no race list separated by {sep!r}"
    seen = defaultdict(set)
    for s in students:
        for field in sd.DEMOGRAPHIC_FIELDS:
            seen[(s["district_id"], field)].add(json.dumps(s[field]))
    # codes only one district uses
    assert '"W"' in seen[("d04", "gender")]
    assert any("7" in re.split(r"[,;|]", s["race"]) for s in students
               if s["district_id"] == "d03" and isinstance(s["race"], str))
    assert '"N"' in seen[("d05", "gender")] and '"LY"' in seen[("d05", "english_learner")]
    assert "true" in seen[("d02", "iep")] and '"Grade 9"' in seen[("d04", "grade_level")]
    assert any(s["grade_level"] in ("00", "K", "KG", "Kindergarten") for s in students)
    unmappable = {json.dumps(c) for codes in sd.UNMAPPABLE_CODES.values() for c in codes}
    assert any(json.dumps(s[f]) in unmappable for s in students for f in sd.DEMOGRAPHIC_FIELDS)
    updates = Counter(r.change["_op"] for r in data.rows["students"])
    assert updates["u"] > 0


def decode(district: sd.District, field: str, raw):
    """The true value behind a district's code, or None when it cannot be mapped."""
    for truth, codes in district.codes[field].items():
        if any(raw == c and type(raw) is type(c) for c in codes):
            return truth
    return None


def test_truth_matches_the_codes(data, sample):
    truth = {r["student_id"]: r for r in read_csv(sample / "_truth" / "students.csv")}
    students = data.current("students")
    assert set(truth) == {k[0] for k in students}
    flag = {True: "true", False: "false", None: ""}
    for (student_id,), s in students.items():
        d, t = sd.DISTRICT_BY_ID[s["district_id"]], truth[student_id]
        assert t["district_id"] == d.district_id
        assert t["grade_level"] == (decode(d, "grade_level", s["grade_level"]) or "Unknown"), student_id
        assert t["gender"] == (decode(d, "gender", s["gender"]) or "Unknown"), student_id
        for field in ("hispanic_latino", "english_learner", "iep", "section_504"):
            assert t[field] == flag[decode(d, field, s[field])], (student_id, field)
        lunch = decode(d, "lunch_status", s["lunch_status"])
        assert t["econ_disadvantaged"] == flag[None if lunch is None else lunch in ("Free", "Reduced")]
        if s["race"] is None:
            races = set()
        else:
            decoded = [decode(d, "race", code) for code in re.split(r"[,;|]", s["race"])]
            races = set() if None in decoded else set(decoded)
        assert set(filter(None, t["races"].split(";"))) == races, student_id
        hispanic = t["hispanic_latino"] == "true"
        federal = {"White" if r == "MENA" else r for r in races}
        expected = (sd.HISPANIC_LABEL if hispanic else sd.TWO_OR_MORE if len(federal) > 1
                    else sd.RACE_LABELS[federal.pop()] if federal else "Unknown")
        assert t["race_ethnicity_federal"] == expected, student_id
        n_2024 = len(races) + hispanic
        expected = (sd.MULTI_2024 if n_2024 > 1 else sd.HISPANIC_LABEL if hispanic
                    else sd.RACE_LABELS[next(iter(races))] if races else "Unknown")
        assert t["race_ethnicity_2024"] == expected, student_id


def test_benchmarks_are_publishable(data, survey_model):
    """At least 10 schools from 3 districts with 10 complete respondents, per year and type."""
    surveys, _, _ = survey_model
    schools = {k[0]: v for k, v in data.current("schools").items()}
    assert Counter(s["district_id"] for s in schools.values()).most_common()[-1][1] >= 4
    complete = Counter()
    for r in data.current("survey_responses").values():
        if r["submitted_at"]:
            s = surveys[r["survey_id"]]
            complete[(s["school_year"], s["respondent_type"], r["school_id"])] += 1
    for year in sd.SCHOOL_YEARS:
        for rtype in ("student", "staff"):
            ok = [school for (y, t, school), n in complete.items() if y == year and t == rtype and n >= 10]
            assert len(ok) >= 10 and len({schools[s]["district_id"] for s in ok}) >= 3, (year, rtype, len(ok))


def test_shares_match_the_documented_rates(data, survey_model):
    surveys, questions, ns_labels = survey_model
    responses = data.current("survey_responses").values()
    unfinished = sum(r["submitted_at"] is None for r in responses) / len(responses)
    assert abs(unfinished - gen.UNFINISHED) < 0.03
    offering = {qid for qid, q in questions.items()
                if any(o["label"] in ns_labels for o in q["response_options"] or [])}
    creates = [r.change for r in data.rows["question_responses"] if r.change["_op"] == "c"]
    offered = [c for c in creates if c["question_id"] in offering and c["value"] is not None]
    ns = sum(1 for c in offered if isinstance(c["value"], int) and not
             1 <= c["value"] <= scale_points(questions[c["question_id"]], ns_labels)
             or isinstance(c["value"], str) and c["value"] in ns_labels)
    assert abs(ns / len(offered) - gen.NON_SUBSTANTIVE) < 0.015
    scale_creates = [c for c in creates if questions[c["question_id"]]["response_options"]]
    nulls = sum(c["value"] is None for c in scale_creates) / len(scale_creates)
    assert abs(nulls - gen.SKIP_NULL) < 0.01
    ops = Counter(r.change["_op"] for r in data.rows["question_responses"])
    assert 0.5 * gen.CORRECTED < ops["u"] / ops["c"] < 1.5 * gen.CORRECTED
    assert 0.001 < ops["d"] / ops["c"] < 0.015


# --------------------------------------------------------------------------------------
# Seeds and the question crosswalk


def test_seed_files_match_the_design():
    for name, rows in sd.SEED_FILES.items():
        assert (SEEDS / name).read_text(encoding="utf-8") == sd.render_csv(rows()), (
            f"seeds/survey/{name} is out of date: run python -m orchestrate.sample_design seeds/survey")


def test_item_bank():
    topics = read_csv(SEEDS / "topics.csv")
    items = read_csv(SEEDS / "canonical_items.csv")
    per_type = Counter(t["respondent_type"] for t in topics)
    assert 5 <= per_type["student"] <= 7 and 2 <= per_type["staff"] <= 4
    per_topic = Counter(i["topic_id"] for i in items)
    assert set(per_topic) == {t["topic_id"] for t in topics}
    assert all(4 <= n <= 6 for n in per_topic.values())
    for i in items:
        assert i["scale_points"] in ("5", "7") and i["reverse_coded"] in ("true", "false")
        assert i["favorable_threshold"] == {"5": "4", "7": "5"}[i["scale_points"]]
    assert {i["scale_points"] for i in items} == {"5", "7"}
    assert len({normalize(i["canonical_text"]) for i in items}) == len(items)
    labels = {r["option_label"] for r in read_csv(SEEDS / "non_substantive_options.csv")}
    assert {"I don't know", "Don't know", "Not applicable", "N/A", "Prefer not to answer",
            "Decline to answer"} <= labels


def test_crosswalk_covers_rephrased_and_reordered_wordings(data, sample):
    items = {r["canonical_item_id"]: r for r in read_csv(SEEDS / "canonical_items.csv")}
    crosswalk = read_csv(SEEDS / "question_crosswalk.csv")
    assert crosswalk and all(r["reviewed_by"] and r["reviewed_on"] for r in crosswalk)
    mapped = {(r["district_id"], normalize(r["question_text"])): r["canonical_item_id"] for r in crosswalk}
    assert len(mapped) == len(crosswalk)
    questions = {k[0]: v for k, v in data.current("survey_questions").items()}
    kinds = Counter()
    for t in read_csv(sample / "_truth" / "questions.csv"):
        q = questions[t["question_id"]]
        key = (t["district_id"], normalize(q["question_text"]))
        kind = t["variant_kind"]
        kinds[kind] += 1
        if kind == "client_only":
            assert not t["canonical_item_id"] and key not in mapped
            assert normalize(q["question_text"]) not in {normalize(i["canonical_text"]) for i in items.values()}
            continue
        canonical = items[t["canonical_item_id"]]["canonical_text"]
        if kind == "exact":
            assert q["question_text"] == canonical
        elif kind == "normalized":
            assert q["question_text"] != canonical and normalize(q["question_text"]) == normalize(canonical)
        else:
            assert normalize(q["question_text"]) != normalize(canonical)
            assert mapped.get(key) == t["canonical_item_id"], f"no crosswalk row for {key}"
            if kind == "reordered":
                assert sorted(normalize(q["question_text"]).split()) == sorted(normalize(canonical).split())
        assert key not in mapped or kind in ("rephrased", "reordered")
    assert all(kinds[k] for k in ("exact", "normalized", "rephrased", "reordered", "client_only")), kinds
    client_only = Counter(t["survey_id"] for t in read_csv(sample / "_truth" / "questions.csv")
                          if t["variant_kind"] == "client_only")
    assert set(client_only) == {q["survey_id"] for q in questions.values()}
    assert all(2 <= n <= 3 for n in client_only.values()), client_only
    open_ended = [q for q in questions.values() if q["response_options"] is None]
    assert open_ended
