"""The run's second process (`python -m orchestrate.worker`): the slow imports, and the
work that needs them, off the run's own process.

A run needs great-expectations (about 5 s of one core to import) for its checks and
scipy with semopy (2-3 s) for its psychometric models, both after its build. `run` starts
this process first thing, so those imports happen on the second core while the run
ingests and dbt parses and builds, at small scales mostly one core's work, and the run's
own process never imports them. great-expectations is imported first when a suite will
validate (the checks come first), then scipy and semopy; requests are answered once both
are in (one thread: nothing is imported while a request is read or worked on).

The run sends one request at a time, pickled over a pipe with its length before it, and
waits for its answer:
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
        self.unavailable: set[str] = set()  # kinds of work it cannot do (an import failed)

    def call(self, kind: str, *args) -> Any:
        """The answer to one request; None when the process has failed (or cannot do that
        kind of work, or the request cannot be pickled): the caller then does it in its
        own process."""
        if not self.alive or kind in self.unavailable:
            return None
        try:
            request = pickle.dumps((kind, args), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # not the process's failure: it stays for the next request
            return None
        try:
            self.proc.stdin.write(len(request).to_bytes(8, "little"))
            self.proc.stdin.write(request)
            self.proc.stdin.flush()
            status, value = pickle.load(self.proc.stdout)
        except Exception:  # a broken pipe, a truncated answer: it died
            self.close()
            return None
        if status == "unavailable":  # its import failed: the run's process does this work
            self.unavailable.add(kind)
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


def _import_analysis(state: dict) -> None:
    import semopy  # noqa: F401

    from orchestrate import psychometrics, sem  # noqa: F401  (scipy)


def _validate(state: dict, suite, rows) -> list[dict]:
    from orchestrate import checks

    if "gx" not in state:
        _import_validation(state)
    return checks._validate(state["gx"], suite, rows)


def _analyse(state: dict, frame, topics, min_n: int, min_group_n: int) -> dict:
    from orchestrate import psychometrics

    return psychometrics.fit_unit(frame, topics, min_n, min_group_n)


WORK = {"validate": (_validate, _import_validation), "analyse": (_analyse, _import_analysis)}


def serve(validate: bool, analyse: bool) -> None:
    """Import what was asked, then answer each request read from stdin on stdout, until
    the end of the input. A kind whose import failed answers ("unavailable", why)."""
    answers = os.fdopen(os.dup(1), "wb")  # the pipe to the run, for answers only:
    os.dup2(2, 1)  # anything printed goes to stderr instead
    requests = sys.stdin.buffer
    state: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for kind, asked in (("validate", validate), ("analyse", analyse)):
        if asked:
            try:
                WORK[kind][1](state)
            except Exception as exc:
                unavailable[kind] = f"{type(exc).__name__}: {exc}"
    while True:
        header = requests.read(8)
        request = requests.read(int.from_bytes(header, "little")) if len(header) == 8 else b""
        if not request:
            return  # the end of the input: the run is done
        try:
            kind, args = pickle.loads(request)
        except Exception as exc:  # not readable here: the run's process does the work
            answer: tuple = ("unavailable", f"request unreadable: {type(exc).__name__}: {exc}")
        else:
            answer = _answer(state, unavailable, kind, args)
        pickle.dump(answer, answers)
        answers.flush()


def _answer(state: dict, unavailable: dict, kind: str, args: tuple) -> tuple[str, Any]:
    if kind in unavailable or kind not in WORK:
        return ("unavailable", unavailable.get(kind, f"no such work: {kind}"))
    try:
        return ("ok", WORK[kind][0](state, *args))
    except UserError as exc:
        return ("user_error", str(exc))
    except ImportError as exc:
        return ("unavailable", f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        return ("error", f"{type(exc).__name__}: {exc}")


def main(argv: list[str]) -> None:
    try:
        serve(validate="--validate" in argv, analyse="--analyse" in argv)
    except KeyboardInterrupt:  # Ctrl-C reaches the run's whole process group: the run reports it
        pass


if __name__ == "__main__":
    from orchestrate.worker import main as _main  # pickles name orchestrate.worker, not __main__

    _main(sys.argv[1:])
