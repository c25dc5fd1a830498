"""`python -m orchestrate run`: ingest new extracts, then `dbt build`, then say where results are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrate import dbt
from orchestrate.ingest import ingest
from orchestrate.warehouse import connect, duckdb_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--extracts", type=Path, help="folder of extracts to ingest first")
    parser.add_argument("--target", default="dev", help="dbt target (dev or prod)")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    parser.add_argument("--select", nargs="*", default=[], help="dbt node selection")


def main(args: argparse.Namespace) -> int:
    if args.extracts:
        con = connect()
        try:
            result = ingest(args.extracts, con)
        finally:
            con.close()
        print(f"ingest: {len(result.loaded)} files, {result.rows_loaded} rows", file=sys.stderr)
    dbt_args = ["build"]
    if args.full_refresh:
        dbt_args.append("--full-refresh")
    if args.select:
        dbt_args += ["--select", *args.select]
    res = dbt.invoke(dbt_args, target=args.target)
    if not res.success:
        print("dbt build failed: see the messages above and logs/dbt.log", file=sys.stderr)
        return 1
    print(f"Results are in {duckdb_path()} (schema marts).")
    return 0
