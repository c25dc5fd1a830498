"""`python -m orchestrate bench --scale S [S ...]`: what the warehouse costs, step by step,
against the floors and against a researcher's pandas script, and how it grows with scale.

Measured on the same data (generated once per scale and seed, then cached under
--cache-dir), scale after scale (default 1 3 10 30); each `run` in a process of its own,
`python -m orchestrate run`, as a scheduler starts it (its imports of dbt, great-expectations
and the psychometrics libraries included, every day):

- generate: writing the sample extracts (measured when they are generated; the cached
  figure is reported afterwards);
- floor: DuckDB merely scanning every extract file once (`count(*)` with the ingester's
  own read options) -- no engine can load the files faster than it can read them;
- typed parse: DuckDB parsing every file into the contract's typed columns (`read_json`
  with explicit columns, every column read) -- the floor of any loader that parses;
- typed load: the same parse written into a table per extract table of a new database
  file (`create table ... as select * from read_json(...)`, checkpointed) -- what DuckDB
  itself takes to keep the typed parse, before a line is checked, numbered or quarantined;
- ingest: loading every file into a fresh warehouse (rows/s, MB/s uncompressed; how many
  lines left the fast path to be checked one by one), then its phases: examining the
  files (checksums, line counts), reading and judging their lines, writing;
- build: a full `dbt build`; checks: the data-quality checks and reconciliation;
  psychometrics; run: the whole `run`;
- dbt floor: dbt itself building a throwaway project of as many models, data tests and
  seeds as the full run's build ran, each doing nothing (one-row tables, not_null tests),
  from a full parse in a process of its own -- what dbt costs for that many nodes, before
  any of this project's work: the fixed cost a small run cannot go below;
- pandas reference: orchestrate/reference_pandas.py (a single-threaded pandas script
  computing the same six results marts from the same extracts, run as its own process)
  -- timed only after it is checked to agree with the marts (numbers to 1e-9, the same
  rows, the same suppressed cells); up to --reference-max-scale, above which pandas
  does not fit in memory;
- realistic day: the new responses of the last day of the current school year's survey
  window (its survey_responses and question_responses files, held back from the full run,
  whose ingest has every other line: held_back_lines in the figures) plus late corrections to 0.1% of the current school year's earlier answers, then `run`:
  what a day of the open window costs (closed school years are not recomputed);
- stress day: one more day of extracts changing about 1% of all answers, of every year
  (updates and deletes of older rows), then `run`.

Every step gets its seconds, its CPU seconds and its peak resident memory (sampled 20
times a second from the process doing it; a whole run's and the reference's as the
operating system counted their processes). Each run's `dbt build` is split
into the seconds outside its nodes (importing dbt, parsing, artifacts) and its node phase,
with the nodes it ran: where a small run's fixed cost goes. With several scales, the
marginal seconds per million extract lines between consecutive scales follow, and a chart
of seconds and peak memory against scale is drawn next to the JSON (--json, default
reports/bench_scale_<S>_....json and .svg). DuckDB gets DUCKDB_MEMORY_LIMIT (3 GB by
default) and a spill folder, so the largest scales spill instead of failing.
Figures are measurements, not assertions: nothing here fails on a slow machine, but a
reference that disagrees with the marts stops the benchmark (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import timedelta, timezone
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from orchestrate import contract
from orchestrate.errors import UserError
from orchestrate.ingest import PHASES as INGEST_PHASES
from orchestrate.ingest import line_reader, paths_sql
from orchestrate.warehouse import PROJECT_DIR, connect

DEFAULT_SCALES = [1.0, 3.0, 10.0, 30.0]
TYPED_LOAD = "typed load (into a file)"
DBT_FLOOR = "dbt floor (no-op nodes)"
DBT_FLOOR_LABEL = "floor (as many no-op nodes)"
REFERENCE_MAX_SCALE = 10.0


def _say(line: str) -> None:
    print(f"[bench] {line}", file=sys.stderr, flush=True)


@dataclass
class Step:
    name: str
    seconds: float
    rows: int | None = None
    megabytes: float | None = None
    note: str = ""
    cpu_seconds: float | None = None
    peak_rss_mb: float | None = None

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
    load_average: list[float] = field(default_factory=list)  # 1, 5, 15 minutes, at the end
    held_back_lines: int = 0  # the realistic day's new responses: not in the full run's ingest
    dbt_costs: dict[str, dict] = field(default_factory=dict)  # dbt_cost() of the full run and the days

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)


class Sampler:
    """Resident memory and CPU time of a process (this one, or `pid` with every process it
    started: a run's worker, orchestrate/worker.py, holds its own libraries in memory while
    the run's process holds DuckDB's), sampled in a thread; the peak and the CPU seconds of
    any window of time afterwards."""

    def __init__(self, interval: float = 0.05, pid: int | None = None):
        self.interval = interval
        self.pid = pid
        self.samples: list[tuple[float, float, float]] = []  # (perf_counter, rss MB, cpu s)
        self._stop = threading.Event()
        self._page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20  # MB as ru_maxrss counts them (MiB)
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        if self.pid is None:
            with open("/proc/self/statm") as statm:
                resident = int(statm.read().split()[1])
            times = os.times()
            cpu = times.user + times.system
        else:
            try:
                resident, ticks = self._process(self.pid, root=True)
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                return  # the process has ended (or not yet begun)
            for child in self._descendants(self.pid):
                try:
                    memory, used = self._process(child, root=False)
                except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                    continue  # ended between the listing and now
                resident += memory
                ticks += used
            cpu = ticks / self._ticks
        self.samples.append((time.perf_counter(), resident * self._page_mb, cpu))

    @staticmethod
    def _process(pid: int, root: bool) -> tuple[int, int]:
        """(resident pages, CPU ticks) of a process: its user and system time (fields 14,
        15 of stat), and for the root also those of its children that ended and were waited
        for (16, 17), which no longer show as processes of their own."""
        with open(f"/proc/{pid}/statm") as statm:
            resident = int(statm.read().split()[1])
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = sum(int(f) for f in fields[11:15 if root else 13])
        return resident, ticks

    @staticmethod
    def _descendants(pid: int) -> list[int]:
        """The processes `pid` started, and theirs (from any of their threads)."""
        found, queue = [], [pid]
        while queue:
            parent = queue.pop()
            for tasks in Path(f"/proc/{parent}/task").glob("*/children"):
                try:
                    children = [int(c) for c in tasks.read_text().split()]
                except OSError:
                    continue
                found += children
                queue += children
        return found

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def window(self, start: float, end: float) -> tuple[float | None, float | None]:
        """(peak resident MB, CPU seconds) between two perf_counter() times."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:
            return None, None
        before = [s for s in self.samples if s[0] <= start] or inside[:1]
        return max(s[1] for s in inside), inside[-1][2] - before[-1][2]


def measure(sampler: Sampler, name: str, work, **step) -> tuple[Step, object]:
    """Run work() as a step: its seconds, CPU seconds and peak memory."""
    started = time.perf_counter()
    value = work()
    ended = time.perf_counter()
    peak, cpu = sampler.window(started, ended)
    return Step(name, ended - started, cpu_seconds=cpu, peak_rss_mb=peak, **step), value


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
    paths = paths_sql(files)
    con = duckdb.connect()
    try:
        started = time.perf_counter()
        (count,) = con.execute(f"select count(*) from {line_reader(paths)}").fetchone()
        return time.perf_counter() - started, count
    finally:
        con.close()


def realistic_day_files(files: list[Path]) -> list[Path]:
    """The new responses of the realistic day: the survey_responses and question_responses
    files of the last day on which new responses (`c`) arrived, the last day of the current
    school year's survey window."""
    responses = [p for p in files if p.parent.name == "survey_responses"]
    paths = paths_sql(responses)
    con = duckdb.connect()
    try:
        (last,) = con.execute(
            f"select max(parse_filename(filename)) from read_json({paths}, filename = true, "
            "columns = {'_op': 'varchar'}, format = 'newline_delimited') where _op = 'c'").fetchone()
    finally:
        con.close()
    day = contract.parse_file_name(last).interval_start.date()
    return [p for p in files if p.parent.name in ("survey_responses", "question_responses")
            and contract.parse_file_name(p.name).interval_start.date() == day]


def write_next_day(con: duckdb.DuckDBPyConnection, extracts: Path, share: float = 0.01,
                   current_year_only: bool = False, pending: list[Path] = ()) -> Path:
    """Append one day of changes after the last interval: about `share` of the current answers
    changed (four in five updated to another value, one in five deleted). With
    current_year_only: late corrections, `share` of the answers of the current (latest)
    school year's responses, all updated. `pending`: files delivered but not loaded yet,
    which the day comes after (its interval and its _seq). Returns the file."""
    (last_end,) = con.execute("select max(interval_end) from raw.ingest_ledger").fetchone()
    (next_seq,) = con.execute("select max(_seq) + 1 from raw.question_responses").fetchone()
    pending = [p for p in pending if p.parent.name == "question_responses"]
    if pending:
        paths = paths_sql(pending)
        (pending_seq,) = con.execute(
            f"select max(_seq) + 1 from read_json({paths}, columns = {{'_seq': 'bigint'}}, "
            "format = 'newline_delimited')").fetchone()
        next_seq = max(next_seq, pending_seq or 0)
        last_end = max([last_end.replace(tzinfo=None)] + [contract.parse_file_name(p.name).interval_end.replace(tzinfo=None)
                                     for p in pending])
    start = last_end
    end = start + timedelta(days=1)
    path = extracts / "question_responses" / contract.file_name(
        "question_responses", start.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc), 0
    )
    out = str(path).replace("'", "''")
    deletes = "false" if current_year_only else "true"
    year_filter = ""
    if current_year_only:  # the responses of the latest school year's surveys
        year_filter = """where response_id in (
              select responses.response_id
              from raw.survey_responses as responses
              inner join raw.surveys as surveys on responses.survey_id = surveys.survey_id
              where trim(surveys.school_year) = (select max(trim(school_year)) from raw.surveys))"""
    con.execute(
        f"""
        copy (
          with current_answers as (
            select response_id, question_id, value
            from raw.question_responses
            qualify row_number() over (partition by response_id, question_id order by _seq desc) = 1
              and _op <> 'd'
          ),
          in_scope as (
            select * from current_answers
            {year_filter}
          ),
          picked as (
            select *, row_number() over (order by hash(response_id, question_id)) as n
            from in_scope
            where hash(response_id || '|' || question_id) % 100000 < {share * 100000:.0f}
          )
          select
            case when n % 5 = 0 and {deletes} then 'd' else 'u' end as _op,
            strftime(timestamp '{start:%Y-%m-%d} 08:00:00' + to_milliseconds(n * 7),
                     '%Y-%m-%dT%H:%M:%S.%gZ') as _ts,
            {next_seq} + n - 1 as _seq,
            response_id,
            question_id,
            case when n % 5 = 0 and {deletes} then null
                 when try_cast(value as integer) between 1 and 4 then to_json(try_cast(value as integer) + 1)
                 else to_json(2) end as value
          from picked
          order by n
        ) to '{out}' (format json, compression gzip)
        """
    )
    return path


def _typed_reads(extracts: Path) -> list[tuple[str, list[str], str]]:
    """For each table with files: its name, its columns (the envelope's and the contract's)
    and `read_json` of its files into the contract's typed columns."""
    reads = []
    for table in contract.TABLES.values():
        files = sorted((extracts / table.name).glob("*.ndjson.gz"))
        if not files:
            continue
        paths = paths_sql(files)
        columns = {"_op": "varchar", "_ts": "varchar", "_seq": "bigint", **table.raw_columns()}
        spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in columns.items()) + "}"
        reads.append((table.name, list(columns), f"read_json({paths}, format='newline_delimited', "
                                                  f"columns={spec}, compression='gzip')"))
    return reads


def typed_parse_floor(extracts: Path) -> tuple[float, int]:
    """Seconds for DuckDB to parse every file into the contract's typed columns
    (`read_json` with explicit columns; every column is read, so every value is parsed
    and converted), and the number of rows. Wrong-kind values are converted, unknown
    keys dropped: a floor for parsing, not a loader."""
    con = duckdb.connect(config={"memory_limit": os.environ.get("DUCKDB_MEMORY_LIMIT", "3GB")})
    rows = 0
    try:
        started = time.perf_counter()
        for _, columns, read in _typed_reads(extracts):
            counted = ", ".join(f'count("{c}")' for c in columns)
            (count, *_) = con.execute(f"select count(*), {counted} from {read}").fetchone()
            rows += count
        return time.perf_counter() - started, rows
    finally:
        con.close()


def typed_load_floor(extracts: Path, database: Path) -> tuple[float, int]:
    """Seconds for DuckDB to parse every file as typed_parse_floor does and write the rows
    into a table per extract table of a new database file (made and removed here),
    checkpointed: DuckDB's own `create table ... as select * from read_json(...)`, what
    keeping the typed parse costs before a line is checked, numbered or quarantined, its
    file named or its unknown keys kept. And the number of rows."""
    files = (database, database.with_name(database.name + ".wal"))
    for stale in files:
        stale.unlink(missing_ok=True)
    con = duckdb.connect(str(database), config={
        "memory_limit": os.environ.get("DUCKDB_MEMORY_LIMIT", "3GB")})
    rows = 0
    try:
        started = time.perf_counter()
        names = []
        for name, _, read in _typed_reads(extracts):
            con.execute(f'create table "{name}" as select * from {read}')
            names.append(name)
        con.execute("checkpoint")
        seconds = time.perf_counter() - started
        for name in names:
            rows += con.execute(f'select count(*) from "{name}"').fetchone()[0]
        return seconds, rows
    finally:
        con.close()
        for made in files:
            made.unlink(missing_ok=True)


def write_dbt_floor_project(folder: Path, models: int, tests: int, seeds: int, threads: int) -> None:
    """A throwaway dbt project (made afresh in `folder`) of `models` one-row tables in a
    binary tree (model i reads model (i - 1) // 2, the first a seed, so the threads have
    work side by side as in a real DAG), `tests` not_null data tests spread over the
    models' columns, and `seeds` one-row seeds: nodes that do nothing. Built on DuckDB with
    `threads`, the log file at info level as this project's is."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "models").mkdir(parents=True)
    (folder / "seeds").mkdir()
    models = max(models, 1)
    width = max(1, -(-tests // models))  # columns per model: enough for every test
    (folder / "dbt_project.yml").write_text(
        "name: dbt_floor\nversion: '1.0'\nconfig-version: 2\nprofile: dbt_floor\n"
        "flags:\n  send_anonymous_usage_stats: false\n  log_level_file: info\n"
        "models:\n  dbt_floor:\n    +materialized: table\n")
    profile = {"type": "duckdb", "path": str(folder / "floor.duckdb"), "threads": threads}
    (folder / "profiles.yml").write_text(json.dumps({"dbt_floor": {"target": "floor",
                                                                   "outputs": {"floor": profile}}}))
    for n in range(seeds):
        (folder / "seeds" / f"seed_{n}.csv").write_text("id\n1\n")
    columns = ", ".join(f"1 as c{c}" for c in range(width))
    for n in range(models):
        parent = f"ref('model_{(n - 1) // 2}')" if n else ("ref('seed_0')" if seeds else None)
        source = f" from {{{{ {parent} }}}}" if parent else ""
        (folder / "models" / f"model_{n}.sql").write_text(f"select {columns}{source}\n")
    tested: dict[int, list[dict]] = {}
    for t in range(tests):
        tested.setdefault(t % models, []).append({"name": f"c{t // models}", "data_tests": ["not_null"]})
    (folder / "models" / "schema.yml").write_text(json.dumps({"version": 2, "models": [
        {"name": f"model_{n}", "columns": tested_columns} for n, tested_columns in sorted(tested.items())]}))


def dbt_floor(nodes_by_type: dict[str, int], folder: Path) -> dict | None:
    """dbt's own cost for a build of as many models, data tests and seeds as
    `nodes_by_type` counts, each doing nothing (write_dbt_floor_project, in `folder`,
    removed afterwards): `dbt build` from a full parse in a process of its own, as a first
    run's build is, with none of the DBT_* settings of this environment (they could select
    or skip nodes) but the log file's. Its cost as dbt_cost gives a run's, with the
    process's CPU seconds and peak memory; None, with a warning, when dbt did not build
    exactly those nodes: the benchmark goes on without the floor."""
    asked = {kind: nodes_by_type.get(kind, 0) for kind in ("model", "test", "seed")}
    threads = os.environ.get("DBT_THREADS", "2")  # as profiles.yml's dev target reads it
    write_dbt_floor_project(folder, *asked.values(), threads=int(threads) if threads.isdigit() else 2)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("DBT_") or key in ("DBT_LOG_LEVEL_FILE", "DBT_LOG_FORMAT_FILE")}
    results = folder / "target" / "run_results.json"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from dbt.cli.main import cli; cli()", "build", "--no-partial-parse",
         "--quiet", "--project-dir", str(folder), "--profiles-dir", str(folder), "--profile", "dbt_floor",
         "--target", "floor", "--target-path", str(results.parent), "--log-path", str(folder / "logs")],
        cwd=folder, env=env)
    cpu, peak = _wait(proc)
    seconds = time.perf_counter() - started
    run_results = json.loads(results.read_text()) if results.exists() else {"results": []}
    nodes = run_results["results"]
    kinds = [n["unique_id"].split(".")[0] for n in nodes]
    built = {kind: kinds.count(kind) for kind in asked}
    if proc.returncode != 0 or built != asked:  # the project is left in place to look at
        _say(f"warning: dbt's floor built {built} of {asked} (exit {proc.returncode}; its output is above, "
             f"its project in {folder}): the figures go on without it. A bug in write_dbt_floor_project, "
             "or this machine (disk, memory): look at the project, then run the benchmark again.")
        return None
    shutil.rmtree(folder, ignore_errors=True)
    return {**_cost(seconds, float(run_results["elapsed_time"]), kinds,
                    [n.get("execution_time") or 0.0 for n in nodes]),
            "cpu_seconds": cpu, "peak_rss_mb": peak}


def _wait(proc: subprocess.Popen) -> tuple[float, float]:
    """Wait for a child process; its CPU seconds and peak resident MB as the operating
    system counted them (wait4: the CPU of it and of the processes it waited for, the
    memory of the largest of them alone), its exit status in proc.returncode."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_reference(extracts: Path, work: Path) -> dict:
    """The pandas reference in its own single-threaded process on the same extracts,
    checked against the marts of the warehouse just built (--check). Its figures
    (timing.json) with its wall time and peak memory as the operating system saw them."""
    out = work / "reference"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrate.reference_pandas", "--extracts", str(extracts),
         "--out", str(out), "--check"],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=None, text=True)
    output = proc.stdout.read()
    cpu, peak = _wait(proc)
    wall = time.perf_counter() - started
    timing_file = out / "timing.json"
    if proc.returncode not in (0, 1) or not timing_file.exists():
        raise UserError(f"the pandas reference failed (exit {proc.returncode}); its output is above. "
                        "Fix it, or run the benchmark with --reference-max-scale 0 to leave it out.")
    timing = json.loads(timing_file.read_text())
    if not timing.get("agrees"):
        raise UserError(
            "the pandas reference disagrees with the warehouse's marts (differences above), so "
            "timing it against the project means nothing: find which side is wrong (python -m "
            f"orchestrate.reference_pandas --extracts {extracts} --check, DBT_DUCKDB_PATH="
            f"{os.environ.get('DBT_DUCKDB_PATH')}), fix it, then run the benchmark again.")
    timing["process_seconds"] = wall
    timing["process_peak_rss_mb"] = peak
    timing["process_cpu_seconds"] = cpu
    timing["output"] = output.strip()
    return timing


def _run(name: str, extracts: Path, reports: Path) -> tuple[Step, dict, Sampler, float]:
    """One whole `run` in a process of its own (`python -m orchestrate run`, as a scheduler
    starts it; the warehouse's paths from this process's environment): its step (wall
    seconds, the CPU seconds the operating system counted for the process and the ones it
    waited for, and the peak of their memory together, as sampled), its report, the
    sampler of its processes and when its first step began, on the sampler's clock."""
    reports.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in reports.iterdir()}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrate", "run", "--extracts", str(extracts),
                             "--reports-dir", str(reports)], cwd=PROJECT_DIR)
    with Sampler(pid=proc.pid) as sampler:
        cpu, peak = _wait(proc)
    seconds = time.perf_counter() - started
    # the run's processes together (its worker's memory beside DuckDB's), as sampled; the
    # operating system's figure is the largest of them alone
    peak = max(peak, sampler.window(started, seconds + started)[0] or 0.0)
    new = sorted(p for p in reports.iterdir() if p.name not in before and (p / "report.json").exists())
    if not new:
        raise UserError(f"the {name} wrote no report (exit {proc.returncode}); its output is above")
    report = json.loads((new[-1] / "report.json").read_text())
    report["bench_seconds"] = seconds
    if report["status"] == "interrupted":  # Ctrl-C or SIGTERM: the benchmark stops too
        raise UserError(f"run {report['run_id']} was interrupted: benchmark stopped")
    if proc.returncode != 0:
        print(f"[bench] warning: run exited {proc.returncode}; see {new[-1]}", file=sys.stderr)
    # the report's steps start when the run's first step began, after the interpreter's start
    first_step = started + max(0.0, seconds - sum((s["seconds"] or 0.0) for s in report["steps"]))
    step = Step(name, seconds, cpu_seconds=cpu, peak_rss_mb=peak)
    return step, report, sampler, first_step


def _step_seconds(report: dict, name: str) -> float:
    return next((s["seconds"] or 0.0 for s in report["steps"] if s["name"] == name), 0.0)


def dbt_cost(report: dict) -> dict | None:
    """Where a run's `dbt build` step went: the seconds outside dbt's node phase
    (importing dbt, parsing the project, the orchestrator reading and keeping the
    artifacts) and the node phase itself (run_results.json's elapsed time, which includes
    dbt's setup and its on-run-end hooks), with the nodes it ran by type and their own
    timings summed (over dbt's threads, so the sum can exceed the phase). None without a
    build."""
    dbt = report.get("dbt") or {}
    nodes = [r for r in dbt.get("results") or [] if r.get("resource_type") != "exposure"]
    if not nodes or not dbt.get("elapsed"):
        return None
    return _cost(_step_seconds(report, "dbt build"), float(dbt["elapsed"]),
                 [node["resource_type"] for node in nodes], [node.get("seconds") or 0.0 for node in nodes])


def _cost(step: float, phase: float, kinds: list[str], timings: list[float]) -> dict:
    """A build's cost from its step's seconds, its node phase and its nodes' kinds and
    own timings."""
    by_type: dict[str, int] = {}
    for kind in kinds:
        by_type[kind] = by_type.get(kind, 0) + 1
    return {
        "step_seconds": step,
        "outside_nodes_seconds": max(0.0, step - phase),
        "node_phase_seconds": phase,
        "nodes": len(kinds),
        "nodes_by_type": by_type,
        "node_seconds_summed": sum(timings),
        "wall_ms_per_node": 1000 * phase / len(kinds),
    }


def _counted(nodes_by_type: dict[str, int]) -> str:
    """'264 data tests, 45 models, 7 seeds': nodes by type, the most numerous first."""
    kinds = {"model": "models", "test": "data tests", "unit_test": "unit tests", "seed": "seeds",
             "snapshot": "snapshots", "operation": "hooks"}
    return ", ".join(f"{n} {kinds.get(t, t)}" for t, n in sorted(nodes_by_type.items(), key=lambda kv: -kv[1]))


def format_dbt_cost(label: str, cost: dict) -> str:
    by_type = _counted(cost["nodes_by_type"])
    return (f"dbt build of the {label}: {cost['step_seconds']:.1f} s = "
            f"{cost['outside_nodes_seconds']:.1f} s outside its node phase (import, parse, artifacts) + "
            f"{cost['node_phase_seconds']:.1f} s running {cost['nodes']} nodes ({by_type}): "
            f"{cost['wall_ms_per_node']:.0f} ms of wall time per node; their own timings sum to "
            f"{cost['node_seconds_summed']:.1f} s")


def _use_work_dirs(work: Path) -> None:
    os.environ["DBT_DUCKDB_PATH"] = str(work / "warehouse.duckdb")
    os.environ["DBT_TARGET_PATH"] = str(work / "target")
    os.environ["DBT_LOG_PATH"] = str(work / "logs")
    os.environ["DUCKDB_TEMP_DIRECTORY"] = str(work / "duckdb_tmp")


def _run_steps(sampler: Sampler, started: float, report: dict, names: list[str]) -> dict[str, Step]:
    """The run's own steps (in the order it ran them, each with its seconds in the report),
    placed on the sampler's clock from the run's start: their peak memory and CPU."""
    out, clock = {}, started
    for step in report["steps"]:
        seconds = step["seconds"] or 0.0
        if step["name"] in names:
            peak, cpu = sampler.window(clock, clock + seconds)
            out[step["name"]] = Step(step["name"], seconds, cpu_seconds=cpu, peak_rss_mb=peak)
        clock += seconds
    return out


def run_bench(scale: float, seed: int, cache: Path, work: Path,
              reference_max_scale: float = REFERENCE_MAX_SCALE) -> BenchResult:
    extracts, generate_seconds = ensure_extracts(cache, scale, seed)
    files = extract_files(extracts)
    result = BenchResult(scale=scale, seed=seed, files=len(files))
    result.megabytes_compressed = sum(p.stat().st_size for p in files) / 1e6

    with Sampler() as sampler:
        _say(f"scale {scale:g}: scanning {len(files)} files (the floor) ...")
        floor, (_, result.lines) = measure(sampler, "floor (scan)", lambda: scan_floor(extracts))
        _say(f"scale {scale:g}: parsing them into the contract's typed columns (read_json) ...")
        typed, (_, typed_rows) = measure(sampler, "typed parse (read_json)", lambda: typed_parse_floor(extracts))
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        _say(f"scale {scale:g}: writing them, typed, into a new database file (read_json, create table) ...")
        typed_load, (_, typed_load_rows) = measure(
            sampler, TYPED_LOAD, lambda: typed_load_floor(extracts, work / "typed_load.duckdb"))

        # A fresh warehouse over a folder of links to the cached extracts, so the days can be
        # added to it without touching the cache; the realistic day's files are held back.
        inbox = work / "extracts"
        held_back = realistic_day_files(files)

        def deliver(paths: list[Path]) -> None:
            for path in paths:
                (inbox / path.parent.name).mkdir(parents=True, exist_ok=True)
                (inbox / path.parent.name / path.name).symlink_to(path)

        deliver([p for p in files if p not in held_back])
        _use_work_dirs(work)

        _say(f"scale {scale:g}: full run (ingest, dbt build, checks, psychometrics, report) ...")
        whole, full, run_sampler, first_step = _run("run (whole)", inbox, work / "reports")
        inner = _run_steps(run_sampler, first_step, full, ["ingest", "dbt build", "checks", "reconciliation",
                                                           "psychometrics"])
        full_cost = dbt_cost(full)
        floor_cost = None
        if full_cost:
            _say(f"scale {scale:g}: dbt's own floor: a build of {full_cost['nodes']} nodes that do nothing ...")
            floor_cost = dbt_floor(full_cost["nodes_by_type"], work / "dbt_floor")
        ingest_info = full.get("ingest") or {}
        loaded = ingest_info.get("files", [])
        result.megabytes_uncompressed = sum(f["bytes_uncompressed"] for f in loaded) / 1e6
        ingested_lines = sum(f["lines"] for f in loaded)
        careful = sum(f.get("lines_checked_carefully", 0) for f in loaded)
        as_text = sum(f.get("lines_read_as_text", 0) for f in loaded)

        reference = None
        if scale <= reference_max_scale:
            _say(f"scale {scale:g}: the pandas reference on the same extracts, checked against the marts ...")
            reference = run_reference(inbox, work)

        _say(f"scale {scale:g}: realistic day: the window's last day of new responses "
             f"({len(held_back)} files) and corrections to 0.1% of this school year's answers ...")
        deliver(held_back)
        con = connect()
        try:
            corrections = write_next_day(con, inbox, share=0.001, current_year_only=True, pending=held_back)
        finally:
            con.close()
        real_step, real, _, _ = _run("realistic day run", inbox, work / "reports")

        _say(f"scale {scale:g}: stress day: 1% of all answers changed ...")
        con = connect()
        try:
            day_file = write_next_day(con, inbox)
        finally:
            con.close()
        day_step, day, _, _ = _run("stress day run", inbox, work / "reports")

    def lines_of(report: dict) -> int:
        return sum(f["lines"] for f in (report.get("ingest") or {}).get("files", []))

    def inner_step(name: str, label: str | None = None, **extra) -> Step:
        step = inner.get(name) or Step(name, 0.0)
        step.name = label or name
        for key, value in extra.items():
            setattr(step, key, value)
        return step

    checks = inner_step("checks", "checks")
    reconciliation = inner.get("reconciliation")
    if reconciliation:  # one figure for both, as before
        checks.seconds += reconciliation.seconds
        checks.cpu_seconds = (checks.cpu_seconds or 0) + (reconciliation.cpu_seconds or 0)
        checks.peak_rss_mb = max(checks.peak_rss_mb or 0, reconciliation.peak_rss_mb or 0) or None
    floor.rows, floor.megabytes = result.lines, result.megabytes_uncompressed
    typed.rows, typed.megabytes = typed_rows, result.megabytes_uncompressed
    typed_load.rows, typed_load.megabytes = typed_load_rows, result.megabytes_uncompressed
    whole.rows = ingested_lines
    whole.note = "each run a process of its own: python -m orchestrate run"
    real_step.rows = lines_of(real)
    held_names = {p.name for p in held_back}
    result.held_back_lines = sum(f["lines"] for f in (real.get("ingest") or {}).get("files", [])
                                 if f["name"] in held_names)
    real_step.note = (f"{len(held_back)} files of new responses ({result.held_back_lines:,} lines, "
                      f"held back from the full run) + {corrections.name}")
    day_step.rows, day_step.note = lines_of(day), day_file.name
    result.steps = [
        Step("generate", generate_seconds, result.lines, note="when first generated"),
        floor,
        typed,
        typed_load,
        inner_step("ingest", rows=ingested_lines, megabytes=result.megabytes_uncompressed,
                   note=f"{as_text:,} lines read as text, {careful:,} checked one by one"),
        *[Step(f"  of which {phase}", seconds, note=INGEST_PHASES.get(phase, ""))
          for phase, seconds in (ingest_info.get("phase_seconds") or {}).items()],
        inner_step("dbt build"),
        *([Step(DBT_FLOOR, floor_cost["step_seconds"], cpu_seconds=floor_cost["cpu_seconds"],
                peak_rss_mb=floor_cost["peak_rss_mb"],
                note=(f"{floor_cost['node_phase_seconds']:.1f} s running "
                      f"{_counted(floor_cost['nodes_by_type'])}, the rest importing dbt and parsing"))]
          if floor_cost else []),
        checks,
        inner_step("psychometrics"),
        whole,
    ]
    if reference:
        result.steps.append(Step(  # a process, as the runs are
            "pandas reference", reference["process_seconds"], reference.get("answer_lines"),
            cpu_seconds=reference["process_cpu_seconds"], peak_rss_mb=reference["process_peak_rss_mb"],
            note=f"agrees with the marts; {reference['seconds']:.1f} s of it after its imports"))
    result.steps += [
        real_step,
        Step("  of which dbt build", _step_seconds(real, "dbt build"),
             note=(real.get("dbt") or {}).get("scope", "")),
        day_step,
        Step("  of which dbt build (stress)", _step_seconds(day, "dbt build"),
             note=(day.get("dbt") or {}).get("scope", "")),
    ]
    ingest_seconds = result.step("ingest").seconds
    result.ratios = {
        "ingest / floor": ingest_seconds / floor.seconds,
        "ingest / typed parse": ingest_seconds / typed.seconds,
        "ingest / typed load": ingest_seconds / typed_load.seconds,
        "typed load / typed parse": typed_load.seconds / typed.seconds,
        "typed parse / floor": typed.seconds / floor.seconds,
        "full run / floor": whole.seconds / floor.seconds,
        "realistic day / full run": real_step.seconds / whole.seconds,
        "stress day / full run": day_step.seconds / whole.seconds,
    }
    if floor_cost:
        result.ratios["dbt build / dbt floor"] = result.step("dbt build").seconds / floor_cost["step_seconds"]
    if reference:
        result.ratios["full run / pandas reference"] = whole.seconds / reference["process_seconds"]
    costs = {"full run": full_cost, "realistic day": dbt_cost(real), "stress day": dbt_cost(day),
             DBT_FLOOR_LABEL: floor_cost}
    result.dbt_costs = {label: cost for label, cost in costs.items() if cost}
    # The warehouse's processes (each run: ingest, dbt, checks, psychometrics, with its worker) and
    # the floors measured in this one: the largest peak of any step. Not this process's
    # ru_maxrss, which also counts the generator (the reference's peak is on its own line).
    result.peak_rss_mb = max((s.peak_rss_mb or 0) for s in result.steps
                             if s.name not in ("generate", "pandas reference"))
    result.load_average = list(os.getloadavg())
    return result


def format_table(result: BenchResult) -> str:
    lines = [
        f"scale {result.scale:g} (seed {result.seed}): {result.files} files, {result.lines:,} lines, "
        f"{result.megabytes_compressed:,.1f} MB gzip, {result.megabytes_uncompressed:,.1f} MB uncompressed",
        f"{'step':<30}{'seconds':>9}{'CPU s':>8}{'peak MB':>9}{'rows/s':>12}{'MB/s':>8}  note",
    ]
    for s in result.steps:
        cpu = f"{s.cpu_seconds:,.1f}" if s.cpu_seconds is not None else "-"
        peak = f"{s.peak_rss_mb:,.0f}" if s.peak_rss_mb else "-"
        rps = f"{s.rows_per_second:,.0f}" if s.rows_per_second else "-"
        mbs = f"{s.mb_per_second:,.1f}" if s.mb_per_second else "-"
        lines.append(f"{s.name:<30}{s.seconds:>9.2f}{cpu:>8}{peak:>9}{rps:>12}{mbs:>8}  {s.note}")
    for name, value in result.ratios.items():
        lines.append(f"ratio {name:<30}{value:>8.2f}x")
    lines.append(f"peak resident memory          {result.peak_rss_mb:>8,.0f} MB (the largest step's; a run's processes together)")
    lines += [format_dbt_cost(label, cost) for label, cost in result.dbt_costs.items()]
    lines.append("load average (1, 5, 15 min)   " + ", ".join(f"{x:.2f}" for x in result.load_average))
    return "\n".join(lines)


GROWTH_STEPS = ("floor (scan)", "typed parse (read_json)", TYPED_LOAD, "ingest", "dbt build", DBT_FLOOR, "checks",
                "psychometrics", "run (whole)", "pandas reference", "realistic day run", "stress day run")


def format_growth(results: list[BenchResult]) -> str:
    """Seconds per step at each scale, and the marginal seconds per million extract lines
    between consecutive scales."""
    results = sorted(results, key=lambda r: r.scale)
    head = f"{'step':<26}" + "".join(f"{f'scale {r.scale:g}':>12}" for r in results)
    pairs = list(zip(results, results[1:]))
    head += "".join(f"{f's/M {a.scale:g}->{b.scale:g}':>16}" for a, b in pairs)
    lines = ["growth: seconds per step, and marginal seconds per million lines", head]
    for name in GROWTH_STEPS:
        steps = [r.step(name) for r in results]
        if not any(steps):
            continue
        row = f"{name:<26}" + "".join(f"{s.seconds:>12.2f}" if s else f"{'-':>12}" for s in steps)
        for a, b in pairs:
            sa, sb = a.step(name), b.step(name)
            if sa and sb and b.lines > a.lines:
                row += f"{(sb.seconds - sa.seconds) / ((b.lines - a.lines) / 1e6):>16.2f}"
            else:
                row += f"{'-':>16}"
        lines.append(row)
    lines.append(f"{'lines (millions)':<26}" + "".join(f"{r.lines / 1e6:>12.2f}" for r in results))
    lines.append(f"{'peak memory (MB)':<26}" + "".join(f"{r.peak_rss_mb:>12,.0f}" for r in results))
    return "\n".join(lines)


def step_colours() -> dict[str, str]:
    """A colour of its own for each step of the growth line (matplotlib's default cycle has
    10 colours, fewer than the steps: two steps drawn alike would be read as one)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    pairs = colormaps["tab20"].colors  # ten hues, each dark then light
    palette = pairs[0::2] + pairs[1::2]  # the ten dark ones first
    return {name: to_hex(palette[n]) for n, name in enumerate(GROWTH_STEPS)}


def draw_chart(results: list[BenchResult], out: Path) -> Path:
    """Seconds and peak memory per step against extract lines, one line per step (SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    results = sorted(results, key=lambda r: r.scale)
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(12, 5))
    x = [r.lines / 1e6 for r in results]
    colours = step_colours()
    for name in GROWTH_STEPS:
        points = [(xi, r.step(name)) for xi, r in zip(x, results) if r.step(name)]
        if not points:
            continue
        style = "--" if name.startswith(("floor", "typed")) or name == DBT_FLOOR else (":" if name == "pandas reference" else "-")
        time_axis.plot([p[0] for p in points], [p[1].seconds for p in points], style, marker="o", label=name,
                       color=colours[name])
        memory = [(p[0], p[1].peak_rss_mb) for p in points if p[1].peak_rss_mb]
        if memory:
            memory_axis.plot([m[0] for m in memory], [m[1] / 1024 for m in memory], style, marker="o", label=name,
                             color=colours[name])
    for axis, label in ((time_axis, "seconds"), (memory_axis, "peak resident memory (GB)")):
        axis.set_xlabel("extract lines (millions)")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        if len(x) > 1 and min(x) > 0:
            axis.set_xscale("log")
            axis.set_xticks(x, [f"{v:.3g}" for v in x])  # the scales' line counts, not 2x10^0
            axis.xaxis.set_minor_formatter(NullFormatter())
    time_axis.set_yscale("log")
    memory_axis.axhline(4, color="grey", linewidth=0.8)
    # at the panel's left edge whatever the scales (x in the axes' fraction, y in GB)
    memory_axis.text(0.01, 4, " 4 GB", va="bottom", color="grey", transform=memory_axis.get_yaxis_transform())
    # one legend for both panels, below them: inside a panel it hid the points it named
    handles, labels = time_axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    scales = ", ".join(f"{r.scale:g}" for r in results)
    figure.suptitle(f"bench: time and peak memory per step (scale{'s' if len(results) > 1 else ''} "
                    f"{scales}, seed {results[0].seed})")
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    figure.savefig(out, format="svg")
    plt.close(figure)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=float, nargs="+", default=DEFAULT_SCALES,
                        help="one or more scales (default %(default)s)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache-dir", type=Path, default=PROJECT_DIR / "data" / "bench")
    parser.add_argument("--json", help="a file for the figures, or a folder to write bench_scale_<S>.json in (default reports/); "
                        "the chart is written beside it (.svg)")
    parser.add_argument("--reference-max-scale", type=float, default=REFERENCE_MAX_SCALE,
                        help="run the pandas reference up to this scale (default %(default)g; "
                        "0: never)")


def output_path(json_arg: str | Path | None, scales: list[float]) -> Path:
    """Where the figures go: --json FILE, or bench_scale_<S>.json in --json DIR (default
    reports/): a folder that exists, or a name ending in a slash. Decided before the
    benchmark runs."""
    name = f"bench_scale_{'_'.join(f'{s:g}' for s in scales)}.json"
    if json_arg is None:
        return PROJECT_DIR / "reports" / name
    if Path(json_arg).is_dir() or str(json_arg).endswith(os.sep):
        return Path(json_arg) / name
    return Path(json_arg)


def main(args: argparse.Namespace) -> int:
    results = []
    out = output_path(args.json, args.scale)
    out.parent.mkdir(parents=True, exist_ok=True)
    for scale in args.scale:
        result = run_bench(scale, args.seed, args.cache_dir, args.cache_dir / "work", args.reference_max_scale)
        print(format_table(result), flush=True)
        print(flush=True)
        results.append(result)
        out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")  # after every scale
    if len(results) > 1:
        print(format_growth(results))
        print()
    chart = draw_chart(results, out.with_suffix(".svg"))
    print(f"figures written to {out}, chart to {chart}")
    return 0
