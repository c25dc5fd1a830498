"""`python -m orchestrate research-report --school-year Y [--respondent-type T]`: one
self-contained HTML reliability and validity report per instrument (respondent type),
for researchers who never open the warehouse.

Each report (reports/research/<school_year>_<respondent_type>.html, or --out) has: how
many responses, schools and districts it rests on; a summary per topic; alpha with its
interval and omega; item tables (wording, mean, SD, percent favorable, item-total
correlation, alpha if deleted, loading); loadings; score distributions; latent topic
correlations; measurement invariance; topic percent favorable against the benchmark
percentile bands; trends; and the definitions used. Figures are PNG images embedded in
the page (matplotlib), so the file opens anywhere, offline. Read from the marts of the
target's warehouse (the psychometrics tables must have been computed: `python -m
orchestrate run` does).
"""

from __future__ import annotations

import argparse
import base64
import io
import math
import os
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from orchestrate.errors import UserError
from orchestrate.warehouse import PROJECT_DIR

# id -> caption of every figure a report has (the test checks each is there)
FIGURES = {
    "reliability": "Internal consistency per topic: Cronbach's alpha with its 95% interval (Feldt), and McDonald's omega.",
    "loadings": "Standardized loadings of each item on its topic (one-factor CFA per topic).",
    "distributions": "Distribution of respondent topic scores (respondents_wide).",
    "correlations": "Latent correlations between topics (correlated-factors CFA); above 0.85 the topics are not distinct.",
    "benchmarks": "Topic percent favorable against the benchmark percentile bands of school results.",
    "trends": "Percent favorable over school years, all districts pooled, and this year's school-level changes.",
}
TOPIC_COLORS = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#7e52a0", "#00798c", "#8d6a9f", "#c05a2b"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--school-year", help="school year to report, e.g. 2024-25 (default: the latest)")
    parser.add_argument("--respondent-type", help="student, staff or family (default: every instrument of the year)")
    parser.add_argument("--target", default=os.environ.get("DBT_TARGET", "dev"),
                        help="dbt target from profiles.yml: dev (DuckDB, default) or prod (Snowflake)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the reports (default: $ORCHESTRATE_REPORTS_DIR/research or ./reports/research)")


def main(args: argparse.Namespace) -> int:
    from orchestrate import psychometrics, run

    relations = psychometrics.load_relations(args.target)
    out_dir = (args.out or Path(os.environ.get("ORCHESTRATE_REPORTS_DIR", PROJECT_DIR / "reports")) / "research").resolve()
    warehouse = run.open_warehouse(run.adapter_type(args.target))
    try:
        reader = Reader(warehouse, relations)
        years = [y for (y,) in warehouse.rows(f"select distinct school_year from {reader.names['topic_psychometrics']} order by 1")]
        if not years:
            raise UserError("the psychometrics tables are empty: run `python -m orchestrate run` "
                            "(or `python -m orchestrate psychometrics`) first.")
        school_year = args.school_year or years[-1]
        if school_year not in years:
            raise UserError(f"no psychometrics for school year {school_year!r}; the warehouse has "
                            f"{', '.join(years)}. Pick one of those with --school-year.")
        types = [t for (t,) in warehouse.rows(
            f"select distinct respondent_type from {reader.names['topic_psychometrics']} "
            f"where school_year = {_lit(school_year)} order by 1")]
        if args.respondent_type and args.respondent_type not in types:
            raise UserError(f"no {args.respondent_type!r} instrument in {school_year}; there are "
                            f"{', '.join(types)}. Pick one of those with --respondent-type.")
        written = []
        for respondent_type in [args.respondent_type] if args.respondent_type else types:
            print(f"research report: {school_year} {respondent_type}…", flush=True)
            data = reader.read(school_year, respondent_type)
            path = out_dir / f"{school_year}_{respondent_type}.html"
            out_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(render(data), encoding="utf-8")
            written.append(path)
    finally:
        warehouse.close()
    for path in written:
        print(f"Report: {path}")
    return 0


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# --------------------------------------------------------------------------------------
# Reading


class Reader:
    """The marts one report needs, for one school year and respondent type."""

    def __init__(self, warehouse, relations):
        from orchestrate.checks import MissingRelation
        from orchestrate.psychometrics import SOURCE, TABLES

        self.warehouse = warehouse
        try:
            self.names = {name: relations.ref(name) for name in (
                "topics", "canonical_items", "fct_survey_responses", "reliability", "item_reliability",
                "item_results", "topic_results", "topic_trends", "benchmarks", "respondents_wide",
                "int_response_items_listwise_filtered")}
            self.names.update({name: relations.source(SOURCE, name) for name in TABLES})
        except MissingRelation as exc:
            raise UserError(f"{exc}: refresh the dbt manifest with `python -m orchestrate run`.") from None
        missing = [n for n in self.names.values() if not warehouse.exists(n)]
        if missing:
            raise UserError(f"{', '.join(missing)} does not exist: run `python -m orchestrate run` first "
                            "(it builds the marts and computes the psychometrics tables).")

    def df(self, sql: str) -> pd.DataFrame:
        return self.warehouse.df(sql)

    def read(self, school_year: str, respondent_type: str) -> dict:
        n = self.names
        where = f"school_year = {_lit(school_year)} and respondent_type = {_lit(respondent_type)}"
        topics = self.df(f"select topic_id, topic_name, description from {n['topics']} "
                         f"where respondent_type = {_lit(respondent_type)} order by topic_id")
        items = self.df(f"select canonical_item_id, topic_id, canonical_text, scale_points, reverse_coded "
                        f"from {n['canonical_items']} order by canonical_item_id")
        items = items[items.topic_id.isin(topics.topic_id)]
        coverage = self.df(
            f"select count(*) as responses, count(case when is_complete then 1 end) as complete, "
            f"count(distinct school_id) as schools, count(distinct district_id) as districts "
            f"from {n['fct_survey_responses']} where {where}").iloc[0].to_dict()
        item_stats = self.df(
            f"select canonical_item_id, count(*) as complete_respondents, avg(item_score) as item_mean, "
            f"stddev_samp(item_score) as item_sd from {n['int_response_items_listwise_filtered']} "
            f"where {where} group by canonical_item_id")
        item_favorable = self.df(
            f"select canonical_item_id, 100.0 * sum(favorable_answers) / sum(substantive_answers) as percent_favorable "
            f"from {n['item_results']} where {where} and reporting_level = 'district' and subgroup_category = 'all' "
            f"and not is_suppressed group by canonical_item_id")
        score_columns = ", ".join(f"{t}_score" for t in topics.topic_id)
        return {
            "school_year": school_year,
            "respondent_type": respondent_type,
            "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "topics": topics,
            "items": items,
            "coverage": coverage,
            "psychometrics": self.df(f"select * from {n['topic_psychometrics']} where {where}"),
            "loadings": self.df(f"select * from {n['item_loadings']} where {where}"),
            "correlations": self.df(f"select * from {n['topic_correlations']} where {where}"),
            "invariance": self.df(f"select * from {n['measurement_invariance']} where {where}"),
            "item_reliability": self.df(f"select * from {n['item_reliability']} where {where}"),
            "item_stats": item_stats.merge(item_favorable, on="canonical_item_id", how="left"),
            "scores": self.df(f"select {score_columns} from {n['respondents_wide']} where {where}"),
            "benchmarks": self.df(f"select * from {n['benchmarks']} where {where} and school_level = 'all'"),
            "school_results": self.df(
                f"select entity_id as school_id, topic_id, percent_favorable from {n['topic_results']} "
                f"where {where} and reporting_level = 'school' and subgroup_category = 'all' and not is_suppressed"),
            "pooled": self.df(
                f"select school_year, topic_id, 100.0 * sum(favorable_answers) / sum(substantive_answers) as percent_favorable, "
                f"sum(respondents) as respondents from {n['topic_results']} "
                f"where respondent_type = {_lit(respondent_type)} and school_year <= {_lit(school_year)} "
                f"and reporting_level = 'district' and subgroup_category = 'all' and not is_suppressed "
                f"group by school_year, topic_id order by school_year"),
            "school_changes": self.df(
                f"select topic_id, percent_favorable_change from {n['topic_trends']} where {where} "
                f"and reporting_level = 'school' and percent_favorable_change is not null"),
            "min_reporting_n": _project_var("min_reporting_n", 10),
            "invariance_min_group_n": _project_var("invariance_min_group_n", 100),
        }


def _project_var(name: str, default):
    from orchestrate.psychometrics import project_vars

    return project_vars().get(name, default)


# --------------------------------------------------------------------------------------
# Figures


def _figure_html(key: str, fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"<figure id='figure-{key}'><img alt='{escape(FIGURES[key])}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{escape(FIGURES[key])}</figcaption></figure>")


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, color="#555")
    ax.set_axis_off()


def figures(data: dict) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics = data["topics"]
    names = dict(zip(topics.topic_id, topics.topic_name))
    color = {t: TOPIC_COLORS[i % len(TOPIC_COLORS)] for i, t in enumerate(topics.topic_id)}
    psy = data["psychometrics"].set_index("topic_id")
    order = [t for t in topics.topic_id if t in psy.index]
    out = {}

    # alpha with its interval, and omega
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.55 * max(len(order), 1)))
    shown = [t for t in order if not psy.loc[t, "is_suppressed"] and pd.notna(psy.loc[t, "cronbach_alpha"])]
    if shown:
        y = np.arange(len(shown))[::-1]
        alpha = psy.loc[shown, "cronbach_alpha"].astype(float).to_numpy()
        lower = psy.loc[shown, "alpha_ci_lower"].astype(float).to_numpy()
        upper = psy.loc[shown, "alpha_ci_upper"].astype(float).to_numpy()
        ax.errorbar(alpha, y, xerr=[alpha - lower, upper - alpha], fmt="o", color="#1b6ca8", capsize=4,
                    label="Cronbach's alpha, 95% interval")
        omega = psy.loc[shown, "omega_total"].astype(float).to_numpy()
        ax.plot(omega, y, "D", color="#d1495b", markersize=6, label="McDonald's omega")
        ax.axvline(0.7, color="#999", linestyle="--", linewidth=1)
        ax.set_yticks(y, [names[t] for t in shown])
        ax.set_xlim(min(0.5, np.nanmin(lower) - 0.05), 1.0)
        ax.set_xlabel("reliability")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    else:
        _empty(ax, "No topic has enough complete respondents.")
    out["reliability"] = _figure_html("reliability", fig)

    # standardized loadings
    loadings = data["loadings"]
    loadings = loadings[~loadings.is_suppressed & loadings.standardized_loading.notna()]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.28 * max(len(loadings), 1)))
    if len(loadings):
        loadings = loadings.assign(rank=loadings.topic_id.map({t: i for i, t in enumerate(order)}))
        loadings = loadings.sort_values(["rank", "canonical_item_id"], ascending=[True, True])
        y = np.arange(len(loadings))[::-1]
        ax.barh(y, loadings.standardized_loading.astype(float), color=[color[t] for t in loadings.topic_id])
        ax.set_yticks(y, loadings.canonical_item_id, fontsize=8)
        ax.axvline(0.4, color="#999", linestyle="--", linewidth=1)
        ax.set_xlim(min(0.0, float(loadings.standardized_loading.min()) - 0.05), 1)
        ax.axvline(0, color="#333", linewidth=0.8)
        ax.set_xlabel("standardized loading")
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=color[t], label=names[t]) for t in dict.fromkeys(loadings.topic_id)],
                  fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        _empty(ax, "No topic has enough complete respondents for a factor model.")
    out["loadings"] = _figure_html("loadings", fig)

    # score distributions
    scores = data["scores"]
    columns = max(1, min(3, len(order)))
    rows = max(1, math.ceil(len(order) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat[len(order):]:
        ax.set_axis_off()
    for ax, topic_id in zip(axes.flat, order):
        values = pd.to_numeric(scores.get(f"{topic_id}_score"), errors="coerce").dropna()
        if len(values) >= data["min_reporting_n"]:
            top = int(max(data["items"].loc[data["items"].topic_id == topic_id, "scale_points"]))
            # one bar per scale point (scores rounded to the nearest point): scores are means
            # of 2 to k items, and narrower bins would comb the lattice of those means
            ax.hist(values, bins=np.arange(0.5, top + 1), color=color[topic_id], edgecolor="white", rwidth=0.9)
            ax.set_xticks(range(1, top + 1))
            ax.set_xlabel("topic score (mean of item scores)", fontsize=7)
            ax.set_title(f"{names[topic_id]} (n = {len(values):,})", fontsize=9)
            ax.tick_params(labelsize=7)
        else:
            _empty(ax, f"{names[topic_id]}: fewer than {data['min_reporting_n']} scores")
    fig.tight_layout()
    out["distributions"] = _figure_html("distributions", fig)

    # latent correlations
    corr = data["correlations"].dropna(subset=["latent_correlation"])
    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * max(len(order), 2), 1.2 + 0.8 * max(len(order), 2)))
    if len(corr):
        matrix = pd.DataFrame(np.eye(len(order)), index=order, columns=order)
        for r in corr.itertuples():
            matrix.loc[r.topic_id, r.other_topic_id] = matrix.loc[r.other_topic_id, r.topic_id] = r.latent_correlation
        image = ax.imshow(matrix.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu_r")
        for i in range(len(order)):
            for j in range(len(order)):
                value = matrix.iloc[i, j]
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(value) > 0.6 else "black",
                        fontweight="bold" if i != j and abs(value) > 0.85 else "normal")
        ax.set_xticks(range(len(order)), [names[t] for t in order], rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(len(order)), [names[t] for t in order], fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    else:
        why = ("Only one topic." if len(order) < 2 else
               "Too few respondents complete on every topic for the correlated-factors model.")
        _empty(ax, why)
    out["correlations"] = _figure_html("correlations", fig)

    # percent favorable against the benchmark bands
    bench = data["benchmarks"].set_index("topic_id")
    pooled = data["pooled"]
    this_year = pooled[pooled.school_year == data["school_year"]].set_index("topic_id")
    schools = data["school_results"]
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.6 * max(len(order), 1)))
    y_of = {t: i for i, t in enumerate(reversed(order))}
    for topic_id in order:
        y = y_of[topic_id]
        if topic_id in bench.index and bool(bench.loc[topic_id, "is_published"]):
            b = bench.loc[topic_id]
            ax.barh(y, b.p90_percent_favorable - b.p10_percent_favorable, left=b.p10_percent_favorable,
                    height=0.6, color="#dde6f0", label="10th-90th percentile of schools" if y == 0 else None)
            ax.barh(y, b.p75_percent_favorable - b.p25_percent_favorable, left=b.p25_percent_favorable,
                    height=0.6, color="#a9c0da", label="25th-75th percentile" if y == 0 else None)
            ax.plot([b.p50_percent_favorable] * 2, [y - 0.3, y + 0.3], color="#34495e", linewidth=2,
                    label="median school" if y == 0 else None)
        else:
            ax.text(101, y, "no benchmark published", va="center", fontsize=7, color="#777")
        points = schools.loc[schools.topic_id == topic_id, "percent_favorable"].astype(float)
        jitter = np.random.default_rng(0).uniform(-0.18, 0.18, len(points))
        ax.plot(points, y + jitter, ".", color="#777", alpha=0.5, markersize=4,
                label="a school" if y == 0 else None)
        if topic_id in this_year.index:
            ax.plot(this_year.loc[topic_id, "percent_favorable"], y, "D", color="#d1495b", markersize=7,
                    label="all districts pooled" if y == 0 else None)
    ax.set_yticks(list(y_of.values()), [names[t] for t in y_of])
    ax.set_xlim(0, 100)
    ax.set_xlabel("percent favorable")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    out["benchmarks"] = _figure_html("benchmarks", fig)

    # trends
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    years = sorted(pooled.school_year.unique())
    if len(pooled):
        for topic_id in order:
            series = pooled[pooled.topic_id == topic_id].set_index("school_year").reindex(years)
            left.plot(years, series.percent_favorable.astype(float), "o-", color=color[topic_id], label=names[topic_id])
        left.set_ylabel("percent favorable, all districts")
        left.set_ylim(0, 100)
        left.legend(fontsize=7, loc="lower left")
    else:
        _empty(left, "No results.")
    changes = data["school_changes"]
    listed = order[::-1]  # top to bottom in the topics' order, as the other figures
    boxes = [changes.loc[changes.topic_id == t, "percent_favorable_change"].astype(float).to_numpy() for t in listed]
    if any(len(b) for b in boxes):
        right.boxplot([b if len(b) else [np.nan] for b in boxes], vert=False, tick_labels=[names[t] for t in listed])
        right.axvline(0, color="#999", linewidth=1)
        right.set_xlabel("change in points from last year, per school")
        right.tick_params(labelsize=7)
    else:
        _empty(right, "No school has results in both this and last school year.")
    fig.tight_layout()
    out["trends"] = _figure_html("trends", fig)
    return out


# --------------------------------------------------------------------------------------
# HTML

EXTRA_CSS = """
figure{margin:1em 0} figure img{max-width:100%} figcaption{color:#555;font-size:.9em}
dt{font-weight:bold;margin-top:.6em} .flag{color:#b00020;font-weight:bold} .lead{font-size:1.05em}
"""


def _fmt(value, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}{suffix}"
    text = f"{float(value):.{digits}f}"
    return (text[1:] if text.lstrip("-0.") == "" else text) + suffix  # no "-0.000"


def render(data: dict) -> str:
    from orchestrate.report import CSS, _table

    topics = data["topics"]
    names = dict(zip(topics.topic_id, topics.topic_name))
    psy = data["psychometrics"].set_index("topic_id")
    order = [t for t in topics.topic_id if t in psy.index]
    cov = data["coverage"]
    title = f"{data['respondent_type'].capitalize()} survey, {data['school_year']}: reliability and validity"
    figs = figures(data)

    summary_rows = []
    for t in order:
        r = psy.loc[t]
        summary_rows.append([
            escape(names[t]), _fmt(r["items"]), _fmt(r.complete_respondents),
            _fmt(r.cronbach_alpha) + (f" [{_fmt(r.alpha_ci_lower)}, {_fmt(r.alpha_ci_upper)}]"
                                      if pd.notna(r.alpha_ci_lower) else ""),
            _fmt(r.omega_total), _fmt(r.cfi, 3), _fmt(r.tli, 3),
            _fmt(r.rmsea, 3) + (f" [{_fmt(r.rmsea_ci_lower, 3)}, {_fmt(r.rmsea_ci_upper, 3)}]"
                                if pd.notna(r.rmsea_ci_lower) else ""),
            _fmt(r.srmr, 3), _fmt(100 * r.floor_share, 1, "%") if pd.notna(r.floor_share) else "—",
            _fmt(100 * r.ceiling_share, 1, "%") if pd.notna(r.ceiling_share) else "—",
            "suppressed" if r.is_suppressed else
            "improper solution (an item's residual variance at 0)" if r.is_improper_solution is True else ""])
    summary = _table(["topic", "k", "n", "alpha [95% CI]", "omega", "CFI", "TLI", "RMSEA [90% CI]", "SRMR",
                      "floor", "ceiling", "note"], summary_rows, num=list(range(1, 11)))

    item_sections = []
    items = data["items"].set_index("canonical_item_id")
    stats = data["item_stats"].set_index("canonical_item_id")
    rel = data["item_reliability"].set_index("canonical_item_id")
    load = data["loadings"].set_index("canonical_item_id")
    for t in order:
        rows = []
        for item in items.index[items.topic_id == t]:
            s = stats.loc[item] if item in stats.index else {}
            r = rel.loc[item] if item in rel.index else {}
            lo = load.loc[item] if item in load.index else {}
            rows.append([
                escape(item), escape(items.loc[item, "canonical_text"]),
                "yes" if str(items.loc[item, "reverse_coded"]).lower() == "true" else "",
                _fmt(int(items.loc[item, "scale_points"])), _fmt(s.get("item_mean")), _fmt(s.get("item_sd")),
                _fmt(s.get("percent_favorable"), 1, "%"), _fmt(r.get("corrected_item_total_correlation")),
                _fmt(r.get("alpha_if_item_deleted")), _fmt(lo.get("standardized_loading")),
                _fmt(lo.get("standardized_residual_variance"))])
        description = topics.set_index("topic_id").loc[t, "description"]
        item_sections.append(
            f"<h3>{escape(names[t])} <span class='muted'>({escape(t)})</span></h3>"
            f"<p class='muted'>{escape(str(description))}</p>"
            + _table(["item", "wording", "reversed", "points", "mean", "SD", "favorable", "item-total r",
                      "alpha if deleted", "std. loading", "std. residual"], rows, num=list(range(3, 11))))

    corr = data["correlations"]
    corr_note = ""
    if len(corr):
        c = corr.iloc[0]
        corr_note = (f"<p>Correlated-factors model over {_fmt(c.complete_respondents)} respondents complete on "
                     f"every topic: chi-square {_fmt(c.chi_square)} on {_fmt(c.df)} df, CFI {_fmt(c.cfi, 3)}, "
                     f"TLI {_fmt(c.tli, 3)}, RMSEA {_fmt(c.rmsea, 3)}, SRMR {_fmt(c.srmr, 3)}."
                     + (" <span class='flag'>Not distinct: " + escape(", ".join(
                         f"{names[r.topic_id]} and {names[r.other_topic_id]} ({r.latent_correlation:.2f})"
                         for r in corr.itertuples() if r.is_not_distinct is True)) + ".</span>"
                        if (corr.is_not_distinct == True).any() else "") + "</p>")  # noqa: E712

    inv = data["invariance"]
    if len(inv):
        rows = []
        for (t, category), group in inv.groupby(["topic_id", "subgroup_category"], sort=False):
            by_model = group.set_index("model")
            if by_model.is_suppressed.all():
                rows.append([escape(names.get(t, t)), escape(category), "—", "—",
                             "not tested: fewer than two groups with "
                             f"{data['invariance_min_group_n']} complete respondents", "", ""])
                continue
            cells = []
            for model in ("configural", "metric", "scalar"):
                r = by_model.loc[model]
                change = "" if model == "configural" else f" (ΔCFI {_fmt(r.cfi_change, 3)})"
                flag = " <span class='flag'>non-invariant</span>" if r.is_noninvariant is True else ""
                cells.append(f"CFI {_fmt(r.cfi, 3)}, RMSEA {_fmt(r.rmsea, 3)}{change}{flag}")
            first = by_model.iloc[0]
            rows.append([escape(names.get(t, t)), escape(category), escape(str(first.groups_compared)),
                         _fmt(first.complete_respondents), *cells])
        invariance = _table(["topic", "by", "groups", "n", "configural", "metric (equal loadings)",
                             "scalar (equal intercepts)"], rows, num=[3])
    else:
        invariance = ("<p class='muted'>No respondents of this instrument are linked to student "
                      "records, so there are no groups to compare.</p>")

    lead = (f"This report rests on <b>{_fmt(int(cov['responses']))}</b> responses "
            f"({_fmt(int(cov['complete']))} submitted) from <b>{_fmt(int(cov['schools']))}</b> schools in "
            f"<b>{_fmt(int(cov['districts']))}</b> districts, pooled. Reliability and factor models use the "
            "complete respondents of each topic (those who answered every item); n is given with each number.")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{CSS}{EXTRA_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='lead'>{lead}</p>",
        f"<p class='muted'>Generated {escape(data['generated_at'])} from the warehouse marts "
        "(topic_psychometrics, item_loadings, topic_correlations, measurement_invariance, reliability, "
        "item_reliability, item_results, topic_results, topic_trends, benchmarks, respondents_wide). "
        f"Results from fewer than {data['min_reporting_n']} respondents are suppressed.</p>",
        "<h2>Summary per topic</h2>", summary, figs["reliability"],
        "<h2>Items</h2>", "".join(item_sections), figs["loadings"],
        "<h2>Score distributions</h2>", figs["distributions"],
        "<h2>Are the topics distinct?</h2>", corr_note, figs["correlations"],
        "<h2>Does each topic mean the same for every group?</h2>", invariance,
        "<h2>Results against benchmarks</h2>", figs["benchmarks"],
        "<h2>Trends</h2>", figs["trends"],
        "<h2>Definitions</h2>", DEFINITIONS.format(**data),
        "</body></html>\n",
    ]
    return "\n".join(parts)


DEFINITIONS = """<dl>
<dt>Complete respondents (n)</dt><dd>Respondents who answered every item of the topic with an
option on its scale; "don't know", "not applicable", skips and open text do not count.</dd>
<dt>Cronbach's alpha</dt><dd>k/(k−1) · (1 − Σ item variances / variance of the total score), over the
complete respondents. The 95% interval is Feldt's: (1 − α)/(1 − α<sub>population</sub>) follows an
F distribution with n − 1 and (n − 1)(k − 1) degrees of freedom. 0.70 is the conventional minimum.</dd>
<dt>McDonald's omega (total)</dt><dd>(Σλ)² / ((Σλ)² + Σθ) from the topic's one-factor model: the share of
the sum score's variance due to the common factor.</dd>
<dt>Confirmatory factor analysis</dt><dd>Maximum likelihood (semopy) on the complete respondents' item
covariances; each item loads on its own topic. Chi-square tests exact fit (it grows with n);
CFI ≥ 0.95, TLI ≥ 0.95, RMSEA ≤ 0.06 and SRMR ≤ 0.08 are the usual guidelines for good fit (Hu &amp;
Bentler 1999). RMSEA's 90% interval comes from the noncentral chi-square distribution.</dd>
<dt>Loadings</dt><dd>Standardized loading: the item's correlation with its topic's factor; below 0.4 the
item shares little with the others. Standardized residual: 1 − loading², the item's own variance.</dd>
<dt>Floor and ceiling</dt><dd>Shares of complete respondents with every item at the lowest or highest
point of the scale; large shares mean the topic cannot tell those respondents apart.</dd>
<dt>Latent correlations</dt><dd>From one model with every topic of the instrument as a correlated
factor, over the respondents complete on every topic; above 0.85 two topics are not distinct.</dd>
<dt>Measurement invariance</dt><dd>Multi-group one-factor models over the groups (gender; federal
race/ethnicity categories; not Unknown) with at least {invariance_min_group_n} complete respondents:
configural (same items, everything free per group), metric (loadings equal across groups), scalar
(loadings and intercepts equal, factor means free). A drop in CFI of more than 0.01 from one model
to the next (Cheung &amp; Rensvold 2002) flags the added equality as not holding: with non-invariant
loadings or intercepts, group comparisons of the topic's results are not like for like.</dd>
<dt>Percent favorable</dt><dd>Favorable answers (the top two options of a 5-point scale, the top three
of a 7-point one, after reversing negatively worded items) over substantive answers, pooled over the
topic's items; "all districts pooled" adds every district meeting the reporting minimum.</dd>
<dt>Benchmarks</dt><dd>10th, 25th, 50th, 75th and 90th percentiles of school-level percent favorable
over the schools meeting the reporting minimum; published only where at least 10 schools from at least
3 districts contribute.</dd>
<dt>Suppression</dt><dd>Any result from fewer than {min_reporting_n} respondents is withheld.</dd>
</dl>"""
