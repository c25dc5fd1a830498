"""`python -m orchestrate <command>`: one subcommand per module."""

from __future__ import annotations

import argparse
import importlib
import sys

from orchestrate.errors import UserError

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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m orchestrate", description=__doc__)
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
    try:
        return module.main(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
