"""Every model passes sqlfluff with the project's config (.sqlfluff: the dbt templater).

Fix layout findings with `sqlfluff fix <file>`; the others (an unaliased column, an
unqualified reference, an unused CTE) need a hand edit. The dbt templater compiles on the
`lint` target (an in-memory DuckDB), so incremental models are linted as a full refresh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
SQLFLUFF = str(Path(sys.executable).parent / "sqlfluff")


def test_models_pass_sqlfluff(tmp_path):
    env = {
        **os.environ,
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "DUCKDB_TEMP_DIRECTORY": str(tmp_path / "duckdb_tmp"),
        "DBT_TARGET": "dev",
    }
    proc = subprocess.run(
        [SQLFLUFF, "lint", "models", "--format", "json", "--nofail"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.stdout.strip(), f"sqlfluff printed nothing:\n{proc.stderr[-4000:]}"
    results = json.loads(proc.stdout)
    assert results, "sqlfluff linted no files"
    findings = [
        f"{result['filepath']}:{v['start_line_no']}:{v['start_line_pos']}: "
        f"{v['code']} {v['description']}"
        for result in results
        for v in result["violations"]
    ]
    assert not findings, (
        f"{len(findings)} sqlfluff findings (fix layout with `sqlfluff fix <file>`):\n"
        + "\n".join(findings)
    )


def test_editor_config_renders_every_model(monkeypatch):
    """The fast editor config (.sqlfluff-editor/config) still knows every macro models use."""
    import jinja2
    from sqlfluff.core import FluffConfig, Linter

    monkeypatch.chdir(PROJECT_DIR)
    # sqlfluff's jinja templater compiles every macro file again for each model it renders
    # (twice): 75 s for the models here. Jinja compiles a source to the same code in any
    # environment with the same class, syntax, options, filters and tests (every
    # environment here comes from one config), so each is compiled once (5 s; the rendered
    # models are the same, compared on 2026-12-03). Rendering still runs per model.
    compile_source = jinja2.Environment.compile
    compiled = {}

    def compile_once(env, source, name=None, filename=None, raw=False, defer_init=False):
        key = (source, name, filename, raw, defer_init, type(env), tuple(sorted(env.extensions)),
               env.block_start_string, env.block_end_string, env.variable_start_string,
               env.variable_end_string, env.comment_start_string, env.comment_end_string,
               env.line_statement_prefix, env.line_comment_prefix, env.trim_blocks,
               env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline, env.optimized,
               env.is_async, env.autoescape, env.finalize, frozenset(env.filters), frozenset(env.tests))
        if key not in compiled:
            compiled[key] = compile_source(env, source, name, filename, raw, defer_init)
        return compiled[key]

    monkeypatch.setattr(jinja2.Environment, "compile", compile_once)
    config = FluffConfig.from_root(extra_config_path=".sqlfluff-editor/config")
    linter = Linter(config=config)
    problems = {}
    for path in sorted(Path("models").rglob("*.sql")):
        rendered = linter.render_file(str(path), config)
        if rendered.templater_violations:
            problems[str(path)] = [v.desc() for v in rendered.templater_violations]
    assert not problems, (
        "The editor config cannot render these models; give .sqlfluff-editor/jinja_context "
        f"what they use:\n{json.dumps(problems, indent=2)}"
    )
