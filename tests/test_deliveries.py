"""Ingest against what real replication jobs and file copies deliver (issue 12).

Each test writes a small delivery, ingests it with the CLI in a subprocess and checks the
exit status, the message, the raw and quarantine counts, and that nothing loaded before
changed. Conditions a test cannot create on this machine are skipped with the reason.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zlib
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from conftest import PROJECT_DIR, change, run_cli, table_fingerprints, warehouse_env, write_extract

DAY1 = datetime(2024, 9, 3)
DAY2 = datetime(2024, 9, 4)
DAY3 = datetime(2024, 9, 5)
LAYOUT = "<extracts>/<table>/<table>__<start>__<end>__<part>.ndjson.gz"


def answers(first_seq: int, n: int, ts: str = "2024-09-03T10:00:00.000Z") -> list[str]:
    return [change("c", first_seq + i, ts, response_id=f"r{first_seq + i}", question_id="q1",
                   value=(first_seq + i) % 5 + 1) for i in range(n)]


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def counts(db: Path) -> dict[str, int]:
    """Raw answers, quarantined lines and ledger rows."""
    return dict(zip(("raw", "quarantined", "ledger"), query(db, (
        "select (select count(*) from raw.question_responses), "
        "(select count(*) from raw.quarantined_lines), (select count(*) from raw.ingest_ledger)"
    ))[0]))


def last_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.strip().splitlines()[-1]


def assert_refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2, no traceback, and the last line names what happened and what to do."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "cannot rollback" not in proc.stderr, proc.stderr
    text = proc.stdout + proc.stderr
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"
    return last_line(proc)


@pytest.fixture
def loaded(tmp_path, warehouse) -> tuple[Path, Path, dict]:
    """A delivery of 2,000 answers (day 1) already ingested: extracts folder, warehouse
    file, and the warehouse's fingerprints after it."""
    extracts = tmp_path / "extracts"
    write_extract(extracts, "question_responses", DAY1, answers(1, 2_000))
    run_cli("ingest", "--extracts", str(extracts), check=True)
    return extracts, warehouse, table_fingerprints(warehouse)


# --------------------------------------------------------------------------------------
# A file is loaded whole or not at all


def gzip_bytes(lines: list[str], level: int = 9, mtime: int = 0) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=level, mtime=mtime)


BROKEN = {
    # a copy cut short: the gzip stream stops part way
    "truncated": (lambda good: good[: len(good) // 2], "ends before the end of its gzip stream"),
    # bytes damaged in the middle
    "corrupt": (lambda good: good[:200] + bytes(b ^ 0xFF for b in good[200:400]) + good[400:],
                "not a readable gzip stream"),
    # an empty file: not even a gzip header
    "zero bytes": (lambda good: b"", "empty file (0 bytes)"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_file_that_cannot_be_read_to_its_end_is_refused_then_loads_when_complete(loaded, kind):
    extracts, db, before = loaded
    lines = answers(5_001, 3_000, "2024-09-04T10:00:00.000Z")
    good = gzip_bytes(lines)
    path = write_extract(extracts, "question_responses", DAY2, [])
    cut, reason = BROKEN[kind]
    path.write_bytes(cut(good))

    proc = run_cli("ingest", "--extracts", str(extracts))
    last = assert_refused(proc, path.name, reason)
    assert "complete copy" in last  # what to do
    assert table_fingerprints(db) == before  # nothing loaded, nothing recorded
    assert counts(db) == {"raw": 2_000, "quarantined": 0, "ledger": 1}

    path.write_bytes(good)  # the good copy arrives under the same name
    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 1 new files (3000 rows, 0 lines quarantined)" in proc.stdout
    assert counts(db) == {"raw": 5_000, "quarantined": 0, "ledger": 2}


def test_a_file_of_several_gzip_members_loads_every_line_of_each(tmp_path, warehouse):
    """gzip allows members one after another (`cat a.gz b.gz`, a writer that appends): the
    file is read to its end through each member, and every line loads with its number."""
    extracts = tmp_path / "extracts"
    path = write_extract(extracts, "question_responses", DAY1, [])
    first, second = answers(1, 1_500), answers(1_501, 700)
    path.write_bytes(gzip_bytes(first) + gzip_bytes(second, level=1, mtime=1_700_000_000))

    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 1 new files (2200 rows, 0 lines quarantined)" in proc.stdout
    assert query(warehouse, "select count(*), min(_source_line), max(_source_line), "
                            "count(distinct _source_line), max(_seq) from raw.question_responses"
                 ) == [(2_200, 1, 2_200, 2_200, 2_200)]
    # its content is every member's: a one-member copy of the same lines is the same file
    whole = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    assert query(warehouse, "select line_count, rows_loaded, content_sha256 from raw.ingest_ledger"
                 ) == [(2_200, 2_200, whole)]
    copy = path.with_name(path.name.replace("__0000.", "__0001."))
    copy.write_bytes(gzip_bytes(first + second))
    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 0 new files" in proc.stdout and f"same content as {path.name}" in proc.stderr


def gzip_member(data: bytes, name: bytes = b"", comment: bytes = b"", header_crc: bool = False) -> bytes:
    """One gzip member with the optional header fields some writers add (RFC 1952):
    a file name, a comment, a CRC of the header."""
    flags = (8 if name else 0) | (16 if comment else 0) | (2 if header_crc else 0)
    header = b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", 0) + b"\x00\xff"
    header += (name + b"\x00" if name else b"") + (comment + b"\x00" if comment else b"")
    if header_crc:
        header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflater.compress(data) + deflater.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data))


@pytest.mark.parametrize("fields", [{}, {"name": b"part.ndjson"},
                                    {"name": b"part.ndjson", "comment": b"written by job 7"},
                                    {"header_crc": True}])
def test_a_member_header_cut_by_a_read_is_read_whole(tmp_path, monkeypatch, fields):
    """The examining pass reads files in pieces: a later member's header, with whatever
    optional fields it has, falls across two pieces at some offset, and the file must still
    read to its end with every line (checked against Python's gzip module)."""
    from orchestrate import ingest

    first, second = ("\n".join(answers(1, 40)) + "\n").encode(), ("\n".join(answers(41, 30)) + "\n").encode()
    blob = gzip_member(first) + gzip_member(second, **fields)
    expected = gzip.decompress(blob)
    path = tmp_path / "file.ndjson.gz"
    path.write_bytes(blob)
    for piece in range(1, 40):  # every cut through the second member's header, and more
        monkeypatch.setattr(ingest, "CHUNK", piece)
        found = ingest.read_to_end(path)
        assert found.problem is None, (piece, found.problem)
        assert (found.content_sha256, found.size) == (hashlib.sha256(expected).hexdigest(), len(expected)), piece


# --------------------------------------------------------------------------------------
# Redelivery recognised by content


def test_a_recompressed_copy_under_a_new_name_is_skipped(loaded):
    extracts, db, before = loaded
    original = next((extracts / "question_responses").iterdir())
    copy = original.with_name(original.name.replace("__0000.", "__0001."))
    copy.write_bytes(gzip_bytes(answers(1, 2_000), level=1, mtime=1_700_000_000))
    assert copy.read_bytes() != original.read_bytes()

    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 0 new files" in proc.stdout and "skipped 2 already loaded" in proc.stdout
    assert f"{copy.name}" in proc.stderr and f"same content as {original.name}" in proc.stderr
    assert table_fingerprints(db) == before
    assert counts(db) == {"raw": 2_000, "quarantined": 0, "ledger": 1}


def test_a_recompressed_copy_under_the_same_name_is_not_called_altered(loaded):
    extracts, db, before = loaded
    original = next((extracts / "question_responses").iterdir())
    original.write_bytes(gzip_bytes(answers(1, 2_000), level=1, mtime=1_700_000_000))

    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 0 new files" in proc.stdout and "skipped 1 already loaded" in proc.stdout
    assert "different content" not in proc.stderr
    assert table_fingerprints(db) == before


def test_a_warehouse_from_before_content_hashes_keeps_working(loaded):
    """Ledgers written before the content hash existed: the column is added, files seen
    again get their hash, and a recompressed copy is then recognised."""
    extracts, db, _ = loaded
    # the versions before also loaded what they could of a file cut short, as if whole
    cut = write_extract(extracts, "question_responses", DAY3, [])
    cut.write_bytes(gzip_bytes(answers(8_001, 3_000))[:4_000])
    con = duckdb.connect(str(db))
    con.execute("alter table raw.ingest_ledger drop column content_sha256")
    con.execute("insert into raw.ingest_ledger select ?, table_name, interval_start, interval_end, part, "
                "?, size_bytes, 0, 0, 0, loaded_at from raw.ingest_ledger",
                [cut.name, hashlib.sha256(cut.read_bytes()).hexdigest()])
    con.close()
    write_extract(extracts, "question_responses", DAY2, answers(5_001, 10, "2024-09-04T10:00:00Z"))
    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 1 new files (10 rows" in proc.stdout and "skipped 2 already loaded" in proc.stdout
    assert query(db, "select count(*) from raw.ingest_ledger where content_sha256 is not null") == [(2,)]
    cut.unlink()

    original = sorted((extracts / "question_responses").iterdir())[0]
    copy = original.with_name(original.name.replace("__0000.", "__0001."))
    copy.write_bytes(gzip_bytes(answers(1, 2_000), level=1))
    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 0 new files" in proc.stdout
    assert counts(db) == {"raw": 2_010, "quarantined": 0, "ledger": 3}


# --------------------------------------------------------------------------------------
# _seq strictly increasing per table; _ts in UTC


def quarantined(db: Path) -> list[tuple]:
    return query(db, "select source_file, line_number, reason, line from raw.quarantined_lines "
                     "order by source_file, line_number")


def test_a_line_repeated_in_a_file_is_loaded_once_and_the_repeat_quarantined(tmp_path, warehouse):
    extracts = tmp_path / "extracts"
    lines = answers(1, 100)
    lines.insert(50, lines[10])  # line 51 repeats line 11 (_seq 11)
    path = write_extract(extracts, "question_responses", DAY1, lines)

    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 1 new files (100 rows, 1 lines quarantined)" in proc.stdout
    assert quarantined(warehouse) == [
        (path.name, 51, f"duplicate _seq 11: already loaded from {path.name} line 11", lines[10])]
    assert query(warehouse, "select count(*), count(distinct _seq) from raw.question_responses") == [(100, 100)]
    assert query(warehouse, "select line_count, rows_loaded, lines_quarantined from raw.ingest_ledger") == [
        (101, 100, 1)]


def test_a_seq_loaded_before_is_quarantined_and_the_first_loaded_change_stays(loaded):
    extracts, db, _ = loaded
    first = next((extracts / "question_responses").iterdir()).name
    rows_before = query(db, "select * from raw.question_responses order by _seq")
    # day 2 repeats _seq 7 with another value (a tie in current state if both loaded);
    # days 2 and 3, new together, both carry _seq 3_000: the earlier interval's line wins
    day2 = [change("u", 7, "2024-09-04T10:00:00Z", response_id="r7", question_id="q1", value=1),
            *answers(3_000, 5, "2024-09-04T11:00:00Z")]
    day3 = [change("u", 3_000, "2024-09-05T10:00:00Z", response_id="r3000", question_id="q1", value=2),
            *answers(4_000, 5, "2024-09-05T11:00:00Z")]
    p2 = write_extract(extracts, "question_responses", DAY2, day2)
    p3 = write_extract(extracts, "question_responses", DAY3, day3)

    # one file per transaction: the second file's check sees the first file committed
    for batch_mb in ("64", "0.0001"):
        fresh = db.with_name(f"fresh_{batch_mb}.duckdb")
        shutil.copy2(db, fresh)
        proc = run_cli("ingest", "--extracts", str(extracts), "--batch-mb", batch_mb,
                       env={"DBT_DUCKDB_PATH": str(fresh)}, check=True)
        assert "ingested 2 new files (10 rows, 2 lines quarantined)" in proc.stdout, proc.stdout
        assert [(f, n, r) for f, n, r, _ in quarantined(fresh)] == [
            (p2.name, 1, f"duplicate _seq 7: already loaded from {first} line 7"),
            (p3.name, 1, f"duplicate _seq 3000: already loaded from {p2.name} line 2"),
        ]
        # what was loaded before is unchanged; _seq 7 is still the first change
        assert query(fresh, f"select * from raw.question_responses where _source_file = '{first}' "
                            "order by _seq") == rows_before
        assert query(fresh, "select _seq, count(*) from raw.question_responses "
                            "group by _seq having count(*) > 1") == []
        assert query(fresh, "select value from raw.question_responses where _seq = 7") == [("3",)]
        assert counts(fresh) == {"raw": 2_010, "quarantined": 2, "ledger": 3}


def test_ts_without_a_zone_is_read_as_utc_never_in_local_time(tmp_path, warehouse):
    extracts = tmp_path / "extracts"
    write_extract(extracts, "districts", DAY1, [
        change("c", 1, "2024-09-03T10:00:00", district_id="d1", name="No zone", state="WA"),
        change("c", 2, "2024-09-03T10:00:00.250+02:00", district_id="d2", name="Offset", state="WA"),
        change("c", 3, "2024-09-03T10:00:00Z", district_id="d3", name="Zulu", state="WA"),
        change("c", 4, "2024-09-03 10:00:00-05", district_id="d4", name="Space", state="WA"),
    ])
    proc = run_cli("ingest", "--extracts", str(extracts), env={"TZ": "America/New_York"}, check=True)
    assert "0 lines quarantined" in proc.stdout
    assert query(warehouse, "select district_id, strftime(_ts, '%H:%M:%S.%g') from raw.districts "
                            "order by _seq") == [
        ("d1", "10:00:00.000"), ("d2", "08:00:00.250"), ("d3", "10:00:00.000"), ("d4", "15:00:00.000")]


# --------------------------------------------------------------------------------------
# Lines of any length; files not renamed yet; unknown folders and stray files


def test_a_line_longer_than_2_mb_loads(tmp_path, warehouse):
    extracts = tmp_path / "extracts"
    long_text = "x" * (3 * 1024 * 1024)
    lines = [*answers(1, 10), change("c", 11, response_id="r11", question_id="q_open", value=long_text),
             *answers(12, 10)]
    write_extract(extracts, "question_responses", DAY1, lines)
    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 1 new files (21 rows, 0 lines quarantined)" in proc.stdout
    assert query(warehouse, "select strlen(value) from raw.question_responses where _seq = 11") == [
        (len(long_text),)]
    assert query(warehouse, "select max(_source_line) from raw.question_responses") == [(21,)]


def test_files_not_renamed_yet_are_ignored_and_listed_as_waiting(loaded):
    extracts, db, before = loaded
    final = write_extract(extracts, "question_responses", DAY2, answers(5_001, 10, "2024-09-04T10:00:00Z"))
    good = final.read_bytes()
    final.unlink()
    waiting = [final.with_name(final.name + ".tmp"), final.with_name(final.name + ".partial"),
               final.with_name("." + final.name)]
    for path in waiting:
        path.write_bytes(good[: len(good) // 2])  # still being written

    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 0 new files" in proc.stdout
    for path in waiting:
        assert path.name in proc.stdout + proc.stderr
    assert "3 files waiting" in proc.stdout + proc.stderr
    assert table_fingerprints(db) == before

    final.write_bytes(good)  # the writer renames it into place
    for path in waiting:
        path.unlink()
    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    assert "ingested 1 new files (10 rows" in proc.stdout and "waiting" not in proc.stdout + proc.stderr
    assert counts(db) == {"raw": 2_010, "quarantined": 0, "ledger": 2}


def test_unknown_table_folders_and_stray_files_are_named_in_a_warning(loaded):
    extracts, db, before = loaded
    (extracts / "grades").mkdir()
    (extracts / "grades" / "grades__20240904T000000Z__20240905T000000Z__0000.ndjson.gz").write_bytes(
        gzip_bytes(['{"_op":"c","_ts":"2024-09-04T10:00:00Z","_seq":1,"grade_id":"g1"}']))
    (extracts / "notes.txt").write_text("delivered by hand\n")
    (extracts / "question_responses" / "old").mkdir()

    proc = run_cli("ingest", "--extracts", str(extracts), check=True)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    text = "\n".join(warnings)
    assert "grades" in text and "not a table of the contract" in text
    assert "notes.txt" in text and str(extracts / "question_responses" / "old") in text
    assert "ingested 0 new files" in proc.stdout
    assert table_fingerprints(db) == before


@pytest.mark.parametrize("where", ["empty folder", "parent folder", "a table's folder"])
def test_a_folder_without_table_folders_says_so(loaded, tmp_path, where):
    extracts, db, before = loaded
    (tmp_path / "empty").mkdir()
    folder = {"empty folder": tmp_path / "empty", "parent folder": tmp_path,
              "a table's folder": extracts / "question_responses"}[where]
    proc = run_cli("ingest", "--extracts", str(folder))
    last = assert_refused(proc, str(folder), LAYOUT)
    assert "--extracts" in last
    assert "ingested 0 new files" not in proc.stdout
    assert table_fingerprints(db) == before


# --------------------------------------------------------------------------------------
# Errors a person can act on: one line saying what happened and what to do, exit 2


def private_mount_available() -> bool:
    """A tmpfs in a private mount namespace (unshare -rm): a real full or read-only file
    system without touching the machine's mounts."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs "
                            "-o size=1m tmpfs $d"], capture_output=True)
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not private_mount_available(),
                                 reason="unshare -rm with a tmpfs is not allowed here")


def in_private_mount(mount: Path, size: str, script: str, env: dict) -> subprocess.CompletedProcess:
    """Run a shell script with a tmpfs of `size` mounted at `mount` (private namespace);
    $INGEST runs the ingest CLI. The mount's content is copied to mount/../after/ at the
    end, for the test to inspect."""
    mount.mkdir(parents=True, exist_ok=True)
    after = mount.parent / "after"
    ingest = f"{sys.executable} -m orchestrate ingest --quiet"
    full = (f"set -u; mount -t tmpfs -o size={size} tmpfs {mount} || exit 99; INGEST='{ingest}'; "
            f"{script}; status=$?; mkdir -p {after}; cp -a {mount}/. {after}/; exit $status")
    return subprocess.run(["unshare", "-rm", "sh", "-c", full], cwd=PROJECT_DIR, capture_output=True,
                          text=True, env={**os.environ, **env})


FILE_SYSTEMS = {
    # a tmpfs too small for the second delivery: full while loading it...
    "full disk": ("2m", "", 300_000, "No space left on device", ("full", "free")),
    # ... or only when committing it (the write-ahead log; with DuckDB 1.5 at this size),
    # where the failed commit had hidden behind "cannot rollback - no transaction is active"
    "full disk at commit": ("2m", "", 20_000, "No space left on device", ("full", "free")),
    # the warehouse's file system remounted read-only between the two deliveries
    "read-only": ("64m", "mount -o remount,ro {disk} && ", 20, "Read-only file system",
                  ("read-only", "DBT_DUCKDB_PATH")),
}


@needs_mount
@pytest.mark.parametrize("condition", list(FILE_SYSTEMS))
def test_a_full_or_read_only_file_system_is_an_error_with_what_to_do(tmp_path, condition):
    size, between, second_lines, words, todo = FILE_SYSTEMS[condition]
    disk = tmp_path / "disk"
    env = warehouse_env(disk)
    day1, day2 = tmp_path / "day1", tmp_path / "day2"
    write_extract(day1, "question_responses", DAY1, answers(1, 2_000))
    write_extract(day2, "question_responses", DAY2, answers(10_001, second_lines, "2024-09-04T10:00:00Z"))
    proc = in_private_mount(
        disk, size,
        f"$INGEST --extracts {day1} || exit 98; cp {env['DBT_DUCKDB_PATH']} {tmp_path}/before.duckdb; "
        f"{between.format(disk=disk)}$INGEST --extracts {day2}",
        env)
    assert proc.returncode not in (98, 99), proc.stderr  # the set-up worked
    last = assert_refused(proc, words, env["DBT_DUCKDB_PATH"])
    assert all(word in last for word in todo), last
    assert table_fingerprints(tmp_path / "after" / "warehouse.duckdb") == table_fingerprints(
        tmp_path / "before.duckdb")


def test_a_warehouse_locked_by_another_program_is_an_error_with_what_to_do(loaded):
    extracts, db, before = loaded
    write_extract(extracts, "question_responses", DAY2, answers(5_001, 10, "2024-09-04T10:00:00Z"))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        proc = run_cli("ingest", "--extracts", str(extracts))
    finally:
        holder.kill()
        holder.wait()
    last = assert_refused(proc, "in use by another process")
    assert "close the program holding it" in last.lower() or "try again" in last
    assert table_fingerprints(db) == before


def without_root_privileges() -> list[str]:
    """A command prefix under which file permissions apply: root (as tests run here)
    passes every permission check, so as root the child drops the capabilities that
    override them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH); any other user needs nothing."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be denied")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.parametrize("what", ["warehouse folder", "extracts folder", "extract file"])
def test_missing_permission_is_an_error_with_what_to_do(tmp_path, warehouse, what):
    extracts = tmp_path / "extracts"
    path = write_extract(extracts, "question_responses", DAY1, answers(1, 10))
    denied = {"warehouse folder": warehouse.parent / "readonly",
              "extracts folder": extracts / "question_responses", "extract file": path}[what]
    env = {"DBT_DUCKDB_PATH": str(denied / "warehouse.duckdb")} if what == "warehouse folder" else {}
    if what == "warehouse folder":
        denied.mkdir()
    denied.chmod(0o555 if what == "warehouse folder" else 0)
    try:
        proc = subprocess.run([*without_root_privileges(), sys.executable, "-m", "orchestrate", "ingest",
                               "--extracts", str(extracts)],
                              cwd=PROJECT_DIR, env={**os.environ, **env}, capture_output=True, text=True)
    finally:
        denied.chmod(0o755)
    last = assert_refused(proc, "Permission denied", str(denied))
    assert "permission" in last
    db = Path(env.get("DBT_DUCKDB_PATH", warehouse))
    assert not db.exists() or all(rows == 0 for rows, _ in table_fingerprints(db).values())


def test_a_missing_extracts_folder_is_an_error_with_what_to_do(tmp_path, warehouse):
    proc = run_cli("ingest", "--extracts", str(tmp_path / "nowhere"))
    last = assert_refused(proc, str(tmp_path / "nowhere"))
    assert "--extracts" in last and "no such folder" in last
