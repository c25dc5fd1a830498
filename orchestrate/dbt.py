"""dbt, driven in process through its programmatic API (one invocation at a time)."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

import yaml

from orchestrate.errors import UserError
from orchestrate.warehouse import PROJECT_DIR, duckdb_path

# dbt is not safe to invoke twice at once in one process.
_LOCK = threading.Lock()


def adapter_type(target: str) -> str:
    """The adapter a profiles.yml target uses (duckdb, snowflake)."""
    profiles = yaml.safe_load((PROJECT_DIR / "profiles.yml").read_text(encoding="utf-8"))
    outputs = next(iter(profiles.values()))["outputs"]
    if target not in outputs:
        raise UserError(f"unknown target {target!r}: profiles.yml has {', '.join(outputs)}")
    return outputs[target]["type"]


def target_path(target: str | None = None) -> Path:
    """Where dbt keeps its artifacts (manifest.json, run_results.json, partial parsing):
    $DBT_TARGET_PATH, else one folder per warehouse under target/, so that switching
    DBT_DUCKDB_PATH (or the Snowflake account, database or schema prefix) never reads
    another warehouse's manifest: target/<DuckDB file name>-<hash of its path>, or
    target/snowflake-<account>-<database>[-<prefix>]."""
    if os.environ.get("DBT_TARGET_PATH"):
        return Path(os.environ["DBT_TARGET_PATH"])
    target = target or os.environ.get("DBT_TARGET", "dev")
    if adapter_type(target) == "duckdb":
        db = duckdb_path().resolve()
        name = f"{db.stem}-{hashlib.sha256(str(db).encode()).hexdigest()[:8]}"
    else:
        parts = ["snowflake", *(os.environ.get(v, "").strip() for v in
                                ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_DATABASE", "DBT_SCHEMA_PREFIX"))]
        name = "-".join(re.sub(r"[^a-z0-9_.]+", "_", p.lower()) for p in parts if p)
    return PROJECT_DIR / "target" / name


def invoke(args: list[str], target: str | None = None, callbacks: list | None = None):
    """Run one dbt command (e.g. ["build", "--select", "staging"]); return dbt's result.

    `callbacks` receive every dbt event as it happens (e.g. to print node completions)."""
    from dbt.cli.main import dbtRunner  # imported late: dbt is slow to import

    full = [*args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(target_path(target))]
    if target:
        full += ["--target", target]
    with _LOCK:
        return dbtRunner(callbacks=callbacks or []).invoke(full)
