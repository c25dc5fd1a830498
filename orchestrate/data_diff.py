"""The data diff of a pull request: each mart it rebuilt against production's, by key.

For every mart, compared in the warehouse (plain SQL that runs on DuckDB and Snowflake):
rows added and removed by key (the mart's grain: its primary key, unique test or
unique_combination test), columns added, removed or retyped, and for each column the
rows whose value changed; for numeric columns also how much (mean, smallest and largest
change, rows that became or stopped being null) with the keys of the largest changes.
Numbers equal within a relative 1e-9 count as equal: a rebuilt average may differ in its
last bits when the engine sums in another order.

`markdown()` renders the result for a pull-request comment.

Written here rather than with Recce (evaluated: recce 1.69 installs beside dbt 1.11 and
runs offline once its telemetry is turned off in its user profile): its value diff gives
the share of matching values per column and the rows added and removed, but not by how
much numbers changed nor example keys, its Markdown summary is a lineage graph, and it
adds some twenty packages (a web server, telemetry clients). These queries are the diff.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrate.lookml import dimension_type, grain

TOLERANCE = 1e-9
MARKDOWN_LIMIT = 60_000  # a GitHub comment holds 65,536 characters


@dataclass
class Side:
    """One side of a mart's comparison: the node in its manifest and its relation."""

    node: dict

    @property
    def relation(self) -> str:
        return self.node["relation_name"]

    @property
    def parts(self) -> tuple[str, str, str]:
        return self.node["database"], self.node["schema"], self.node.get("alias") or self.node["name"]


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def columns(warehouse, side: Side) -> list[tuple[str, str]]:
    """(name, type) of a relation's columns, lower case, in order."""
    database, schema, table = side.parts
    if warehouse.kind == "duckdb":
        sql = ("select lower(column_name), lower(data_type) from information_schema.columns "
               f"where table_catalog = {_lit(database)} and table_schema = {_lit(schema)} "
               f"and table_name = {_lit(table)} order by ordinal_position")
    else:
        sql = (f"select lower(column_name), lower(data_type) from {database}.information_schema.columns "
               f"where lower(table_schema) = lower({_lit(schema)}) and lower(table_name) = lower({_lit(table)}) "
               "order by ordinal_position")
    return [(name, column_type) for name, column_type in warehouse.rows(sql)]


def is_numeric(column_type: str) -> bool:
    return dimension_type(column_type) == "number"


def diff_mart(warehouse, name: str, base: Side | None, pr: Side | None, manifest: dict,
              examples: int = 3) -> dict:
    """The diff of one mart (base: production, pr: the pull request's build)."""
    out: dict = {"mart": name, "status": "unchanged", "keys": []}
    if pr is None:
        out.update(status="removed", rows_base=warehouse.scalar(f"select count(*) from {base.relation}"))
        return out
    pr_columns = columns(warehouse, pr)
    rows_pr = warehouse.scalar(f"select count(*) from {pr.relation}")
    if base is None or not columns(warehouse, base):
        out.update(status="new", rows_pr=rows_pr, columns_added=pr_columns)
        return out
    base_columns = columns(warehouse, base)
    base_types, pr_types = dict(base_columns), dict(pr_columns)
    out.update(
        rows_base=warehouse.scalar(f"select count(*) from {base.relation}"),
        rows_pr=rows_pr,
        columns_added=[(c, t) for c, t in pr_columns if c not in base_types],
        columns_removed=[(c, t) for c, t in base_columns if c not in pr_types],
        columns_retyped=[(c, base_types[c], t) for c, t in pr_columns if c in base_types and base_types[c] != t],
    )
    keys = [k.lower() for k in grain(manifest, pr.node)]
    if not keys or not all(k in base_types and k in pr_types for k in keys):
        out.update(status="changed" if _schema_changed(out) or out["rows_base"] != rows_pr else "unchanged",
                   note="no grain (a unique or unique_combination test) in both: rows compared by count only")
        return out
    out["keys"] = keys
    key_list = ", ".join(keys)
    duplicates = warehouse.scalar(
        f"select count(*) from (select {key_list} from {pr.relation} group by {key_list} having count(*) > 1) d")
    if duplicates:
        out.update(status="changed", duplicate_keys=duplicates,
                   duplicate_examples=_key_rows(warehouse, f"select {key_list} from {pr.relation} "
                                                f"group by {key_list} having count(*) > 1 order by {key_list}",
                                                keys, examples),
                   note=f"{duplicates} keys occur more than once in the pull request's table: "
                        "its grain is broken, so rows are not compared")
        return out
    on = " and ".join(f"b.{k} is not distinct from p.{k}" for k in keys)
    for kind, (left, right) in {"added": (pr.relation, base.relation),
                                "removed": (base.relation, pr.relation)}.items():
        anti = (f"from {left} p where not exists (select 1 from {right} b where "
                + " and ".join(f"b.{k} is not distinct from p.{k}" for k in keys) + ")")
        out[kind] = warehouse.scalar(f"select count(*) {anti}")
        out[f"{kind}_examples"] = _key_rows(
            warehouse, f"select {', '.join('p.' + k for k in keys)} {anti} order by {', '.join('p.' + k for k in keys)}",
            keys, examples)

    compared = [c for c, _ in pr_columns if c in base_types and c not in keys]
    changed_sql = {c: _changed(c, base_types[c], pr_types[c]) for c in compared}
    select = ["count(*)"]
    for c in compared:
        select.append(f"sum(case when {changed_sql[c]} then 1 else 0 end)")
        if _both_numeric(base_types[c], pr_types[c]):
            delta = f"(cast(p.{c} as double) - cast(b.{c} as double))"
            both = f"b.{c} is not null and p.{c} is not null and {changed_sql[c]}"
            select += [f"sum(case when b.{c} is not null and p.{c} is null then 1 else 0 end)",
                       f"sum(case when b.{c} is null and p.{c} is not null then 1 else 0 end)",
                       f"avg(case when {both} then {delta} end)",
                       f"min(case when {both} then {delta} end)",
                       f"max(case when {both} then {delta} end)"]
    any_change = " or ".join(f"({changed_sql[c]})" for c in compared) or "false"
    select.append(f"sum(case when {any_change} then 1 else 0 end)")
    joined = f"from {base.relation} b inner join {pr.relation} p on {on}"
    values = list(warehouse.rows(f"select {', '.join(select)} {joined}")[0])
    out["matched"] = values.pop(0)
    out["changed"] = values.pop() or 0
    out["columns"] = []
    for c in compared:
        entry = {"column": c, "changed": values.pop(0) or 0}
        if _both_numeric(base_types[c], pr_types[c]):
            entry.update(became_null=values.pop(0) or 0, was_null=values.pop(0) or 0,
                         mean_change=_num(values.pop(0)), min_change=_num(values.pop(0)),
                         max_change=_num(values.pop(0)))
            order = f"abs(coalesce(cast(p.{c} as double), 0) - coalesce(cast(b.{c} as double), 0)) desc"
        else:
            order = ", ".join(f"p.{k}" for k in keys)
        if entry["changed"]:
            rows = warehouse.rows(
                f"select {', '.join('p.' + k for k in keys)}, b.{c}, p.{c} {joined} "
                f"where {changed_sql[c]} order by {order}, {', '.join('p.' + k for k in keys)} limit {examples}")
            entry["examples"] = [{"key": _plain(dict(zip(keys, r[:len(keys)]))),
                                  "base": _plain(r[len(keys)]), "pr": _plain(r[len(keys) + 1])} for r in rows]
            out["columns"].append(entry)
    if out["added"] or out["removed"] or out["changed"] or _schema_changed(out):
        out["status"] = "changed"
    return out


def _schema_changed(out: dict) -> bool:
    return bool(out.get("columns_added") or out.get("columns_removed") or out.get("columns_retyped"))


def _both_numeric(a: str, b: str) -> bool:
    return is_numeric(a) and is_numeric(b)


def _changed(c: str, base_type: str, pr_type: str) -> str:
    """SQL true when column c differs between b (production) and p (pull request)."""
    if _both_numeric(base_type, pr_type):
        b, p = f"cast(b.{c} as double)", f"cast(p.{c} as double)"
        return (f"((b.{c} is null) <> (p.{c} is null) or "
                f"abs({p} - {b}) > {TOLERANCE} * greatest(1.0, abs({b})))")
    if base_type != pr_type:
        return f"cast(b.{c} as varchar) is distinct from cast(p.{c} as varchar)"
    return f"b.{c} is distinct from p.{c}"


def _key_rows(warehouse, sql: str, keys: list[str], limit: int) -> list[dict]:
    return [_plain(dict(zip(keys, row))) for row in warehouse.rows(f"{sql} limit {limit}")]


def _num(value):
    return None if value is None else float(value)


def _plain(value):
    """JSON-friendly: numbers stay numbers, everything else (dates, decimals) a string."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return float(value)  # Decimal
    except (TypeError, ValueError):
        return str(value)


# --------------------------------------------------------------------------------------
# Markdown


def _n(value) -> str:
    return "—" if value is None else f"{value:,}"


def _fmt(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _key(key: dict) -> str:
    """A key's values in the order of the section's key columns."""
    return " / ".join(_fmt(v) for v in key.values())


def markdown(check: dict) -> str:
    """A pull-request comment: what was built and tested, then the diff of each mart."""
    lines = ["## pr-check: what this pull request changes", ""]
    lines += check["summary_lines"]
    diffs = check.get("diffs") or []
    if diffs:
        changed = [d for d in diffs if d["status"] != "unchanged"]
        lines += ["", f"### Marts: {len(changed)} of {len(diffs)} rebuilt differ from production", "",
                  "| mart | rows: production → pull request | added | removed | changed | columns |",
                  "|---|---|---|---|---|---|"]
        for d in diffs:
            lines.append(f"| {d['mart']} | {_n(d.get('rows_base'))} → {_n(d.get('rows_pr'))} | "
                         f"{_n(d.get('added'))} | {_n(d.get('removed'))} | {_n(d.get('changed'))} | "
                         f"{_columns_cell(d)} |")
        for d in changed:
            lines += [""] + _mart_section(d)
    text = "\n".join(lines) + "\n"
    if len(text) > MARKDOWN_LIMIT:
        text = text[:MARKDOWN_LIMIT].rsplit("\n", 1)[0] + "\n\n… (cut: the whole diff is in diff.md and diff.json)\n"
    return text


def _columns_cell(d: dict) -> str:
    if d["status"] == "new":
        return f"new mart, {len(d.get('columns_added', []))} columns"
    if d["status"] == "removed":
        return "mart removed"
    parts = []
    for label, entries in (("added", d.get("columns_added")), ("removed", d.get("columns_removed"))):
        if entries:
            parts.append(f"{label}: " + ", ".join(f"`{c}`" for c, _ in entries))
    if d.get("columns_retyped"):
        parts.append("retyped: " + ", ".join(f"`{c}` {a} → {b}" for c, a, b in d["columns_retyped"]))
    return "; ".join(parts) or ("no difference" if d["status"] == "unchanged" else "—")


def _mart_section(d: dict) -> list[str]:
    keys = " / ".join(d.get("keys") or []) or "none"
    lines = [f"#### {d['mart']}", "", f"Key: {keys}", ""]
    if d.get("note"):
        lines += [f"> {d['note']}", ""]
    for label in ("duplicate", "added", "removed"):
        examples = d.get(f"{label}_examples")
        if examples:
            lines.append(f"- {_n(d.get(label + '_keys' if label == 'duplicate' else label))} {label} "
                         "keys, e.g. " + "; ".join(f"`{_key(k)}`" for k in examples))
    columns = d.get("columns") or []
    if columns:
        lines += ["", "| column | rows changed | mean change | smallest | largest | became null | was null "
                      "| examples (key: production → pull request) |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in columns:
            examples = "<br>".join(f"`{_key(e['key'])}`: {_fmt(e['base'])} → {_fmt(e['pr'])}"
                                   for e in c.get("examples", []))
            numeric = [_fmt(c["mean_change"]), _fmt(c["min_change"]), _fmt(c["max_change"]),
                       _n(c["became_null"]), _n(c["was_null"])] if "mean_change" in c else [""] * 5
            lines.append(f"| `{c['column']}` | {_n(c['changed'])} | " + " | ".join(numeric) + f" | {examples} |")
    return lines
