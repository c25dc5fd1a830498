"""The replica-extracts contract, version 1, as data.

One place that says which tables exist, their primary keys and their column types.
The generator writes to it, the ingester validates against it and creates the raw
tables from it. See docs/contracts/replica-extracts-v1.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

# JSON kinds a column accepts. Raw storage type follows from the kind.
STRING = "string"  # JSON string
INTEGER = "integer"  # JSON integer
NUMBER = "number"  # JSON integer or float
FLAG = "flag"  # JSON string or boolean ("Y", "No", true, ...)
SCALAR = "scalar"  # JSON integer, number or string (question_responses.value)
OPTIONS = "options"  # JSON array of {"value": int, "label": str}

RAW_TYPES = {
    STRING: "varchar",
    INTEGER: "bigint",
    NUMBER: "double",
    FLAG: "varchar",
    SCALAR: "varchar",
    OPTIONS: "json",
}

# DuckDB json_type() names each kind accepts (null is always accepted on non-key columns).
ACCEPTED_JSON_TYPES = {
    STRING: ("VARCHAR",),
    INTEGER: ("BIGINT", "UBIGINT"),
    NUMBER: ("BIGINT", "UBIGINT", "DOUBLE"),
    FLAG: ("VARCHAR", "BOOLEAN", "BIGINT", "UBIGINT"),
    SCALAR: ("VARCHAR", "BIGINT", "UBIGINT", "DOUBLE"),
    OPTIONS: ("ARRAY",),
}


@dataclass(frozen=True)
class Table:
    name: str
    primary_key: tuple[str, ...]
    columns: dict[str, str]  # column -> kind, in contract order (primary key first)

    def raw_columns(self) -> dict[str, str]:
        return {col: RAW_TYPES[kind] for col, kind in self.columns.items()}


TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "districts",
            ("district_id",),
            {
                "district_id": STRING,
                "name": STRING,
                "state": STRING,
                "nces_lea_id": STRING,
                "locale": STRING,
            },
        ),
        Table(
            "schools",
            ("school_id",),
            {
                "school_id": STRING,
                "district_id": STRING,
                "name": STRING,
                "nces_school_id": STRING,
                "grades_served": STRING,
                "frl_percent": NUMBER,
            },
        ),
        Table(
            "students",
            ("student_id",),
            {
                "student_id": STRING,
                "district_id": STRING,
                "school_id": STRING,
                "local_student_id": STRING,
                "first_name": STRING,
                "last_name": STRING,
                "email": STRING,
                "birth_date": STRING,
                "grade_level": STRING,
                "gender": STRING,
                "race": STRING,
                "hispanic_latino": FLAG,
                "english_learner": FLAG,
                "iep": FLAG,
                "section_504": FLAG,
                "lunch_status": STRING,
            },
        ),
        Table(
            "surveys",
            ("survey_id",),
            {
                "survey_id": STRING,
                "district_id": STRING,
                "title": STRING,
                "respondent_type": STRING,
                "school_year": STRING,
                "opens_on": STRING,
                "closes_on": STRING,
            },
        ),
        Table(
            "survey_questions",
            ("question_id",),
            {
                "question_id": STRING,
                "survey_id": STRING,
                "position": INTEGER,
                "question_text": STRING,
                "response_options": OPTIONS,
            },
        ),
        Table(
            "survey_invitations",
            ("invitation_id",),
            {
                "invitation_id": STRING,
                "survey_id": STRING,
                "school_id": STRING,
                "student_id": STRING,
            },
        ),
        Table(
            "survey_responses",
            ("response_id",),
            {
                "response_id": STRING,
                "survey_id": STRING,
                "school_id": STRING,
                "student_id": STRING,
                "started_at": STRING,
                "submitted_at": STRING,
            },
        ),
        Table(
            "question_responses",
            ("response_id", "question_id"),
            {"response_id": STRING, "question_id": STRING, "value": SCALAR},
        ),
    ]
}

ENVELOPE = ("_op", "_ts", "_seq")
OPS = ("c", "u", "d")
MAX_UNCOMPRESSED_BYTES = 500 * 1024 * 1024

FILE_NAME = re.compile(
    r"^(?P<table>[a-z_]+)__(?P<start>\d{8}T\d{6}Z)__(?P<end>\d{8}T\d{6}Z)__(?P<part>\d{4})\.ndjson\.gz$"
)
INTERVAL_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class ExtractFile:
    table: str
    interval_start: datetime
    interval_end: datetime
    part: int
    name: str


def parse_file_name(name: str) -> ExtractFile:
    """Parse `<table>__<start>__<end>__<part>.ndjson.gz`; raise ValueError naming the file."""
    m = FILE_NAME.match(name)
    if not m:
        raise ValueError(
            f"{name}: not an extract file name; expected "
            "<table>__<YYYYMMDDTHHMMSSZ>__<YYYYMMDDTHHMMSSZ>__<part>.ndjson.gz"
        )
    if m["table"] not in TABLES:
        raise ValueError(f"{name}: unknown table {m['table']!r}; known: {', '.join(TABLES)}")
    start = datetime.strptime(m["start"], INTERVAL_FORMAT).replace(tzinfo=timezone.utc)
    end = datetime.strptime(m["end"], INTERVAL_FORMAT).replace(tzinfo=timezone.utc)
    if end <= start:
        raise ValueError(f"{name}: interval end {m['end']} is not after its start {m['start']}")
    return ExtractFile(m["table"], start, end, int(m["part"]), name)


def file_name(table: str, start: datetime, end: datetime, part: int) -> str:
    return (
        f"{table}__{start.strftime(INTERVAL_FORMAT)}__{end.strftime(INTERVAL_FORMAT)}"
        f"__{part:04d}.ndjson.gz"
    )


# --------------------------------------------------------------------------------------
# The Snowflake loader's copy: macros/snowflake/replica_contract.sql is generated from the
# tables above (`python -m orchestrate.contract` rewrites it; a test fails when it differs).

SNOWFLAKE_TYPES = {
    STRING: "varchar",
    INTEGER: "bigint",
    NUMBER: "double",
    FLAG: "varchar",
    SCALAR: "varchar",
    OPTIONS: "variant",
}
SNOWFLAKE_MACRO = "macros/snowflake/replica_contract.sql"


def snowflake_contract_macro() -> str:
    """The dbt macro replica_contract(): each table's primary key and its contract columns
    in contract order, as Snowflake types."""
    lines = [
        "{#-",
        "  GENERATED from orchestrate/contract.py by `python -m orchestrate.contract`: edit",
        "  the contract there, not here. The replica-extracts contract as Snowflake column",
        "  types, for the Snowflake loader (load_raw_from_stage, create_raw_tables): each",
        "  table's primary key and its contract columns in contract order.",
        "-#}",
        "{% macro replica_contract() -%}",
        "    {{ return({",
    ]
    for table in TABLES.values():
        keys = ", ".join(f"'{c}'" for c in table.primary_key)
        lines += [f"        '{table.name}': {{", f"            'primary_key': [{keys}],",
                  "            'columns': ["]
        lines += [f"                ['{c}', '{SNOWFLAKE_TYPES[k]}']," for c, k in table.columns.items()]
        lines += ["            ],", "        },"]
    lines += ["    }) }}", "{%- endmacro %}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    from orchestrate.warehouse import PROJECT_DIR

    target = PROJECT_DIR / SNOWFLAKE_MACRO
    target.write_text(snowflake_contract_macro(), encoding="utf-8")
    print(f"wrote {target}")
