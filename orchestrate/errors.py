"""Errors a person can act on: the message says what failed, where, and what to do."""

from __future__ import annotations

import errno


class UserError(RuntimeError):
    """Printed without a traceback; the command exits with status 2."""


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM: the command stops where it is. str() names the signal."""


# The signal that stopped this process (__main__.stop_on_signals), once one has: code that
# hears of the stop second-hand (dbt ends with the error of a connection it closed when it
# cancelled its queries) knows it was an interruption.
signal_received: str | None = None


# File-system conditions a person can fix: (errno values, words in DuckDB's messages, which
# carry no errno), what happened, what to do.
_CONDITIONS = (
    ((errno.ENOSPC, errno.EDQUOT, errno.EFBIG),
     ("No space left on device", "Disk quota exceeded", "File too large"),
     "the disk is full",
     "free space on that disk, or point DBT_DUCKDB_PATH and DUCKDB_TEMP_DIRECTORY at a disk "
     "with room, then run again"),
    ((errno.EROFS,), ("Read-only file system",),
     "the file system is read-only",
     "make it writable, or point DBT_DUCKDB_PATH (and DUCKDB_TEMP_DIRECTORY, --reports-dir) at "
     "a writable place, then run again"),
    ((errno.EACCES, errno.EPERM), ("Permission denied", "Operation not permitted"),
     "permission denied",
     "give this user permission to read that path (and to write, for the warehouse, its "
     "folder and reports), or run as a user who has it, then run again"),
)


def explain(exc: BaseException) -> UserError | None:
    """A full disk, a read-only file system or a missing permission, as one line saying
    what happened (with the system's own words, naming the path) and what to do; None for
    anything else."""
    if not isinstance(exc, Exception):
        return None
    code = getattr(exc, "errno", None)
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    for codes, words, what, todo in _CONDITIONS:
        if code in codes or any(word in text for word in words):
            return UserError(f"{what} ({text}): {todo}.")
    return None
