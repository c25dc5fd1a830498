"""`python -m orchestrate bench --scale S`: what the warehouse costs, against the bare scan.

Measured in one process on the same data (generated once per scale and seed, then cached
under --cache-dir):

- generate: writing the sample extracts (measured when they are generated; the cached
  figure is reported afterwards);
- floor: DuckDB merely scanning every extract file once (`count(*)` with the ingester's
  own read options) — no engine can load the files faster than it can read them;
- ingest: loading every file into a fresh warehouse (rows/s, MB/s uncompressed);
- build: a full `dbt build`; checks: the data-quality checks; run: the whole `run`;
- incremental day: one more day of extracts (about 1% of the answers, updates and deletes
  of older rows), then `run`;
- peak resident memory of the whole process.

Prints a table and writes JSON (--json, default reports/bench_scale_<S>.json).
Figures are measurements, not assertions: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import timedelta, timezone
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from orchestrate import contract
from orchestrate.errors import UserError
from orchestrate.ingest import line_reader
from orchestrate.warehouse import PROJECT_DIR, connect


@dataclass
class Step:
    name: str
    seconds: float
    rows: int | None = None
    megabytes: float | None = None
    note: str = ""

    @property
    def rows_per_second(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds else None

    @property
    def mb_per_second(self) -> float | None:
        return self.megabytes / self.seconds if self.megabytes and self.seconds else None


@dataclass
class BenchResult:
    scale: float
    seed: int
    files: int = 0
    lines: int = 0
    megabytes_uncompressed: float = 0.0
    megabytes_compressed: float = 0.0
    steps: list[Step] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process and its finished children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KiB


def extract_files(extracts: Path) -> list[Path]:
    return sorted(p for t in contract.TABLES for p in (extracts / t).glob("*.ndjson.gz"))


def ensure_extracts(cache: Path, scale: float, seed: int) -> tuple[Path, float]:
    """Generate the extracts once per (scale, seed); return them and the generation time."""
    extracts = cache / f"scale_{scale:g}_seed_{seed}" / "extracts"
    stamp = extracts.parent / "generate_seconds.txt"
    if not stamp.exists():
        shutil.rmtree(extracts.parent, ignore_errors=True)
        extracts.parent.mkdir(parents=True)
        print(f"[bench] generating scale {scale:g} into {extracts} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "orchestrate", "generate", "--out", str(extracts),
             "--scale", str(scale), "--seed", str(seed)],
            cwd=PROJECT_DIR,
            check=True,
        )
        stamp.write_text(f"{time.perf_counter() - started:.3f}\n")
    return extracts, float(stamp.read_text())


def scan_floor(extracts: Path) -> tuple[float, int]:
    """Seconds for DuckDB to count every line of every file once, and the count."""
    files = extract_files(extracts)
    paths = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in files) + "]"
    con = duckdb.connect()
    try:
        started = time.perf_counter()
        (count,) = con.execute(f"select count(*) from {line_reader(paths)}").fetchone()
        return time.perf_counter() - started, count
    finally:
        con.close()


def write_next_day(con: duckdb.DuckDBPyConnection, extracts: Path, share: float = 0.01) -> Path:
    """Append one day of changes after the last interval: about `share` of the current answers
    changed (four in five updated to another value, one in five deleted). Returns the file."""
    (last_end,) = con.execute("select max(interval_end) from raw.ingest_ledger").fetchone()
    (next_seq,) = con.execute("select max(_seq) + 1 from raw.question_responses").fetchone()
    start = last_end
    end = start + timedelta(days=1)
    path = extracts / "question_responses" / contract.file_name(
        "question_responses", start.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc), 0
    )
    out = str(path).replace("'", "''")
    con.execute(
        f"""
        copy (
          with current_answers as (
            select response_id, question_id, value
            from raw.question_responses
            qualify row_number() over (partition by response_id, question_id order by _seq desc) = 1
              and _op <> 'd'
          ),
          picked as (
            select *, row_number() over (order by hash(response_id, question_id)) as n
            from current_answers
            where hash(response_id || '|' || question_id) % 1000 < {share * 1000:.0f}
          )
          select
            case when n % 5 = 0 then 'd' else 'u' end as _op,
            strftime(timestamp '{start:%Y-%m-%d} 08:00:00' + to_milliseconds(n * 7),
                     '%Y-%m-%dT%H:%M:%S.%gZ') as _ts,
            {next_seq} + n - 1 as _seq,
            response_id,
            question_id,
            case when n % 5 = 0 then null
                 when try_cast(value as integer) between 1 and 4 then to_json(try_cast(value as integer) + 1)
                 else to_json(2) end as value
          from picked
          order by n
        ) to '{out}' (format json, compression gzip)
        """
    )
    return path


def _run(extracts: Path, reports: Path) -> dict:
    """One whole `run` in this process; its report's figures."""
    from orchestrate import run as run_command  # imports dbt: only when benchmarking runs

    options = {"target": "dev", "extracts": str(extracts), "full_refresh": False, "select": []}
    started = time.perf_counter()
    status = run_command.execute(options, reports_dir=reports)
    seconds = time.perf_counter() - started
    report = json.loads((reports / "latest" / "report.json").read_text())
    report["bench_seconds"] = seconds
    if report["status"] == "interrupted":  # Ctrl-C or SIGTERM: the benchmark stops too
        raise UserError(f"run {report['run_id']} was interrupted: benchmark stopped")
    if status != 0:
        print(f"[bench] warning: run exited {status}; see {reports / 'latest'}", file=sys.stderr)
    return report


def _step_seconds(report: dict, name: str) -> float:
    return next((s["seconds"] or 0.0 for s in report["steps"] if s["name"] == name), 0.0)


def _use_work_dirs(work: Path) -> None:
    os.environ["DBT_DUCKDB_PATH"] = str(work / "warehouse.duckdb")
    os.environ["DBT_TARGET_PATH"] = str(work / "target")
    os.environ["DBT_LOG_PATH"] = str(work / "logs")
    os.environ["DUCKDB_TEMP_DIRECTORY"] = str(work / "duckdb_tmp")


def run_bench(scale: float, seed: int, cache: Path, work: Path) -> BenchResult:
    extracts, generate_seconds = ensure_extracts(cache, scale, seed)
    files = extract_files(extracts)
    result = BenchResult(scale=scale, seed=seed, files=len(files))
    result.megabytes_compressed = sum(p.stat().st_size for p in files) / 1e6

    print(f"[bench] scale {scale:g}: scanning {len(files)} files (the floor) ...", file=sys.stderr, flush=True)
    floor_seconds, result.lines = scan_floor(extracts)

    # A fresh warehouse over a folder of links to the cached extracts, so the incremental
    # day can be added to it without touching the cache.
    shutil.rmtree(work, ignore_errors=True)
    inbox = work / "extracts"
    for path in files:
        (inbox / path.parent.name).mkdir(parents=True, exist_ok=True)
        (inbox / path.parent.name / path.name).symlink_to(path)
    _use_work_dirs(work)

    print("[bench] full run (ingest, dbt build, checks, report) ...", file=sys.stderr, flush=True)
    full = _run(inbox, work / "reports")
    ingest_info = full.get("ingest") or {}
    result.megabytes_uncompressed = sum(f["bytes_uncompressed"] for f in ingest_info.get("files", [])) / 1e6
    ingest_seconds = _step_seconds(full, "ingest")
    ingested_lines = sum(f["lines"] for f in ingest_info.get("files", []))

    print("[bench] incremental day ...", file=sys.stderr, flush=True)
    con = connect()
    try:
        day_file = write_next_day(con, inbox)
    finally:
        con.close()
    day = _run(inbox, work / "reports")
    day_lines = sum(f["lines"] for f in (day.get("ingest") or {}).get("files", []))

    result.steps = [
        Step("generate", generate_seconds, result.lines, note="when first generated"),
        Step("floor (scan)", floor_seconds, result.lines, result.megabytes_uncompressed),
        Step("ingest", ingest_seconds, ingested_lines, result.megabytes_uncompressed),
        Step("dbt build", _step_seconds(full, "dbt build")),
        Step("checks", _step_seconds(full, "checks") + _step_seconds(full, "reconciliation")),
        Step("psychometrics", _step_seconds(full, "psychometrics")),
        Step("run (whole)", full["bench_seconds"], ingested_lines),
        Step("incremental day run", day["bench_seconds"], day_lines, note=day_file.name),
        Step("  of which dbt build", _step_seconds(day, "dbt build"),
             note=(day.get("dbt") or {}).get("scope", "")),
    ]
    result.ratios = {
        "ingest / floor": ingest_seconds / floor_seconds,
        "full run / floor": full["bench_seconds"] / floor_seconds,
        "incremental / full": day["bench_seconds"] / full["bench_seconds"],
    }
    result.peak_rss_mb = peak_rss_mb()
    return result


def format_table(result: BenchResult) -> str:
    lines = [
        f"scale {result.scale:g} (seed {result.seed}): {result.files} files, {result.lines:,} lines, "
        f"{result.megabytes_compressed:,.1f} MB gzip, {result.megabytes_uncompressed:,.1f} MB uncompressed",
        f"{'step':<24}{'seconds':>10}{'rows/s':>14}{'MB/s':>10}",
    ]
    for s in result.steps:
        rps = f"{s.rows_per_second:,.0f}" if s.rows_per_second else "-"
        mbs = f"{s.mb_per_second:,.1f}" if s.mb_per_second else "-"
        lines.append(f"{s.name:<24}{s.seconds:>10.2f}{rps:>14}{mbs:>10}")
    for name, value in result.ratios.items():
        lines.append(f"ratio {name:<18}{value:>10.2f}x")
    lines.append(f"peak resident memory    {result.peak_rss_mb:>10,.0f} MB")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=float, nargs="+", default=[1.0], help="one or more scales")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache-dir", type=Path, default=PROJECT_DIR / "data" / "bench")
    parser.add_argument("--json", type=Path, help="where to write the figures (default reports/)")


def main(args: argparse.Namespace) -> int:
    results = []
    for scale in args.scale:
        result = run_bench(scale, args.seed, args.cache_dir, args.cache_dir / "work")
        print(format_table(result), flush=True)
        print()
        results.append(result)
    out = args.json or PROJECT_DIR / "reports" / f"bench_scale_{'_'.join(f'{s:g}' for s in args.scale)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print(f"figures written to {out}")
    return 0
