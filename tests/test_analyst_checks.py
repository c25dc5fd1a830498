"""The checks an analyst runs before a pull request, on a fresh clone: `make lint`, the
seed check, pre-commit, and the CI workflow (actionlint)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import PROJECT_DIR


def git(cwd, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def fresh_clone(tmp_path):
    """A git clone of the project on a new branch `analyst`, with the test run's .venv."""
    if subprocess.run(["git", "-C", str(PROJECT_DIR), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_DIR), str(clone)], check=True)
    git(clone, "checkout", "--quiet", "-b", "analyst")
    git(clone, "config", "user.email", "analyst@example.org")
    git(clone, "config", "user.name", "Analyst")
    (clone / ".venv").symlink_to(PROJECT_DIR / ".venv")
    return clone


def clean_env() -> dict[str, str]:
    """The environment of someone who just cloned: no warehouse or dbt settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "DUCKDB_", "LINT_"))}


def make(clone, *args: str) -> subprocess.CompletedProcess:
    # -o: the clone's lock file looks newer than the linked .venv; do not reinstall
    return subprocess.run(["make", "-o", ".venv/.installed", *args], cwd=clone, env=clean_env(),
                          capture_output=True, text=True, timeout=600)


def test_make_lint_on_a_fresh_clone_lints_the_changed_model_and_names_file_and_line(fresh_clone):
    base = git(fresh_clone, "rev-parse", "HEAD").strip()
    model = fresh_clone / "models/marts/core/dim_schools.sql"
    text = model.read_text()
    model.write_text(text + "-- reviewed for the grade span change\n")

    proc = make(fresh_clone, "lint", f"LINT_BASE={base}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 models changed" in out and "1 files clean" in out, out
    assert not (fresh_clone / "data").exists(), "linting must not create a warehouse"

    # An analyst's edit with an upper-case keyword and identifier on line 25.
    lines = text.splitlines()
    assert lines[24].strip().startswith("split_part(grades_served, '-', 1) as lowest_code")
    lines[24] = lines[24].replace(" as lowest_code", " AS Lowest_Code")
    model.write_text("\n".join(lines) + "\n")
    git(fresh_clone, "commit", "--quiet", "-am", "grade span")
    proc = make(fresh_clone, "lint", f"LINT_BASE={base}")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "models/marts/core/dim_schools.sql:25:" in out and "CP01" in out, out
    assert "Traceback" not in out, out
    assert not (fresh_clone / "data").exists()
