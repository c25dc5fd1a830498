"""Read a LookML project and write the SQL Looker would issue for an explore query.

No Looker is needed: this is a small renderer of the parts of LookML the generated
project (orchestrate/lookml.py) uses, enough to run an explore's or a dashboard tile's
query on the warehouse and check what comes back. It follows Looker's rules for them:

- `${TABLE}` is the view's alias in the query (the view or join name); `${field}` and
  `${view.field}` are replaced by that field's SQL; a `yesno` field referenced from SQL
  is its condition, and selected it is `'Yes'` / `'No'`; `@{constant}` comes from
  manifest.lkml.
- Only the joins a query needs are made: those of the views its fields, filters, access
  filters, `always_filter` and `sql_always_where` name, and the joins their `sql_on` and
  `required_joins` need in turn, in the explore's order.
- Every query carries the explore's `sql_always_where`, an `access_filter` per user
  attribute (a query without the attribute is refused, as Looker refuses it), and the
  `always_filter` defaults the query does not override; an explore with
  `required_access_grants` is refused to a user whose attributes do not grant it.
- Measures: sum (coalesced to 0, as Looker does), count, count_distinct, average, min,
  max, and number (a formula over other measures). Joins must be many_to_one or
  one_to_one: fan-out (Looker's symmetric aggregates) is not rendered.
- Filters take Looker filter expressions of the simple kinds: a value, a comma-separated
  list of values, `-value` (not), `NULL` / `-NULL`, `Yes` / `No` on yesno fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import lkml
import yaml

REFERENCE = re.compile(r"\$\{([A-Za-z_][\w]*)(?:\.([A-Za-z_][\w]*))?\}")
CONSTANT = re.compile(r"@\{(\w+)\}")
TIMEFRAME_SQL = {
    "raw": "{}",
    "time": "{}",
    "date": "cast({} as date)",
    "week": "cast(date_trunc('week', {}) as date)",
    "month": "cast(date_trunc('month', {}) as date)",
    "year": "extract(year from {})",
}


class LookmlError(ValueError):
    """The LookML names something that does not exist, or a query asks for it."""


class AccessDenied(LookmlError):
    """The user's attributes do not grant the explore, or lack an access filter's value."""


@dataclass
class Field:
    view: str
    name: str
    kind: str  # dimension | measure
    type: str
    sql: str | None
    hidden: bool = False
    timeframe: str | None = None  # a dimension_group's timeframe field

    @property
    def ref(self) -> str:
        return f"{self.view}.{self.name}"


@dataclass
class View:
    name: str
    table: str  # sql_table_name, constants substituted
    fields: dict[str, Field]

    def table_columns(self) -> set[str]:
        """Every column named as ${TABLE}.column in the view's SQL."""
        return {
            m.group(1).lower()
            for f in self.fields.values()
            for m in re.finditer(r"\$\{TABLE\}\.(\w+)", f.sql or "")
        }


@dataclass
class Explore:
    model: str
    name: str
    spec: dict
    project: Project
    joins: dict[str, dict] = field(default_factory=dict)  # join name -> join, in order

    def __post_init__(self) -> None:
        if "fields" in self.spec:
            raise LookmlError(f"explore {self.name}: fields: is not rendered")
        for join in self.spec.get("joins", []):
            if join.get("from", join["name"]) != join["name"]:
                raise LookmlError(f"explore {self.name}: join {join['name']} uses from:, which is not rendered")
            self.joins[join["name"]] = join

    @property
    def base(self) -> str:
        return self.spec.get("view_name", self.name)

    @property
    def views(self) -> list[str]:
        return [self.base, *self.joins]

    def view(self, name: str) -> View:
        if name not in self.views:
            raise LookmlError(f"explore {self.model}.{self.name} has no view {name}")
        return self.project.view(name)

    def field(self, ref: str) -> Field:
        """The field `view.field` of this explore."""
        if "." not in ref:
            raise LookmlError(f"{ref}: a field is named view.field")
        view_name, name = ref.split(".", 1)
        view = self.view(view_name)
        if name not in view.fields:
            raise LookmlError(f"explore {self.model}.{self.name}: view {view_name} has no field {name}")
        return view.fields[name]

    def always_filters(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for group in self.spec.get("always_filter", {}).get("filters__all", []):
            for item in group:
                out.update(item)
        return out

    def access_filters(self) -> list[dict]:
        return self.spec.get("access_filters", [])

    # --- SQL ---------------------------------------------------------------------------

    def expression(self, f: Field, selected: bool = False, seen: tuple = ()) -> str:
        """The SQL of a field: for a measure its aggregate, for a yesno its condition
        (selected: 'Yes'/'No'), for a timeframe of a dimension_group the truncated value."""
        if f.ref in seen:
            raise LookmlError(f"{f.ref} refers to itself")
        seen = (*seen, f.ref)
        body = self.substitute(f.sql or "", f.view, seen) if f.sql else None
        if f.kind == "dimension":
            if f.timeframe:
                return TIMEFRAME_SQL[f.timeframe].format(f"({body})")
            if f.type == "yesno":
                return f"case when ({body}) then 'Yes' else 'No' end" if selected else f"({body})"
            return f"({body})"
        if f.type == "count":
            return "count(*)"
        if f.type == "sum":
            return f"coalesce(sum({body}), 0)"
        if f.type in ("average", "min", "max"):
            return f"{'avg' if f.type == 'average' else f.type}({body})"
        if f.type == "count_distinct":
            return f"count(distinct {body})"
        if f.type == "number":
            return f"({body})"
        raise LookmlError(f"{f.ref}: measure type {f.type} is not rendered")

    def substitute(self, sql: str, view_name: str, seen: tuple = ()) -> str:
        def replace(m: re.Match) -> str:
            first, second = m.group(1), m.group(2)
            if second is None:
                if first == "TABLE":
                    return view_name
                return self.expression(self.field(f"{view_name}.{first}"), seen=seen)
            if second == "SQL_TABLE_NAME":
                return self.view(first).table
            return self.expression(self.field(f"{first}.{second}"), seen=seen)

        return REFERENCE.sub(replace, sql)

    def views_referenced(self, sql: str, view_name: str | None = None) -> set[str]:
        """Views a piece of SQL needs, following the fields it names to their own SQL."""
        out: set[str] = set()
        for m in REFERENCE.finditer(sql or ""):
            first, second = m.group(1), m.group(2)
            if second is None:
                if first != "TABLE" and view_name:
                    out |= self.field_views(self.field(f"{view_name}.{first}"))
                elif view_name:
                    out.add(view_name)
            elif second != "SQL_TABLE_NAME":
                out |= self.field_views(self.field(f"{first}.{second}"))
            else:
                out.add(first)
        return out

    def field_views(self, f: Field) -> set[str]:
        return {f.view} | self.views_referenced(f.sql or "", f.view)

    def needed_views(self, refs: list[str]) -> list[str]:
        """The base view and every join the query needs, in the explore's order."""
        needed = {self.base}
        for ref in refs:
            needed |= self.field_views(self.field(ref))
        for ref in [*self.always_filters(), *(a["field"] for a in self.access_filters())]:
            needed |= self.field_views(self.field(ref))
        needed |= self.views_referenced(self.spec.get("sql_always_where", ""))
        while True:
            more = set(needed)
            for name in needed - {self.base}:
                join = self.joins.get(name)
                if join is None:
                    raise LookmlError(f"explore {self.model}.{self.name} has no join {name}")
                more |= self.views_referenced(join.get("sql_on", ""))
                more |= set(join.get("required_joins", []))
            if more == needed:
                break
            needed = more
        return [v for v in self.views if v in needed]

    def check_access(self, user_attributes: dict[str, str]) -> None:
        grants = self.project.access_grants(self.model)
        for grant_name in self.spec.get("required_access_grants", []):
            grant = grants.get(grant_name)
            if grant is None:
                raise LookmlError(f"explore {self.name} requires access grant {grant_name}, not defined in {self.model}")
            if user_attributes.get(grant["user_attribute"]) not in grant["allowed_values"]:
                raise AccessDenied(f"explore {self.model}.{self.name} requires access grant {grant_name}")
        for access in self.access_filters():
            if access["user_attribute"] not in user_attributes:
                raise AccessDenied(f"explore {self.model}.{self.name} filters on user attribute "
                                   f"{access['user_attribute']}, which this user lacks")

    def sql(
        self,
        fields: list[str],
        filters: dict[str, str] | None = None,
        user_attributes: dict[str, str] | None = None,
        sorts: list[str] | None = None,
        limit: int | None = None,
    ) -> str:
        """The SELECT Looker would run for these fields, filters and user."""
        user_attributes = user_attributes or {}
        self.check_access(user_attributes)
        filters = {**self.always_filters(), **(filters or {})}
        chosen = [self.field(ref) for ref in fields]
        for ref in filters:
            self.field(ref)
        views = self.needed_views([*fields, *filters])
        dimensions = [f for f in chosen if f.kind == "dimension"]
        select = ",\n    ".join(f'{self.expression(f, selected=True)} as "{f.ref}"' for f in chosen)
        lines = [f"select\n    {select}", f"from {self.project.view(self.base).table} as {self.base}"]
        for name in views[1:]:
            join = self.joins[name]
            if join.get("relationship", "many_to_one") not in ("many_to_one", "one_to_one"):
                raise LookmlError(f"join {name}: {join['relationship']} fans out, which is not rendered")
            kind = {"left_outer": "left join", "inner": "inner join", "full_outer": "full join"}[
                join.get("type", "left_outer")]
            lines.append(f"{kind} {self.project.view(name).table} as {name}\n    on "
                         + self.substitute(join["sql_on"], self.base))
        where, having = [], []
        if always := self.spec.get("sql_always_where"):
            where.append(f"({self.substitute(always, self.base)})")
        for access in self.access_filters():
            value = user_attributes[access["user_attribute"]]
            where.append(f"{self.expression(self.field(access['field']))} = {literal(value)}")
        for ref, expression in filters.items():
            f = self.field(ref)
            (having if f.kind == "measure" else where).append(filter_sql(self.expression(f), f, expression))
        if where:
            lines.append("where " + "\n    and ".join(where))
        if dimensions and len(dimensions) < len(chosen):
            lines.append("group by " + ", ".join(str(i + 1) for i, f in enumerate(chosen) if f.kind == "dimension"))
        elif dimensions:
            lines[0] = lines[0].replace("select", "select distinct", 1)
        if having:
            lines.append("having " + "\n    and ".join(having))
        if sorts:
            order = []
            for sort in sorts:
                ref, _, direction = sort.partition(" ")
                order.append(f'"{self.field(ref).ref}" {direction or "asc"}')
            lines.append("order by " + ", ".join(order))
        if limit:
            lines.append(f"limit {int(limit)}")
        return "\n".join(lines)


def literal(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def filter_sql(expression: str, f: Field, value: str) -> str:
    """A Looker filter expression (the simple kinds, see the module doc) as SQL."""
    value = str(value).strip()
    if f.type == "yesno" and not f.timeframe:
        if value.lower() not in ("yes", "no"):
            raise LookmlError(f"{f.ref}: a yesno filter is Yes or No, not {value!r}")
        return expression if value.lower() == "yes" else f"not coalesce({expression}, false)"
    if value.upper() == "NULL":
        return f"{expression} is null"
    if value.upper() == "-NULL":
        return f"{expression} is not null"
    negate = value.startswith("-")
    values = [v.strip() for v in (value[1:] if negate else value).split(",")]
    if f.type == "number":
        items = [str(float(v)) for v in values]
    else:
        items = [literal(v) for v in values]
    if len(items) == 1:
        return f"{expression} {'<>' if negate else '='} {items[0]}"
    return f"{expression} {'not in' if negate else 'in'} ({', '.join(items)})"


class Project:
    """A LookML project: manifest constants, views, models with explores, dashboards."""

    def __init__(self, files: dict[str, str]):
        """`files`: path relative to the project root -> text (.lkml and .dashboard.lookml)."""
        self.files = files
        self.constants: dict[str, str] = {}
        self.views: dict[str, View] = {}
        self.models: dict[str, dict] = {}
        self.dashboards: list[dict] = []
        parsed = {}
        for path, text in sorted(files.items()):
            if path.endswith(".lkml"):
                try:
                    parsed[path] = lkml.load(text)
                except Exception as exc:  # lkml raises its own syntax errors
                    raise LookmlError(f"{path}: does not parse as LookML: {exc}") from exc
        for path, tree in parsed.items():
            if Path(path).name == "manifest.lkml":
                self.constants = {c["name"]: c["value"] for c in tree.get("constants", [])}
        for path, tree in parsed.items():
            for view in tree.get("views", []):
                self.views[view["name"]] = self._view(view)
            if path.endswith(".model.lkml"):
                self.models[Path(path).name.removesuffix(".model.lkml")] = tree
        for path, text in sorted(files.items()):
            if path.endswith(".dashboard.lookml"):
                for dashboard in yaml.safe_load(text):
                    self.dashboards.append({**dashboard, "_file": path})

    @classmethod
    def load(cls, root: Path) -> Project:
        files = {
            str(p.relative_to(root)): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*"))
            if p.is_file() and (p.name.endswith(".lkml") or p.name.endswith(".dashboard.lookml"))
        }
        return cls(files)

    def constant(self, text: str) -> str:
        def replace(m: re.Match) -> str:
            if m.group(1) not in self.constants:
                raise LookmlError(f"constant {m.group(1)} is not defined in manifest.lkml")
            return self.constants[m.group(1)]

        return CONSTANT.sub(replace, text)

    def _view(self, spec: dict) -> View:
        name = spec["name"]
        fields: dict[str, Field] = {}
        for d in spec.get("dimensions", []):
            fields[d["name"]] = Field(name, d["name"], "dimension", d.get("type", "string"), d.get("sql"),
                                      d.get("hidden") == "yes")
        for g in spec.get("dimension_groups", []):
            for timeframe in g.get("timeframes", []):
                fields[f"{g['name']}_{timeframe}"] = Field(name, f"{g['name']}_{timeframe}", "dimension", "time",
                                                           g.get("sql"), g.get("hidden") == "yes", timeframe)
        for m in spec.get("measures", []):
            fields[m["name"]] = Field(name, m["name"], "measure", m.get("type", "count"), m.get("sql"),
                                      m.get("hidden") == "yes")
        if "sql_table_name" not in spec:
            raise LookmlError(f"view {name} has no sql_table_name")
        return View(name, self.constant(spec["sql_table_name"]).strip(), fields)

    def view(self, name: str) -> View:
        if name not in self.views:
            raise LookmlError(f"no view {name} in the project")
        return self.views[name]

    def access_grants(self, model: str) -> dict[str, dict]:
        return {g["name"]: g for g in self.models.get(model, {}).get("access_grants", [])}

    def view_explore(self, view: str) -> Explore:
        """A view on its own, as an explore without joins, filters or access rules."""
        return Explore("", self.view(view).name, {"name": view}, self)

    def explores(self) -> list[Explore]:
        return [Explore(model, e["name"], e, self) for model, tree in self.models.items()
                for e in tree.get("explores", [])]

    def explore(self, model: str, name: str) -> Explore:
        if model not in self.models:
            raise LookmlError(f"no model {model} in the project")
        for spec in self.models[model].get("explores", []):
            if spec["name"] == name:
                return Explore(model, name, spec, self)
        raise LookmlError(f"model {model} has no explore {name}")

    # --- dashboards -----------------------------------------------------------------------

    def dashboard(self, name: str) -> dict:
        for dashboard in self.dashboards:
            if dashboard["dashboard"] == name:
                return dashboard
        raise LookmlError(f"no dashboard {name} in the project")

    def tile_queries(self, dashboard: dict, filter_values: dict[str, str] | None = None) -> list[dict]:
        """Each query tile of a dashboard as {element, explore, fields, filters, sorts, limit,
        fields_named}: its dashboard filters' values (given, else their defaults) applied
        through `listen`. fields_named lists every field the tile names anywhere."""
        filter_values = filter_values or {}
        dashboard_filters = {f["name"]: f for f in dashboard.get("filters", [])}
        out = []
        for element in dashboard.get("elements", []):
            if "explore" not in element:
                continue
            explore = self.explore(element["model"], element["explore"])
            filters = dict(element.get("filters") or {})
            for filter_name, ref in (element.get("listen") or {}).items():
                if filter_name not in dashboard_filters:
                    raise LookmlError(f"dashboard {dashboard['dashboard']}: tile {element['name']} listens to "
                                      f"undefined filter {filter_name}")
                value = filter_values.get(filter_name, dashboard_filters[filter_name].get("default_value"))
                if value not in (None, ""):
                    filters[ref] = value
            named = [*element.get("fields", []), *element.get("pivots", []), *(element.get("filters") or {}),
                     *(element.get("listen") or {}).values(), *element.get("hidden_fields", []),
                     *(s.split(" ")[0] for s in element.get("sorts", []))]
            for calc in element.get("dynamic_fields", []):
                named += [f"{a}.{b}" for a, b in REFERENCE.findall(calc.get("expression", "")) if b]
            out.append({
                "element": element["name"],
                "explore": explore,
                "fields": element.get("fields", []),
                "filters": filters,
                "sorts": element.get("sorts", []),
                "limit": element.get("limit"),
                "fields_named": named,
            })
        return out
