"""A run's report: reports/<run_id>/report.json (everything) and report.html (to read).

reports/latest is a link to the newest run's folder, and reports/latest.html opens its
report.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path

from orchestrate.checks import to_jsonable


def write(data: dict, report_dir: Path, reports_dir: Path) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.json").write_text(
        json.dumps(to_jsonable(data), indent=2) + "\n", encoding="utf-8"
    )
    (report_dir / "report.html").write_text(render_html(data), encoding="utf-8")
    _point_latest(report_dir, reports_dir)


def _point_latest(report_dir: Path, reports_dir: Path) -> None:
    """Replace reports/latest (a relative link) and reports/latest.html atomically."""
    link = reports_dir / "latest"
    tmp = reports_dir / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(report_dir.name, target_is_directory=True)
    os.replace(tmp, link)
    page = reports_dir / f".latest-{os.getpid()}.html"
    href = escape(f"{report_dir.name}/report.html")
    page.write_text(
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0; url={href}">'
        f'<title>Latest run</title><a href="{href}">Latest run: {escape(report_dir.name)}</a>\n',
        encoding="utf-8",
    )
    os.replace(page, reports_dir / "latest.html")


# --------------------------------------------------------------------------------------
# HTML

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;width:100%} td,th{border:1px solid #ddd;padding:3px 6px;
text-align:left;vertical-align:top} th{background:#f4f4f4} td.num{text-align:right}
.passed,.pass,.success,.ok{color:#176f2c}.failed,.fail,.error{color:#b00020;font-weight:bold}
.warning,.warn{color:#a35a00;font-weight:bold}.skipped,.info{color:#666}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff}
.badge.passed{background:#176f2c}.badge.failed{background:#b00020}.badge.error{background:#6d0016}
.badge.interrupted{background:#a35a00}.interrupted{color:#a35a00;font-weight:bold}
code,pre{font:12px ui-monospace,monospace;background:#f6f6f6} pre{padding:6px;overflow:auto}
details{margin:.3em 0} .muted{color:#666}
.bars{display:flex;width:300px;height:12px;background:#eee} .bar{display:block;height:12px}
.bar.swatch{display:inline-block;width:10px;height:10px} td.num{white-space:nowrap}
.bar.published{background:#176f2c}.bar.primary{background:#b00020}.bar.complementary{background:#e08a00}
"""


def render_html(r: dict) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Run {escape(r['run_id'])}: {escape(r['status'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Warehouse run {escape(r['run_id'])} <span class='badge {r['status']}'>"
        f"{escape(r['status'].upper())}</span></h1>",
        _headline(r),
        _steps(r),
        _errors(r),
        _ingest_notes(r.get("ingest")),
        _dbt(r.get("dbt")),
        _expectations(r.get("expectations") or []),
        _suppression(r.get("suppression")),
        _unmapped(r.get("unmapped") or []),
        _reconciliation(r.get("reconciliation")),
        _quarantined(r.get("quarantined")),
        _history(r.get("history") or []),
        "</body></html>\n",
    ]
    return "\n".join(p for p in parts if p)


def _headline(r: dict) -> str:
    opts = r["options"]
    rows = [
        ("Command", f"{r['command']}" + (f" (retry of {r['retry_of']})" if r.get("retry_of") else "")),
        ("Target", f"{opts['target']} ({r['target_type']})"),
        ("Extracts", opts.get("extracts") or "—"),
        ("Selection", " ".join(opts.get("select") or []) or "everything"),
        ("Started / ended", f"{r['started_at']} → {r['ended_at']} ({r['seconds']}s)"),
        ("Exit status", str(r["exit_code"])),
        ("Results", r["results"]["where"]),
    ]
    out = [_table(["", ""], [[k, escape(str(v))] for k, v in rows], header=False)]
    out.append(f"<p>Query them: <code>{escape(r['results']['query'].removeprefix('query: '))}</code></p>")
    if r.get("failed_checks"):
        out.append("<p class='failed'>Data-quality checks that failed:</p><ul>")
        out += [f"<li>{escape(line)}</li>" for line in r["failed_checks"]]
        out.append("</ul>")
    return "\n".join(out)


def _steps(r: dict) -> str:
    rows = [
        [escape(s["name"]), _status(s["status"]),
         "" if s["seconds"] is None else f"{s['seconds']:.1f}", escape(s["summary"] or "")]
        for s in r["steps"]
    ]
    return "<h2>Steps</h2>" + _table(["step", "status", "seconds", "summary"], rows, num=[2])


def _errors(r: dict) -> str:
    if not r.get("errors"):
        return ""
    out = ["<h2>Errors</h2>"]
    for e in r["errors"]:
        out.append(f"<p class='error'>In {escape(e['step'])}:</p><pre>{escape(e['message'])}</pre>")
        if e.get("traceback"):
            out.append(f"<details><summary>traceback</summary><pre>{escape(e['traceback'])}</pre></details>")
    return "\n".join(out)


def _dbt(d: dict | None) -> str:
    if not d:
        return "<h2>dbt build</h2><p class='muted'>dbt did not run.</p>"
    out = [f"<h2>dbt build</h2><p><code>{escape(d.get('command', ''))}</code>: "
           f"{escape(d['summary'])}"
           + (f" in {d['elapsed']:.1f}s" if d.get("elapsed") else "") + "</p>"]
    if d.get("scope"):
        out.append(f"<p class='muted'>Built: {escape(d['scope'])}.</p>")
    problems = [x for x in d["results"] if x["status"] not in ("success", "pass", "no-op")]  # no-op: exposures
    if problems:
        out.append("<h3>Failed, erred, warned or skipped nodes</h3>")
        rows = [
            [_status(x["status"]), escape(x["resource_type"]), escape(x["name"]),
             "" if x["failures"] is None else str(x["failures"]),
             escape(x.get("file") or ""), escape(", ".join(x.get("tested") or [])),
             escape(x.get("stored_failures") or ""), f"<pre>{escape((x.get('message') or '')[:2000])}</pre>"]
            for x in sorted(problems, key=lambda x: ("error", "fail", "warn", "skipped").index(x["status"])
                            if x["status"] in ("error", "fail", "warn", "skipped") else 9)
        ]
        out.append(_table(["status", "type", "name", "failing rows", "file", "depends on",
                           "failing rows stored in", "message"], rows, num=[3]))
    rows = [
        [_status(x["status"]), escape(x["resource_type"]), escape(x["name"]), f"{x['seconds']:.2f}"]
        for x in d["results"]
    ]
    out.append(f"<details><summary>All {len(rows)} nodes</summary>"
               + _table(["status", "type", "name", "seconds"], rows, num=[3]) + "</details>")
    return "\n".join(out)


def _expectations(suites: list[dict]) -> str:
    out = ["<h2>Expectations (great-expectations)</h2>"]
    if not suites:
        return out[0] + "<p class='muted'>Not run.</p>"
    # suites with something to look at first, open; quiet ones folded
    order = {"error": 0, "failed": 1, "warning": 2, "skipped": 3, "passed": 4}
    for s in sorted(suites, key=lambda s: order.get(s["status"], 9)):
        quiet = s["status"] in ("passed", "skipped")
        out.append(f"<details{'' if quiet else ' open'}><summary><b>{escape(s['suite'])}</b> "
                   f"{_status(s['status'])} ({len(s['results'])} expectations)</summary>"
                   f"<p class='muted'>{escape(s.get('description') or '')} "
                   f"<code>{escape(s['file'])}</code></p>")
        if s.get("note"):
            out.append(f"<p>{escape(s['note'])}</p>")
        rows = []
        for x in s["results"]:
            kwargs = {k: v for k, v in x["kwargs"].items() if k != "batch_id"}
            sample = json.dumps(to_jsonable(x["sample"]))[:600] if x["sample"] else ""
            rows.append([
                _status(x["outcome"]), escape(x["expectation"]), escape(json.dumps(kwargs)),
                escape(x["severity"]),
                "" if x["unexpected_count"] is None else f"{x['unexpected_count']} of {x['element_count']}",
                escape(x.get("why") or ""),
                escape(x.get("exception") or sample),
            ])
        if rows:
            out.append(_table(["outcome", "expectation", "arguments", "severity", "unexpected",
                               "why it matters", "examples"], rows))
        out.append("</details>")
    return "\n".join(out)


def _suppression(marts: list[dict] | None) -> str:
    """Per results mart, the shares of cells published and suppressed, as a bar each."""
    if not marts:
        return ""
    out = ["<h2>Suppression of small groups</h2><p class='muted'>Cells (rows) of each results "
           "mart: published; suppressed as <b>primary</b> (fewer than min_reporting_n "
           "respondents); suppressed as <b>complementary</b> (so that no subtraction — a "
           "subgroup's other values from its <code>all</code> row, a district's other schools, "
           "a topic's other items — gives a primary one back).</p>"]
    rows = []
    for m in marts:
        if m.get("note"):
            rows.append([escape(m["mart"]), _num(m["cells"]), "", "", "", escape(m["note"])])
            continue
        pct = {k: 100.0 * (m.get(f"{k}_share") or 0) for k in ("published", "primary", "complementary")}
        bar = "".join(f"<span class='bar {k}' style='width:{pct[k]:.2f}%' title='{k} {pct[k]:.1f}%'></span>"
                      for k in ("published", "primary", "complementary"))
        reasons = ", ".join(f"{escape(k)} {_num(v)}" for k, v in m["by_reason"].items()
                            if k.startswith("complementary"))
        rows.append([escape(m["mart"]), _num(m["cells"]),
                     f"{pct['published']:.1f}% ({_num(m['published'])})",
                     f"{pct['primary']:.1f}% ({_num(m['primary'])})",
                     f"{pct['complementary']:.1f}% ({_num(m['complementary'])})",
                     f"<div class='bars'>{bar}</div><span class='muted'>{reasons}</span>"])
    heads = [f"<span class='bar {k} swatch'></span> {k}" for k in ("published", "primary", "complementary")]
    out.append(_table(["mart", "cells", *heads, ""], rows, num=[1, 2, 3, 4]))
    return "\n".join(out)


def _unmapped(tests: list[dict]) -> str:
    out = ["<h2>Unmapped codes and questions</h2>"]
    if not tests:
        return out[0] + "<p class='muted'>No cfg_unmapped_* / unmapped_* tests in the project.</p>"
    rows = [
        [_status(t["status"]), escape(t["test"]), str(t.get("stored_rows", t.get("failures") or 0)),
         escape(t.get("stored_in") or "")]
        for t in tests
    ]
    out.append(_table(["status", "test", "rows", "stored in"], rows, num=[2]))
    for t in tests:
        if t["rows"]:
            out.append(f"<details open><summary>{escape(t['test'])}: {len(t['rows'])} rows"
                       f"</summary><p class='muted'>{escape(t['description'])}</p>"
                       + _table([escape(c) for c in t["columns"]],
                                [[escape(str(v)) for v in row] for row in t["rows"]])
                       + "</details>")
    return "\n".join(out)


def _reconciliation(rec: dict | None) -> str:
    if not rec:
        return "<h2>Reconciliation</h2><p class='muted'>Not run.</p>"
    out = [f"<h2>Reconciliation {_status(rec['status'])}</h2>"]
    if rec["status"] == "skipped":
        return out[0] + f"<p>{escape(rec.get('note', ''))}</p>"
    rows = [
        [escape(t["table"]), _num(t["files"]), _num(t["lines"]), _num(t["rows_loaded"]),
         _num(t["lines_quarantined"]), _num(t["raw_rows"]), _num(t["current_rows"]),
         escape(t["mart"] or "—"), _num(t["mart_rows"])]
        for t in rec["tables"]
    ]
    out.append(_table(["table", "files", "lines in files", "rows loaded", "lines quarantined",
                       "raw changes", "current rows (staging)", "mart", "mart rows"],
                      rows, num=[1, 2, 3, 4, 5, 6, 8]))
    out.append(_table(["check", "status", "detail"],
                      [[escape(c["check"]), _status(c["status"]), escape(c["detail"])]
                       for c in rec["checks"]]))
    return "\n".join(out)


def _ingest_notes(ingest: dict | None) -> str:
    """Files left for a later run and what the extracts folder holds besides tables."""
    if not ingest or not (ingest.get("waiting") or ingest.get("warnings")):
        return ""
    out = ["<h2>Ingest: files not loaded</h2>"]
    if ingest.get("waiting"):
        out.append("<p>Waiting for their writer to rename them into place (loaded by a later "
                   "run):</p><ul>" + "".join(f"<li><code>{escape(p)}</code></li>" for p in ingest["waiting"])
                   + "</ul>")
    if ingest.get("warnings"):
        out.append("<p class='warning'>Not part of the extracts layout:</p><ul>"
                   + "".join(f"<li>{escape(w)}</li>" for w in ingest["warnings"]) + "</ul>")
    return "\n".join(out)


def _quarantined(q: dict | None) -> str:
    out = ["<h2>Quarantined lines</h2>"]
    if not q or not q.get("total"):
        return out[0] + "<p>None: every line of every file loaded.</p>"
    out.append(f"<p>{q['total']} lines in <code>{escape(q['table'])}</code>, with file, line "
               "number and reason. Ask the platform team to correct and redeliver them in a new "
               "file.</p>")
    out.append(_table(["file", "reason", "lines", "first line"],
                      [[escape(x["file"]), escape(x["reason"]), str(x["lines"]), str(x["first_line"])]
                       for x in q["by_file"]], num=[2, 3]))
    out.append("<details><summary>First lines</summary>" + _table(
        ["file", "line", "reason", "text"],
        [[escape(x["file"]), str(x["line_number"]), escape(x["reason"]), f"<code>{escape(x['line'] or '')}</code>"]
         for x in q["sample"]]) + "</details>")
    return "\n".join(out)


def _history(history: list[dict]) -> str:
    if not history:
        return ""
    rows = [
        [escape(h["run_id"]), escape(h["command"]), _status(h["status"]), escape(str(h["started_at"])),
         escape(str(h["ended_at"] or "")), _num(h.get("files_loaded")), _num(h.get("rows_loaded"))]
        for h in history
    ]
    return "<h2>Recent runs (orchestrate.run_history)</h2>" + _table(
        ["run", "command", "status", "started", "ended", "files loaded", "rows loaded"], rows, num=[5, 6])


def _status(status: str) -> str:
    return f"<span class='{escape(status)}'>{escape(status)}</span>"


def _num(value) -> str:
    return "—" if value is None else f"{value:,}"


def _table(headers: list[str], rows: list[list[str]], header: bool = True, num: list[int] = ()) -> str:
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>" if header else ""
    body = "".join(
        "<tr>" + "".join(f"<td class='num'>{c}</td>" if i in num else f"<td>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"
