"""The run's second process (`python -m orchestrate.worker`): the slow imports, and the
work that needs them, off the run's own process.

A run needs great-expectations (about 5 s of one core to import) for its checks and
scipy with semopy (2-3 s) for its psychometric models, both after its build. `run` starts
this process first thing, so those imports happen on the second core while the run
ingests and dbt parses and builds, at small scales mostly one core's work, and the run's
own process never imports them. great-expectations is imported first when a suite will
validate (the checks come first), then scipy and semopy in a thread, while the process
already answers.

The run sends one request at a time, pickled over a pipe, and waits for its answer:
- ("validate", suite, rows): the suite's results (checks.run_expectations);
- ("analyse", frame, topics, min_n, min_group_n): one school year x respondent type's
  psychometric tables (psychometrics.compute_and_write).
When the process has failed (an import error, a crash, an answer that cannot be read),
`alive` turns false and `call` returns None: the caller does the work in the run's own
process, as it did before this process existed, where any error is reported. An error
of the work itself is raised in the run: a UserError (a malformed expectation) as
UserError, any other as WorkError ("<type>: <message>").
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from orchestrate.errors import UserError


class WorkError(Exception):
    """What a request raised in the worker's process, as "<type>: <message>"."""


class Worker:
    """The run's second process. `validate`: import great-expectations (first); `analyse`:
    import scipy and semopy."""

    def __init__(self, validate: bool = False, analyse: bool = False):
        flags = (["--validate"] if validate else []) + (["--analyse"] if analyse else [])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrate.worker", *flags], cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.alive = True
        self.answered = {"validate": 0, "analyse": 0}  # requests it answered, by kind

    def call(self, kind: str, *args) -> Any:
        """The answer to one request; None when the process has failed (or cannot do that
        kind of work): the caller then does it in its own process."""
        if not self.alive:
            return None
        try:
            pickle.dump((kind, args), self.proc.stdin)
            self.proc.stdin.flush()
            status, value = pickle.load(self.proc.stdout)
        except Exception:  # a broken pipe, a truncated answer: it died
            self.close()
            return None
        if status == "unavailable":  # its import failed: the run's process does this work
            return None
        self.answered[kind] += 1
        if status == "ok":
            return value
        if status == "user_error":
            raise UserError(value)
        raise WorkError(value)

    def close(self) -> None:
        """End the process now, whatever it is doing (it keeps no state: an import still
        under way would otherwise hold the run's end for seconds)."""
        self.alive = False
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def start(validate: bool, analyse: bool) -> Worker | None:
    """A worker for the run, None when no process can be had (the run then does
    everything itself)."""
    try:
        return Worker(validate=validate, analyse=analyse)
    except OSError:
        return None


# --------------------------------------------------------------------------------------
# The worker's process


def _import_validation(state: dict) -> None:
    from orchestrate import checks

    state["gx"] = checks._gx_context()


def _import_analysis() -> None:
    from orchestrate import psychometrics, sem  # noqa: F401  (scipy)
    import semopy  # noqa: F401


def _validate(state: dict, suite, rows) -> list[dict]:
    from orchestrate import checks

    if "gx" not in state:
        _import_validation(state)
    return checks._validate(state["gx"], suite, rows)


def _analyse(state: dict, frame, topics, min_n: int, min_group_n: int) -> dict:
    from threadpoolctl import threadpool_limits

    from orchestrate import psychometrics

    with threadpool_limits(1, user_api="blas"):  # as in the run's process: small matrices
        return psychometrics.analyse_instrument(frame, topics, min_n=min_n, min_group_n=min_group_n)


WORK = {"validate": _validate, "analyse": _analyse}


def serve(validate: bool, analyse: bool) -> None:
    """Import what was asked, then answer each request read from stdin on stdout, until
    the end of the input. A kind whose import failed answers ("unavailable", why)."""
    answers = os.fdopen(os.dup(1), "wb")  # the pipe to the run, for answers only:
    os.dup2(2, 1)  # anything printed goes to stderr instead
    requests = sys.stdin.buffer
    state: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    if validate:
        try:
            _import_validation(state)
        except Exception as exc:
            unavailable["validate"] = f"{type(exc).__name__}: {exc}"
    if analyse:  # while the process already answers
        threading.Thread(target=_import_quietly, args=(unavailable,), daemon=True).start()
    while True:
        try:
            kind, args = pickle.load(requests)
        except EOFError:
            return
        if kind in unavailable or kind not in WORK:
            answer = ("unavailable", unavailable.get(kind, f"no such work: {kind}"))
        else:
            try:
                answer = ("ok", WORK[kind](state, *args))
            except UserError as exc:
                answer = ("user_error", str(exc))
            except ImportError as exc:
                answer = ("unavailable", f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                answer = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(answer, answers)
        answers.flush()


def _import_quietly(unavailable: dict) -> None:
    try:
        _import_analysis()
    except Exception as exc:
        unavailable["analyse"] = f"{type(exc).__name__}: {exc}"


def main(argv: list[str]) -> None:
    try:
        serve(validate="--validate" in argv, analyse="--analyse" in argv)
    except KeyboardInterrupt:  # Ctrl-C reaches the run's whole process group: the run reports it
        pass


if __name__ == "__main__":
    from orchestrate.worker import main as _main  # pickles name orchestrate.worker, not __main__

    _main(sys.argv[1:])
