"""`orchestrate <command>` (or `python -m orchestrate <command>`): one subcommand per module."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import traceback

from orchestrate import errors
from orchestrate.errors import Interrupted, UserError, explain

# command -> (module, help). Each module has add_arguments(parser) and main(args) -> int.
COMMANDS = {
    "generate": ("orchestrate.generate", "write a deterministic sample set of replica extracts"),
    "ingest": ("orchestrate.ingest", "load new extract files into the raw schema, exactly once"),
    "suggest-mappings": ("orchestrate.suggest", "suggest canonical items for unmapped questions, for review"),
    "run": ("orchestrate.run", "ingest, build, check and report: the whole warehouse job"),
    "retry": ("orchestrate.retry", "re-run what failed in the last run, then check and report again"),
    "bench": ("orchestrate.bench", "measure generate, ingest, build and run against the bare scan"),
    "lookml": ("orchestrate.lookml", "write the Looker project (lookml/) and dbt exposures from the marts"),
    "psychometrics": ("orchestrate.psychometrics", "reliability, factor models and invariance of every topic, to marts"),
    "research-report": ("orchestrate.research_report", "one self-contained HTML reliability and validity report per instrument"),
    "check-seeds": ("orchestrate.seed_check", "check crosswalk and item-bank seeds in a second, no warehouse needed"),
    "pr-check": ("orchestrate.pr_check", "build and test what a pull request changes against production, then diff the marts"),
    "lint": ("orchestrate.lint", "sqlfluff on the models changed since main (or --all): path:line findings"),
}


def stop_on_signals() -> None:
    """SIGINT and SIGTERM raise Interrupted in the main thread, once: the command stops
    where it is (an ingest batch rolls back, dbt cancels its queries, `run` records the
    run as interrupted); a second signal while it winds up is ignored."""

    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # dbt's console logger would print the interruption as an error with a stack trace
        logging.getLogger("stdout_log").setLevel(logging.CRITICAL + 1)
        errors.signal_received = signal.Signals(signum).name
        raise Interrupted(errors.signal_received)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """`orchestrate <command>` (the console script) or `python -m orchestrate <command>`."""
    argv = sys.argv[1:] if argv is None else argv
    prog = "python -m orchestrate" if sys.argv[0].endswith("__main__.py") else "orchestrate"
    try:
        parser = argparse.ArgumentParser(prog=prog, description=__doc__)
        sub = parser.add_subparsers(dest="command", required=True, metavar="command")
        for name, (module_name, help_text) in COMMANDS.items():
            command_parser = sub.add_parser(name, help=help_text)
            if argv[:1] == [name]:  # import only the module that runs: dbt is slow to import
                module = importlib.import_module(module_name)
                command_parser.description = module.__doc__
                command_parser.formatter_class = argparse.RawDescriptionHelpFormatter
                module.add_arguments(command_parser)
        args = parser.parse_args(argv)
        module = importlib.import_module(COMMANDS[args.command][0])
        stop_on_signals()
        return module.main(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"error: interrupted by {exc or 'SIGINT'}: stopped where it was (an ingest keeps "
              "whole files only). Run the command again to finish.", file=sys.stderr)
        return 2
    except Exception as exc:
        explained = explain(exc)
        if explained is None:
            traceback.print_exc()
            first = (str(exc).strip().splitlines() or [""])[0]
            explained = UserError(f"unexpected {type(exc).__name__}: {first}. This is a bug, or a "
                                  "condition the orchestrator does not know: report it with the "
                                  "traceback above.")
        print(f"error: {explained}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
