"""Load replica extracts into the raw schema, exactly once.

`python -m orchestrate ingest --extracts DIR`

New files under DIR/<table>/ (see contract.py for names) load in batches of one table's files, each batch in one transaction: each file's valid lines go to raw.<table> (envelope + contract columns + `_extra` for keys
the contract does not list + `_source_file` and `_source_line`), its malformed lines go to
raw.quarantined_lines with their line number and reason, and a row goes to
raw.ingest_ledger with the file's checksums and counts. A killed process therefore leaves
either all of a file or none of it, and a rerun loads what is missing.

Before anything is loaded, every new file is read to its end once (decompressed in
Python, in parallel): a file whose gzip stream does not end cleanly (a copy cut short),
is damaged or empty refuses the whole ingest, and nothing is recorded for it, so a good
copy loads later. The same pass hashes the uncompressed lines (`content_sha256`), so
redelivery is recognised by content: a copy recompressed under a new name is skipped, and
under the same name it is not "altered". A known name with other content refuses the
whole ingest (nothing is loaded, nothing already loaded changes) and names the file.

`_seq` is strictly increasing per table (the contract): a valid line whose `_seq` is
already loaded, or appears on an earlier line of the same delivery, is quarantined as a
duplicate; the change loaded first stays. `_ts` without a zone is UTC, as the contract says
every `_ts` is. Lines may be as long as a file (the contract's 500 MB).

Files the writer has not renamed into place yet (`*.tmp`, `*.partial`, `*.part`,
dot-files) are left for a later run and listed as waiting; folders that are not tables of
the contract and stray files are named in a warning. Folders and files whose names start
with `_` or `.` at the top of DIR are not table folders and are passed over in silence
(e.g. the generator's `_truth/`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
from isal import isal_zlib

from orchestrate import contract
from orchestrate.contract import TABLES, Table
from orchestrate.errors import UserError, explain
from orchestrate.warehouse import connect

RAW_SCHEMA = "raw"
LEDGER = f"{RAW_SCHEMA}.ingest_ledger"
QUARANTINE = f"{RAW_SCHEMA}.quarantined_lines"
# Ledger columns added after the first release: warehouses created before get them.
LEDGER_ADDED_COLUMNS = {"content_sha256": "varchar"}

LAYOUT = "<extracts>/<table>/<table>__<start>__<end>__<part>.ndjson.gz"
# A writer's file not renamed into place yet (besides dot-files).
WAITING_SUFFIXES = (".tmp", ".partial", ".part")
# DuckDB's read_csv refuses longer lines unless told; a batch with longer ones says so.
DEFAULT_MAX_LINE_SIZE = 2_000_000


def line_reader(files_sql: str, with_filename: bool = False, max_line_size: int | None = None) -> str:
    """DuckDB table function reading every line of the files as one VARCHAR: no quoting,
    no delimiter a JSON line can contain unescaped (control characters must be escaped
    inside JSON strings). The benchmark's floor scans with exactly these options."""
    return (
        f"read_csv({files_sql}, columns={{'line': 'varchar'}}, delim='\\x01', quote='', "
        "escape='', header=false, auto_detect=false, compression='gzip', strict_mode=false"
        + (f", max_line_size={int(max_line_size)}" if max_line_size else "")
        + (", filename=true)" if with_filename else ")")
    )


# Files of one table loaded per transaction, by compressed size: daily files are small,
# and one statement over many of them costs far less than one statement each.
DEFAULT_BATCH_BYTES = 64_000_000

# A batch's lines as judged, before they are loaded: table `checked` of an in-memory
# database attached for the batch under a name of its own (shared by the connection's
# cursors, so the files of a batch are judged on every core), detached after it.
WORK_PREFIX = "ingest_work_"
CHECKED_COLUMNS = (
    "source_file varchar, batch_n bigint, line_no bigint, reason varchar, "
    "bad_line varchar, ts timestamp, extra json, careful boolean, from_text boolean, line varchar"
)


class IngestRefused(UserError):
    """The batch breaks the contract in a way that must not be loaded."""


@dataclass
class FileResult:
    name: str
    table: str
    lines: int
    rows_loaded: int
    lines_quarantined: int
    bytes_uncompressed: int
    lines_checked_carefully: int = 0  # lines not clean, judged one by one (the careful path)
    lines_read_as_text: int = 0  # lines judged from their text, not by the JSON reader


# An ingest's phases, as IngestResult.phase_seconds names them.
PHASES = {
    "examine": "listing and examining the files (checksums, line counts, against the ledger)",
    "judge": "reading and judging their lines",
    "write": "writing raw, quarantine and ledger (one transaction a batch)",
}


@dataclass
class IngestResult:
    loaded: list[FileResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # paths not renamed into place yet
    warnings: list[str] = field(default_factory=list)  # unknown folders, stray files
    seconds: float = 0.0
    # where the seconds went (PHASES): examining the files, reading and judging their
    # lines, writing raw tables, quarantine and ledger
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.loaded)

    @property
    def lines_quarantined(self) -> int:
        return sum(f.lines_quarantined for f in self.loaded)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    for table in TABLES.values():
        cols = ",\n  ".join(f"{name} {typ}" for name, typ in table.raw_columns().items())
        con.execute(
            f"""
            create table if not exists {RAW_SCHEMA}.{table.name} (
              _op varchar,
              _ts timestamp,
              _seq bigint,
              {cols},
              _extra json,
              _source_file varchar,
              _source_line bigint
            )"""
        )
    con.execute(
        f"""
        create table if not exists {LEDGER} (
          file_name varchar primary key,
          table_name varchar not null,
          interval_start timestamp not null,
          interval_end timestamp not null,
          part integer not null,
          sha256 varchar not null,
          size_bytes bigint not null,
          line_count bigint not null,
          rows_loaded bigint not null,
          lines_quarantined bigint not null,
          loaded_at timestamp not null,
          content_sha256 varchar
        )"""
    )
    for column, column_type in LEDGER_ADDED_COLUMNS.items():
        con.execute(f"alter table {LEDGER} add column if not exists {column} {column_type}")
    con.execute(
        f"""
        create table if not exists {QUARANTINE} (
          source_file varchar not null,
          line_number bigint not null,
          table_name varchar not null,
          reason varchar not null,
          line varchar,
          quarantined_at timestamp not null
        )"""
    )


CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Examined:
    """A file read to its end: checksums of its bytes and of its uncompressed lines (None
    when not decompressed: the same bytes as a loaded file), or why it cannot be read."""

    sha256: str
    content_sha256: str | None = None
    longest_line: int = 0  # bytes; exact when longer than CHUNK, which is all that matters
    problem: str | None = None
    lines: int = 0  # as a line reader sees them: a last line without its newline counts
    size: int = 0  # uncompressed bytes


def read_to_end(path: Path) -> Examined:
    """Decompress the file once, streaming: hash its bytes and its uncompressed lines and
    check that its gzip stream (or streams: gzip allows several members) ends cleanly.
    Inflated with ISA-L (python-isal: zlib's API, about twice as fast); a file it cannot
    read is read again with zlib, whose verdict stands: ISA-L misreads a later member's
    header whose optional fields (a comment, a header CRC) fall across two reads."""
    found = _read_to_end(path, isal_zlib)
    return _read_to_end(path, zlib) if found.problem else found


def _read_to_end(path: Path, library) -> Examined:
    raw, content = hashlib.sha256(), hashlib.sha256()
    size, line, longest, newlines, uncompressed = 0, 0, 0, 0, 0
    inflater = library.decompressobj(library.MAX_WBITS | 16)  # gzip format only

    def take(piece: bytes) -> None:
        nonlocal line, longest, newlines, uncompressed
        content.update(piece)
        uncompressed += len(piece)
        newlines += piece.count(b"\n")
        first = piece.find(b"\n")
        if first < 0:
            line += len(piece)
        else:  # lines inside a piece are shorter than CHUNK: only those across pieces count
            longest = max(longest, line + first)
            line = len(piece) - piece.rfind(b"\n") - 1

    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            size += len(chunk)
            raw.update(chunk)
            data = chunk
            while data:
                if inflater.eof:  # another gzip member follows
                    inflater = library.decompressobj(library.MAX_WBITS | 16)
                try:
                    take(inflater.decompress(data, CHUNK))
                except library.error as exc:
                    return Examined(raw.hexdigest(), problem=(
                        f"not a readable gzip stream (damaged near byte {size:,}: {exc})"))
                data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
    if size == 0:
        return Examined(raw.hexdigest(), problem="empty file (0 bytes): not even a gzip header")
    if not inflater.eof:
        return Examined(raw.hexdigest(), problem=(
            f"the file ends before the end of its gzip stream, after {size:,} bytes "
            "(a copy cut short, or still being written under its final name)"))
    return Examined(raw.hexdigest(), content.hexdigest(), max(longest, line),
                    lines=newlines + (1 if line else 0), size=uncompressed)


def examine(path: Path, loaded: tuple[str, str | None] | None) -> Examined:
    """Read a file against its ledger entry (sha256, content_sha256) if its name is known:
    the same bytes as the loaded file need no decompressing (it was whole when loaded)."""
    if loaded is not None:
        checksum = sha256_of(path)
        if checksum == loaded[0] and loaded[1] is not None:
            return Examined(checksum, loaded[1])
    return read_to_end(path)


@dataclass
class Delivery:
    files: list[tuple[contract.ExtractFile, Path]]
    waiting: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _no_table_folders(extracts: Path) -> IngestRefused:
    """Why DIR holds no table folders, and where they might be."""
    hint = ""
    names = sorted(p.name for p in extracts.iterdir())
    if any(contract.FILE_NAME.match(n) for n in names):
        hint = (f"\nIt holds extract files itself: it looks like one table's folder; point "
                f"--extracts at {extracts.parent}.")
    else:
        inner = [p for p in sorted(extracts.iterdir())
                 if p.is_dir() and any((p / t).is_dir() for t in TABLES)]
        if inner:
            hint = f"\nIts folder {inner[0]} holds table folders: point --extracts there."
    return IngestRefused(
        f"{extracts} holds no table folders ({len(names)} entries, none named after a table). "
        f"Extracts are laid out as {LAYOUT}, one folder per table: {', '.join(TABLES)}."
        + hint
        + f"\nNothing was loaded: point --extracts at the folder that holds the table folders "
        f"({LAYOUT})."
    )


def discover(extracts: Path) -> Delivery:
    """Every extract file under DIR/<table>/, in interval order; refuse unknown names in a
    table folder. Files not renamed into place yet wait; other folders and stray files are
    warned about."""
    if not extracts.is_dir():
        what = "not a folder" if extracts.exists() else "no such folder"
        raise IngestRefused(
            f"{extracts}: {what} of extracts. Check the --extracts path: it should be the "
            f"folder holding one folder per table ({LAYOUT})."
        )
    delivery = Delivery([])
    tables = []
    for entry in sorted(extracts.iterdir()):
        if entry.name in TABLES and entry.is_dir():
            tables.append(entry.name)
        elif entry.name.startswith((".", "_")):
            continue  # hidden, or not a table by convention (the generator's _truth/)
        elif entry.is_dir():
            delivery.warnings.append(
                f"{entry}: folder {entry.name!r} is not a table of the contract "
                f"({', '.join(TABLES)}); its files were not loaded")
        else:
            delivery.warnings.append(
                f"{entry}: a file outside the table folders ({LAYOUT}); not loaded")
    if not tables:
        raise _no_table_folders(extracts)
    bad = []
    for table in tables:
        for path in sorted((extracts / table).iterdir()):
            if path.name.startswith(".") or path.name.endswith(WAITING_SUFFIXES):
                delivery.waiting.append(path)  # the writer renames it into place when complete
                continue
            if path.is_dir():
                delivery.warnings.append(f"{path}: a folder inside table folder {table!r}; not loaded")
                continue
            try:
                meta = contract.parse_file_name(path.name)
            except ValueError as exc:
                bad.append(str(exc))
                continue
            if meta.table != table:
                bad.append(f"{path}: file of table {meta.table!r} in folder {table!r}")
                continue
            delivery.files.append((meta, path))
    if bad:
        raise IngestRefused(
            "These files do not follow the extract contract; nothing was loaded:\n  "
            + "\n  ".join(bad)
            + "\nRename or remove them (see docs/contracts/replica-extracts-v1.md), then rerun."
        )
    order = list(TABLES)
    delivery.files.sort(key=lambda f: (f[0].interval_start, order.index(f[0].table), f[0].part))
    return delivery


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def paths_sql(paths) -> str:
    """Paths as a SQL list of string literals, for DuckDB's readers."""
    return "[" + ", ".join(_quote(p) for p in paths) + "]"


def _json_path(column: str) -> str:
    return f"'$.\"{column}\"'"


def _lines_sql(paths: list[Path], longest_line: int = 0, offset: int = 0) -> str:
    """The lines of these files in file order, numbered from offset + 1 (DuckDB keeps the
    files' order and each file's line order: one ordered pass, single-threaded; _judge
    reads runs of files at once). A batch with lines longer than read_csv's default limit
    raises the limit to fit them."""
    files = paths_sql(paths)
    limit = longest_line + 1024 if longest_line + 1024 > DEFAULT_MAX_LINE_SIZE else None
    return (
        f"select filename, ordinality::bigint + {int(offset)} as n, line "
        f"from {line_reader(files, with_filename=True, max_line_size=limit)} with ordinality"
    )


# `_ts` as written by the platform ("2024-09-03T14:22:05.123Z"), parsed without the (slow)
# time-zone machinery; any other ISO 8601 form with an offset or zone falls back to it. A
# date and time without a zone is UTC (the contract's zone), never the machine's local time.
UTC_FORMATS = "['%Y-%m-%dT%H:%M:%S.%gZ', '%Y-%m-%dT%H:%M:%S.%fZ', '%Y-%m-%dT%H:%M:%SZ']"
NO_ZONE = r"'^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d([.,]\d+)?)?)?$'"


def _timestamp_sql(text: str) -> str:
    """`_ts` text as a UTC timestamp, or null when it is not an ISO 8601 timestamp."""
    return f"""coalesce(
          try_strptime({text}, {UTC_FORMATS}),
          case
            when regexp_matches({text}, {NO_ZONE}) then try_cast({text} as timestamp)
            else try_cast({text} as timestamptz) at time zone 'UTC'
          end
        )"""


def _extra_sql(line: str, known_list: str) -> str:
    """The keys of a line that the contract does not list, as a JSON object (`_extra`)."""
    return (f"to_json(map_from_entries(list_filter(map_entries(from_json({line}, "
            f"'\"MAP(VARCHAR, JSON)\"')), e -> not list_contains({known_list}, e.key))))")


def _record_types(table: Table) -> dict[str, str]:
    """The parsed record's fields: every one as text, arrays (options) as JSON. Parsing
    this way cannot fail, so it runs before validation; load_batch casts the validated
    text to the raw column types. Both paths produce this record."""
    types = {k: "VARCHAR" for k in ("_op", "_ts", "_seq", *table.columns)}
    for col, kind in table.columns.items():
        if kind == contract.OPTIONS:
            types[col] = "JSON"
    return types


def _record_struct(table: Table) -> str:
    """The parsed record's SQL type (_record_types), as the work table holds it."""
    return "struct(" + ", ".join(f'"{k}" {t}' for k, t in _record_types(table).items()) + ")"


def _known(table: Table) -> tuple[list[str], str]:
    """The keys the contract lists for the table (envelope first), and as a SQL list."""
    known = ["_op", "_ts", "_seq", *table.columns]
    return known, "[" + ", ".join(f"'{k}'" for k in known) + "]"


def _accepted(kind: str) -> str:
    """The json_type() names a column of this kind accepts, as a SQL list."""
    return "[" + ", ".join(f"'{t}'" for t in contract.ACCEPTED_JSON_TYPES[kind]) + "]"


def _unquoted_sql(fragment: str) -> str:
    """A JSON string as from_json() writes it, as text: escapes decoded only when it has any."""
    return (f"(case when contains({fragment}, '\\') then {fragment} ->> '$' "
            f"else ({fragment}::varchar)[2:-2] end)")


def _fragment_sql(fragment: str, kind: str) -> tuple[str, str]:
    """For a JSON value as from_json() writes it (minified: its first character tells its
    kind; SQL null when absent or null), whether it is a kind `kind` accepts (as
    contract.ACCEPTED_JSON_TYPES, an integer within BIGINT) and, if so, its text as
    from_json() reads it into VARCHAR (OPTIONS: the JSON itself). No value is parsed again."""
    f = fragment
    is_string = f"starts_with({f}, '\"')"
    is_integer = (f"(try_cast({f}::varchar as bigint) is not null "
                  f"and not (contains({f}, '.') or contains({f}, 'e') or contains({f}, 'E')))")
    is_number = f"try_cast({f}::varchar as double) is not null"
    either = f"(case when {is_string} then {_unquoted_sql(f)} else {f}::varchar end)"
    return {
        contract.STRING: (is_string, _unquoted_sql(f)),
        contract.INTEGER: (is_integer, f"{f}::varchar"),
        contract.NUMBER: (is_number, f"{f}::varchar"),
        contract.FLAG: (f"({is_string} or {f}::varchar in ('true', 'false') or {is_integer})", either),
        contract.SCALAR: (f"({is_string} or {is_number})", either),
        contract.OPTIONS: (f"starts_with({f}, '[')", f),
    }[kind]


def _judged_values_sql(table: Table, v, fast_path: bool = True) -> tuple[str, str, str]:
    """For a line's contract keys' JSON values as DuckDB writes them (`v(key)`: SQL null when
    absent or null), the fast path's one condition that the line is clean (a JSON object
    whose contract keys each hold a kind the contract accepts, with a known _op, an integer
    _seq, a readable _ts and every primary key a string: the careful path's checks, stricter
    where that is simpler: kinds are checked on deletes too, an integer beyond BIGINT is
    left to the careful path), the clean line's record (the one the careful path would
    load) and its `_ts` text; the condition and record read column `ts` (_timestamp_sql of
    that text). Both fast readers judge with these."""
    known, _ = _known(table)
    checks = [
        f"{v('_op')} in ('\"c\"', '\"u\"', '\"d\"')",
        f"starts_with({v('_ts')}, '\"')",
        "ts is not null",
        _fragment_sql(v('_seq'), contract.INTEGER)[0],
    ]
    texts = {"_op": _unquoted_sql(v("_op")), "_ts": _unquoted_sql(v("_ts")), "_seq": f"{v('_seq')}::varchar"}
    for col, kind in table.columns.items():
        accepted, texts[col] = _fragment_sql(v(col), kind)
        if col in table.primary_key:
            checks.append(f"starts_with({v(col)}, '\"')")
        else:
            checks.append(f"({v(col)} is null or {accepted})")
    clean = "\n        and ".join(f"coalesce({c}, false)" for c in checks) if fast_path else "false"
    rec = ", ".join(f'"{k}" := {texts[k]}' for k in known)
    return clean, f"struct_pack({rec})::{_record_struct(table)}", texts["_ts"]


def _fast_row_sql(rec: str, has_extra: str, extra: str, line: str, from_text: bool) -> str:
    """A fast reader's row of the work table, from its judged lines (columns source_file,
    batch_n, line_no, clean, ts): a clean line's record, timestamp and unknown keys (`extra`
    where `has_extra`); a line that is not clean goes to the careful path with its text."""
    return f"""
      source_file,
      batch_n,
      line_no,
      null::varchar as reason,
      null::varchar as bad_line,
      case when clean then {rec} end as rec,
      case when clean then ts end as ts,
      case when clean and {has_extra} then {extra} end as extra,
      not clean as careful,
      {str(from_text).lower()} as from_text,
      case when not clean then {line} end as line"""


def _names_sql(names) -> str:
    """File names as a SQL list's items."""
    return ", ".join("'" + name.replace("'", "''") + "'" for name in names)


def _files_sql(first_lines: dict[str, tuple[str, int]]) -> str:
    """`first_lines` (for each file's path as a reader names it, its name and its first batch
    line number minus one) as rows (filename, source_file, first_n)."""
    return ", ".join(f"({_quote(Path(path))}, '{name}', {first})"
                     for path, (name, first) in first_lines.items())


def _mapped_lines_sql(table: Table, items: "Batch", first_lines: dict[str, tuple[str, int]],
                      longest_line: int) -> str:
    """The fast path for clean files: every line of these files (of a run of the batch's
    files, in order, not necessarily next to each other) parsed once by DuckDB's JSON reader
    into a map of its keys to their JSON values, as rows of the work table `checked`
    (_judge), each file numbered from its own first line (`first_lines`, as for
    _fast_lines_sql) as long as the files before it in `items` hold their examined line
    counts (the reader numbers the lines of all the files in one sequence). Each line
    is judged by one condition (_judged_values_sql); keys the contract does not list are the
    map's other keys, so no line is parsed twice and no line's text is kept. The reader
    refuses a file with a line that is not a JSON object and skips empty lines: _judge
    judges such a file, and a file with a line that is not clean, again from its lines'
    text (_fast_lines_sql), which keeps the text of the lines the careful path judges and
    the numbers of the lines after an empty one."""
    known, known_list = _known(table)
    files = paths_sql(path for _, path, _ in items)
    size = max(longest_line + 1024, 16 * 1024 * 1024)
    starts, start = [], 0  # each file's lines in the reader's sequence start after `start`
    for meta, path, examined in items:
        starts.append(f"({_quote(path)}, '{meta.name}', {first_lines[str(path)][1]}, {start})")
        start += examined.lines

    def v(key: str) -> str:
        return f'"{key}"'

    clean, rec, ts_text = _judged_values_sql(table, v)
    values = ", ".join(f"j['{k}'] as \"{k}\"" for k in known)
    known_keys = " + ".join(f"map_contains(j, '{k}')::int" for k in known)
    extra = (f"to_json(map_from_entries(list_filter(map_entries(j), "
             f"e -> not list_contains({known_list}, e.key))))")
    return f"""
    with numbered as (
      select
        f.source_file,
        f.first_n + l.ordinality::bigint - f.start_n as batch_n,
        l.ordinality::bigint - f.start_n as line_no,
        l.j
      from read_json({files}, format='newline_delimited', records=false,
                     columns={{'j': 'MAP(VARCHAR, JSON)'}}, compression='gzip', filename=true,
                     maximum_object_size={int(size)}) with ordinality as l
      inner join (values {", ".join(starts)}) as f (filename, source_file, first_n, start_n)
        on l.filename = f.filename
    ),
    valued as (
      -- entries beyond the contract's keys: an unknown key, or a key named twice
      select *, {values}, cardinality(j) - ({known_keys}) as others
      from numbered
    ),
    timed as (
      select *, {_timestamp_sql(ts_text)} as ts
      from valued
    ),
    judged as (
      select
        *,
        j is not null and {clean}
          and case when others > 0 then len(list_distinct(map_keys(j))) = cardinality(j) else true end
          as clean
      from timed
    )
    select {_fast_row_sql(rec, "others > 0", extra, "null::varchar", False)}
    from judged
    """


def _fast_lines_sql(table: Table, lines_sql: str, first_lines: dict[str, tuple[str, int]],
                    fast_path: bool = True) -> str:
    """Every line of `lines_sql` (a run of the batch's files), read once and parsed once, as
    rows of the work table `checked` (_judge): the fast path for the files the JSON reader
    (_mapped_lines_sql) refuses, reads short or finds a line that is not clean in, and for
    every run without `fast_path`.

    Each line is parsed by one from_json() into its contract keys' JSON values and judged
    by one condition (_judged_values_sql). Whether a clean line has keys the contract does
    not list is known without a second parse when the line is exactly its contract keys,
    minified, in contract order (as the platform writes them); any other line's keys are
    listed. Lines that are not clean (all lines without `fast_path`) keep their text for
    the careful path. `first_lines`: for each file's path as the line reader names it, its
    name and its first batch line number minus one (from the examined line counts): line
    numbers need no second pass."""
    known, known_list = _known(table)
    record = "{" + ", ".join(f'"{k}": "JSON"' for k in known) + "}"

    def v(key: str) -> str:
        return f"j.\"{key}\""

    clean, rec, ts_text = _judged_values_sql(table, v, fast_path)
    minified = "'{' || concat_ws(',', " + ", ".join(
        f"""'"{k}":' || coalesce({v(k)}::varchar, 'null')""" for k in known) + ") || '}'"
    return f"""
    with numbered as (
      select
        f.source_file,
        l.n as batch_n,
        l.n - f.first_n as line_no,
        l.line
      from ({lines_sql}) as l
      inner join (values {_files_sql(first_lines)}) as f (filename, source_file, first_n)
        on l.filename = f.filename
    ),
    parsed as (
      select *, try(from_json(line, '{record}')) as j
      from numbered
    ),
    timed as (
      select *, {_timestamp_sql(ts_text)} as ts
      from parsed
    ),
    judged as (
      select *, j is not null and {clean} as clean
      from timed
    ),
    listed as (
      select *, case when clean and line <> {minified} then json_keys(line) end as keys
      from judged
    ),
    keyed as (
      select
        * replace (clean and (keys is null or len(keys) = len(list_distinct(keys))) as clean),
        keys is not null and not list_has_all({known_list}, keys) as has_extra
      from listed
    )
    select {_fast_row_sql(rec, "has_extra", _extra_sql("line", known_list), "line", True)}
    from keyed
    """


def _checked_lines_sql(table: Table) -> str:
    """The careful path: each line of temp table _suspect (source_file, batch_n, line_no,
    line) judged on its own, with a reason if it is malformed, and its parsed record
    (_record_types) and keys the contract does not list (`_extra`) if it is not."""
    columns = list(table.columns)
    known, known_list = _known(table)
    paths = "[" + ", ".join(_json_path(k) for k in known) + "]"
    idx = {k: i + 1 for i, k in enumerate(known)}  # list positions are 1-based

    problems = [
        "case when len(keys) > len(list_distinct(keys)) "
        "then 'repeated key ' || list_filter(keys, (k, i) -> list_position(keys, k) < i)[1] end",
        f"case when types[{idx['_op']}] is distinct from 'VARCHAR' "
        "or rec._op not in ('c', 'u', 'd') "
        "then '_op must be \"c\", \"u\" or \"d\"' end",
        f"case when types[{idx['_seq']}] is null or types[{idx['_seq']}] = 'NULL' "
        "then 'missing _seq' "
        f"when types[{idx['_seq']}] not in ('BIGINT', 'UBIGINT') "
        f"then 'wrong type for _seq: expected integer, got ' || lower(types[{idx['_seq']}]) "
        "when try_cast(rec._seq as bigint) is null then '_seq out of range: ' || rec._seq end",
        f"case when types[{idx['_ts']}] is distinct from 'VARCHAR' or ts is null "
        "then '_ts must be an ISO 8601 UTC timestamp string' end",
    ]
    for col in columns:
        kind, i = table.columns[col], idx[col]
        if col in table.primary_key:
            problems.append(
                f"case when types[{i}] is null or types[{i}] = 'NULL' "
                f"then 'missing primary key {col}' "
                f"when types[{i}] <> 'VARCHAR' "
                f"then 'wrong type for {col}: expected string, got ' || lower(types[{i}]) end"
            )
        else:
            problems.append(
                f"case when rec._op <> 'd' and types[{i}] <> 'NULL' "
                f"and not list_contains({_accepted(kind)}, types[{i}]) "
                f"then 'wrong type for {col}: expected {kind}, got ' || lower(types[{i}]) "
                + (f"when types[{i}] = 'UBIGINT' and try_cast(rec.{col} as bigint) is null "
                   f"then '{col} out of range: ' || rec.{col} " if kind == contract.INTEGER else "")
                + "end"
            )
    problem_list = ",\n          ".join(problems)

    record_struct = "{" + ", ".join(f'"{k}": "{t}"' for k, t in _record_types(table).items()) + "}"

    return f"""
    with shaped as (
      select
        source_file,
        batch_n,
        line_no,
        line,
        coalesce(json_valid(line), false) as is_json,
        coalesce(starts_with(ltrim(line), '{{'), false) as is_object
      from _suspect
    ),
    parsed as (
      select
        source_file,
        batch_n,
        line_no,
        line,
        is_json,
        is_object,
        case when is_json and is_object then json_type(line, {paths}) end as types,
        case when is_json and is_object then json_keys(line) end as keys,
        case when is_json and is_object then from_json(line, '{record_struct}') end as rec
      from shaped
    ),
    timed as (
      select *, {_timestamp_sql("rec._ts")} as ts
      from parsed
    ),
    judged as (
      select
        source_file,
        batch_n,
        line_no,
        line,
        rec,
        ts,
        not list_has_all({known_list}, keys) as has_extra,
        case
          when line is null or trim(line) = '' then 'empty line'
          when not is_json then 'invalid JSON'
          when not is_object then 'not a JSON object'
          else nullif(array_to_string(list_filter([
          {problem_list}
          ], p -> p is not null), '; '), '')
        end as reason
      from timed
    )
    select
      source_file,
      batch_n,
      line_no,
      reason,
      case when reason is not null then line end as bad_line,
      case when reason is null then rec end as rec,
      ts,
      case when reason is null and has_extra then {_extra_sql("line", known_list)} end as extra
    from judged
    """


Batch = list[tuple[contract.ExtractFile, Path, Examined]]


def _quarantine_repeated_seqs(con: duckdb.DuckDBPyConnection, table: Table, lines_sql: str,
                              checked: str) -> None:
    """Quarantine, in the work table `checked`, every valid line whose _seq is already in
    raw.<table> or on an earlier line of this batch: `_seq` is strictly increasing per
    table, so a second line with one is a repeat (or a conflicting change); the change
    loaded first stays, and the reason names where it came from. The repeated lines' text
    is read again from the files (`lines_sql`): repeats are rare, and clean lines' text is
    not kept."""
    seqs = f"(select cast(rec._seq as bigint) as seq from {checked} where reason is null)"
    lines, low, high = con.execute(f"select count(*), min(seq), max(seq) from {seqs}").fetchone()
    if not lines:
        return
    (loaded_high,) = con.execute(f"select max(_seq) from {RAW_SCHEMA}.{table.name}").fetchone()
    reaches_back = loaded_high is not None and low <= loaded_high
    if not reaches_back:  # the usual delivery: is each new _seq there once?
        # one bit per value in [low, high] (32 MB at most) is ~5x faster than count(distinct)
        distinct = (f"bit_count(bitstring_agg(seq, {int(low)}, {int(high)}))"
                    if high - low < 1 << 28 else "count(distinct seq)")
        if con.execute(f"select {distinct} from {seqs}").fetchone()[0] == lines:
            return
    con.execute(
        f"""
        create or replace temp table _repeats as
        with batch as (
          select batch_n, source_file, line_no, cast(rec._seq as bigint) as seq
          from {checked}
          where reason is null
        ),
        loaded as (
          select _seq as seq, min({{'file': _source_file, 'line': _source_line}}) as origin
          from {RAW_SCHEMA}.{table.name}
          where {"true" if reaches_back else "false"}
            and _seq between {int(low)} and {int(high)}
            and _seq in (select seq from batch)
          group by _seq
        ),
        in_batch as (
          select
            batch_n,
            seq,
            first_value({{'file': source_file, 'line': line_no}}) over (
              partition by seq order by batch_n
            ) as origin,
            row_number() over (partition by seq order by batch_n) as k
          from batch
          where seq in (select seq from batch group by seq having count(*) > 1)
        ),
        repeats as (
          select batch.batch_n, batch.seq, loaded.origin
          from batch
          inner join loaded on batch.seq = loaded.seq
          union all
          select batch_n, seq, origin
          from in_batch
          where k > 1 and seq not in (select seq from loaded)
        )
        select
          repeats.batch_n,
          'duplicate _seq ' || repeats.seq || ': already loaded from ' || repeats.origin.file
            || ' line ' || repeats.origin.line as reason,
          lines.line
        from repeats
        inner join ({lines_sql}) as lines on repeats.batch_n = lines.n
        """
    )
    con.execute(
        f"update {checked} set reason = _repeats.reason, bad_line = _repeats.line, rec = null "
        f"from _repeats where {checked}.batch_n = _repeats.batch_n"
    )
    con.execute("drop table _repeats")


def _groups(batch: Batch, parts: int) -> list[Batch]:
    """The batch's files in order, cut into at most `parts` runs of about equal lines."""
    total = sum(examined.lines for _, _, examined in batch) or 1
    groups: list[Batch] = [[]]
    done = 0
    for item in batch:
        if groups[-1] and done >= total * len(groups) / parts and len(groups) < parts:
            groups.append([])
        groups[-1].append(item)
        done += item[2].lines
    return groups


# The file a JSON reader's error names ('Malformed JSON in file "…", at byte 8 in line 3: …',
# 'JSON transform error in file "…", in line 1: …').
READER_ERROR_FILE = re.compile(r'in file "(.*)", (?:at byte \d+ )?in line \d+')
# Files of a run the JSON reader may refuse one by one before the rest of the run is judged
# from its text (each refusal reads the run's other files again).
MAX_REFUSALS = 4


def _judge(con: duckdb.DuckDBPyConnection, table: Table, batch: Batch, longest: int,
           fast_path: bool, checked: str) -> None:
    """Fill the work table `checked` from the batch's files. Line numbers need one ordered
    pass over each file (a single-threaded scan), so the files are cut into runs, one per
    core, each read, numbered and judged on a cursor of its own at the same time; each
    run's numbers start after the lines of the runs before it (the examined counts), so
    batch line numbers are those of one pass over the whole batch once _check_lines has
    verified the counts. An error or an interrupt in one run stops the others.

    A run is judged by the JSON reader (_mapped_lines_sql) in one statement. A file it
    refuses (a line that is not JSON or not an object: its error names the file) is left
    out and the others are read again; after MAX_REFUSALS refusals, or one that names no
    file, the whole run goes to the text. A file the reader reads short (it skips empty
    and blank lines: the count falls short of the examined one) or that holds a line that
    is not clean has its rows deleted, and the files after a short one are renumbered.
    Those files are judged from their lines' text (_fast_lines_sql), each run of
    neighbours in one statement: a run's files are read at most 1 + MAX_REFUSALS times."""
    con.execute(f"create or replace table {checked} ({CHECKED_COLUMNS}, rec {_record_struct(table)})")
    threads = int(con.execute("select current_setting('threads')").fetchone()[0])
    runs, offset = [], 0
    for group in _groups(batch, max(1, threads)):
        runs.append((group, offset))
        offset += sum(examined.lines for _, _, examined in group)

    def firsts(items: Batch, offset: int) -> dict[str, tuple[str, int]]:
        """Each file's path: its name and its first batch line number minus one."""
        first_lines = {}
        for meta, path, examined in items:
            first_lines[str(path)] = (meta.name, offset)
            offset += examined.lines
        return first_lines

    def by_text(cursor: duckdb.DuckDBPyConnection, items: Batch, offset: int) -> None:
        paths = [p for _, p, _ in items]
        cursor.execute(f"insert into {checked} by name " + _fast_lines_sql(
            table, _lines_sql(paths, longest, offset), firsts(items, offset), fast_path))

    def by_reader(cursor: duckdb.DuckDBPyConnection, items: Batch, offset: int) -> None:
        if not fast_path:
            by_text(cursor, items, offset)
            return
        first_lines = firsts(items, offset)
        as_text: set[str] = set()  # names of the files judged from their text
        read, refusals = list(items), 0
        while read:
            try:
                cursor.execute(f"insert into {checked} by name "
                               + _mapped_lines_sql(table, read, first_lines, longest))
                break
            except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
                # nothing of the statement was inserted: the refused file goes to the text,
                # the reader reads the others again (after a few refusals, all to the text)
                named = READER_ERROR_FILE.search(str(exc))
                at = next((i for i, (_, path, _) in enumerate(read)
                           if named and str(path) == named.group(1)), None)
                refusals += 1
                refused = read if at is None or refusals > MAX_REFUSALS else [read[at]]
                as_text.update(meta.name for meta, _, _ in refused)
                read = [item for item in read if item[0].name not in as_text]
        expected = sum(examined.lines for _, _, examined in read)
        lines, careful = cursor.execute(
            f"select count(*), count(*) filter (where careful) from {checked} "
            f"where not from_text and batch_n > {int(offset)} and batch_n <= "
            f"{int(offset + sum(e.lines for _, _, e in items))}").fetchone()
        if read and (lines != expected or careful):
            # the reader reads no more lines than a file has: a file that falls short has
            # lines it skipped, and numbers every file after it too low by as many
            judged = {name: (count, low, high, bad) for name, count, low, high, bad in cursor.execute(
                f"select source_file, count(*), min(line_no), max(line_no), "
                f"count(*) filter (where careful) from {checked} where not from_text and "
                f"source_file in ({_names_sql(m.name for m, _, _ in read)}) group by all").fetchall()}
            short, shifts = 0, {}
            for meta, _, examined in read:
                count, low, high, bad = judged.get(meta.name, (0, None, None, 0))
                whole = (count == examined.lines and (not count or (low, high) == (
                    1 - short, examined.lines - short)))
                if not whole:
                    short += examined.lines - count
                if not whole or bad:
                    as_text.add(meta.name)
                elif short:
                    shifts.setdefault(short, []).append(meta.name)
            if as_text:
                cursor.execute(f"delete from {checked} where not from_text and source_file in "
                               f"({_names_sql(as_text)})")
            for shift, names in shifts.items():
                cursor.execute(
                    f"update {checked} set batch_n = batch_n + {int(shift)}, line_no = line_no + "
                    f"{int(shift)} where not from_text and source_file in "
                    f"({_names_sql(names)})")
        # the files judged from their text, each run of neighbours in one statement
        texts: Batch = []
        for item in [*items, None]:
            if item is not None and item[0].name in as_text:
                texts.append(item)
            elif texts:
                by_text(cursor, texts, first_lines[str(texts[0][1])][1])
                texts = []

    if len(runs) == 1:
        by_reader(con, *runs[0])
        return
    cursors = [con.cursor() for _ in runs]
    try:
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            futures = [pool.submit(by_reader, cursor, *run) for cursor, run in zip(cursors, runs)]
            try:
                for future in futures:
                    future.result()
            except BaseException:  # a run failed, or Ctrl-C: the other runs stop too
                for cursor in cursors:
                    cursor.interrupt()
                raise
    finally:
        for cursor in cursors:
            cursor.close()


def _check_lines(con: duckdb.DuckDBPyConnection, table: Table, batch: Batch, longest: int,
                 batch_lines: str, checked: str, fast_path: bool = True) -> None:
    """The work table `checked` from the batch's lines: every line with its file, line
    number, and either its record, timestamp and unknown keys or the reason it is
    quarantined. Clean lines take the fast path (_judge: read and parsed once, judged by
    one condition); the others, all of them without `fast_path`, are judged one
    by one by the careful path, which names what is wrong. Column `careful` says which path
    a line took. `batch_lines`: _lines_sql of the whole batch, for the numbering pass when
    the examined line counts do not hold."""
    _judge(con, table, batch, longest, fast_path, checked)
    numbered = {name: (lines, low, high) for name, lines, low, high in con.execute(
        f"select source_file, count(*), min(line_no), max(line_no) from {checked} group by all"
    ).fetchall()}
    if numbered != {meta.name: (examined.lines, 1, examined.lines)
                    for meta, _, examined in batch if examined.lines}:
        # the line reader ends lines where the examining pass did not (a lone carriage
        # return, say): number them as the reader reads them, in one pass over the batch
        con.execute(f"create or replace temp table _lines as {batch_lines}")
        first_lines = {filename: (Path(filename).name, first) for filename, first in con.execute(
            "select filename, min(n) - 1 from _lines group by filename").fetchall()}
        con.execute(f"delete from {checked}")
        con.execute(f"insert into {checked} by name "
                    + _fast_lines_sql(table, "select * from _lines", first_lines, fast_path))
        con.execute("drop table _lines")
    suspects = con.execute(f"select count(*) from {checked} where careful").fetchone()[0]
    if suspects:
        con.execute(
            f"""
            create or replace temp table _suspect as
            select source_file, batch_n, line_no, line
            from {checked}
            where careful
            """
        )
        # judged again in place: the fast path's record of a line that is not clean must
        # not stay behind, not even in a deleted row (DuckDB may cast the values of rows
        # that a filter or a delete leaves out)
        con.execute(f"create or replace temp table _careful as {_checked_lines_sql(table)}")
        con.execute(
            f"""
            update {checked}
            set reason = c.reason, bad_line = c.bad_line, rec = c.rec, ts = c.ts, extra = c.extra
            from _careful as c
            where {checked}.batch_n = c.batch_n
            """
        )
        con.execute("drop table _suspect")
        con.execute("drop table _careful")


def load_batch(con: duckdb.DuckDBPyConnection, table: Table, batch: Batch,
               fast_path: bool = True, phase_seconds: dict[str, float] | None = None) -> list[FileResult]:
    """Load files of one table, with their ledger entries, in a single transaction. The
    lines are read and judged before it, into an in-memory database attached for this
    batch alone and detached after it, loaded or not (DuckDB scans tables written in the
    open transaction on one core only). `phase_seconds` (PHASES) gets the seconds of
    judging and of writing added."""
    work = f"{WORK_PREFIX}{uuid.uuid4().hex[:12]}"
    con.execute(f"attach ':memory:' as {work}")
    try:
        return _load_batch(con, table, batch, fast_path, f"{work}.checked",
                           {} if phase_seconds is None else phase_seconds)
    finally:
        try:
            con.execute(f"detach {work}")
        except duckdb.Error:
            pass  # the connection is gone (the error being raised says why): so is the database


def _load_batch(con: duckdb.DuckDBPyConnection, table: Table, batch: Batch, fast_path: bool,
                checked: str, phase_seconds: dict[str, float]) -> list[FileResult]:
    started = time.perf_counter()
    cols = list(table.columns)
    select_cols = ", ".join(
        f"cast(rec.{c} as {t})" if t in ("bigint", "double") else f"rec.{c}"
        for c, t in table.raw_columns().items()
    )
    longest = max(examined.longest_line for _, _, examined in batch)
    batch_lines = _lines_sql([p for _, p, _ in batch], longest)
    _check_lines(con, table, batch, longest, batch_lines, checked, fast_path)
    _quarantine_repeated_seqs(con, table, batch_lines, checked)
    judged = time.perf_counter()
    phase_seconds["judge"] = phase_seconds.get("judge", 0.0) + judged - started
    con.execute("begin transaction")
    try:
        loaded_at = load_time(con)
        con.execute(
            f"""
            insert into {RAW_SCHEMA}.{table.name}
              (_op, _ts, _seq, {", ".join(cols)}, _extra, _source_file, _source_line)
            select
              rec._op,
              cast(ts as timestamp),
              cast(rec._seq as bigint),
              {select_cols},
              extra,
              source_file,
              line_no
            from {checked}
            where reason is null
            """
        )
        con.execute(
            f"""
            insert into {QUARANTINE}
            select source_file, line_no, $1, reason, bad_line, $2
            from {checked} where reason is not null
            """,
            [table.name, loaded_at],
        )
        counts = {
            name: (lines, loaded, quarantined, careful, from_text)
            for name, lines, loaded, quarantined, careful, from_text in con.execute(
                f"""
                select source_file, count(*), count(*) filter (where reason is null),
                       count(*) filter (where reason is not null),
                       count(*) filter (where careful), count(*) filter (where from_text)
                from {checked} group by source_file
                """
            ).fetchall()
        }
        results, ledger_rows = [], []
        for meta, path, examined in batch:
            lines, loaded, quarantined, careful, from_text = counts.get(meta.name, (0, 0, 0, 0, 0))
            # names match contract.FILE_NAME and checksums are hex: safe to inline
            ledger_rows.append(
                f"('{meta.name}', '{meta.table}', '{meta.interval_start:%Y-%m-%d %H:%M:%S}', "
                f"'{meta.interval_end:%Y-%m-%d %H:%M:%S}', {meta.part}, '{examined.sha256}', "
                f"{path.stat().st_size}, {lines}, {loaded}, {quarantined}, '{loaded_at.isoformat(sep=' ')}', "
                f"'{examined.content_sha256}')"
            )
            results.append(FileResult(meta.name, meta.table, lines, loaded, quarantined, examined.size,
                                      careful, from_text))
        con.execute(
            f"insert into {LEDGER} (file_name, table_name, interval_start, interval_end, part, "
            "sha256, size_bytes, line_count, rows_loaded, lines_quarantined, loaded_at, "
            "content_sha256) values " + ", ".join(ledger_rows)
        )
        con.execute("commit")
        phase_seconds["write"] = phase_seconds.get("write", 0.0) + time.perf_counter() - judged
    except BaseException:
        try:
            con.execute("rollback")
        except duckdb.Error:
            pass  # the transaction already ended with the error (a failed commit): nothing kept
        raise
    return results


def load_time(con: duckdb.DuckDBPyConnection) -> datetime:
    """The ledger time of a load in the open transaction: now in UTC (as on Snowflake, and
    as source freshness compares it; never the machine's local time), and always after
    every earlier load's, since incremental builds take the files loaded after the
    ledger's high-water: a clock set back, the autumn's repeated hour or a ledger written
    in local time east of UTC (before loads were UTC) cannot put a new file below it."""
    (loaded_at,) = con.execute(
        f"""
        select greatest(
          now() at time zone 'UTC',
          max(loaded_at) + interval 1 microsecond
        )
        from {LEDGER}
        """
    ).fetchone()
    return loaded_at


def batches(new: Batch, batch_bytes: int) -> list[Batch]:
    """Group files of one table, in order, up to batch_bytes of compressed input each
    (many small daily files load in one statement; a big file loads alone)."""
    out: list[Batch] = []
    by_table: dict[str, Batch] = {}
    for item in new:
        by_table.setdefault(item[0].table, []).append(item)
    for items in by_table.values():
        current, size = [], 0
        for item in items:
            item_size = item[1].stat().st_size
            if current and size + item_size > batch_bytes:
                out.append(current)
                current, size = [], 0
            current.append(item)
            size += item_size
        if current:
            out.append(current)
    return out


def plan(
    con: duckdb.DuckDBPyConnection, files: list[tuple[contract.ExtractFile, Path]]
) -> tuple[Batch, list[str]]:
    """Split files into new ones and already-loaded ones (same name or same content);
    refuse files that cannot be read to their end and known names with other content."""
    ledger = {
        name: (checksum, content)
        for name, checksum, content in con.execute(
            f"select file_name, sha256, content_sha256 from {LEDGER}"
        ).fetchall()
    }
    by_checksum = {checksum: name for name, (checksum, _) in ledger.items()}
    by_content = {content: name for name, (_, content) in ledger.items() if content}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        examined = list(pool.map(lambda f: examine(f[1], ledger.get(f[0].name)), files))

    new: Batch = []
    skipped, unreadable, conflicts, backfill = [], [], [], []
    seen: dict[str, str] = {}  # content -> name, new in this delivery
    for (meta, path), found in zip(files, examined):
        if meta.name in ledger:
            checksum, content = ledger[meta.name]
            if found.sha256 == checksum or (
                content and not found.problem and found.content_sha256 == content
            ):
                skipped.append(meta.name)
                if content is None and not found.problem:  # loaded before content hashes
                    backfill.append((found.content_sha256, meta.name))
            elif found.problem:
                conflicts.append(f"{path}: already loaded; this copy has other bytes and cannot "
                                 f"be read to its end: {found.problem}")
            else:
                conflicts.append(
                    f"{path}: already loaded with sha256 {checksum[:12]}… and "
                    + (f"content {content[:12]}…" if content else "content not recorded")
                    + f", this delivery has {found.sha256[:12]}… and content "
                    f"{found.content_sha256[:12]}…"
                )
            continue
        if found.problem:
            unreadable.append(f"{path}: {found.problem}")
            continue
        original = (by_content.get(found.content_sha256) or seen.get(found.content_sha256)
                    or by_checksum.get(found.sha256))
        if original:
            skipped.append(meta.name)
            print(f"warning: {path} has the same content as {original}; skipped", file=sys.stderr)
        else:
            seen[found.content_sha256] = meta.name
            new.append((meta, path, found))
    if unreadable or conflicts:
        parts = ["Refused: nothing was loaded and nothing already loaded changed."]
        todo = []
        if unreadable:
            parts.append("These files cannot be read to their end; a file is loaded whole or not "
                         "at all:\n  " + "\n  ".join(unreadable))
            todo.append("ask for a complete copy of each file that cannot be read (the same name "
                        "is fine: it was not recorded as loaded)")
        if conflicts:
            parts.append("These files were loaded before with different content; the contract "
                         "forbids changing a delivered file:\n  " + "\n  ".join(conflicts))
            todo.append("ask the platform team why each changed file changed")
        raise IngestRefused(
            "\n".join(parts) + "\n" + "; ".join(todo).capitalize()
            + ", or move those files out of the extracts folder to load the rest; then run again."
        )
    if backfill:
        con.executemany(f"update {LEDGER} set content_sha256 = ? where file_name = ?", backfill)
    return new, skipped


def ingest(
    extracts: Path,
    con: duckdb.DuckDBPyConnection,
    progress: bool = True,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    fast_path: bool = True,
) -> IngestResult:
    """Load the new files under `extracts`. Without `fast_path` every line takes the
    careful path (the same result, slower: for comparison)."""
    started = time.perf_counter()
    ensure_raw_schema(con)
    delivery = discover(extracts)
    for line in delivery.warnings:
        print(f"warning: {line}", file=sys.stderr, flush=True)
    if delivery.waiting:
        print(f"{len(delivery.waiting)} files waiting to be renamed into place by their writer "
              "(left for a later run):\n  " + "\n  ".join(str(p) for p in delivery.waiting),
              file=sys.stderr, flush=True)
    new, skipped = plan(con, delivery.files)
    result = IngestResult(skipped=skipped, waiting=[str(p) for p in delivery.waiting],
                          warnings=delivery.warnings,
                          phase_seconds={"examine": time.perf_counter() - started})
    total, done = len(new), 0
    for batch in batches(new, batch_bytes):
        table = TABLES[batch[0][0].table]
        try:
            loaded = load_batch(con, table, batch, fast_path, result.phase_seconds)
        except duckdb.Error as exc:
            raise batch_failed(exc, batch, done) from exc
        result.loaded.extend(loaded)
        done += len(batch)
        if progress:
            rows = sum(f.rows_loaded for f in loaded)
            quarantined = sum(f.lines_quarantined for f in loaded)
            careful = sum(f.lines_checked_carefully for f in loaded)
            as_text = sum(f.lines_read_as_text for f in loaded)
            note = (f", {quarantined} quarantined" if quarantined else "") + (
                f", {as_text} lines read as text" if as_text else "") + (
                f", {careful} lines checked one by one" if careful else "")
            print(
                f"[ingest {done}/{total} files] {table.name}: {len(batch)} files, {rows} rows{note}",
                file=sys.stderr,
                flush=True,
            )
    result.seconds = time.perf_counter() - started
    return result


def batch_failed(exc: duckdb.Error, batch: Batch, done: int) -> UserError:
    """A batch DuckDB could not load, in words: which files, what was kept, what to do."""
    names = "\n  ".join(str(path) for _, path, _ in batch)
    explained = explain(exc)
    last = str(explained) if explained else (
        f"DuckDB could not load them ({str(exc).strip().splitlines()[0]}): if the message names a "
        "file and line, ask the platform team for a corrected copy under a new name; then run again")
    return UserError(
        f"Loading these {len(batch)} files stopped; nothing of them was loaded, and the "
        f"{done} files loaded before them in this run are kept:\n  {names}\n{last}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--extracts", type=Path, required=True, help="folder of extracts")
    parser.add_argument("--quiet", action="store_true", help="no per-batch progress")
    parser.add_argument(
        "--batch-mb",
        type=float,
        default=DEFAULT_BATCH_BYTES / 1e6,
        help="compressed megabytes of one table's files loaded per transaction (default %(default)g)",
    )


def main(args: argparse.Namespace) -> int:
    con = connect()
    try:
        result = ingest(
            args.extracts, con, progress=not args.quiet, batch_bytes=int(args.batch_mb * 1e6)
        )
    finally:
        con.close()
    print(
        f"ingested {len(result.loaded)} new files ({result.rows_loaded} rows, "
        f"{result.lines_quarantined} lines quarantined), skipped {len(result.skipped)} "
        f"already loaded, in {result.seconds:.1f}s"
        + (f"; {len(result.waiting)} files waiting" if result.waiting else "")
        + (f"; {len(result.warnings)} warnings" if result.warnings else "")
    )
    if result.lines_quarantined:
        print(
            f"Quarantined lines are in {QUARANTINE} with file, line and reason: "
            "ask the platform team to correct and redeliver them in a new file."
        )
    return 0
