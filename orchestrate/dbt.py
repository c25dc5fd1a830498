"""dbt, driven in process through its programmatic API (one invocation at a time)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from orchestrate.warehouse import PROJECT_DIR

# dbt is not safe to invoke twice at once in one process.
_LOCK = threading.Lock()


def target_path() -> Path:
    return Path(os.environ.get("DBT_TARGET_PATH", PROJECT_DIR / "target"))


def invoke(args: list[str], target: str | None = None, callbacks: list | None = None):
    """Run one dbt command (e.g. ["build", "--select", "staging"]); return dbt's result.

    `callbacks` receive every dbt event as it happens (e.g. to print node completions)."""
    from dbt.cli.main import dbtRunner  # imported late: dbt is slow to import

    full = [*args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    if target:
        full += ["--target", target]
    with _LOCK:
        return dbtRunner(callbacks=callbacks or []).invoke(full)
