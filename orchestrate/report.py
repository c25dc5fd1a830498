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
text-align:left;vertical-align:top;overflow-wrap:anywhere} th{background:#f4f4f4;overflow-wrap:normal}
td:nth-child(-n+2){overflow-wrap:normal;white-space:nowrap} td.num{text-align:right}
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
.badge.warning{background:#a35a00} .charts{display:flex;flex-wrap:wrap;gap:1em 3em}
.chart h3{font-size:1em;margin:.8em 0 .2em} svg text{font:11px system-ui,sans-serif;fill:#333}
svg .axis{stroke:#bbb} p.more{color:#666;font-style:italic;margin:.2em 0}
"""
ROWS_SHOWN = 50  # rows of a long table shown; the rest are counted (all are in report.json)


def render_html(r: dict) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Run {escape(r['run_id'])}: {escape(r['status'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Warehouse run {escape(r['run_id'])} {_badge(r)}</h1>",
        _headline(r),
        _steps(r),
        _charts(r),
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


def _badge(r: dict) -> str:
    """The run's status; a passing run whose steps warned says so."""
    status, label = r["status"], r["status"].upper()
    if status == "passed" and r.get("warned"):
        status, label = "warning", "PASSED WITH WARNINGS"
    return f"<span class='badge {escape(status)}'>{escape(label)}</span>"


def _headline(r: dict) -> str:
    opts = r["options"]
    rows = [
        ("Command", f"{r['command']}" + (f" (retry of {r['retry_of']})" if r.get("retry_of") else "")),
        ("Target", f"{opts['target']} ({r['target_type']})"),
        ("Extracts", opts.get("extracts") or "—"),
        ("Selection", " ".join(opts.get("select") or []) or "everything"),
        ("Build scope", r.get("build_scope") or "—"),
        ("Started / ended", f"{r['started_at']} → {r['ended_at']} ({r['seconds']}s)"),
        ("Exit status", str(r["exit_code"])),
        ("Results", r["results"]["where"]),
    ]
    out = [_table(["", ""], [[k, escape(str(v))] for k, v in rows], header=False)]
    out.append(f"<p>Query them: <code>{escape(r['results']['query'].removeprefix('query: '))}</code></p>")
    if r.get("warned") and r["status"] == "passed":
        out.append(f"<p class='warning'>Passed, with warnings in: {escape(', '.join(r['warned']))} "
                   "(see those steps below).</p>")
    if r.get("failed_checks"):
        out.append("<p class='failed'>Data-quality checks that failed:</p>"
                   + _list([escape(line) for line in r["failed_checks"]]))
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
           f"{escape(d['summary'])}</p>"]
    if d.get("scope"):
        out.append(f"<p class='muted'>Built: {escape(d['scope'])}.</p>")
    problems = [x for x in d["results"] if x["status"] not in ("success", "pass", "no-op")]  # no-op: exposures
    if problems:
        out.append(f"<h3>Failed, erred, warned or skipped nodes ({len(problems)})</h3>")
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
        for x in sorted(d["results"], key=lambda x: -x["seconds"])
    ]
    out.append(_folded(f"All {len(rows)} nodes, slowest first", ["status", "type", "name", "seconds"],
                       rows, num=[3]))
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
            out.append(_folded(f"{escape(t['test'])}: {t.get('stored_rows', len(t['rows']))} rows",
                               [escape(c) for c in t["columns"]],
                               [[escape(str(v)) for v in row] for row in t["rows"]],
                               total=t.get("stored_rows"), note=escape(t["description"])))
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
    notes = [f"{escape(t['table'])}: current rows {escape(t['current_note'])}."
             for t in rec["tables"] if t.get("current_note")]
    if notes:
        out.append("<p class='muted'>" + " ".join(notes) + "</p>")
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
    out.append(_folded(f"{len(q['by_file'])} files and reasons", ["file", "reason", "lines", "first line"],
                       [[escape(x["file"]), escape(x["reason"]), str(x["lines"]), str(x["first_line"])]
                        for x in q["by_file"]], num=[2, 3], open_if_short=True))
    out.append(_folded(f"First {len(q['sample'])} lines", ["file", "line", "reason", "text"],
                       [[escape(x["file"]), str(x["line_number"]), escape(x["reason"]),
                         f"<code>{escape(x['line'] or '')}</code>"] for x in q["sample"]],
                       total=q["total"]))
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
        ["run", "command", "status", "started", "ended", "files loaded", "rows loaded"], rows[:ROWS_SHOWN], num=[5, 6])


def _list(items: list[str]) -> str:
    """A list, capped at ROWS_SHOWN items with a count of the rest."""
    more = len(items) - ROWS_SHOWN
    return ("<ul>" + "".join(f"<li>{i}</li>" for i in items[:ROWS_SHOWN]) + "</ul>"
            + (f"<p class='more'>… and {more:,} more in report.json</p>" if more > 0 else ""))


def _folded(summary: str, headers: list[str], rows: list[list[str]], num: list[int] = (),
            total: int | None = None, note: str = "", open_if_short: bool = False) -> str:
    """A long table folded under its summary and capped at ROWS_SHOWN rows, saying how
    many are not shown (`total`: the rows there are, when more than were read)."""
    total = max(total or 0, len(rows))
    hidden = total - min(len(rows), ROWS_SHOWN)
    opened = " open" if open_if_short and total <= 10 else ""
    return (f"<details{opened}><summary>{summary}</summary>"
            + (f"<p class='muted'>{note}</p>" if note else "")
            + _table(headers, rows[:ROWS_SHOWN], num=num)
            + (f"<p class='more'>{hidden:,} more rows not shown"
               + (" (all are in report.json)" if len(rows) == total else "") + "</p>" if hidden > 0 else "")
            + "</details>")


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


# --------------------------------------------------------------------------------------
# Charts: inline SVG written here (no network, no plotting library in the run)

COLORS = {"passed": "#176f2c", "warning": "#a35a00", "failed": "#b00020", "error": "#6d0016",
          "skipped": "#999", "not run": "#ccc", "interrupted": "#a35a00"}
FUNNEL = (("lines", "lines in files", "#5b7fa6"), ("rows_loaded", "loaded", "#3b6b9a"),
          ("raw_rows", "raw changes", "#2c5a85"), ("current_rows", "current (staging)", "#6a8f3b"),
          ("mart_rows", "mart rows", "#176f2c"))


def _charts(r: dict) -> str:
    charts = [
        ("Time per step (seconds)", _step_times(r["steps"])),
        ("Rows from files to marts", _funnel((r.get("reconciliation") or {}).get("tables") or [])),
        ("Unmapped codes by district (rows carrying one)", _unmapped_by_district(r.get("unmapped") or [])),
        ("Percent favorable by topic against the previous run", _topic_shift(r.get("topic_shift"))),
    ]
    shown = [f"<div class='chart'><h3>{title}</h3>{svg}</div>" for title, svg in charts if svg]
    return "<h2>At a glance</h2><div class='charts'>" + "".join(shown) + "</div>" if shown else ""


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
            f"aria-label='{escape(label)}'>" + "".join(body) + "</svg>")


def _hbars(rows: list[tuple[str, float, str, str]], label: str, width: int = 520, left: int = 150) -> str:
    """Horizontal bars: (label, value, color, text after the bar) per row."""
    if not rows:
        return ""
    top = max(v for _, v, _, _ in rows) or 1
    span, step = width - left - 90, 18
    body = []
    for n, (name, value, color, text) in enumerate(rows):
        y = n * step
        w = max(span * value / top, 1 if value else 0)
        body += [f"<text x='{left - 6}' y='{y + 12}' text-anchor='end'>{escape(name[:24])}</text>",
                 f"<rect x='{left}' y='{y + 3}' width='{w:.1f}' height='12' fill='{color}'><title>"
                 f"{escape(name)}: {escape(text)}</title></rect>",
                 f"<text x='{left + w + 4:.1f}' y='{y + 12}'>{escape(text)}</text>"]
    return _svg(width, step * len(rows) + 4, body, label)


def _step_times(steps: list[dict]) -> str:
    rows = [(s["name"], s["seconds"], COLORS.get(s["status"], "#666"), f"{s['seconds']:.1f}s {s['status']}")
            for s in steps if s.get("seconds") is not None]
    return _hbars(rows, "time per step")


def _funnel(tables: list[dict]) -> str:
    """Per raw table, its rows at each stage, as bars scaled to the table's own lines."""
    tables = [t for t in tables if t.get("lines")]
    if not tables:
        return ""
    width, left, bar, gap = 600, 150, 7, 10
    span = width - left - 160  # room for "10,225,206 → 9,815,586" after the bars
    body, y = [], 0
    for n, (key, name, color) in enumerate(FUNNEL):  # legend
        body += [f"<rect x='{left + (n % 3) * 120}' y='{y + (n // 3) * 14}' width='10' height='10' fill='{color}'/>",
                 f"<text x='{left + (n % 3) * 120 + 14}' y='{y + (n // 3) * 14 + 9}'>{name}</text>"]
    y += 34
    for t in tables:
        body.append(f"<text x='{left - 6}' y='{y + 2.5 * bar + 4}' text-anchor='end'>{escape(t['table'])}</text>")
        top = max(t.get(k) or 0 for k, _, _ in FUNNEL) or 1
        for n, (key, name, color) in enumerate(FUNNEL):
            value = t.get(key)
            yy = y + n * bar
            if value is None:
                why = "no row-level mart" if key == "mart_rows" and not t.get("mart") else "not counted"
                body.append(f"<text x='{left + 2}' y='{yy + bar - 1}' style='font-size:7px'>{name}: {why}</text>")
                continue
            w = span * value / top
            body += [f"<rect x='{left}' y='{yy}' width='{w:.1f}' height='{bar - 1}' fill='{color}'>"
                     f"<title>{escape(t['table'])} {name}: {value:,}</title></rect>"]
        last = next((t.get(k) for k, _, _ in reversed(FUNNEL) if t.get(k) is not None), None)
        body.append(f"<text x='{left + span + 4}' y='{y + 2.5 * bar + 4}'>{_num(t['lines'])} → {_num(last)}</text>")
        y += len(FUNNEL) * bar + gap
    return _svg(width, y, body, "rows from files to marts")


def _unmapped_by_district(tests: list[dict], shown: int = 15) -> str:
    per_district: dict[str, int] = {}
    for t in tests:
        columns = t.get("columns") or []
        if "district_id" not in columns or "rows_with_code" not in columns:
            continue
        d, n = columns.index("district_id"), columns.index("rows_with_code")
        for row in t["rows"]:
            per_district[str(row[d])] = per_district.get(str(row[d]), 0) + int(row[n] or 0)
    if not per_district:
        return ""
    ranked = sorted(per_district.items(), key=lambda kv: -kv[1])
    rows = [(d, n, "#a35a00", f"{n:,}") for d, n in ranked[:shown]]
    if len(ranked) > shown:
        rest = sum(n for _, n in ranked[shown:])
        rows.append((f"{len(ranked) - shown} more districts", rest, "#ccc", f"{rest:,}"))
    return _hbars(rows, "unmapped codes by district")


def _topic_shift(shift: dict | None, shown: int = 30) -> str:
    """Per topic, percent favorable in the previous run (hollow) and now (filled)."""
    if not shift or not shift.get("topics"):
        return ""
    topics = sorted(shift["topics"], key=lambda t: -abs((t["current"] or 0) - (t["previous"] or t["current"] or 0)))[:shown]
    width, left, step = 520, 190, 16
    span = width - left - 20
    x = lambda v: left + span * v / 100  # noqa: E731
    body = [f"<line class='axis' x1='{x(v):.0f}' x2='{x(v):.0f}' y1='0' y2='{step * len(topics) + 4}'/>"
            f"<text x='{x(v):.0f}' y='{step * len(topics) + 16}' text-anchor='middle'>{v}</text>"
            for v in (0, 25, 50, 75, 100)]
    for n, t in enumerate(topics):
        y = n * step + 9
        now, before = t["current"], t["previous"]
        name = f"{t['topic_id']} ({t['respondent_type']})"
        body.append(f"<text x='{left - 6}' y='{y + 4}' text-anchor='end'>{escape(name[:30])}</text>")
        if now is None:
            continue
        if before is not None:
            body += [f"<line x1='{x(before):.1f}' x2='{x(now):.1f}' y1='{y}' y2='{y}' stroke='#888'/>",
                     f"<circle cx='{x(before):.1f}' cy='{y}' r='4' fill='#fff' stroke='#3b6b9a'>"
                     f"<title>{escape(name)} previous run: {before:.1f}</title></circle>"]
        body.append(f"<circle cx='{x(now):.1f}' cy='{y}' r='4' fill='#3b6b9a'><title>{escape(name)} now: "
                    f"{now:.1f}" + (f" (was {before:.1f})" if before is not None else " (new)") + "</title></circle>")
    note = (f"<p class='muted'>Hollow: run {escape(str(shift.get('previous_run')))}; filled: this run. "
            f"District rows, all students; the {len(topics)} topics that moved most"
            + (f" of {len(shift['topics'])}" if len(shift["topics"]) > len(topics) else "") + ".</p>")
    return _svg(width, step * len(topics) + 22, body, "topic results against the previous run") + note
