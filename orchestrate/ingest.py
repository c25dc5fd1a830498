"""Load replica extracts into the raw schema, exactly once.

`python -m orchestrate ingest --extracts DIR`

New files under DIR/<table>/ (see contract.py for names) load in batches of one table's
files, each batch in one transaction: each file's valid lines go to raw.<table> (envelope + contract columns + `_extra` for keys
the contract does not list + `_source_file` and `_source_line`), its malformed lines go to
raw.quarantined_lines with their line number and reason, and a row goes to
raw.ingest_ledger with the file's checksum and counts. A killed process therefore leaves
either all of a file or none of it, and a rerun loads what is missing.

Before anything is loaded, every file is checked against the ledger: a file already loaded
with the same checksum is skipped; a known name with different content refuses the whole
batch (nothing is loaded, nothing already loaded changes) and names the file.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestrate import contract
from orchestrate.contract import TABLES, Table
from orchestrate.errors import UserError
from orchestrate.warehouse import connect

RAW_SCHEMA = "raw"
LEDGER = f"{RAW_SCHEMA}.ingest_ledger"
QUARANTINE = f"{RAW_SCHEMA}.quarantined_lines"



def line_reader(files_sql: str, with_filename: bool = False) -> str:
    """DuckDB table function reading every line of the files as one VARCHAR: no quoting,
    no delimiter a JSON line can contain unescaped (control characters must be escaped
    inside JSON strings). The benchmark's floor scans with exactly these options."""
    return (
        f"read_csv({files_sql}, columns={{'line': 'varchar'}}, delim='\\x01', quote='', "
        "escape='', header=false, auto_detect=false, compression='gzip', strict_mode=false"
        + (", filename=true)" if with_filename else ")")
    )


# Files of one table loaded per transaction, by compressed size: daily files are small,
# and one statement over many of them costs far less than one statement each.
DEFAULT_BATCH_BYTES = 64_000_000


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


@dataclass
class IngestResult:
    loaded: list[FileResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

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
          loaded_at timestamp not null
        )"""
    )
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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def discover(extracts: Path) -> list[tuple[contract.ExtractFile, Path]]:
    """Every extract file under DIR/<table>/, in interval order; refuse unknown names."""
    if not extracts.is_dir():
        raise IngestRefused(f"{extracts}: no such directory of extracts")
    found, bad = [], []
    for table in TABLES:
        folder = extracts / table
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue  # writers' temporary files, renamed into place when complete
            try:
                meta = contract.parse_file_name(path.name)
            except ValueError as exc:
                bad.append(str(exc))
                continue
            if meta.table != table:
                bad.append(f"{path}: file of table {meta.table!r} in folder {table!r}")
                continue
            found.append((meta, path))
    if bad:
        raise IngestRefused(
            "These files do not follow the extract contract; nothing was loaded:\n  "
            + "\n  ".join(bad)
            + "\nRename or remove them (see docs/contracts/replica-extracts-v1.md), then rerun."
        )
    order = list(TABLES)
    found.sort(key=lambda f: (f[0].interval_start, order.index(f[0].table), f[0].part))
    return found


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _json_path(column: str) -> str:
    return f"'$.\"{column}\"'"


def _lines_sql(paths: list[Path]) -> str:
    """The batch's lines in file order, numbered across the batch. Numbering needs one
    ordered pass (DuckDB keeps the files' order and each file's line order); everything
    after it runs on every core."""
    files = "[" + ", ".join(_quote(p) for p in paths) + "]"
    return (
        "select filename, ordinality::bigint as n, line "
        f"from {line_reader(files, with_filename=True)} with ordinality"
    )


# `_ts` as written by the platform ("2024-09-03T14:22:05.123Z"), parsed without the (slow)
# time-zone machinery; any other ISO 8601 form with an offset falls back to it.
UTC_FORMATS = "['%Y-%m-%dT%H:%M:%S.%gZ', '%Y-%m-%dT%H:%M:%S.%fZ', '%Y-%m-%dT%H:%M:%SZ']"


def _checked_lines_sql(table: Table) -> str:
    """Each line of temp table _lines with its file and line number, a reason if it is
    malformed, and its parsed record (every field as text) if it is not."""
    columns = list(table.columns)
    known = ["_op", "_ts", "_seq", *columns]
    known_list = "[" + ", ".join(f"'{k}'" for k in known) + "]"
    paths = "[" + ", ".join(_json_path(k) for k in known) + "]"
    idx = {k: i + 1 for i, k in enumerate(known)}  # list positions are 1-based

    def accepted(kind: str) -> str:
        return "[" + ", ".join(f"'{t}'" for t in contract.ACCEPTED_JSON_TYPES[kind]) + "]"

    problems = [
        f"case when types[{idx['_op']}] is distinct from 'VARCHAR' "
        "or rec._op not in ('c', 'u', 'd') "
        "then '_op must be \"c\", \"u\" or \"d\"' end",
        f"case when types[{idx['_seq']}] is null or types[{idx['_seq']}] = 'NULL' "
        "then 'missing _seq' "
        f"when types[{idx['_seq']}] not in ('BIGINT', 'UBIGINT') "
        f"then 'wrong type for _seq: expected integer, got ' || lower(types[{idx['_seq']}]) end",
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
                f"and not list_contains({accepted(kind)}, types[{i}]) "
                f"then 'wrong type for {col}: expected {kind}, got ' || lower(types[{i}]) end"
            )
    problem_list = ",\n          ".join(problems)

    # Every field as text (JSON for arrays): parsing this way cannot fail, so it runs
    # before validation; load_batch casts the validated text to the raw column types.
    record_type = {k: "VARCHAR" for k in known}
    for col, kind in table.columns.items():
        if kind == contract.OPTIONS:
            record_type[col] = "JSON"
    record_struct = "{" + ", ".join(f'"{k}": "{v}"' for k, v in record_type.items()) + "}"

    return f"""
    with offsets as (
      select filename, min(n) - 1 as first_n
      from _lines
      group by filename
    ),
    shaped as (
      select
        regexp_extract(l.filename, '[^/]+$') as source_file,
        l.n - o.first_n as line_no,
        l.line,
        coalesce(json_valid(l.line), false) as is_json,
        coalesce(starts_with(ltrim(l.line), '{{'), false) as is_object
      from _lines as l
      inner join offsets as o on l.filename = o.filename
    ),
    parsed as (
      select
        source_file,
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
      select
        *,
        coalesce(
          try_strptime(rec._ts, {UTC_FORMATS}),
          try_cast(rec._ts as timestamptz) at time zone 'UTC'
        ) as ts
      from parsed
    ),
    judged as (
      select
        source_file,
        line_no,
        line,
        rec,
        ts,
        list_filter(keys, k -> not list_contains({known_list}, k)) <> [] as has_extra,
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
      line_no,
      coalesce(strlen(line), 0) + 1 as line_bytes,
      reason,
      case when reason is not null then line end as bad_line,
      case when reason is null then rec end as rec,
      ts,
      case when reason is null and has_extra then to_json(map_from_entries(list_filter(
        map_entries(from_json(line, '"MAP(VARCHAR, JSON)"')),
        e -> not list_contains({known_list}, e.key)
      ))) end as extra
    from judged
    """


def load_batch(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    batch: list[tuple[contract.ExtractFile, Path, str]],
) -> list[FileResult]:
    """Load files of one table, with their ledger entries, in a single transaction."""
    cols = list(table.columns)
    select_cols = ", ".join(
        f"cast(rec.{c} as {t})" if t in ("bigint", "double") else f"rec.{c}"
        for c, t in table.raw_columns().items()
    )
    con.execute("begin transaction")
    try:
        con.execute(f"create or replace temp table _lines as {_lines_sql([p for _, p, _ in batch])}")
        con.execute(f"create or replace temp table _checked as {_checked_lines_sql(table)}")
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
            from _checked
            where reason is null
            """
        )
        con.execute(
            f"""
            insert into {QUARANTINE}
            select source_file, line_no, $1, reason, bad_line, now()::timestamp
            from _checked where reason is not null
            """,
            [table.name],
        )
        counts = {
            name: (lines, loaded, quarantined, size)
            for name, lines, loaded, quarantined, size in con.execute(
                """
                select source_file, count(*), count(*) filter (where reason is null),
                       count(*) filter (where reason is not null), sum(line_bytes)
                from _checked group by source_file
                """
            ).fetchall()
        }
        results, ledger_rows = [], []
        for meta, path, checksum in batch:
            lines, loaded, quarantined, size = counts.get(meta.name, (0, 0, 0, 0))
            # names match contract.FILE_NAME and checksums are hex: safe to inline
            ledger_rows.append(
                f"('{meta.name}', '{meta.table}', '{meta.interval_start:%Y-%m-%d %H:%M:%S}', "
                f"'{meta.interval_end:%Y-%m-%d %H:%M:%S}', {meta.part}, '{checksum}', "
                f"{path.stat().st_size}, {lines}, {loaded}, {quarantined}, now()::timestamp)"
            )
            results.append(FileResult(meta.name, meta.table, lines, loaded, quarantined, size))
        con.execute(f"insert into {LEDGER} values " + ", ".join(ledger_rows))
        con.execute("drop table _lines")
        con.execute("drop table _checked")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return results


def batches(
    new: list[tuple[contract.ExtractFile, Path, str]], batch_bytes: int
) -> list[list[tuple[contract.ExtractFile, Path, str]]]:
    """Group files of one table, in order, up to batch_bytes of compressed input each
    (many small daily files load in one statement; a big file loads alone)."""
    out: list[list] = []
    by_table: dict[str, list] = {}
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
) -> tuple[list[tuple[contract.ExtractFile, Path, str]], list[str]]:
    """Split files into new ones (with checksums) and already-loaded ones; refuse conflicts."""
    ledger = dict(con.execute(f"select file_name, sha256 from {LEDGER}").fetchall())
    loaded_checksums = {v: k for k, v in ledger.items()}
    new, skipped, conflicts = [], [], []
    seen_in_batch: dict[str, str] = {}
    for meta, path in files:
        checksum = sha256_of(path)
        if meta.name in ledger:
            if ledger[meta.name] == checksum:
                skipped.append(meta.name)
            else:
                conflicts.append(
                    f"{path}: already loaded with sha256 {ledger[meta.name][:12]}…, "
                    f"this delivery has {checksum[:12]}…"
                )
        elif checksum in loaded_checksums or checksum in seen_in_batch:
            original = loaded_checksums.get(checksum) or seen_in_batch[checksum]
            skipped.append(meta.name)
            print(
                f"warning: {path} has the same content as {original}; skipped", file=sys.stderr
            )
        else:
            seen_in_batch[checksum] = meta.name
            new.append((meta, path, checksum))
    if conflicts:
        raise IngestRefused(
            "Refused: these files were loaded before with different content. The contract "
            "forbids changing a delivered file, so nothing was loaded and nothing already "
            "loaded changed:\n  "
            + "\n  ".join(conflicts)
            + "\nAsk the platform team why the file changed; move the new copy out of the "
            "extracts folder to go on loading the rest."
        )
    return new, skipped


def ingest(
    extracts: Path,
    con: duckdb.DuckDBPyConnection,
    progress: bool = True,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
) -> IngestResult:
    started = time.perf_counter()
    ensure_raw_schema(con)
    new, skipped = plan(con, discover(extracts))
    result = IngestResult(skipped=skipped)
    total, done = len(new), 0
    for batch in batches(new, batch_bytes):
        table = TABLES[batch[0][0].table]
        loaded = load_batch(con, table, batch)
        result.loaded.extend(loaded)
        done += len(batch)
        if progress:
            rows = sum(f.rows_loaded for f in loaded)
            quarantined = sum(f.lines_quarantined for f in loaded)
            note = f", {quarantined} quarantined" if quarantined else ""
            print(
                f"[ingest {done}/{total} files] {table.name}: {len(batch)} files, {rows} rows{note}",
                file=sys.stderr,
                flush=True,
            )
    result.seconds = time.perf_counter() - started
    return result


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
    )
    if result.lines_quarantined:
        print(
            f"Quarantined lines are in {QUARANTINE} with file, line and reason: "
            "ask the platform team to correct and redeliver them in a new file."
        )
    return 0
