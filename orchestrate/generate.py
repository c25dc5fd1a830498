"""Generate contract-valid replica extracts: `python -m orchestrate generate`.

Writes gzip NDJSON files `<out>/<table>/<table>__<start>__<end>__<part>.ndjson.gz` that
follow docs/contracts/replica-extracts-v1.md, plus `<out>/_truth/` (the true
standardized demographics per student and the true canonical item per question) for
tests. The fixed design (districts, coding schemes, item bank, wordings) is in
orchestrate/sample_design.py; scale sets how many schools, students and answers there
are (scale 1 is about 1,000,000 question_responses lines); seed sets the random draws.

Same seed and scale give byte-identical files: randomness is a hash of (seed, purpose,
ids) computed inside DuckDB (or a numpy generator seeded from the seed), never
dependent on thread scheduling, and gzip headers carry no time or file name. (The hash
is DuckDB's, so "identical" holds for one DuckDB version.)

Messiness, and how much of it there is (rates are the constants below; measured at
scale 1, seed 1 in brackets; tests/test_generate.py checks the rates and one example of
every kind):

| kind                                    | share                                                     |
|-----------------------------------------|-----------------------------------------------------------|
| unmappable demographic code             | 0.5% of students per field ("Whtie", "??", "Femal", ...)  |
| null demographic field                  | 0.3% (grade) to 4% (lunch status) of students per field   |
| two races in one string                 | 8% of students (separators `,` `;` `|`; d08 mixes them)   |
| codes only one district uses            | TK, EE (PK); W (F, d04); N (X, d05); race 7 = MENA (d03); |
|                                         | LY/LF/ZZ (d05 EL); Direct Cert (d08); U (Unknown, d07)    |
| anonymous student surveys               | 2 of 8 districts (d03, d07): responses' student_id null   |
| family surveys                          | 2 of 8 districts (d02, d06)                               |
| wording: exact canonical text           | 33% of mapped questions                                   |
| wording: case/space/punctuation only    | 21%                                                       |
| wording: rephrased (crosswalk row)      | 33%                                                       |
| wording: reordered words (crosswalk row)| 13%                                                       |
| client-only questions                   | 2–3 per survey (10% of questions), some open-ended        |
| options displayed top-down              | 2 of 8 districts (d03, d06)                               |
| off-scale non-substantive options       | 5 of 8 districts (d02, d03, d04, d06, d07)                |
| non-substantive answer                  | 5% of scale answers where offered [~3% of all]            |
| skipped: row absent / value null        | 1.5% / 1.5% of scale and choice answers                   |
| open-ended question answered            | 45% of the time                                           |
| label sent instead of value             | all of d04, half of d07's responses [18% of answers]      |
| unfinished response (no submitted_at)   | 8% of responses [8.2%]; answers stop part way             |
| value corrected (`u`)                   | 2% of integer answers [2.0%]                              |
|   late: 3–30 days later, later file     | 25% of corrections [24%]                                  |
| answer deleted (`d`)                    | 0.3% of answers                                           |
| response withdrawn (`d`, answers too)   | 0.2% of submitted responses [all `d`: 0.55% of answers]   |
| `device_type` key on survey_responses   | every row with _ts on or after 2024-01-15, none before    |
| hourly intervals                        | each year's first day of d01's student survey (all tables)|
| survey window extended (`u`)            | 2 surveys (sample_design.WINDOW_EXTENSIONS)               |
| district renamed / locale recoded (`u`) | d02 name, d08 locale                                      |
| students promoted / moved (`u`)         | every continuing student each August; 5% change school    |
| parts                                   | when an interval exceeds --max-part-bytes                 |

`d` rows: survey_responses carry the full row image; question_responses only the key.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchestrate import sample_design as sd
from orchestrate.contract import MAX_UNCOMPRESSED_BYTES, TABLES, file_name
from orchestrate.errors import UserError

# Rates used below; the docstring's table says the same in words.
STUDENTS_PER_SCALE = 19_500  # scale 1 gives about 1,000,000 question_responses lines
MIN_STUDENTS_PER_SCHOOL = 24  # so small scales still publish benchmarks
STAFF_PER_STUDENT = 1 / 12
MIN_STAFF_PER_SCHOOL = 20
FAMILY_INVITED = 0.7  # of students, for family surveys
RESPONSE_RATE = {"student": 0.86, "staff": 0.76, "family": 0.36}
SURVEYED_GRADES = (3, 12)  # student surveys go to these grades and UG
CONTINUING_MOBILITY = 0.05  # students who change school in August without having to
MULTI_RACE = 0.08
UNFINISHED = 0.08
SKIP_ABSENT = 0.015
SKIP_NULL = 0.015
NON_SUBSTANTIVE = 0.05
OPEN_ANSWERED = 0.45
LABELS_PART = 0.5
CORRECTED = 0.02
LATE_CORRECTION = 0.25
DELETED = 0.003
WITHDRAWN = 0.002
GZIP_LEVEL = 3  # zlib level 3: ~2.5x faster than 6 for 14% larger files
CHUNK_ROWS = 1_000_000  # changes put in order at a time when writing (bounds memory)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
GRADE_UG = 99  # grade_num of ungraded students

OP_ORDER = {"c": 0, "u": 1, "d": 2}
KIND_CODE = {"scale": 0, "choice": 1, "open": 2}  # question kinds in SQL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="extracts root to write")
    parser.add_argument("--scale", type=float, default=1.0, help="1 = about 1M question_responses lines")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-part-bytes", type=int, default=MAX_UNCOMPRESSED_BYTES,
        help="split an interval's changes into parts of at most this many uncompressed bytes",
    )
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the table folders and _truth already in --out")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)


def main(args: argparse.Namespace) -> int:
    summary = generate(args.out, args.scale, args.seed, args.max_part_bytes,
                       overwrite=args.overwrite, threads=args.threads)
    print(summary.line(), file=sys.stderr)
    return 0


@dataclass
class Summary:
    out: Path
    files: int = 0
    lines: int = 0
    bytes: int = 0
    gzip_bytes: int = 0
    seconds: float = 0.0
    per_table: dict[str, tuple[int, int]] = field(default_factory=dict)  # files, lines

    def line(self) -> str:
        return (f"generate: {self.files} files, {self.lines:,} lines, {self.bytes:,} bytes "
                f"({self.gzip_bytes:,} gzipped) in {self.seconds:.1f} s -> {self.out}")


def generate(out: Path, scale: float, seed: int, max_part_bytes: int = MAX_UNCOMPRESSED_BYTES,
             *, overwrite: bool = False, threads: int | None = None, log=sys.stderr) -> Summary:
    """Write the extracts and _truth under `out`; progress goes to `log`."""
    if seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed}")
    if scale <= 0:
        raise UserError(f"--scale must be positive, got {scale}")
    if max_part_bytes <= 0:
        raise UserError(f"--max-part-bytes must be positive, got {max_part_bytes}")
    started = time.monotonic()
    out = Path(out)
    _prepare_out(out, overwrite)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")

    def say(msg: str) -> None:
        print(f"generate: {msg} ({time.monotonic() - started:.1f} s)", file=log, flush=True)

    design = _design_frames(scale)
    students, student_years, truth = _students(design, scale, seed)
    say(f"design: {len(design['schools'])} schools, {len(design['surveys'])} surveys, "
        f"{len(design['questions'])} questions, {len(students):,} students")
    tables = {**design, "students_t": students, "student_years": student_years}
    tables["questions"] = design["questions"].drop(columns=["options", "variant_kind", "canonical_item_id",
                                                            "district_id", "question_text"])
    for name, frame in tables.items():
        con.register(f"{name}_df", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")
        con.unregister(f"{name}_df")
    _build_events(con, seed, design)
    say("changes built")

    summary = Summary(out)
    with ThreadPoolExecutor(max_workers=max(1, threads or 1)) as pool:
        for table in TABLES:
            w = _write_table(con, table, out, max_part_bytes, pool)
            summary.files += w.files
            summary.lines += w.lines
            summary.bytes += w.bytes
            summary.gzip_bytes += w.gzip_bytes
            summary.per_table[table] = (w.files, w.lines)
            say(f"{table}: {w.files} files, {w.lines:,} lines, {w.bytes:,} bytes")
    _write_truth(out, truth, design)
    con.close()
    summary.seconds = time.monotonic() - started
    return summary


def _prepare_out(out: Path, overwrite: bool) -> None:
    ours = [out / t for t in TABLES] + [out / "_truth"]
    existing = [p for p in ours if p.exists() and any(p.iterdir())]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} is not empty: pass --overwrite to replace the generated folders, "
                        "or choose another --out")
    for p in ours:
        if p.exists():
            shutil.rmtree(p)
        p.mkdir(parents=True)


# --------------------------------------------------------------------------------------
# Time helpers


def _ms(d: date, hours: float = 0) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1000 + hours * HOUR_MS)


# --------------------------------------------------------------------------------------
# Small tables from the design (districts, schools, surveys, questions): plain Python


def _design_frames(scale: float) -> dict[str, pd.DataFrame]:
    districts, schools, surveys, questions, question_labels = [], [], [], [], []
    n_schools = sd.schools_per_district(scale)
    school_num = 0
    for di, d in enumerate(sd.DISTRICTS):
        districts.append({"district_idx": di, "district_id": d.district_id})
        for k in range(n_schools):
            school_num += 1
            grades = sd.school_grades(d, k)
            lo, hi = (sd.GRADE_NUMBER["PK"] if g == "PK" else sd.GRADE_NUMBER["KG"] if g == "K" else int(g)
                      for g in grades.split("-"))
            schools.append({"school_num": school_num, "school_id": _id("sch", school_num), "district_idx": di,
                            "school_k": k, "grades": grades, "lo": lo, "hi": hi})
    survey_num = 0
    question_num = 0
    for yi, year in enumerate(sd.SCHOOL_YEARS):
        for di, d in enumerate(sd.DISTRICTS):
            for rtype in sd.survey_types(d):
                survey_num += 1
                opens, closes = getattr(d, f"{rtype}_window").dates(year)
                ext = sd.WINDOW_EXTENSIONS.get((d.district_id, rtype, year), 0)
                form = sd.form(d, rtype)
                surveys.append({
                    "survey_num": survey_num, "survey_id": _id("sv", survey_num), "district_idx": di,
                    "year_idx": yi, "rtype": rtype, "opens_on": opens.isoformat(),
                    "closes_on": closes.isoformat(), "extended_closes_on": (closes + timedelta(days=ext)).isoformat(),
                    "opens_ms": _ms(opens), "window_days": (closes - opens).days + 1 + ext,
                    "anonymous": rtype != "student" or d.anonymous_student_survey,
                    "labels_mode": {"none": 0, "all": 1, "part": 2}[d.answers_as_labels],
                    "n_questions": len(form), "title": sd.survey_title(d, rtype, year),
                    "response_rate": RESPONSE_RATE[rtype],
                })
                for q in form:
                    question_num += 1
                    item = sd.ITEM_BY_ID.get(q.canonical_item_id or "")
                    if q.scale_points:
                        kind = "scale"
                        labels = list(sd.SCALES[sd.item_scale(item)])
                    elif q.options is None:
                        kind, labels = "open", []
                    else:
                        kind = "choice"
                        labels = [label for _, label in sorted(q.options)]
                    ns = d.non_substantive if kind == "scale" else ()
                    questions.append({
                        "question_num": question_num, "question_id": _id("q", question_num),
                        "survey_num": survey_num, "position": q.position, "question_text": q.text,
                        "kind": KIND_CODE[kind], "k": len(labels), "reverse": q.reverse_coded,
                        "topic_num": _topic_num(item.topic_id) if item else 0,
                        "item_num": _item_num(item.canonical_item_id) if item else 0,
                        "ns_count": len(ns), "ns_first": ns[0][0] if ns else None,
                        "ns_second": ns[-1][0] if ns else None,
                        "options": q.options, "variant_kind": q.variant_kind,
                        "canonical_item_id": q.canonical_item_id, "district_id": d.district_id,
                    })
                    for value, label in [*enumerate(labels, start=1), *ns]:
                        question_labels.append({"question_num": question_num, "value": value, "label": label})
    frames = {
        "question_labels": pd.DataFrame(question_labels),
        "districts": pd.DataFrame(districts),
        "schools": pd.DataFrame(schools),
        "surveys": pd.DataFrame(surveys),
        "questions": pd.DataFrame(questions).astype({"ns_first": "Int64", "ns_second": "Int64"}),
    }
    return frames


def _topic_num(topic_id: str) -> int:
    return [t.topic_id for t in sd.TOPICS].index(topic_id) + 1


def _item_num(item_id: str) -> int:
    return [i.canonical_item_id for i in sd.ITEMS].index(item_id) + 1


# --------------------------------------------------------------------------------------
# Students: vectorized numpy, one generator per district seeded from the seed


def _json_str(code: object) -> str:
    if isinstance(code, bool):
        return "true" if code else "false"
    text = str(code)
    assert '"' not in text and "\\" not in text, text
    return f'"{text}"'


def _pick_codes(codes_by_truth: list[list], truth_idx: np.ndarray, u_alt: np.ndarray) -> np.ndarray:
    """JSON code per student: the primary code 90% of the time, else one of the alternates."""
    width = max(len(c) for c in codes_by_truth)
    table = np.array([[_json_str(c[min(j, len(c) - 1)]) for j in range(width)] for c in codes_by_truth],
                     dtype=object)
    n_alt = np.array([len(c) - 1 for c in codes_by_truth])[truth_idx]
    slot = np.where((u_alt < 0.9) | (n_alt == 0), 0,
                    1 + np.minimum(((u_alt - 0.9) / 0.1 * np.maximum(n_alt, 1)).astype(int), np.maximum(n_alt - 1, 0)))
    return table[truth_idx, slot]


def _messy(rng: np.random.Generator, field_name: str, coded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace some codes with null or an unmappable code; returns (coded, known mask)."""
    n = len(coded)
    u = rng.random(n)
    null = u < sd.NULL_SHARE[field_name]
    garbage = (~null) & (u < sd.NULL_SHARE[field_name] + sd.UNMAPPABLE_SHARE)
    junk = np.array([_json_str(c) for c in sd.UNMAPPABLE_CODES[field_name]], dtype=object)
    coded = coded.copy()
    coded[null] = "null"
    coded[garbage] = junk[rng.integers(0, len(junk), n)][garbage]
    return coded, ~(null | garbage)


def _students(design: dict[str, pd.DataFrame], scale: float, seed: int):
    schools = design["schools"]
    n_total = max(round(STUDENTS_PER_SCALE * scale), MIN_STUDENTS_PER_SCHOOL * len(schools))
    weights = np.array([d.student_weight for d in sd.DISTRICTS])
    per_district = np.maximum(np.round(n_total * weights / weights.sum()).astype(int),
                              MIN_STUDENTS_PER_SCHOOL * sd.schools_per_district(scale))
    student_frames, year_frames, truth_frames = [], [], []
    next_num = 1
    for di, d in enumerate(sd.DISTRICTS):
        rng = np.random.default_rng([seed, 7919, di])
        n = int(per_district[di])
        num = np.arange(next_num, next_num + n)
        next_num += n
        # entry year and grade at entry (index into GRADES; 14 = UG)
        entry = rng.choice(3, n, p=[0.82, 0.09, 0.09])
        g0 = rng.choice(14, n, p=np.r_[0.5, np.ones(13)] / 13.5)
        newcomer = rng.choice(14, n, p=np.r_[0.3, 0.3, np.full(12, 0.4 / 12)])
        gidx0 = np.where(entry == 0, g0, newcomer)
        gidx0 = np.where(rng.random(n) < 0.01, 14, gidx0)  # ungraded
        ug = gidx0 == 14

        # demographics (truth), then the district's coding of them
        u_alt = rng.random((n, 8))
        gender_truth = rng.choice(3, n, p=[0.49, 0.495, 0.015])
        gender_labels = list(sd.GENDERS)
        gender_codes = [d.codes["gender"][g] for g in sd.GENDERS]
        if "Unknown" in d.codes["gender"]:
            gender_labels.append("Unknown")
            gender_codes.append(d.codes["gender"]["Unknown"])
            gender_truth = np.where(rng.random(n) < 0.01, 3, gender_truth)
        gender, gender_known = _messy(rng, "gender", _pick_codes(gender_codes, gender_truth, u_alt[:, 0]))

        races = [r for r in sd.RACES if r in d.codes["race"]]
        p = np.array([{"AIAN": 0.03, "Asian": 0.10, "Black": 0.17, "NHPI": 0.02, "White": 0.64, "MENA": 0.04}[r]
                      for r in races])
        race1 = rng.choice(len(races), n, p=p / p.sum())
        race2 = (race1 + rng.integers(1, len(races), n)) % len(races)
        multi = rng.random(n) < MULTI_RACE
        race_codes = [d.codes["race"][r] for r in races]
        code1 = _pick_codes(race_codes, race1, u_alt[:, 1])
        code2 = _pick_codes(race_codes, race2, u_alt[:, 1])
        seps = np.array(d.race_separators, dtype=object)[rng.integers(0, len(d.race_separators), n)]
        joined = np.where(multi, _strip_quotes(code1) + seps + _strip_quotes(code2), _strip_quotes(code1))
        race, race_known = _messy(rng, "race", '"' + joined + '"')
        bit = np.array([1 << sd.RACES.index(r) for r in races])
        race_mask = np.where(race_known, bit[race1] | np.where(multi, bit[race2], 0), 0)

        flags = {}
        for fld, share in (("hispanic_latino", 0.26), ("english_learner", 0.11), ("iep", 0.14),
                           ("section_504", 0.04)):
            truth = (rng.random(n) < share).astype(int)  # 1 = True
            codes = [d.codes[fld][False], d.codes[fld][True]]
            coded, known = _messy(rng, fld, _pick_codes(codes, truth, u_alt[:, 2 + len(flags)]))
            flags[fld] = (coded, np.where(known, np.where(truth == 1, "true", "false"), ""))
        lunch_truth = rng.choice(3, n, p=[d.base_frl * 0.8, d.base_frl * 0.2, 1 - d.base_frl])
        lunch, lunch_known = _messy(rng, "lunch_status",
                                    _pick_codes([d.codes["lunch_status"][v] for v in sd.LUNCH], lunch_truth,
                                                u_alt[:, 6]))
        econ = np.where(lunch_known, np.where(lunch_truth < 2, "true", "false"), "")

        grade_codes = [d.codes["grade_level"][g] for g in sd.GRADES]
        grade_null = rng.random(n) < sd.NULL_SHARE["grade_level"]
        grade_junk = (~grade_null) & (rng.random(n) < sd.UNMAPPABLE_SHARE)
        junk = np.array([_json_str(c) for c in sd.UNMAPPABLE_CODES["grade_level"]], dtype=object)
        grade_junk_code = junk[rng.integers(0, len(junk), n)]

        # personal data
        first = np.array(sd.FIRST_NAMES, dtype=object)[rng.integers(0, len(sd.FIRST_NAMES), n)]
        last = np.array(sd.LAST_NAMES, dtype=object)[rng.integers(0, len(sd.LAST_NAMES), n)]
        email = (pd.Series(first).str.lower() + "." + pd.Series(last).str.lower().str.replace("'", "")
                 + pd.Series(rng.integers(1, 99, n)).astype(str) + "@" + d.email_domain)
        email = email.where(rng.random(n) >= 0.08, None)
        local = pd.Series(10 ** (d.local_id_digits - 1) + rng.permutation(n) * 7 + rng.integers(0, 7, n))
        local_id = d.local_id_prefix + local.astype(str).str.zfill(d.local_id_digits)
        entry_fall = 2022 + entry
        age_grade = np.where(ug, rng.integers(8, 14, n), gidx0 - 1)
        birth_year = entry_fall - 6 - age_grade
        birth = ((birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
                 + np.timedelta64(244, "D") + rng.integers(0, 365, n).astype("timedelta64[D]"))
        birth_date = pd.Series(np.datetime_as_string(birth, unit="D")).where(rng.random(n) >= 0.03, None)

        # years: grade, school; events
        dschools = schools[schools.district_idx == di]
        school_nums = dschools.school_num.to_numpy()
        lo = dschools.lo.to_numpy()
        hi = dschools.hi.to_numpy()
        school_weight = 0.5 + rng.random(len(school_nums))
        school = np.zeros(n, dtype=int)
        prev_grade = np.full(n, -9)
        last_gidx = np.full(n, -1)
        year_rows = []
        for y in range(3):
            gidx = np.where(ug, 14, gidx0 + (y - entry))
            active = (entry <= y) & (ug | (gidx <= 13))
            gnum = np.where(ug, GRADE_UG, gidx - 1)
            place_grade = np.where(ug, 10, gnum)
            serves = (lo[None, :] <= place_grade[:, None]) & (place_grade[:, None] <= hi[None, :])
            serves |= (place_grade[:, None] == -1) & (lo[None, :] == 0)  # PK placed in a K-x school if need be
            cur = np.searchsorted(school_nums, school)
            keeps = (school > 0) & serves[np.arange(n), np.minimum(cur, len(school_nums) - 1)]
            move = active & (~keeps | (rng.random(n) < CONTINUING_MOBILITY))
            # weighted choice among the schools that serve the grade (exponential race)
            race_keys = np.where(serves, -np.log(rng.random((n, len(school_nums)))) / school_weight, np.inf)
            race_keys[np.arange(n), np.minimum(cur, len(school_nums) - 1)] += np.where(school > 0, 1e9, 0)
            new_school = school_nums[np.argmin(race_keys, axis=1)]
            school = np.where(move, new_school, school)
            grade_code = _pick_codes(grade_codes, np.minimum(gidx, 14), u_alt[:, 7])
            grade_code = np.where(grade_null, "null", np.where(grade_junk, grade_junk_code, grade_code))
            changed = active & ((gnum != prev_grade) | move)
            op = np.where(entry == y, "c", "u")
            base = _ms(date(2022 + y, 8, 1))
            ts = base + rng.integers(1, 20, n) * DAY_MS + (13 * HOUR_MS + rng.integers(0, 9 * HOUR_MS, n))
            year_rows.append(pd.DataFrame({
                "student_num": num, "district_idx": di, "year_idx": y, "active": active,
                "school_num": school, "grade_num": gnum, "grade_json": grade_code,
                "event": changed, "op": op, "ts_ms": ts,
            }))
            last_gidx = np.where(active, gidx, last_gidx)
            prev_grade = np.where(active, gnum, prev_grade)
        year_frames.extend(year_rows)

        student_frames.append(pd.DataFrame({
            "student_num": num, "district_idx": di, "local_student_id": local_id,
            "first_name": first, "last_name": last, "email": email, "birth_date": birth_date,
            "gender_json": gender, "race_json": race,
            **{f"{k}_json": v[0] for k, v in flags.items()}, "lunch_json": lunch,
        }))
        final_grade = np.where(grade_null | grade_junk, "Unknown",
                               np.array(sd.GRADES, dtype=object)[np.maximum(last_gidx, 0)])
        hisp = flags["hispanic_latino"][1]
        truth_frames.append(pd.DataFrame({
            "student_num": num, "district_id": d.district_id, "grade_level": final_grade,
            "gender": np.where(gender_known, np.array(gender_labels, dtype=object)[gender_truth], "Unknown"),
            "races": _race_names(race_mask), "hispanic_latino": hisp,
            "english_learner": flags["english_learner"][1], "iep": flags["iep"][1],
            "section_504": flags["section_504"][1], "econ_disadvantaged": econ,
            "race_ethnicity_federal": _federal(race_mask, hisp),
            "race_ethnicity_2024": _combined_2024(race_mask, hisp),
        }))
    students = pd.concat(student_frames, ignore_index=True)
    student_years = pd.concat(year_frames, ignore_index=True)
    truth = pd.concat(truth_frames, ignore_index=True)
    truth.insert(0, "student_id", truth.pop("student_num").map(lambda k: _id("st", k)))
    return students, student_years, truth


def _strip_quotes(codes: np.ndarray) -> np.ndarray:
    return np.array([c[1:-1] for c in codes], dtype=object) if len(codes) else codes


def _race_names(mask: np.ndarray) -> np.ndarray:
    names = np.array([";".join(r for i, r in enumerate(sd.RACES) if m & (1 << i)) for m in range(1 << 6)],
                     dtype=object)
    return names[mask]


def _federal(mask: np.ndarray, hispanic: np.ndarray) -> np.ndarray:
    white, mena = 1 << sd.RACES.index("White"), 1 << sd.RACES.index("MENA")
    fed = np.where(mask & mena, (mask & ~mena) | white, mask)
    count = np.array([bin(m).count("1") for m in range(1 << 6)])[fed]
    single = np.array([sd.RACE_LABELS[sd.RACES[m.bit_length() - 1]] if bin(m).count("1") == 1 else ""
                       for m in range(1 << 6)], dtype=object)[fed]
    return np.where(hispanic == "true", sd.HISPANIC_LABEL,
                    np.where(count >= 2, sd.TWO_OR_MORE, np.where(count == 1, single, sd.UNKNOWN)))


def _combined_2024(mask: np.ndarray, hispanic: np.ndarray) -> np.ndarray:
    count = np.array([bin(m).count("1") for m in range(1 << 6)])[mask] + (hispanic == "true")
    single = np.array([sd.RACE_LABELS[sd.RACES[m.bit_length() - 1]] if bin(m).count("1") == 1 else ""
                       for m in range(1 << 6)], dtype=object)[mask]
    return np.where(count >= 2, sd.MULTI_2024,
                    np.where(count == 0, sd.UNKNOWN, np.where(hispanic == "true", sd.HISPANIC_LABEL, single)))


# --------------------------------------------------------------------------------------
# Change events, in DuckDB. Every random draw is a hash of (a salt made from the seed and
# the draw's purpose, ids): integer-only hashing, the same whatever the thread schedule.

ID_OFFSET = {"sch": 1_000, "sv": 100, "q": 10_000, "st": 1_000_000, "inv": 10_000_000, "r": 10_000_000}


def _id(prefix: str, n: int) -> str:
    """Platform ids: prefix and a number offset to a fixed width (cheap to build in SQL too)."""
    return f"{prefix}_{ID_OFFSET[prefix] + n}"


def _sql_id(prefix: str, expr: str) -> str:
    return f"concat('{prefix}_', {ID_OFFSET[prefix]} + {expr})"


def _salt(seed: int, tag: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}|{tag}".encode(), digest_size=7).digest(), "big")


def _hash(seed: int, tag: str, *ids: str) -> str:
    return f"hash({_salt(seed, tag)}::BIGINT, {', '.join(ids)})"


def _u(seed: int, tag: str, *ids: str) -> str:
    """SQL for a uniform draw in [0, 1) keyed on seed, tag and ids."""
    return f"(({_hash(seed, tag, *ids)} >> 11)::DOUBLE / 9007199254740992.0)"


def _u16(h: str, i: int) -> str:
    """The i-th 16-bit slice (0..3) of hash column h as a uniform in [0, 1)."""
    return f"((({h}) >> {16 * i}) & 65535)::DOUBLE / 65536.0"


def _normal_of(h: str) -> str:
    """An approximately standard normal draw from hash column h (sum of its four 16-bit slices)."""
    return f"(({' + '.join(_u16(h, i) for i in range(4))}) - 2.0) * 1.7320508075688772"


def _normal(seed: int, tag: str, *ids: str) -> str:
    return _normal_of(_hash(seed, tag, *ids))


def _build_events(con: duckdb.DuckDBPyConnection, seed: int, design: dict[str, pd.DataFrame]) -> None:
    """Create one `ev_<table>` per table: ts_ms, op, ord (c/u/d), k1, k2 and the row body."""
    _small_table_events(con, design)
    _student_events(con)
    _survey_events(con, seed)


def _small_table_events(con: duckdb.DuckDBPyConnection, design: dict[str, pd.DataFrame]) -> None:
    def body(row: dict) -> str:
        return json.dumps(row, separators=(",", ":"), ensure_ascii=False)[1:]

    ev: dict[str, list[tuple]] = {t: [] for t in ("districts", "schools", "surveys", "survey_questions")}
    first_day = date(2022, 8, 1)
    for di, d in enumerate(sd.DISTRICTS):
        row = {"district_id": d.district_id, "name": d.name, "state": d.state,
               "nces_lea_id": d.nces_lea_id, "locale": d.locale}
        initial = {**row, **sd.DISTRICT_INITIAL_VALUES.get(d.district_id, {})}
        ev["districts"].append((_ms(first_day, 15) + di * 60_000, "c", di, 0, body(initial)))
        if initial != row:
            changed_on = sd.DISTRICT_CHANGED_ON[d.district_id]
            ev["districts"].append((_ms(changed_on, 16) + di * 60_000, "u", di, 0, body(row)))
    schools = design["schools"]
    for s in schools.itertuples():
        d = sd.DISTRICTS[s.district_idx]
        h = zlib.crc32(f"{d.district_id}|school|{s.school_k}".encode())
        name = f"{sd.SCHOOL_NAMES[(h >> 4) % len(sd.SCHOOL_NAMES)]} {sd.LEVEL_SUFFIX[s.grades]}"
        nces = None if d.nces_lea_id is None or h % 7 == 0 else f"{d.nces_lea_id}{(h >> 8) % 100000:05d}"
        for y in range(3):
            frl = None if h % 10 == 3 else round(
                min(100.0, max(0.0, d.base_frl * 100 + ((h >> 12) % 300) / 10 - 15 + 1.7 * y - ((h >> 20) % 5))), 1)
            row = {"school_id": s.school_id, "district_id": d.district_id,
                   "name": name if s.school_k < 4 or h % 5 else f"{name} {s.school_k}",
                   "nces_school_id": nces, "grades_served": None if h % 9 == 4 else s.grades,
                   "frl_percent": frl}
            if y == 0:
                ts = _ms(first_day, 17) + s.school_num * 30_000
            else:
                ts = _ms(date(2022 + y, 8, 1), 17) + s.school_num * 30_000
            ev["schools"].append((ts, "c" if y == 0 else "u", s.school_num, 0, body(row)))
    questions = design["questions"]
    for s in design["surveys"].itertuples():
        d = sd.DISTRICTS[s.district_idx]
        created = _ms(date.fromisoformat(s.opens_on) - timedelta(days=14), 17) + s.survey_num * 1000
        row = {"survey_id": s.survey_id, "district_id": d.district_id, "title": s.title,
               "respondent_type": s.rtype, "school_year": sd.SCHOOL_YEARS[s.year_idx],
               "opens_on": s.opens_on, "closes_on": s.closes_on}
        ev["surveys"].append((created, "c", s.survey_num, 0, body(row)))
        if s.extended_closes_on != s.closes_on:
            ext_ts = _ms(date.fromisoformat(s.closes_on) - timedelta(days=2), 18)
            ev["surveys"].append((ext_ts, "u", s.survey_num, 0, body({**row, "closes_on": s.extended_closes_on})))
        for q in questions[questions.survey_num == s.survey_num].itertuples():
            options = None if q.options is None else [{"value": v, "label": lab} for v, lab in q.options]
            row = {"question_id": q.question_id, "survey_id": s.survey_id, "position": q.position,
                   "question_text": q.question_text, "response_options": options}
            ev["survey_questions"].append((created + 60_000 + q.position * 1000, "c", q.question_num, 0, body(row)))
    for table, rows in ev.items():
        frame = pd.DataFrame(rows, columns=["ts_ms", "op", "k1", "k2", "body"])
        frame["ord"] = frame.op.map(OP_ORDER)
        con.register("ev_df", frame)
        con.execute(f"CREATE TABLE ev_{table} AS SELECT ts_ms::BIGINT AS ts_ms, op, ord::TINYINT AS ord, "
                    "k1::BIGINT AS k1, k2::BIGINT AS k2, body FROM ev_df")
        con.unregister("ev_df")


def _student_events(con: duckdb.DuckDBPyConnection) -> None:
    # Built by concatenation: demographic codes are already JSON text (strings or booleans),
    # and to_json() of a struct with JSON members is slow.
    def text(col: str) -> str:
        return f"coalesce(to_json({col})::VARCHAR, 'null')"

    con.execute(f"""
        CREATE TABLE ev_students AS
        SELECT y.ts_ms, y.op, CASE y.op WHEN 'c' THEN 0 ELSE 1 END::TINYINT AS ord,
               y.student_num AS k1, 0::BIGINT AS k2,
               concat('"student_id":"', {_sql_id('st', 'y.student_num')},
                      '","district_id":"', d.district_id,
                      '","school_id":"', sc.school_id,
                      '","local_student_id":', {text('s.local_student_id')},
                      ',"first_name":', {text('s.first_name')},
                      ',"last_name":', {text('s.last_name')},
                      ',"email":', {text('s.email')},
                      ',"birth_date":', {text('s.birth_date')},
                      ',"grade_level":', y.grade_json,
                      ',"gender":', s.gender_json,
                      ',"race":', s.race_json,
                      ',"hispanic_latino":', s.hispanic_latino_json,
                      ',"english_learner":', s.english_learner_json,
                      ',"iep":', s.iep_json,
                      ',"section_504":', s.section_504_json,
                      ',"lunch_status":', s.lunch_json, '}}') AS body
        FROM student_years y
        JOIN students_t s USING (student_num)
        JOIN districts d ON d.district_idx = y.district_idx
        JOIN schools sc ON sc.school_num = y.school_num
        WHERE y.event
    """)


def _survey_events(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    S = seed
    cutoff = _ms(sd.EXTRA_KEY_FROM)
    n_text = len(sd.OPEN_TEXT_ANSWERS)
    texts = "[" + ", ".join("'" + t.replace("'", "''") + "'" for t in sd.OPEN_TEXT_ANSWERS) + "]"
    devices = "[" + ", ".join(f"'{d}'" for d in sd.DEVICE_TYPES) + "]"

    # staff counts and participation propensity per school and year
    con.execute(f"""
        CREATE TABLE school_years AS
        SELECT sc.school_num, sc.district_idx, yr.year_idx,
               greatest({MIN_STAFF_PER_SCHOOL}, round(coalesce(n.n, 0) * {STAFF_PER_STUDENT}))::INT AS n_staff,
               ({_u(S, 'propensity', 'sc.school_num', 'yr.year_idx')} - 0.5) * 0.16 AS rate_shift
        FROM schools sc
        CROSS JOIN (SELECT unnest(range(3)) AS year_idx) yr
        LEFT JOIN (SELECT school_num, year_idx, count(*) AS n FROM student_years WHERE active
                   GROUP BY ALL) n ON n.school_num = sc.school_num AND n.year_idx = yr.year_idx
    """)
    con.execute(f"""
        CREATE TABLE invitations AS
        WITH sy AS (SELECT * FROM student_years WHERE active),
        inv AS (
            SELECT s.survey_num, sy.school_num, sy.student_num AS sub, sy.student_num, sy.grade_num
            FROM surveys s JOIN sy ON sy.district_idx = s.district_idx AND sy.year_idx = s.year_idx
            WHERE s.rtype = 'student'
              AND (sy.grade_num BETWEEN {SURVEYED_GRADES[0]} AND {SURVEYED_GRADES[1]} OR sy.grade_num = {GRADE_UG})
            UNION ALL
            SELECT survey_num, school_num, sub, NULL, NULL FROM (
                SELECT s.survey_num, c.school_num, unnest(range(c.n_staff)) AS sub
                FROM surveys s JOIN school_years c ON c.district_idx = s.district_idx AND c.year_idx = s.year_idx
                WHERE s.rtype = 'staff')
            UNION ALL
            SELECT s.survey_num, sy.school_num, sy.student_num, NULL, NULL
            FROM surveys s JOIN sy ON sy.district_idx = s.district_idx AND sy.year_idx = s.year_idx
            WHERE s.rtype = 'family' AND {_u(S, 'family', 's.survey_num', 'sy.student_num')} < {FAMILY_INVITED}
        )
        SELECT row_number() OVER (ORDER BY survey_num, school_num, sub) AS inv_num, *
        FROM inv
    """)
    con.execute(f"""
        CREATE TABLE ev_survey_invitations AS
        SELECT s.opens_ms + {6 * HOUR_MS} + (i.inv_num - min(i.inv_num) OVER (PARTITION BY i.survey_num)) * 50
                   AS ts_ms,
               'c' AS op, 0::TINYINT AS ord, i.inv_num AS k1, 0::BIGINT AS k2,
               substr(to_json(struct_pack(
                   invitation_id := {_sql_id('inv', 'i.inv_num')},
                   survey_id := s.survey_id,
                   school_id := sc.school_id,
                   student_id := CASE WHEN s.rtype = 'student' THEN {_sql_id('st', 'i.student_num')} END
               ))::VARCHAR, 2) AS body
        FROM invitations i JOIN surveys s USING (survey_num) JOIN schools sc USING (school_num)
    """)
    con.execute(f"""
        CREATE TABLE responses AS
        WITH picked AS (
            SELECT i.*, s.year_idx, s.rtype, s.anonymous, s.labels_mode, s.n_questions, s.opens_ms,
                   s.window_days, s.district_idx, s.survey_id, {_hash(S, 'response', 'i.inv_num')} AS h
            FROM invitations i
            JOIN surveys s USING (survey_num)
            JOIN school_years c ON c.school_num = i.school_num AND c.year_idx = s.year_idx
            WHERE {_u(S, 'responds', 'i.inv_num')} < s.response_rate + c.rate_shift
        ), timed AS (
            SELECT *,
                   floor(window_days * pow({_u16('h', 0)}, 1.7))::INT AS day,
                   CASE rtype WHEN 'student' THEN {13 * HOUR_MS} + ({_u16('h', 1)} * {8 * HOUR_MS})::BIGINT
                              WHEN 'staff' THEN {12 * HOUR_MS} + ({_u16('h', 1)} * {12 * HOUR_MS})::BIGINT
                              ELSE ({_u16('h', 1)} * {24 * HOUR_MS})::BIGINT END
                       + ({_u(S, 'ms', 'inv_num')} * 60000)::BIGINT AS tod,
                   {_u16('h', 2)} < {UNFINISHED} AS unfinished,
                   {_u16('h', 3)} AS u_more
            FROM picked
        ), dated AS (
            SELECT *,
                   -- student surveys: a weekend start moves back to Friday (windows open on Mondays)
                   opens_ms + (day - CASE WHEN rtype = 'student' THEN
                       CASE (opens_ms // {DAY_MS} + day + 3) % 7 WHEN 5 THEN 1 WHEN 6 THEN 2 ELSE 0 END
                       ELSE 0 END)::BIGINT * {DAY_MS} + tod AS started_ms,
                   ((3 + 12 * {_u(S, 'duration', 'inv_num')}) * 60000 * n_questions / 30)::BIGINT AS duration_ms
            FROM timed
        )
        SELECT row_number() OVER (ORDER BY inv_num) AS response_num, *,
               CASE WHEN unfinished THEN floor(u_more * n_questions)::INT ELSE n_questions END AS answered_upto,
               CASE WHEN unfinished THEN NULL ELSE started_ms + duration_ms END AS submitted_ms,
               (NOT unfinished) AND {_u(S, 'withdrawn', 'inv_num')} < {WITHDRAWN} AS withdrawn,
               CASE WHEN (NOT unfinished) AND {_u(S, 'withdrawn', 'inv_num')} < {WITHDRAWN}
                    THEN started_ms + duration_ms + {35 * DAY_MS}
                         + ({_u(S, 'withdraw_at', 'inv_num')} * {25 * DAY_MS})::BIGINT END AS withdraw_ms,
               labels_mode = 1 OR (labels_mode = 2 AND {_u(S, 'labels', 'inv_num')} < {LABELS_PART}) AS labels,
               {devices}[1 + floor({_u(S, 'device', 'inv_num')} * {len(sd.DEVICE_TYPES)})::INT] AS device_type,
               {_normal(S, 'general', 'inv_num')} AS g,
               CASE WHEN grade_num IS NULL THEN 0 WHEN grade_num = {GRADE_UG} THEN -0.1
                    WHEN grade_num <= 5 THEN 0.3 WHEN grade_num <= 8 THEN 0.0 ELSE -0.2 END AS group_effect
        FROM dated
    """)
    body_sr = """
        substr(to_json(struct_pack(
            response_id := {response_id},
            survey_id := r.survey_id,
            school_id := sc.school_id,
            student_id := CASE WHEN NOT r.anonymous THEN {student_id} END,
            started_at := strftime(epoch_ms(r.started_ms), '%Y-%m-%dT%H:%M:%S.%gZ'),
            submitted_at := strftime(epoch_ms({sub}), '%Y-%m-%dT%H:%M:%S.%gZ'){extra}
        ))::VARCHAR, 2)"""

    def sr_body(sub: str, ts: str) -> str:
        ids = {"response_id": _sql_id("r", "r.response_num"), "student_id": _sql_id("st", "r.student_num")}
        with_key = body_sr.format(sub=sub, extra=f",\n            {sd.EXTRA_KEY} := r.device_type", **ids)
        without = body_sr.format(sub=sub, extra="", **ids)
        return f"CASE WHEN {ts} >= {cutoff} THEN {with_key} ELSE {without} END"

    con.execute(f"""
        CREATE TABLE ev_survey_responses AS
        SELECT r.started_ms AS ts_ms, 'c' AS op, 0::TINYINT AS ord, r.response_num AS k1, 0::BIGINT AS k2,
               {sr_body('NULL::BIGINT', 'r.started_ms')} AS body
        FROM responses r JOIN schools sc USING (school_num)
        UNION ALL
        SELECT r.submitted_ms, 'u', 1, r.response_num, 0, {sr_body('r.submitted_ms', 'r.submitted_ms')}
        FROM responses r JOIN schools sc USING (school_num) WHERE r.submitted_ms IS NOT NULL
        UNION ALL
        SELECT r.withdraw_ms, 'd', 2, r.response_num, 0, {sr_body('r.submitted_ms', 'r.withdraw_ms')}
        FROM responses r JOIN schools sc USING (school_num) WHERE r.withdrawn
    """)

    # Answers: a respondent's latent trait per topic (district, school and year effects, a
    # general factor, a topic factor, a grade-band effect) plus item difficulty and noise,
    # cut into the item's scale points; reverse-worded items answered in reverse.
    con.execute(f"""
        CREATE TABLE effects AS
        WITH topics AS (SELECT DISTINCT topic_num FROM questions WHERE topic_num > 0)
        SELECT sc.school_num, yr.year_idx, t.topic_num,
               0.30 * {_normal(S, 'district_effect', 'sc.district_idx', 't.topic_num')}
             + 0.35 * {_normal(S, 'school_effect', 'sc.school_num', 't.topic_num')}
             + 0.12 * {_normal(S, 'year_effect', 'sc.district_idx', 'yr.year_idx', 't.topic_num')} AS effect
        FROM schools sc CROSS JOIN (SELECT unnest(range(3)) AS year_idx) yr CROSS JOIN topics t;
        ALTER TABLE questions ADD COLUMN item_mean DOUBLE;
        UPDATE questions SET item_mean = -0.2 + 0.6 * {_u(S, 'item', 'item_num')};
    """)
    con.execute(f"""
        CREATE TABLE answers AS
        WITH base AS (
            SELECT r.response_num, q.question_num, q.kind, q.k, q.reverse, q.ns_count, q.ns_first, q.ns_second,
                   r.labels AS as_labels, r.withdrawn, r.withdraw_ms,
                   r.started_ms + r.duration_ms * q.position // (r.n_questions + 1) AS t0,
                   e.effect + 0.55 * r.g + r.group_effect + q.item_mean AS mean,
                   {_hash(S, 'answer', 'r.response_num', 'q.question_num')} AS h_a,
                   {_hash(S, 'change', 'r.response_num', 'q.question_num')} AS h_b,
                   CASE WHEN q.kind = 0 THEN {_hash(S, 'noise', 'r.response_num', 'q.question_num')} END AS h_n,
                   CASE WHEN q.kind = 0 THEN {_hash(S, 'trait', 'r.response_num', 'q.topic_num')} END AS h_t
            FROM responses r
            JOIN questions q ON q.survey_num = r.survey_num AND q.position <= r.answered_upto
            LEFT JOIN effects e ON e.school_num = r.school_num AND e.year_idx = r.year_idx
                               AND e.topic_num = q.topic_num
        ), drawn AS (
            SELECT *,
                   {_u16('h_a', 0)} AS u_skip, {_u16('h_a', 1)} AS u_ns, {_u16('h_a', 2)} AS u_pick,
                   {_u16('h_b', 0)} AS u_change, {_u16('h_b', 1)} AS u_when, {_u16('h_b', 2)} AS u_new,
                   t0 + ({_u16('h_b', 3)} * 1000)::BIGINT AS ts_ms,
                   mean + 0.65 * {_normal_of('h_t')} + 0.95 * {_normal_of('h_n')} AS z
            FROM base
        ), valued AS (
            SELECT *,
                   CASE
                       WHEN kind = 2 THEN NULL
                       WHEN u_skip < {SKIP_ABSENT + SKIP_NULL} THEN NULL
                       WHEN kind = 1 THEN 1 + floor(u_pick * k)::INT
                       WHEN non_substantive THEN CASE WHEN u_pick < 0.5 THEN ns_first ELSE ns_second END
                       WHEN reverse THEN k + 1 - v
                       ELSE v
                   END::INT AS value_int
            FROM (SELECT *,
                         CASE WHEN k = 5 THEN least(5, greatest(1, round(3.6 + z)))
                              ELSE least(7, greatest(1, round(4.7 + 1.5 * z))) END::INT AS v,
                         kind = 0 AND ns_count > 0 AND u_ns < {NON_SUBSTANTIVE}
                             AND u_skip >= {SKIP_ABSENT + SKIP_NULL} AS non_substantive
                  FROM drawn)
        )
        SELECT a.response_num, a.question_num, a.ts_ms, a.kind, a.k, a.as_labels, a.withdrawn, a.withdraw_ms,
               a.u_change, a.u_when, a.u_new, a.value_int,
               CASE
                   WHEN a.kind = 2 THEN to_json({texts}[1 + floor(a.u_pick * {n_text})::INT])::VARCHAR
                   WHEN a.value_int IS NULL THEN 'null'
                   WHEN a.as_labels THEN to_json(l.label)::VARCHAR
                   ELSE a.value_int::VARCHAR
               END AS value_json
        FROM valued a
        LEFT JOIN question_labels l
               ON l.question_num = a.question_num AND l.value = CASE WHEN a.as_labels THEN a.value_int END
        WHERE NOT (a.kind = 2 AND a.u_skip >= {OPEN_ANSWERED})
          AND NOT (a.kind <> 2 AND a.u_skip < {SKIP_ABSENT})
    """)
    corrected_value = "CASE WHEN as_labels THEN to_json(l.label)::VARCHAR ELSE new_value::VARCHAR END"
    con.execute(f"""
        CREATE TABLE ev_question_responses AS
        SELECT ts_ms, 'c' AS op, 0::TINYINT AS ord, response_num AS k1, question_num AS k2, value_json AS body
        FROM answers
        UNION ALL
        SELECT CASE WHEN u_when < {LATE_CORRECTION}
                    THEN ts_ms + (3 + floor(u_when / {LATE_CORRECTION} * 28))::BIGINT * {DAY_MS} + {HOUR_MS}
                    ELSE ts_ms + 5000 + (u_when * 115000)::BIGINT END,
               'u', 1, response_num, a.question_num, {corrected_value}
        FROM (SELECT *, 1 + (value_int - 1 + 1 + floor(u_new * (k - 1))::INT) % k AS new_value FROM answers
              WHERE u_change < {CORRECTED} AND NOT withdrawn AND value_int BETWEEN 1 AND k AND kind <> 2) a
        LEFT JOIN question_labels l
               ON l.question_num = a.question_num AND l.value = CASE WHEN a.as_labels THEN a.new_value END
        UNION ALL
        SELECT ts_ms + {HOUR_MS} + (u_when * {10 * DAY_MS})::BIGINT, 'd', 2, response_num, question_num, NULL
        FROM answers
        WHERE u_change >= {CORRECTED} AND u_change < {CORRECTED + DELETED} AND NOT withdrawn
        UNION ALL
        SELECT withdraw_ms + question_num % 1000, 'd', 2, response_num, question_num, NULL
        FROM answers WHERE withdrawn
    """)
    con.execute("DROP TABLE answers; DROP TABLE effects; DROP TABLE invitations; DROP TABLE responses")


# --------------------------------------------------------------------------------------
# Writing files


def _line_sql(table: str, hourly: str) -> str:
    """Interval, _ts and the JSON line of each change of a table, in two pieces around _seq."""
    is_hourly = f"ts_ms // {DAY_MS} IN ({hourly})"
    ts = "strftime(epoch_ms(ts_ms), '%Y-%m-%dT%H:%M:%S.%gZ')"
    if table == "question_responses":
        row = (f"""',"response_id":"r_', {ID_OFFSET['r']} + k1, '","question_id":"q_', {ID_OFFSET['q']} + k2, """
               """CASE WHEN op = 'd' THEN '"}' ELSE concat('","value":', body, '}') END""")
    else:
        row = "',', body"
    return f"""
        SELECT rowid AS row_number,
               CASE WHEN {is_hourly} THEN ts_ms // {HOUR_MS} * {HOUR_MS} ELSE ts_ms // {DAY_MS} * {DAY_MS} END
                   AS interval_start,
               CASE WHEN {is_hourly} THEN {HOUR_MS} ELSE {DAY_MS} END AS interval_length,
               ts_ms,
               concat('{{"_op":"', op, '","_ts":"', {ts}, '","_seq":') AS head,
               concat({row}, chr(10)) AS tail
        FROM ev_{table}"""


def _write_table(con: duckdb.DuckDBPyConnection, table: str, out: Path, max_part_bytes: int,
                 pool: ThreadPoolExecutor) -> "_FileWriter":
    """Number the table's changes (_seq) and write them out, interval by interval.

    _seq is each change's rank in (_ts, c before u before d, key) order. Sorting wide rows
    is slow in DuckDB, so only the keys are sorted there; the lines are built in parallel
    in DuckDB a few months at a time, then numbered and put in order with Arrow.
    """
    perm = con.execute(f"SELECT rowid FROM ev_{table} ORDER BY ts_ms, ord, k1, k2").fetchnumpy()["rowid"]
    seq_by_row = np.empty(len(perm), dtype=np.int64)
    seq_by_row[perm] = np.arange(1, len(perm) + 1, dtype=np.int64)
    writer = _FileWriter(table, out / table, max_part_bytes, pool)
    hourly = ", ".join(str(_ms(d) // DAY_MS) for d in sd.hourly_days())
    for start, end in _chunks(con, f"ev_{table}"):
        chunk = con.execute(f"{_line_sql(table, hourly)} WHERE ts_ms >= {start} AND ts_ms < {end}").to_arrow_table()
        if not chunk.num_rows:
            continue
        seq = seq_by_row[chunk["row_number"].to_numpy()]
        order = np.argsort(seq)
        chunk = chunk.take(order)
        seq = seq[order]
        lines = pc.binary_join_element_wise(chunk["head"], pa.array(seq).cast(pa.string()), chunk["tail"], "")
        writer.add(chunk["interval_start"].to_numpy(), chunk["interval_length"].to_numpy(), seq,
                   chunk["ts_ms"].to_numpy(), lines.combine_chunks())
    writer.close()
    con.execute(f"DROP TABLE ev_{table}")
    return writer


def _chunks(con: duckdb.DuckDBPyConnection, table: str, rows: int = CHUNK_ROWS):
    """[start, end) ms ranges of whole calendar months holding about `rows` changes each."""
    months = con.execute(f"""
        SELECT epoch_ms(date_trunc('month', epoch_ms(ts_ms))) AS month, count(*) AS n
        FROM {table} GROUP BY ALL ORDER BY month""").fetchall()
    start, n = None, 0
    for i, (month, count) in enumerate(months):
        start = month if start is None else start
        n += count
        if n >= rows or i == len(months) - 1:
            first_of_month = datetime.fromtimestamp(month / 1000, tz=timezone.utc).date()
            yield start, _ms((first_of_month + timedelta(days=32)).replace(day=1))
            start, n = None, 0


class _FileWriter:
    """Cuts a table's ordered lines into interval files and parts; gzips on a thread pool."""

    def __init__(self, table: str, folder: Path, max_part_bytes: int, pool: ThreadPoolExecutor) -> None:
        self.table, self.folder, self.max_part_bytes, self.pool = table, folder, max_part_bytes, pool
        self.files = self.lines = self.bytes = self.gzip_bytes = 0
        self.pending: list[Future] = []
        self.start: int | None = None
        self.length = 0
        self.chunks: list[bytes] = []
        self.lens: list[np.ndarray] = []
        self.last_seq = 0
        self.last_ts = -1

    def add(self, starts: np.ndarray, lengths: np.ndarray, seqs: np.ndarray, ts: np.ndarray,
            lines: pa.StringArray) -> None:
        """Lines in _seq order, each ending in a newline, with their intervals."""
        # _seq must continue 1, 2, 3 ... and _ts must never go back: catches any misalignment
        if seqs[0] != self.last_seq + 1 or np.any(np.diff(seqs) != 1) or ts[0] < self.last_ts \
                or np.any(np.diff(ts) < 0):
            raise RuntimeError(f"{self.table}: changes came back out of _seq/_ts order")
        self.last_seq, self.last_ts = int(seqs[-1]), int(ts[-1])
        offset_type = np.int64 if pa.types.is_large_string(lines.type) else np.int32
        offsets = np.frombuffer(lines.buffers()[1], dtype=offset_type)[lines.offset:lines.offset + len(lines) + 1]
        data = memoryview(lines.buffers()[2])
        line_lens = np.diff(offsets)
        bounds = np.r_[0, np.flatnonzero(np.diff(starts)) + 1, len(starts)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            if self.start is not None and self.start != starts[a]:
                self._flush()
            self.start, self.length = int(starts[a]), int(lengths[a])
            self.chunks.append(data[offsets[a]:offsets[b]].tobytes())
            self.lens.append(line_lens[a:b])

    def close(self) -> None:
        self._flush()
        while self.pending:
            self.gzip_bytes += self.pending.pop(0).result()

    def _flush(self) -> None:
        if self.start is None:
            return
        data = b"".join(self.chunks)
        ends = np.cumsum(np.concatenate(self.lens))
        t0 = datetime.fromtimestamp(self.start / 1000, tz=timezone.utc)
        t1 = datetime.fromtimestamp((self.start + self.length) / 1000, tz=timezone.utc)
        pos, base, part = 0, 0, 0
        while pos < len(ends):
            j = max(int(np.searchsorted(ends, base + self.max_part_bytes, side="right")), pos + 1)
            end = int(ends[j - 1])  # a single line longer than the cap goes alone
            path = self.folder / file_name(self.table, t0, t1, part)
            self.pending.append(self.pool.submit(_write_gzip, path, data[base:end]))
            self.files += 1
            pos, base, part = j, end, part + 1
            while len(self.pending) > 2 * (self.pool._max_workers + 1):
                self.gzip_bytes += self.pending.pop(0).result()
        self.lines += len(ends)
        self.bytes += len(data)
        self.start, self.chunks, self.lens = None, [], []


def _write_gzip(path: Path, data: bytes) -> int:
    """Gzip with no name and mtime 0 in the header, so equal data gives equal bytes."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    blob = compressor.compress(data) + compressor.flush()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)  # the file appears atomically, as the contract says
    return len(blob)


def _write_truth(out: Path, truth: pd.DataFrame, design: dict[str, pd.DataFrame]) -> None:
    folder = out / "_truth"
    truth.sort_values("student_id").to_csv(folder / "students.csv", index=False, lineterminator="\n")
    q = design["questions"]
    questions = pd.DataFrame({
        "question_id": q.question_id,
        "survey_id": q.survey_num.map(lambda n: _id("sv", n)),
        "district_id": q.district_id,
        "variant_kind": q.variant_kind,
        "canonical_item_id": q.canonical_item_id.fillna(""),
    })
    questions.to_csv(folder / "questions.csv", index=False, lineterminator="\n")
