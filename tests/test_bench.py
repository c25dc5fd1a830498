"""`python -m orchestrate bench` (issues 7 and 16) at tiny scales: it measures every step on
the same data (with its CPU seconds and peak memory), the floors (bare scan, typed parse),
the pandas reference after checking it agrees with the marts, a realistic day (the last
day of new responses, held back, and corrections) and a stress day of
updates and deletes that the run builds with the changed-only scope, the growth from one
scale to the next, and it writes its figures and a chart. No figure is compared with a
time."""

from __future__ import annotations

import gzip
import json
import re
import xml.etree.ElementTree as ElementTree

import duckdb

from conftest import run_cli


def test_bench_measures_every_step_and_the_reference(tmp_path):
    """One scale, end to end (each scale is the same work: the growth line over several
    scales is checked below on given figures, without measuring twice)."""
    cache, out = tmp_path / "bench", tmp_path / "figures.json"
    proc = run_cli("bench", "--scale", "0.05", "--seed", "3", "--cache-dir", str(cache),
                   "--json", str(out))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    for label in ("floor (scan)", "typed parse (read_json)", "typed load (into a file)", "ingest",
                  "  of which examine", "  of which judge", "  of which write", "dbt build", "checks",
                  "run (whole)", "pandas reference", "agrees with the marts", "realistic day run",
                  "stress day run", "ratio realistic day / full run", "ratio stress day / full run", "ratio ingest / typed parse", "ratio ingest / typed load",
                  "ratio typed load / typed parse", "ratio full run / pandas reference",
                  "peak resident memory", "load average",
                  "dbt build of the full run:", "dbt build of the realistic day:",
                  "dbt floor (no-op nodes)", "ratio dbt build / dbt floor",
                  "dbt build of the floor (as many no-op nodes):",
                  "each run a process of its own"):
        assert label in proc.stdout, label
    assert "[reference]" in proc.stderr and "[bench]" in proc.stderr  # long work shows progress

    assert "marginal seconds per million lines" not in proc.stdout  # a growth line needs two scales
    results = json.loads(out.read_text())
    assert [r["scale"] for r in results] == [0.05]
    [result] = results
    steps = {s["name"]: s for s in result["steps"]}
    assert all(s["seconds"] > 0 for s in steps.values())
    for name in ("floor (scan)", "typed parse (read_json)", "typed load (into a file)", "ingest",
                 "dbt build", "dbt floor (no-op nodes)", "run (whole)", "pandas reference", "realistic day run", "stress day run"):
        assert steps[name]["peak_rss_mb"] > 0 and steps[name]["cpu_seconds"] > 0, name
    # the full run loads every file but the realistic day's new responses, held back
    assert steps["floor (scan)"]["rows"] == steps["ingest"]["rows"] + result["held_back_lines"] == result["lines"] > 0
    assert result["held_back_lines"] > 0
    assert steps["typed parse (read_json)"]["rows"] == steps["typed load (into a file)"]["rows"] == result["lines"]
    assert not list((cache / "work").glob("typed_load.duckdb*"))  # the floor's file is removed
    # the ingest's phases, in order, within its seconds (its run's process start is outside)
    phases = [s for s in result["steps"] if s["name"].startswith("  of which ")][:3]
    assert [s["name"] for s in phases] == ["  of which examine", "  of which judge", "  of which write"]
    assert all(s["note"] for s in phases)
    assert 0 < sum(s["seconds"] for s in phases) <= steps["ingest"]["seconds"] + 0.01  # 3 and 2 decimals
    # clean files are judged by the JSON reader, none from their text, none one by one
    assert steps["ingest"]["note"] == "0 lines read as text, 0 checked one by one"
    assert set(result["ratios"]) == {"ingest / floor", "ingest / typed parse", "ingest / typed load",
                                     "typed load / typed parse", "typed parse / floor",
                                     "full run / floor", "realistic day / full run", "stress day / full run",
                                     "full run / pandas reference", "dbt build / dbt floor"}
    assert result["peak_rss_mb"] > 0 and len(result["load_average"]) == 3

    # where each dbt build went: outside its nodes (import, parse) and running them
    costs = result["dbt_costs"]
    floor_label = "floor (as many no-op nodes)"
    assert set(costs) == {"full run", "realistic day", "stress day", floor_label}
    full, day, floor = costs["full run"], costs["realistic day"], costs[floor_label]
    for cost in costs.values():
        assert sum(cost["nodes_by_type"].values()) == cost["nodes"] > 0
        assert 0 < cost["node_phase_seconds"] <= cost["step_seconds"]
        assert cost["outside_nodes_seconds"] == cost["step_seconds"] - cost["node_phase_seconds"]
    assert full["step_seconds"] == steps["dbt build"]["seconds"]
    assert full["nodes_by_type"]["seed"] > 0 and full["nodes_by_type"]["model"] > 0
    # unit tests check code, not data: CI runs them, a production run's build does not
    assert "unit_test" not in full["nodes_by_type"] and "unit_test" not in day["nodes_by_type"]
    assert day["nodes"] < full["nodes"]  # the day builds what its files reach
    # dbt's floor: as many models, data tests and seeds as the full run's build, built
    # (all of them passing) in a process of its own, its throwaway project removed
    assert {kind: floor["nodes_by_type"][kind] for kind in ("model", "test", "seed")} == {
        kind: full["nodes_by_type"][kind] for kind in ("model", "test", "seed")}
    assert floor["step_seconds"] == steps["dbt floor (no-op nodes)"]["seconds"]
    assert result["ratios"]["dbt build / dbt floor"] == steps["dbt build"]["seconds"] / floor["step_seconds"]
    assert not (cache / "work" / "dbt_floor").exists()

    # the chart beside the figures: an SVG naming the steps
    chart = out.with_suffix(".svg")
    svg = chart.read_text()
    ElementTree.fromstring(svg)
    for name in ("ingest", "dbt build", "pandas reference", "typed parse (read_json)"):
        assert name in svg, name

    # the day: about 1% of the current answers, four in five updated, one in five deleted
    day = steps["stress day run"]
    day_file = next((cache / "work" / "extracts" / "question_responses").glob(day["note"]))
    with gzip.open(day_file, "rt") as lines:
        changes = [json.loads(line) for line in lines]
    assert len(changes) == day["rows"]
    ops = {op: sum(c["_op"] == op for c in changes) for op in ("u", "d")}
    assert ops["u"] > ops["d"] > 0 and ops["u"] + ops["d"] == len(changes)
    con = duckdb.connect(str(cache / "work" / "warehouse.duckdb"), read_only=True)
    try:
        (answers,) = con.execute("select count(*) from marts.fct_question_responses").fetchone()
        deleted = con.execute(
            "select count(*) from marts.fct_question_responses as f "
            f"inner join read_json('{day_file}') as d "
            "on f.response_id = d.response_id and f.question_id = d.question_id where d._op = 'd'"
        ).fetchone()[0]
    finally:
        con.close()
    assert 0.005 <= len(changes) / answers <= 0.02
    assert deleted == 0  # the run that followed removed them

    # and the run built only what the day changes
    assert steps["  of which dbt build (stress)"]["note"].startswith("only what changed since run")
    assert steps["  of which dbt build (stress)"]["note"].endswith("downstream of question_responses")


def test_dbts_floor_is_a_project_of_as_many_no_op_nodes(tmp_path):
    """The floor's throwaway project: one-row tables in a binary tree from the first seed,
    each data test on a column of its own (more tests than models), one-row seeds."""
    from orchestrate.bench import write_dbt_floor_project

    folder = tmp_path / "floor"
    write_dbt_floor_project(folder, models=5, tests=12, seeds=2, threads=3)
    models = {p.stem: p.read_text() for p in (folder / "models").glob("*.sql")}
    assert sorted(models) == [f"model_{n}" for n in range(5)]
    assert "ref('seed_0')" in models["model_0"]
    for n in range(1, 5):
        assert f"ref('model_{(n - 1) // 2}')" in models[f"model_{n}"]
    tested = [(model["name"], column["name"], test)
              for model in json.loads((folder / "models" / "schema.yml").read_text())["models"]
              for column in model["columns"] for test in column["data_tests"]]
    assert len(tested) == len(set(tested)) == 12 and {t for _, _, t in tested} == {"not_null"}
    assert all(f"as {column}" in models[model] for model, column, _ in tested)
    assert sorted(p.name for p in (folder / "seeds").iterdir()) == ["seed_0.csv", "seed_1.csv"]
    profile = json.loads((folder / "profiles.yml").read_text())["dbt_floor"]["outputs"]["floor"]
    assert profile["threads"] == 3 and profile["type"] == "duckdb"


def test_dbts_floor_builds_them_whatever_dbt_settings_the_environment_has(tmp_path, monkeypatch, capsys):
    """The floor is dbt itself building the nodes asked for, in a process of its own that
    does not inherit settings that would select, skip or redirect nodes; a floor that did
    not build exactly those nodes is left out with a warning, its project kept."""
    from orchestrate.bench import dbt_floor

    monkeypatch.setenv("DBT_EXCLUDE_RESOURCE_TYPES", "test")
    monkeypatch.setenv("DBT_TARGET", "ci_snowflake")
    monkeypatch.setenv("DBT_PROFILES_DIR", str(tmp_path / "nowhere"))
    folder = tmp_path / "floor"
    cost = dbt_floor({"model": 3, "test": 7, "seed": 1, "operation": 1}, folder)
    assert cost["nodes_by_type"] == {"model": 3, "test": 7, "seed": 1}
    assert 0 < cost["node_phase_seconds"] <= cost["step_seconds"] and cost["peak_rss_mb"] > 0
    assert not folder.exists()

    assert dbt_floor({"model": 0, "test": 0, "seed": 0}, folder) is None  # it can only build a model
    assert "warning: dbt's floor built" in capsys.readouterr().err and (folder / "dbt_project.yml").exists()


def given_result(scale: float, lines: int, peak_mb: float, **seconds: float):
    """A scale's measurements as bench would return them, with the steps' seconds given
    (dbt_build=30.0 is the step "dbt build")."""
    from orchestrate.bench import BenchResult, Step

    return BenchResult(scale=scale, seed=3, lines=lines, peak_rss_mb=peak_mb,
                       steps=[Step(name.replace("_", " "), s) for name, s in seconds.items()])


def test_the_growth_line_gives_each_steps_marginal_seconds_per_million_lines(tmp_path):
    """`bench --scale 1 3 ...` ends with the growth from scale to scale: per step its seconds
    at each scale and (t2 - t1) / (lines2 - lines1) in seconds per million lines; a step
    missing at a scale (the pandas reference above its largest scale) shows '-'. The chart
    draws the same steps against the lines."""
    from orchestrate.bench import GROWTH_STEPS, draw_chart, format_growth, step_colours

    one = given_result(1, 2_000_000, 900, ingest=4.0, dbt_build=30.0, pandas_reference=12.0)
    three = given_result(3, 6_000_000, 1800, ingest=10.0, dbt_build=50.0, pandas_reference=33.0)
    ten = given_result(10, 20_000_000, 3500, ingest=31.0, dbt_build=120.0)
    growth = format_growth([ten, one, three])  # in any order: by scale
    lines = growth.splitlines()
    assert lines[0] == "growth: seconds per step, and marginal seconds per million lines"
    assert lines[1].split() == ["step", "scale", "1", "scale", "3", "scale", "10", "s/M", "1->3", "s/M", "3->10"]
    # each heading ends where its column's figures end
    heading_ends = [m.end() for m in re.finditer(r"scale \d+|s/M \d+->\d+", lines[1])]
    for line in lines[2:]:
        figure_ends = [m.end() for m in re.finditer(r"(?<= )[-\d.,]+(?= |$)", line)]
        assert figure_ends == heading_ends[:len(figure_ends)], "\n".join(lines)
    rows = {line[:26].strip(): line[26:].split() for line in lines[2:]}
    assert rows == {
        "ingest": ["4.00", "10.00", "31.00", "1.50", "1.50"],  # 6 s / 4 M lines, 21 s / 14 M
        "dbt build": ["30.00", "50.00", "120.00", "5.00", "5.00"],
        "pandas reference": ["12.00", "33.00", "-", "5.25", "-"],
        "lines (millions)": ["2.00", "6.00", "20.00"],
        "peak memory (MB)": ["900", "1,800", "3,500"],
    }

    chart = draw_chart([one, three, ten], tmp_path / "growth.svg")
    svg = chart.read_text()
    ElementTree.fromstring(svg)
    assert all(name in svg for name in ("ingest", "dbt build", "pandas reference", "4 GB", "scales 1, 3, 10"))
    # every step a colour of its own (more steps than matplotlib's 10 default colours)
    colours = step_colours()
    assert set(colours) == set(GROWTH_STEPS) and len(set(colours.values())) == len(GROWTH_STEPS) > 10
    assert all(f"stroke: {colours[name]}" in svg for name in ("ingest", "dbt build", "pandas reference"))
    alone = draw_chart([ten], tmp_path / "one.svg").read_text()
    assert "(scale 10, seed 3)" in alone


def test_bench_of_several_scales_writes_each_scales_figures_and_ends_with_the_growth(
        tmp_path, monkeypatch, capsys):
    """`bench --scale 1 3`: each scale's table as it ends, the JSON rewritten after each
    scale (a long benchmark stopped keeps what it measured), then the growth line and the
    chart of every scale. The scales' measurements are given here (one scale is measured
    end to end above)."""
    import argparse

    from orchestrate import bench

    measured = {1.0: given_result(1.0, 2_000_000, 900, ingest=4.0),
                3.0: given_result(3.0, 6_000_000, 1800, ingest=10.0)}
    out = tmp_path / "figures.json"
    written = []

    def run_bench(scale, seed, cache, work, reference_max_scale):
        assert (seed, work) == (3, cache / "work")
        written.append(json.loads(out.read_text()) if out.exists() else [])
        return measured[scale]

    monkeypatch.setattr(bench, "run_bench", run_bench)
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--scale", "1", "3", "--seed", "3", "--cache-dir", str(tmp_path / "cache"),
                              "--json", str(out)])
    assert bench.main(args) == 0
    printed = capsys.readouterr().out
    assert [len(w) for w in written] == [0, 1]  # the first scale's figures were written before the second ran
    assert [r["scale"] for r in json.loads(out.read_text())] == [1.0, 3.0]
    assert printed.index("scale 1 (seed 3)") < printed.index("scale 3 (seed 3)") < printed.index("growth:")
    ingest = next(line for line in printed[printed.index("growth:"):].splitlines() if line.startswith("ingest"))
    assert ingest.split() == ["ingest", "4.00", "10.00", "1.50"]
    assert f"figures written to {out}, chart to {out.with_suffix('.svg')}" in printed
    ElementTree.fromstring(out.with_suffix(".svg").read_text())


def test_json_may_name_a_folder_and_the_figures_go_into_it(tmp_path):
    """`--json DIR` (the help says "default reports/") writes bench_scale_<S>.json in that
    folder; decided before the benchmark runs, not found to be a folder at its end."""
    from orchestrate.bench import output_path

    assert output_path(tmp_path, [1.0, 10.0]) == tmp_path / "bench_scale_1_10.json"
    assert output_path(tmp_path / "figures.json", [30.0]) == tmp_path / "figures.json"
    assert output_path(None, [3.0]).name == "bench_scale_3.json"
    # a folder not made yet, named with a trailing slash (as typed: argparse's Path drops it)
    assert output_path(str(tmp_path / "new") + "/", [10.0]) == tmp_path / "new" / "bench_scale_10.json"


def test_a_runs_memory_and_cpu_are_those_of_its_processes_together(tmp_path):
    """A run starts a worker (orchestrate/worker.py) that holds its own libraries while the
    run's process holds DuckDB's: the sampler of a process counts every process it started,
    their memory added up while they live, and the CPU of one that ended and was waited
    for; the operating system's peak (wait4) is only the largest of them alone."""
    import subprocess
    import sys
    import time

    from orchestrate.bench import Sampler, _wait

    ready = tmp_path / "ready"
    child = ("import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
             "t = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(1.5)")
    parent = (f"import pathlib, subprocess, sys, time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
              f"p = subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(1.2); "
              f"pathlib.Path({str(ready)!r}).touch(); p.wait(); time.sleep(0.4)")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", parent])
    with Sampler(interval=0.02, pid=proc.pid) as sampler:
        cpu, alone = _wait(proc)
    assert proc.returncode == 0 and ready.exists()
    together, sampled_cpu = sampler.window(started, time.perf_counter())
    assert alone >= 300  # MB: the largest alone (the child's 300; 471 on a fresh clone's CI)
    assert 500 <= together < 700, (together, alone)  # both buffers at once, each counted once
    assert sampled_cpu >= 0.6 and cpu >= 0.6  # the child's busy loop, after it was waited for
    assert abs(sampled_cpu - cpu) < 0.3  # not counted twice
