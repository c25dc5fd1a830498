"""`python -m orchestrate retry`: re-run what failed in the last run, then check and report.

Reads the last run from orchestrate.run_history. dbt nodes that erred, failed or were
skipped are rebuilt with `dbt retry` against that run's saved run_results.json; a build
that never finished (killed, or stopped by an ingest error) is run again as it was asked;
a build that passed is not repeated. Ingestion is repeated only if it did not pass. Checks,
reconciliation and the report always run again. Exit status as for `run`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from orchestrate import dbt, run
from orchestrate.errors import UserError
from orchestrate.warehouse import acquire_lock, lock_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=os.environ.get("DBT_TARGET", "dev"),
                        help="dbt target whose last run to retry (default dev)")
    parser.add_argument("--reports-dir", type=Path, default=None,
                        help="where reports go (default: $ORCHESTRATE_REPORTS_DIR or ./reports)")


def main(args: argparse.Namespace) -> int:
    lock = acquire_lock(lock_path(dbt.target_path(args.target), args.target,
                                  dbt.adapter_type(args.target)), "retry")
    try:
        return _retry(args, lock)
    finally:
        lock.close()


def _retry(args: argparse.Namespace, lock) -> int:
    last = run.last_run(args.target)
    if last is None:
        raise UserError(f"no run to retry: orchestrate.run_history has no run on target "
                        f"{args.target!r}. Start with `python -m orchestrate run`.")
    if last["status"] == "passed":
        print(f"Run {last['run_id']} passed: nothing to retry. Its report: {last['report_path']}")
        return 0
    plan = run.retry_plan(last)
    print(f"Retrying run {last['run_id']} ({last['status']}): "
          f"ingest {'again' if plan['ingest'] and last['options'].get('extracts') else 'not repeated'}, "
          f"dbt {'retry of failed nodes' if plan['build'] == 'retry' else plan['build'] or 'not repeated'}, "
          "then checks and report.")
    return run.execute(last["options"], reports_dir=args.reports_dir, command="retry",
                       retry_of=last, lock=lock)
