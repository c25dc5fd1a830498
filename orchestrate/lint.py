"""sqlfluff on the models you changed (`make lint`), or on every model (`make lint-all`).

With no file named, lints the SQL models that differ from the base branch (committed,
staged, unstaged or untracked; --base, default main, or origin/main when there is no
local main), or every model when a macro or the sqlfluff config changed, or when the
project is not a git checkout. With files named (pre-commit passes the staged ones),
lints those. --all lints every model.

It uses the project's config (.sqlfluff: dbt's templater on the `lint` target of
profiles.yml, an in-memory DuckDB), so it works on a fresh clone before any run and
renders every ref, var and macro as dbt compiles them. Each finding prints as
`path:line:column: CODE description`, which editors and terminals link to the line.
Layout findings are fixed by `.venv/bin/sqlfluff fix <file>`.

When dbt cannot load the project (a broken yml), the files are linted with the fast
editor config (.sqlfluff-editor/config: the jinja templater) instead, after dbt's error.

Exit status: 0 clean, 1 findings, 2 dbt could not load the project.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from orchestrate.errors import UserError
from orchestrate.warehouse import PROJECT_DIR

MODELS = "models"
EDITOR_CONFIG = ".sqlfluff-editor/config"
# A change here can change how any model lints: lint them all.
AFFECTS_EVERY_MODEL = ("macros/", ".sqlfluff", "dbt_project.yml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", type=Path, help="SQL files to lint (default: those changed)")
    parser.add_argument("--all", action="store_true", help="lint every model")
    parser.add_argument("--base", default=os.environ.get("LINT_BASE", "main"),
                        help="branch the changes are measured against (default: main, or $LINT_BASE)")


def main(args: argparse.Namespace) -> int:
    if args.all:
        paths, why = [MODELS], "every model (--all)"
    elif args.files:
        paths = [str(p) for p in args.files if p.suffix == ".sql" and _under_models(p)]
        why = f"{len(paths)} files named"
    else:
        paths, why = changed_models(args.base)
    print(f"sqlfluff: {why}", flush=True)
    if not paths:
        print("sqlfluff: nothing to lint")
        return 0
    started = time.perf_counter()
    project_error = None
    try:
        findings, files = lint(paths)
    except DbtProjectError as exc:
        project_error = exc
        print(f"sqlfluff: dbt cannot load the project, so these files are linted with {EDITOR_CONFIG}:\n"
              f"{exc}", flush=True)
        findings, files = lint(paths, EDITOR_CONFIG)
    for line in findings:
        print(line)
    seconds = time.perf_counter() - started
    if project_error is not None:
        raise UserError(f"dbt could not load the project ({len(findings)} lint findings above): fix the "
                        "error dbt names above (`.venv/bin/dbt parse` shows it too), then lint again.")
    if findings:
        print(f"sqlfluff: {len(findings)} findings in {files} files ({seconds:.0f}s). Fix layout with "
              "`.venv/bin/sqlfluff fix <file>`; the others need a hand edit.")
        return 1
    print(f"sqlfluff: {files} files clean ({seconds:.0f}s)")
    return 0


def _under_models(path: Path) -> bool:
    path = path.resolve() if path.is_absolute() else (Path.cwd() / path).resolve()
    return (PROJECT_DIR / MODELS) in path.parents


def changed_models(base: str) -> tuple[list[str], str]:
    """The SQL models that differ from `base`'s merge base, and why these."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(PROJECT_DIR), *args], capture_output=True, text=True)

    merge_base = None
    for ref in (base, f"origin/{base}"):
        proc = git("merge-base", "HEAD", ref)
        if proc.returncode == 0:
            merge_base, base = proc.stdout.strip(), ref
            break
    if merge_base is None:
        return [MODELS], f"every model (no git branch {base!r} to compare with)"
    changed = git("diff", "--name-only", "--diff-filter=d", merge_base).stdout.split()
    changed += git("ls-files", "--others", "--exclude-standard").stdout.split()
    wide = sorted({c for c in changed if c.startswith(AFFECTS_EVERY_MODEL)})
    if wide:
        return [MODELS], f"every model ({', '.join(wide[:3])} changed since {base})"
    models = sorted({c for c in changed if c.startswith(f"{MODELS}/") and c.endswith(".sql")})
    return models, f"{len(models)} models changed since {base}"


class DbtProjectError(Exception):
    """dbt's templater could not load the project."""


def lint(paths: list[str], extra_config: str | None = None) -> tuple[list[str], int]:
    """Lint with the project's .sqlfluff (and `extra_config` over it); return the findings
    as `path:line:col: ...` lines and the number of files linted."""
    from sqlfluff.core import FluffConfig, Linter  # imported late: slow to import
    from sqlfluff.core.errors import SQLFluffUserError

    os.chdir(PROJECT_DIR)  # the config's dbt project and profiles dir are relative to it
    config = FluffConfig.from_root(extra_config_path=extra_config)
    try:
        result = Linter(config=config).lint_paths(tuple(paths))
    except SQLFluffUserError as exc:
        if "dbt" not in str(exc):
            raise
        message = str(exc)
        message = message.split("dbt.exceptions.", 1)[-1]  # sqlfluff's preamble says nothing more
        raise DbtProjectError(message.strip()) from None
    findings = []
    records = result.as_records()
    for record in records:
        for v in record["violations"]:
            findings.append(f"{record['filepath']}:{v['start_line_no']}:{v['start_line_pos']}: "
                            f"{v['code']} {v['description']}")
    return findings, len(records)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
