"""Check the seeds (crosswalks, item bank) in a second, without a warehouse.

The fast, local version of what a build checks (pre-commit runs it on every commit that
touches seeds/). Every finding names the file and the line of the row:

- every CSV is well-formed: UTF-8, a header of distinct names matching the columns its
  yml lists, as many fields on every row as in the header, values of the yml's
  column_types (integer, boolean, date);
- the tests the seeds' yml declare, evaluated on the files: not_null, unique,
  unique_combination, accepted_values, and relationships to another seed (a question
  crosswalk row naming an unknown canonical item);
- the demographic crosswalks: no two rows matching the same code (case and whitespace
  ignored, as macro code_match_key matches), and every standard value in its field's
  vocabulary (seeds/demographics/demographic_vocabulary.csv);
- the question crosswalk: one district's wording (normalized as macro
  normalize_question_text does) maps to one canonical item; and, when a built DuckDB
  warehouse is at hand (--warehouse, default $DBT_DUCKDB_PATH when that file exists), no
  row maps a district's question onto an item whose scale has a different number of
  points than the question's own options (the build refuses those too:
  assert_mapped_questions_match_item_scale).

Exit status: 0 clean, 1 findings (each on its own line, then what to do).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from orchestrate.warehouse import PROJECT_DIR, duckdb_path

SEEDS_DIR = "seeds"
DEMOGRAPHIC_CROSSWALKS = ("xwalk_demographic_codes", "xwalk_district_demographic_overrides")
VOCABULARY = "demographic_vocabulary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help="ignored: every seed is checked (rules span files)")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="a built DuckDB warehouse for the scale check (default: $DBT_DUCKDB_PATH if it exists)")
    parser.add_argument("--no-warehouse", action="store_true", help="skip the checks that need a warehouse")


def main(args: argparse.Namespace) -> int:
    warehouse = None if args.no_warehouse else (args.warehouse or duckdb_path())
    findings, notes = check(PROJECT_DIR, warehouse)
    for note in notes:
        print(f"note: {note}")
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} problems in seeds/: fix or remove the rows named above, then check again "
              "(python -m orchestrate check-seeds).")
        return 1
    print("seeds: every check passed")
    return 0


@dataclass
class Seed:
    name: str
    path: Path  # relative to the project
    header: list[str] = field(default_factory=list)
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (line, row)
    spec: dict = field(default_factory=dict)  # the seed's entry in its yml

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"


def check(project: Path, warehouse: Path | None = None) -> tuple[list[str], list[str]]:
    """(findings, notes) for the seeds of `project`."""
    findings: list[str] = []
    notes: list[str] = []
    seeds = load_seeds(project, findings)
    for seed in seeds.values():
        findings += declared_tests(seed, seeds)
    findings += demographic_codes_unique(seeds)
    findings += standard_values_in_vocabulary(seeds)
    findings += wordings_unambiguous(seeds)
    if warehouse is None:
        notes.append("scale check skipped (--no-warehouse)")
    elif not warehouse.exists():
        notes.append(f"scale check skipped: no built warehouse at {warehouse} (the build checks it)")
    else:
        more, note = items_match_question_scales(seeds, warehouse)
        findings += more
        if note:
            notes.append(note)
    return findings, notes


# --------------------------------------------------------------------------------------
# Reading


def load_seeds(project: Path, findings: list[str]) -> dict[str, Seed]:
    specs = {}
    for yml in sorted((project / SEEDS_DIR).rglob("*.yml")):
        try:
            document = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            findings.append(f"{yml.relative_to(project)}: not valid YAML: {exc}")
            continue
        for spec in document.get("seeds") or []:
            specs[spec["name"]] = spec
    seeds = {}
    for path in sorted((project / SEEDS_DIR).rglob("*.csv")):
        seed = Seed(path.stem, path.relative_to(project), spec=specs.get(path.stem, {}))
        read_csv(project / seed.path, seed, findings)
        seeds[seed.name] = seed
    return seeds


def read_csv(path: Path, seed: Seed, findings: list[str]) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        findings.append(f"{seed.where(line)}: not UTF-8 ({exc.reason}); save the file as UTF-8")
        return
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    try:
        header = next(reader, None)
        if not header:
            findings.append(f"{seed.where(1)}: no header row")
            return
        seed.header = [h.strip() for h in header]
        declared = [c["name"] for c in seed.spec.get("columns") or []]
        problems = []
        if len(set(seed.header)) != len(seed.header) or "" in seed.header:
            problems.append("empty or repeated column names")
        if declared and set(declared) - set(seed.header):
            problems.append(f"no column {', '.join(sorted(set(declared) - set(seed.header)))} "
                            "(its yml lists it)")
        if declared and set(seed.header) - set(declared):
            problems.append(f"column {', '.join(sorted(set(seed.header) - set(declared)))} "
                            "is not described in its yml")
        for problem in problems:
            findings.append(f"{seed.where(1)}: header: {problem}")
        line = 1
        for row in reader:
            start, line = line + 1, reader.line_num
            if not row:
                findings.append(f"{seed.where(start)}: empty line; remove it")
                continue
            if len(row) != len(seed.header):
                findings.append(f"{seed.where(start)}: {len(row)} fields, the header has "
                                f"{len(seed.header)} (a comma in a value needs double quotes)")
                continue
            seed.rows.append((start, dict(zip(seed.header, row))))
    except csv.Error as exc:
        findings.append(f"{seed.where(reader.line_num)}: not valid CSV: {exc}")


# --------------------------------------------------------------------------------------
# The tests the seeds' yml declare


def _tests(spec: dict) -> list[tuple[str, dict]]:
    """(name, arguments) of each test in a yml `data_tests` (or `tests`) list."""
    out = []
    for test in (spec.get("data_tests") or spec.get("tests") or []):
        if isinstance(test, str):
            out.append((test, {}))
        else:
            name, body = next(iter(test.items()))
            body = body or {}
            out.append((name, {**{k: v for k, v in body.items() if k != "arguments"},
                               **(body.get("arguments") or {})}))
    return out


def _ref_name(expression: str) -> str | None:
    match = re.fullmatch(r"\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*", str(expression))
    return match.group(1) if match else None


def declared_tests(seed: Seed, seeds: dict[str, Seed]) -> list[str]:
    findings = []
    types = (seed.spec.get("config") or {}).get("column_types") or {}
    for column, column_type in types.items():
        convert = _CONVERTERS.get(str(column_type).lower())
        if convert is None or column not in seed.header:
            continue
        for line, row in seed.rows:
            value = row[column].strip()
            if value and not convert(value):
                findings.append(f"{seed.where(line)}: {column} {value!r} is not a {column_type}")
    for name, args in _tests(seed.spec):
        if name == "unique_combination":
            findings += _duplicates(seed, list(args["columns"]), lambda row, cols: tuple(row[c] for c in cols))
    for column in seed.spec.get("columns") or []:
        col = column["name"]
        if col not in seed.header:
            continue
        for name, args in _tests(column):
            if name == "not_null":
                findings += [f"{seed.where(line)}: {col} is empty" for line, row in seed.rows
                             if not row[col].strip()]
            elif name == "unique":
                findings += _duplicates(seed, [col], lambda row, cols: row[cols[0]])
            elif name == "accepted_values":
                allowed = {str(v) for v in args.get("values", [])}
                findings += [f"{seed.where(line)}: {col} {row[col]!r} is not one of "
                             f"{', '.join(sorted(allowed))}"
                             for line, row in seed.rows if row[col].strip() and row[col] not in allowed]
            elif name == "relationships":
                parent = seeds.get(_ref_name(args.get("to", "")) or "")
                if parent is None:
                    continue  # a relationship to a model: checked by the build
                known = {row[args["field"]] for _, row in parent.rows}
                findings += [f"{seed.where(line)}: {col} {row[col]!r} is not a {args['field']} of "
                             f"{parent.path}" for line, row in seed.rows
                             if row[col].strip() and row[col] not in known]
    return findings


def _duplicates(seed: Seed, columns: list[str], key, what: str = "") -> list[str]:
    first: dict = {}
    findings = []
    for line, row in seed.rows:
        k = key(row, columns)
        if k in first:
            findings.append(f"{seed.where(line)}: same {', '.join(columns)}{what} as line {first[k]}")
        else:
            first[k] = line
    return findings


def _is_int(value: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", value) is not None


def _is_bool(value: str) -> bool:
    return value.lower() in ("true", "false")


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
        return True
    except ValueError:
        return False


_CONVERTERS = {"integer": _is_int, "int": _is_int, "bigint": _is_int, "boolean": _is_bool, "date": _is_date}


# --------------------------------------------------------------------------------------
# Crosswalk rules


def code_match_key(code: str) -> str:
    """As macro code_match_key: lower case, every whitespace character removed."""
    return re.sub(r"\s+", "", code).lower()


def demographic_codes_unique(seeds: dict[str, Seed]) -> list[str]:
    findings = []
    for name in DEMOGRAPHIC_CROSSWALKS:
        seed = seeds.get(name)
        if seed is None or "code" not in seed.header:
            continue
        scope = [c for c in ("district_id", "field") if c in seed.header]
        findings += _duplicates(seed, scope, lambda row, cols: (*(row[c] for c in cols), code_match_key(row["code"])),
                                what=" and code (case and spaces ignored)")
    return findings


def standard_values_in_vocabulary(seeds: dict[str, Seed]) -> list[str]:
    vocabulary_seed = seeds.get(VOCABULARY)
    if vocabulary_seed is None:
        return []
    vocabulary: dict[str, set[str]] = defaultdict(set)
    for _, row in vocabulary_seed.rows:
        vocabulary[row["field"]].add(row["standard_value"])
    findings = []
    for name in DEMOGRAPHIC_CROSSWALKS:
        seed = seeds.get(name)
        if seed is None or not {"field", "standard_value"} <= set(seed.header):
            continue
        for line, row in seed.rows:
            allowed = vocabulary.get(row["field"])
            if allowed and row["standard_value"] not in allowed:
                findings.append(
                    f"{seed.where(line)}: standard_value {row['standard_value']!r} is not in the "
                    f"{row['field']} vocabulary ({', '.join(sorted(allowed))}; {vocabulary_seed.path})")
    return findings


def normalize_question_text(text: str) -> str:
    """As macro normalize_question_text (sample_design.normalize_text)."""
    from orchestrate.sample_design import normalize_text

    return normalize_text(text)


def wordings_unambiguous(seeds: dict[str, Seed]) -> list[str]:
    seed = seeds.get("question_crosswalk")
    if seed is None:
        return []
    first: dict[tuple, tuple[int, str]] = {}
    findings = []
    for line, row in seed.rows:
        key = (row["district_id"], row["survey_id"].strip(), normalize_question_text(row["question_text"]))
        if key in first and first[key][1] != row["canonical_item_id"]:
            findings.append(f"{seed.where(line)}: {row['district_id']}'s wording maps to "
                            f"{row['canonical_item_id']}, line {first[key][0]} maps it to {first[key][1]}; "
                            "keep the reviewed mapping, delete the other")
        first.setdefault(key, (line, row["canonical_item_id"]))
    return findings


def items_match_question_scales(seeds: dict[str, Seed], warehouse: Path) -> tuple[list[str], str]:
    """Crosswalk rows whose item's scale differs from the matching questions' options,
    the questions read from a built DuckDB warehouse (read-only)."""
    import duckdb

    seed, items = seeds.get("question_crosswalk"), seeds.get("canonical_items")
    if seed is None or items is None:
        return [], ""
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:
        return [], f"scale check skipped: cannot open {warehouse} read-only ({str(exc).splitlines()[0]})"
    try:
        schemas = [s for (s,) in con.execute(
            "select table_schema from information_schema.tables where table_name = 'int_questions_mapped' "
            "order by table_schema = 'intermediate' desc, table_schema").fetchall()]
        if not schemas:
            return [], f"scale check skipped: {warehouse} has no int_questions_mapped (not built yet)"
        questions = con.execute(
            f'select question_id, survey_id, district_id, question_text_key, option_scale_points '
            f'from "{schemas[0]}".int_questions_mapped where not is_open_ended').fetchall()
    finally:
        con.close()
    by_wording = defaultdict(list)
    for question_id, survey_id, district_id, key, points in questions:
        by_wording[(district_id, key)].append((question_id, survey_id, points))
    canonical_keys = {normalize_question_text(r["canonical_text"]) for _, r in items.rows}
    scale = {r["canonical_item_id"]: r["scale_points"] for _, r in items.rows}
    findings = []
    for line, row in seed.rows:
        key = normalize_question_text(row["question_text"])
        if key in canonical_keys or row["canonical_item_id"] not in scale:
            continue  # an exact match wins over the row; an unknown item is reported above
        survey = row["survey_id"].strip()
        for question_id, survey_id, points in by_wording.get((row["district_id"], key), []):
            if survey and survey != survey_id:
                continue
            if str(points) != scale[row["canonical_item_id"]].strip():
                findings.append(
                    f"{seed.where(line)}: {row['canonical_item_id']} has a "
                    f"{scale[row['canonical_item_id']]}-point scale, but {row['district_id']}'s question "
                    f"{question_id} (survey {survey_id}) with this wording has {points} scale options "
                    f"(in {warehouse}); map it to an item of its scale or leave it unmapped")
                break
    return findings, ""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
