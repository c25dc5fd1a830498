"""`python -m orchestrate pr-check`: what a pull request changes, built and compared
against production before it merges (slim CI).

1. dbt builds and tests only what the change touches, `state:modified+` against the
   production state (--base: the folder of production's manifest.json; a passing `run`
   keeps it in dbt.state_path, orchestrate/scope.py), with `--defer`: unchanged parents are read
   from production's tables. Nothing of production is written:
   - DuckDB (target dev): the models go into a DuckDB file of their own
     (<out>/pr_check.duckdb, profiles.yml target `pr_check`) that attaches the
     production file read-only under its database name;
   - Snowflake (e.g. --target prod or ci_snowflake): into schemas with the prefix
     --schema-prefix (DBT_SCHEMA_PREFIX: pr_marts, pr_intermediate, ...) of the same
     database.
   A breaking change to a mart's contract (a column removed, renamed or retyped)
   fails here with dbt's own contract error; see CONTRIBUTING.md.
2. Every mart that was rebuilt is compared with production's (orchestrate/data_diff.py):
   rows added and removed by key, columns added, removed or retyped, rows changed per
   column and by how much, with example keys. Printed as Markdown for the pull request
   and written to <out>/diff.md and diff.json.

Exit status: 0 built and tested (whatever the diff shows), 1 tests failed, 2 an error
(a model failed to build, a contract error, no production state).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

from orchestrate import dbt
from orchestrate.data_diff import Side, diff_mart, markdown
from orchestrate.errors import UserError
from orchestrate.warehouse import PROJECT_DIR, duckdb_path

PR_DATABASE = "pr_check"  # the DuckDB file's stem: its database name
BUILT_TYPES = ("model", "seed", "snapshot", "test", "unit_test")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=os.environ.get("DBT_TARGET", "dev"),
                        help="production's dbt target: dev (DuckDB, default), prod or ci_snowflake")
    parser.add_argument("--base", type=Path, default=None,
                        help="production's dbt state, a folder with its manifest.json "
                             "(default: what the last passing run kept, in the warehouse's dbt artifacts folder)")
    parser.add_argument("--schema-prefix", default=os.environ.get("PR_CHECK_SCHEMA_PREFIX", "pr"),
                        help="schema prefix the pull request builds into (default pr: pr_marts, ...)")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "target" / "pr-check",
                        help="folder for dbt's artifacts of the check, diff.md and diff.json")
    parser.add_argument("--examples", type=int, default=3, help="example keys per change (default 3)")


def main(args: argparse.Namespace) -> int:
    target_type = dbt.adapter_type(args.target)
    base = (args.base or dbt.state_path(args.target)).resolve()
    base_manifest = _read_json(base / "manifest.json")
    if base_manifest is None:
        raise UserError(
            f"no production state in {base} (its manifest.json): a passing `python -m orchestrate run` "
            f"keeps it there; or pass --base with the folder of production's manifest.json.")
    out = args.out.resolve()
    prefix = args.schema_prefix.strip()
    if not prefix:
        raise UserError("--schema-prefix must not be empty: the pull request would build over production.")
    env = {"DBT_TARGET_PATH": str(out / "dbt"), "DBT_SCHEMA_PREFIX": prefix}
    dbt_target = args.target
    if target_type == "duckdb":
        production = duckdb_path()
        database = production_database(base_manifest)
        if not production.exists():
            raise UserError(f"no production warehouse at {production}: set DBT_DUCKDB_PATH to the "
                            "DuckDB file production's state describes.")
        if production.stem != database:
            raise UserError(f"{production} is database {production.stem!r}, but the production state in "
                            f"{base} describes database {database!r}: point DBT_DUCKDB_PATH at that file.")
        pr_file = out / f"{PR_DATABASE}.duckdb"
        for stale in (pr_file, pr_file.with_name(pr_file.name + ".wal")):
            stale.unlink(missing_ok=True)  # every check starts from nothing: no stale model is diffed
        env.update(DBT_PR_DUCKDB_PATH=str(pr_file), DBT_PR_PRODUCTION_DATABASE=database,
                   DBT_SOURCE_DATABASE=database)
        dbt_target = "pr_check"
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "dbt", ignore_errors=True)
    for stale in ("diff.md", "diff.json"):
        (out / stale).unlink(missing_ok=True)

    print(f"pr-check: building state:modified+ against production state {base}, "
          f"into {'schemas ' + prefix + '_*' if target_type != 'duckdb' else env['DBT_PR_DUCKDB_PATH']}",
          flush=True)
    with _environment(env):
        try:
            built = build(base, dbt_target)
        except BuildStopped as exc:  # the pull request comment says so too
            (out / "diff.md").write_text(
                f"## pr-check: what this pull request changes\n\n**pr-check stopped**: {exc}\n\n"
                f"```\n{exc.detail[:6000]}\n```\n", encoding="utf-8")
            raise
        check = {"base": str(base), "target": args.target, "schema_prefix": prefix, **built}
        check["diffs"] = []
        if built["marts"]:
            print(f"pr-check: comparing {len(built['marts'])} marts with production…", flush=True)
            warehouse = connect(target_type, env)
            try:
                for name in built["marts"]:
                    check["diffs"].append(diff_mart(
                        warehouse, name, built["base_sides"].get(name), built["pr_sides"].get(name),
                        built["manifest"], args.examples))
            finally:
                warehouse.close()
    check["summary_lines"] = summary_lines(check)
    text = markdown(check)
    (out / "diff.md").write_text(text, encoding="utf-8")
    saved = {k: v for k, v in check.items() if k not in ("manifest", "base_sides", "pr_sides")}
    (out / "diff.json").write_text(json.dumps(saved, indent=2, default=str), encoding="utf-8")
    print()
    print(text)
    print(f"pr-check: written to {out / 'diff.md'} and diff.json", flush=True)
    if check["errors"]:
        raise UserError(f"{len(check['errors'])} of the nodes failed (above): fix what dbt says, then run "
                        "pr-check again (CONTRIBUTING.md explains contract errors).")
    return 1 if check["failures"] else 0


class BuildStopped(UserError):
    """dbt stopped before building anything (a breaking change, a project that does not parse)."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


def production_database(manifest: dict) -> str:
    databases = {n["database"] for n in manifest["nodes"].values()
                 if n["resource_type"] in ("model", "seed") and n.get("database")}
    if len(databases) != 1:
        raise UserError(f"production state names databases {sorted(databases)}; expected one.")
    return databases.pop()


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build(base: Path, dbt_target: str) -> dict:
    """What the change touches, against production: first every model of
    `state:modified+` on empty inputs (`dbt run --empty`: contracts and SQL checked in
    seconds, before unit tests that would hide a contract error behind a fixture's column
    names), then `dbt build --full-refresh` of the same selection (every incremental model
    built whole, never on a previous check's tables). What ran and how."""
    common = ["--select", "state:modified+", "--defer", "--state", str(base),
              # a contracted mart's column removed, renamed or retyped against production's
              # contract: dbt's warning, an error here (CONTRIBUTING.md: make a new version)
              "--warn-error-options", '{"error": ["UnversionedBreakingChange"]}',
              # Snowflake: the pull request's tables are granted to no reader or researcher role
              "--vars", '{"researcher_role": "", "reader_role": ""}',
              "--no-use-colors", "--quiet"]
    # A full parse first (partial parsing after a change can alter configs that
    # state:modified compares); the second command reuses it, nothing having changed.
    checked = _invoke(["run", "--empty", *common, "--no-partial-parse"], base, dbt_target)
    if checked["errors"]:
        checked["empty_run"] = True
        return checked
    return _invoke(["build", "--full-refresh", *common], base, dbt_target)


def _invoke(args: list[str], base: Path, dbt_target: str) -> dict:
    print("dbt " + " ".join(args), flush=True)
    try:
        res = dbt.invoke(args, target=dbt_target, callbacks=[dbt.Progress()])
    finally:
        dbt.release_duckdb()
    target_path = Path(os.environ["DBT_TARGET_PATH"])
    manifest = _read_json(target_path / "manifest.json")
    run_results = _read_json(target_path / "run_results.json")
    if res.exception is not None or manifest is None:
        message = str(res.exception or "no manifest").strip()
        if "breaking change" in message.lower():
            raise BuildStopped(
                "the change breaks a mart's contract (dbt says which model and columns, above). Keep the "
                "column as it is, or make the change as a new version of the model (CONTRIBUTING.md, "
                "\"Contracts and breaking changes\"), then run pr-check again.", message)
        raise BuildStopped(f"dbt could not build the pull request: {message}\n"
                           "Fix what dbt names above, then run pr-check again.", message)
    base_manifest = _read_json(base / "manifest.json")
    results = (run_results or {}).get("results", [])
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    built = [{"unique_id": r["unique_id"], "name": nodes.get(r["unique_id"], {}).get("name", r["unique_id"]),
              "status": r["status"], "message": r.get("message"),
              "file": nodes.get(r["unique_id"], {}).get("original_file_path"),
              "failures": r.get("failures")} for r in results
             if r["unique_id"].split(".")[0] in BUILT_TYPES]  # not exposures (always skipped)
    errors = [b for b in built if b["status"] == "error"]
    failures = [b for b in built if b["status"] == "fail"]
    pr_marts = {n["name"]: n for n in _marts(manifest)}
    base_marts = {n["name"]: n for n in _marts(base_manifest)}
    rebuilt = sorted(name for name, n in pr_marts.items()
                     if any(b["unique_id"] == n["unique_id"] and b["status"] == "success" for b in built))
    removed = sorted(set(base_marts) - set(pr_marts))
    if errors:  # an empty run: nothing to compare
        rebuilt, removed = [], []
    return {
        "nodes": built,
        "errors": errors,
        "failures": failures,
        "marts": rebuilt + removed,
        "manifest": manifest,
        "pr_sides": {name: Side(pr_marts[name]) for name in rebuilt},
        "base_sides": {name: Side(base_marts[name]) for name in rebuilt + removed if name in base_marts},
    }


def _marts(manifest: dict) -> list[dict]:
    return [n for n in manifest["nodes"].values()
            if n["resource_type"] == "model" and n["fqn"][1:2] == ["marts"]]


def connect(target_type: str, env: dict[str, str]):
    """A connection that sees production's and the pull request's relations."""
    from orchestrate import warehouse

    if target_type == "duckdb":
        import duckdb

        con = duckdb.connect(env["DBT_PR_DUCKDB_PATH"])
        con.execute(f"attach '{duckdb_path()}' as \"{env['DBT_PR_PRODUCTION_DATABASE']}\" (read_only)")
        return warehouse.DuckDBWarehouse(con)
    return warehouse.SnowflakeWarehouse()


def summary_lines(check: dict) -> list[str]:
    nodes = check["nodes"]
    if not nodes:
        return ["Nothing to build: the pull request changes no model, seed, test or macro dbt uses."]
    if check.get("empty_run"):
        return [f"The models the change touches, run on empty inputs first (`dbt run --empty`: contracts "
                f"and SQL), failed: {len(check['errors'])} of {len(nodes)}; nothing was built with data."
                ] + _problems(check)
    kinds: dict[str, int] = {}
    for n in nodes:
        kind = n["unique_id"].split(".")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    statuses: dict[str, int] = {}
    for n in nodes:
        statuses[n["status"]] = statuses.get(n["status"], 0) + 1
    lines = [
        f"Built and tested what the change touches and everything downstream (`state:modified+`, "
        f"unchanged parents read from production): {len(nodes)} nodes ("
        + ", ".join(f"{v} {k.replace('_', ' ')}{'' if v == 1 else 's'}" for k, v in sorted(kinds.items()))
        + "): "
        + ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())) + ".",
        "",
        "Models: " + ", ".join(f"`{n['name']}`"
                               + ("" if n["status"] == "success" else f" ({n['status']})")
                               for n in nodes if n["unique_id"].startswith("model.")),
    ]
    return lines + _problems(check)


def _problems(check: dict) -> list[str]:
    """dbt's message of each node that erred or failed, without its macro trace."""
    lines = []
    for n in check["errors"] + check["failures"]:
        message = "\n".join(line for line in (n.get("message") or "").strip().splitlines()
                            if not line.strip().startswith(("> in macro", "> called by")))
        lines += ["", f"**{n['status'].upper()}** `{n['name']}` ({n['file']}):", "",
                  "```", message[:3000], "```"]
    return lines


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
