"""Generate contract-valid replica extracts: `python -m orchestrate generate`.

Writes gzip NDJSON files `<out>/<table>/<table>__<start>__<end>__<part>.ndjson.gz` that
follow ../shared/contracts/replica-extracts-v1.md, plus `<out>/_truth/` (the true
standardized demographics per student and the true canonical item per question) for
tests. The fixed design (districts, coding schemes, item bank, wordings) is in
orchestrate/sample_design.py; scale sets how many schools, students and answers there
are (scale 1 is about 1,000,000 question_responses lines); seed sets the random draws.

Same seed and scale give byte-identical files: randomness is a hash of (seed, purpose,
ids) computed inside DuckDB (or a numpy generator seeded from the seed), never
dependent on thread scheduling, and gzip headers carry no time or file name. (The hash
is DuckDB's, so "identical" holds for one DuckDB version.)

Messiness, and how much of it there is (nominal rates; the tests check them):

| kind                                   | share                                                   |
|----------------------------------------|---------------------------------------------------------|
| unmappable demographic code            | 0.5% of students per demographic field ("Whtie", "??")  |
| null demographic field                 | 0.3% (grade) to 4% (lunch) of students per field        |
| two races (multi-race string)          | 8% of students with a known race                        |
| district-only codes (TK, EE, W, N, 7…) | see sample_design.DISTRICTS                             |
| anonymous student survey               | 2 of 8 districts (d03, d07): responses' student_id null |
| family survey                          | 2 of 8 districts (d02, d06)                             |
| question worded exactly as canonical   | ~35% of mapped questions                                |
| normalized-equal wording               | ~20% (case, whitespace, punctuation only)               |
| rephrased wording                      | ~30% (crosswalk row)                                    |
| reordered words                        | ~15% (crosswalk row)                                    |
| client-only questions                  | 1–3 per survey, some open-ended                         |
| options displayed top-down             | 2 of 8 districts (d03, d06)                             |
| off-scale non-substantive options      | 5 of 8 districts (d02, d03, d04, d06, d07)              |
| non-substantive answer                 | 5% of scale answers where offered (~3% of all)          |
| skipped: row absent                    | 1.5% of scale answers                                   |
| skipped: value null                    | 1.5% of scale answers                                   |
| open-ended answered                    | 45% of open-ended questions asked                       |
| label instead of value                 | all of d04's answers, half of d07's responses           |
| unfinished response (no submitted_at)  | 8% of responses; answers stop part way                  |
| value corrected (`u`)                  | 2% of integer answers                                   |
|   of which late (3–30 days later)      | 25% of corrections                                      |
| answer deleted (`d`)                   | 0.3% of answers                                         |
| response withdrawn (`d` with answers)  | 0.2% of submitted responses                             |
| `device_type` key on survey_responses  | every row with _ts on or after 2024-01-15, none before  |
| hourly intervals                       | each year's first day of d01's student survey           |
| survey window extended (`u`)           | 2 surveys (see sample_design.WINDOW_EXTENSIONS)         |
| district renamed / locale recoded (`u`)| d02 name, d08 locale                                    |
| students promoted / moved (`u`)        | every continuing student each August; 5% change school  |

`d` rows: survey_responses carry the full row image; question_responses only the key.
"""

from __future__ import annotations

import argparse
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

from orchestrate import sample_design as sd
from orchestrate.errors import UserError
from orchestrate.contract import MAX_UNCOMPRESSED_BYTES, TABLES, file_name

# Rates used below; the docstring's table says the same in words.
STUDENTS_PER_SCALE = 17_000  # scale 1 gives about 1,000,000 question_responses lines
MIN_STUDENTS_PER_SCHOOL = 24  # so small scales still publish benchmarks
STAFF_PER_STUDENT = 1 / 12
MIN_STAFF_PER_SCHOOL = 12
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
GZIP_LEVEL = 6

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
GRADE_UG = 99  # grade_num of ungraded students

OP_ORDER = {"c": 0, "u": 1, "d": 2}


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
        select = "*"
        if name == "questions":
            select = ("* REPLACE (from_json(labels, '[\"VARCHAR\"]') AS labels, "
                      "from_json(ns_values, '[\"INTEGER\"]') AS ns_values, "
                      "from_json(ns_labels, '[\"VARCHAR\"]') AS ns_labels)")
        con.execute(f"CREATE TABLE {name} AS SELECT {select} FROM {name}_df")
        con.unregister(f"{name}_df")
    _build_events(con, seed, design)
    say("changes built")

    summary = Summary(out)
    with ThreadPoolExecutor(max_workers=max(1, threads or 1)) as pool:
        for table in TABLES:
            files, lines, nbytes, gz = _write_table(con, table, out, max_part_bytes, pool)
            summary.files += files
            summary.lines += lines
            summary.bytes += nbytes
            summary.gzip_bytes += gz
            summary.per_table[table] = (files, lines)
            say(f"{table}: {files} files, {lines:,} lines, {nbytes:,} bytes")
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
    districts, schools, surveys, questions = [], [], [], []
    n_schools = sd.schools_per_district(scale)
    school_num = 0
    for di, d in enumerate(sd.DISTRICTS):
        districts.append({"district_idx": di, "district_id": d.district_id})
        for k in range(n_schools):
            school_num += 1
            grades = sd.school_grades(d, k)
            lo, hi = (sd.GRADE_NUMBER["PK"] if g == "PK" else sd.GRADE_NUMBER["KG"] if g == "K" else int(g)
                      for g in grades.split("-"))
            schools.append({"school_num": school_num, "school_id": f"sch_{school_num:04d}", "district_idx": di,
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
                    "survey_num": survey_num, "survey_id": f"sv_{survey_num:03d}", "district_idx": di,
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
                    questions.append({
                        "question_num": question_num, "question_id": f"q_{question_num:05d}",
                        "survey_num": survey_num, "position": q.position, "question_text": q.text,
                        "kind": kind, "k": len(labels), "reverse": q.reverse_coded,
                        "topic_num": _topic_num(item.topic_id) if item else 0,
                        "item_num": _item_num(item.canonical_item_id) if item else 0,
                        "labels": json.dumps(labels),
                        "ns_values": json.dumps([v for v, _ in d.non_substantive] if kind == "scale" else []),
                        "ns_labels": json.dumps([lab for _, lab in d.non_substantive] if kind == "scale" else []),
                        "options": q.options, "variant_kind": q.variant_kind,
                        "canonical_item_id": q.canonical_item_id, "district_id": d.district_id,
                    })
    frames = {
        "districts": pd.DataFrame(districts),
        "schools": pd.DataFrame(schools),
        "surveys": pd.DataFrame(surveys),
        "questions": pd.DataFrame(questions),
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
        race_mask = np.zeros(n, dtype=int)
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
    truth.insert(0, "student_id", truth.pop("student_num").map(lambda k: f"st_{k:07d}"))
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
# Change events, in DuckDB. Every random draw is a hash of (seed, purpose, ids).


def _u(seed: int, tag: str, *ids: str) -> str:
    """SQL for a uniform draw in [0, 1) keyed on seed, tag and ids."""
    return f"((hash({seed}, '{tag}', {', '.join(ids)}) >> 11)::DOUBLE / 9007199254740992.0)"


def _u16(h: str, i: int) -> str:
    """The i-th 16-bit slice (0..3) of hash expression h as a uniform in [0, 1)."""
    return f"((({h}) >> {16 * i}) & 65535)::DOUBLE / 65536.0"


def _normal(seed: int, tag: str, *ids: str) -> str:
    h = f"hash({seed}, '{tag}', {', '.join(ids)})"
    return (f"(sqrt(-2 * ln((({h} >> 32) + 1)::DOUBLE / 4294967297.0))"
            f" * cos(2 * pi() * ({h} & 4294967295)::DOUBLE / 4294967296.0))")


def _build_events(con: duckdb.DuckDBPyConnection, seed: int, design: dict[str, pd.DataFrame]) -> None:
    """Create one `ev_<table>` per table: ts_ms, ord (c/u/d), k1, k2 and the row body."""
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
    con.execute("""
        CREATE TABLE ev_students AS
        SELECT y.ts_ms, y.op, CASE y.op WHEN 'c' THEN 0 ELSE 1 END::TINYINT AS ord,
               y.student_num AS k1, 0::BIGINT AS k2,
               substr(to_json(struct_pack(
                   student_id := printf('st_%07d', y.student_num),
                   district_id := d.district_id,
                   school_id := sc.school_id,
                   local_student_id := s.local_student_id,
                   first_name := s.first_name,
                   last_name := s.last_name,
                   email := s.email,
                   birth_date := s.birth_date,
                   grade_level := y.grade_json::JSON,
                   gender := s.gender_json::JSON,
                   race := s.race_json::JSON,
                   hispanic_latino := s.hispanic_latino_json::JSON,
                   english_learner := s.english_learner_json::JSON,
                   iep := s.iep_json::JSON,
                   section_504 := s.section_504_json::JSON,
                   lunch_status := s.lunch_json::JSON
               ))::VARCHAR, 2) AS body
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
    con.execute("""
        CREATE TABLE ev_survey_invitations AS
        SELECT s.opens_ms + 21600000 + (i.inv_num - min(i.inv_num) OVER (PARTITION BY i.survey_num)) * 50
                   AS ts_ms,
               'c' AS op, 0::TINYINT AS ord, i.inv_num AS k1, 0::BIGINT AS k2,
               substr(to_json(struct_pack(
                   invitation_id := printf('inv_%08d', i.inv_num),
                   survey_id := s.survey_id,
                   school_id := sc.school_id,
                   student_id := CASE WHEN s.rtype = 'student' THEN printf('st_%07d', i.student_num) END
               ))::VARCHAR, 2) AS body
        FROM invitations i JOIN surveys s USING (survey_num) JOIN schools sc USING (school_num)
    """)
    h_resp = f"hash({S}, 'response', i.inv_num)"
    con.execute(f"""
        CREATE TABLE responses AS
        WITH picked AS (
            SELECT i.*, s.year_idx, s.rtype, s.anonymous, s.labels_mode, s.n_questions, s.opens_ms,
                   s.window_days, s.district_idx, s.survey_id, {h_resp} AS h
            FROM invitations i
            JOIN surveys s USING (survey_num)
            JOIN school_years c ON c.school_num = i.school_num AND c.year_idx = s.year_idx
            WHERE {_u(S, 'responds', 'i.inv_num')} < s.response_rate + c.rate_shift
        ), timed AS (
            SELECT *,
                   floor(window_days * pow({_u16('h', 0)}, 1.7))::INT AS day,
                   CASE rtype WHEN 'student' THEN 13 * 3600000 + ({_u16('h', 1)} * 8 * 3600000)::BIGINT
                              WHEN 'staff' THEN 12 * 3600000 + ({_u16('h', 1)} * 12 * 3600000)::BIGINT
                              ELSE ({_u16('h', 1)} * 24 * 3600000)::BIGINT END
                       + ({_u(S, 'ms', 'inv_num')} * 60000)::BIGINT AS tod,
                   {_u16('h', 2)} < {UNFINISHED} AS unfinished,
                   {_u16('h', 3)} AS u_more
            FROM picked
        ), dated AS (
            SELECT *,
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
               labels_mode = 1 OR (labels_mode = 2 AND {_u(S, 'labels', 'inv_num')} < {LABELS_PART}) AS labels,
               {devices}[1 + floor({_u(S, 'device', 'inv_num')} * {len(sd.DEVICE_TYPES)})::INT] AS device_type,
               {_normal(S, 'general', 'inv_num')} AS g,
               CASE WHEN grade_num IS NULL THEN 0 WHEN grade_num = {GRADE_UG} THEN -0.1
                    WHEN grade_num <= 5 THEN 0.3 WHEN grade_num <= 8 THEN 0.0 ELSE -0.2 END AS group_effect
        FROM dated
    """)
    con.execute(f"""
        ALTER TABLE responses ADD COLUMN withdraw_ms BIGINT;
        UPDATE responses SET withdraw_ms = submitted_ms + {35 * DAY_MS}
            + ({_u(S, 'withdraw_at', 'inv_num')} * 25 * {DAY_MS})::BIGINT WHERE withdrawn;
    """)
    body_sr = """
        substr(to_json(struct_pack(
            response_id := printf('r_%08d', r.response_num),
            survey_id := r.survey_id,
            school_id := sc.school_id,
            student_id := CASE WHEN NOT r.anonymous THEN printf('st_%07d', r.student_num) END,
            started_at := strftime(epoch_ms(r.started_ms), '%Y-%m-%dT%H:%M:%S.%gZ'),
            submitted_at := strftime(epoch_ms({sub}), '%Y-%m-%dT%H:%M:%S.%gZ'){extra}
        ))::VARCHAR, 2)"""

    def sr_body(sub: str, ts: str) -> str:
        with_key = body_sr.format(sub=sub, extra=f",\n            {sd.EXTRA_KEY} := r.device_type")
        without = body_sr.format(sub=sub, extra="")
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

    # topic effects: district, school and year, so results differ between entities
    con.execute(f"""
        CREATE TABLE effects AS
        WITH topics AS (SELECT DISTINCT topic_num FROM questions WHERE topic_num > 0)
        SELECT sc.school_num, yr.year_idx, t.topic_num,
               0.30 * {_normal(S, 'district_effect', 'sc.district_idx', 't.topic_num')}
             + 0.35 * {_normal(S, 'school_effect', 'sc.school_num', 't.topic_num')}
             + 0.12 * {_normal(S, 'year_effect', 'sc.district_idx', 'yr.year_idx', 't.topic_num')} AS effect
        FROM schools sc CROSS JOIN (SELECT unnest(range(3)) AS year_idx) yr CROSS JOIN topics t
    """)
    h_a = f"hash({S}, 'answer', r.response_num, q.question_num)"
    h_b = f"hash({S}, 'change', r.response_num, q.question_num)"
    con.execute(f"""
        CREATE TABLE answers AS
        WITH base AS (
            SELECT r.response_num, q.question_num, q.kind, q.k, q.labels, q.ns_values, q.ns_labels,
                   r.labels AS as_labels, r.withdrawn, r.withdraw_ms,
                   r.started_ms + r.duration_ms * q.position // (r.n_questions + 1)
                       + ({_u16(h_b, 3)} * 1000)::BIGINT AS ts_ms,
                   {_u16(h_a, 0)} AS u_skip, {_u16(h_a, 1)} AS u_ns, {_u16(h_a, 2)} AS u_pick,
                   {_u16(h_b, 0)} AS u_change, {_u16(h_b, 1)} AS u_when, {_u16(h_b, 2)} AS u_new,
                   CASE WHEN q.kind = 'scale' THEN
                       e.effect + 0.55 * r.g + 0.65 * {_normal(S, 'trait', 'r.response_num', 'q.topic_num')}
                       + r.group_effect + (0.2 + 0.6 * {_u(S, 'item', 'q.item_num')} - 0.4)
                       + 0.95 * {_normal(S, 'noise', 'r.response_num', 'q.question_num')}
                   END AS z,
                   q.reverse
            FROM responses r
            JOIN questions q ON q.survey_num = r.survey_num AND q.position <= r.answered_upto
            LEFT JOIN effects e ON e.school_num = r.school_num AND e.year_idx = r.year_idx
                               AND e.topic_num = q.topic_num
        ), valued AS (
            SELECT *,
                   CASE
                       WHEN kind = 'open' THEN NULL
                       WHEN u_skip < {SKIP_ABSENT + SKIP_NULL} THEN NULL
                       WHEN kind = 'choice' THEN 1 + floor(u_pick * k)::INT
                       WHEN len(ns_values) > 0 AND u_ns < {NON_SUBSTANTIVE}
                           THEN ns_values[1 + floor(u_pick * len(ns_values))::INT]
                       ELSE (CASE WHEN reverse THEN k + 1 - v ELSE v END)
                   END AS value_int,
                   kind = 'scale' AND len(ns_values) > 0 AND u_ns < {NON_SUBSTANTIVE}
                       AND u_skip >= {SKIP_ABSENT + SKIP_NULL} AS non_substantive
            FROM (SELECT *,
                         CASE WHEN k = 5 THEN least(5, greatest(1, round(3.6 + z)))
                              ELSE least(7, greatest(1, round(4.7 + 1.5 * z))) END::INT AS v
                  FROM base)
        )
        SELECT response_num, question_num, ts_ms, kind, k, as_labels, withdrawn, withdraw_ms,
               u_change, u_when, u_new, value_int, non_substantive, labels, ns_values, ns_labels,
               CASE
                   WHEN kind = 'open' THEN to_json({texts}[1 + floor(u_pick * {n_text})::INT])::VARCHAR
                   WHEN value_int IS NULL THEN 'null'
                   WHEN as_labels THEN to_json(
                       CASE WHEN non_substantive THEN ns_labels[list_position(ns_values, value_int)]
                            ELSE labels[value_int] END)::VARCHAR
                   ELSE value_int::VARCHAR
               END AS value_json
        FROM valued
        WHERE NOT (kind = 'open' AND u_skip >= {OPEN_ANSWERED})
          AND NOT (kind <> 'open' AND u_skip < {SKIP_ABSENT})
    """)
    corrected_value = """
        CASE WHEN as_labels THEN to_json(labels[new_value])::VARCHAR ELSE new_value::VARCHAR END"""
    con.execute(f"""
        CREATE TABLE ev_question_responses AS
        SELECT ts_ms, 'c' AS op, 0::TINYINT AS ord, response_num AS k1, question_num AS k2, value_json AS body
        FROM answers
        UNION ALL
        SELECT CASE WHEN u_when < {LATE_CORRECTION}
                    THEN ts_ms + (3 + floor(u_when / {LATE_CORRECTION} * 28))::BIGINT * {DAY_MS} + 3600000
                    ELSE ts_ms + 5000 + (u_when * 115000)::BIGINT END,
               'u', 1, response_num, question_num, {corrected_value}
        FROM (SELECT *, 1 + (value_int - 1 + 1 + floor(u_new * (k - 1))::INT) % k AS new_value FROM answers)
        WHERE u_change < {CORRECTED} AND NOT withdrawn AND value_int BETWEEN 1 AND k AND kind <> 'open'
        UNION ALL
        SELECT ts_ms + 3600000 + (u_when * 10 * {DAY_MS})::BIGINT, 'd', 2, response_num, question_num, NULL
        FROM answers
        WHERE u_change >= {CORRECTED} AND u_change < {CORRECTED + DELETED} AND NOT withdrawn
        UNION ALL
        SELECT withdraw_ms + question_num % 1000, 'd', 2, response_num, question_num, NULL
        FROM answers WHERE withdrawn
    """)


# --------------------------------------------------------------------------------------
# Writing files


def _line_sql(table: str, hourly: str) -> str:
    interval = f"""
        CASE WHEN ts_ms // {DAY_MS} IN ({hourly}) THEN ts_ms // {HOUR_MS} * {HOUR_MS}
             ELSE ts_ms // {DAY_MS} * {DAY_MS} END"""
    envelope = ("""'{"_op":"' || op || '","_ts":"' || strftime(epoch_ms(ts_ms), '%Y-%m-%dT%H:%M:%S.%gZ')"""
                """ || '","_seq":' || (rowid + 1) || ','""")
    if table == "question_responses":
        row = ("""'"response_id":"' || printf('r_%08d', k1) || '","question_id":"' || printf('q_%05d', k2)"""
               """ || CASE WHEN op = 'd' THEN '"}' ELSE '","value":' || body || '}' END""")
    else:
        row = "body"
    return (f"SELECT {interval} AS interval_start, CASE WHEN ts_ms // {DAY_MS} IN ({hourly}) THEN {HOUR_MS} "
            f"ELSE {DAY_MS} END AS interval_length, rowid AS seq, {envelope} || {row} || chr(10) AS line "
            f"FROM sorted_{table}")


def _write_table(con: duckdb.DuckDBPyConnection, table: str, out: Path, max_part_bytes: int,
                 pool: ThreadPoolExecutor) -> tuple[int, int, int, int]:
    con.execute(f"CREATE TABLE sorted_{table} AS SELECT * FROM ev_{table} ORDER BY ts_ms, ord, k1, k2")
    con.execute(f"DROP TABLE ev_{table}")
    hourly = ", ".join(str(_ms(d) // DAY_MS) for d in sd.hourly_days())
    reader = con.execute(_line_sql(table, hourly)).to_arrow_reader(1_000_000)
    folder = out / table
    pending: list[Future] = []
    stats = {"files": 0, "lines": 0, "bytes": 0}
    current: list = [None, None, [], []]  # start, length, chunks, line lengths
    last_seq = -1

    def flush() -> None:
        start, length, chunks, lens = current
        if start is None:
            return
        data = b"".join(chunks)
        ends = np.cumsum(np.concatenate(lens))
        t0 = datetime.fromtimestamp(start / 1000, tz=timezone.utc)
        t1 = datetime.fromtimestamp((start + length) / 1000, tz=timezone.utc)
        pos, base, part = 0, 0, 0
        while pos < len(ends):
            j = int(np.searchsorted(ends, base + max_part_bytes, side="right"))
            j = max(j, pos + 1)  # a line longer than the cap goes alone
            end = int(ends[j - 1])
            name = file_name(table, t0, t1, part)
            pending.append(pool.submit(_write_gzip, folder / name, data[base:end]))
            stats["files"] += 1
            pos, base, part = j, end, part + 1
            while len(pending) > 8:
                stats.setdefault("gz", 0)
                stats["gz"] += pending.pop(0).result()
        stats["lines"] += len(ends)
        stats["bytes"] += len(data)
        current[:] = [None, None, [], []]

    for batch in reader:
        starts = batch.column(0).to_numpy()
        lengths = batch.column(1).to_numpy()
        seqs = batch.column(2).to_numpy()
        if len(seqs) == 0:
            continue
        if seqs[0] <= last_seq or (len(seqs) > 1 and np.any(np.diff(seqs) <= 0)):
            raise RuntimeError(f"{table}: rows came back out of _seq order")
        last_seq = int(seqs[-1])
        lines = batch.column(3)
        offset_type = np.int64 if pa.types.is_large_string(lines.type) else np.int32
        offsets = np.frombuffer(lines.buffers()[1], dtype=offset_type)[lines.offset:lines.offset + len(lines) + 1]
        data = lines.buffers()[2]
        line_lens = np.diff(offsets)
        cuts = np.flatnonzero(np.diff(starts)) + 1
        bounds = np.r_[0, cuts, len(starts)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            if current[0] is not None and current[0] != starts[a]:
                flush()
            current[0], current[1] = int(starts[a]), int(lengths[a])
            current[2].append(memoryview(data)[offsets[a]:offsets[b]].tobytes())
            current[3].append(line_lens[a:b])
    flush()
    gz = stats.get("gz", 0) + sum(f.result() for f in pending)
    con.execute(f"DROP TABLE sorted_{table}")
    return stats["files"], stats["lines"], stats["bytes"], gz


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
        "survey_id": q.survey_num.map(lambda n: f"sv_{n:03d}"),
        "district_id": q.district_id,
        "variant_kind": q.variant_kind,
        "canonical_item_id": q.canonical_item_id.fillna(""),
    })
    questions.to_csv(folder / "questions.csv", index=False, lineterminator="\n")
