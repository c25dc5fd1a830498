"""Psychometrics (issue 17): reliability, factor models and invariance of every topic.

The SEM code is checked against published reference fits (lavaan's documentation of the
Holzinger & Swineford 1939 data, which semopy ships), and on numpy-simulated data
against independent computations: pingouin's alpha, scikit-learn's maximum-likelihood
factor analysis, and the textbook fit formulas written out here. The step itself runs
on a copy of the session's built warehouse (DuckDB) and, through the Snowflake path,
on the emulator.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin
import pytest
import yaml
from scipy import optimize

from conftest import PROJECT_DIR, run_cli
from orchestrate import psychometrics, sem

HS_FACTORS = {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]}


@pytest.fixture(scope="module")
def holzinger_swineford() -> pd.DataFrame:
    from semopy.examples import holzinger39

    data = holzinger39.get_data()
    assert len(data) == 301
    return data


# --------------------------------------------------------------------------------------
# Reference fits


def test_cfa_reproduces_lavaan_holzinger_swineford_fit(holzinger_swineford):
    """lavaan's tutorial (cfa(HS.model, data = HolzingerSwineford1939)): chi-square 85.306
    on 24 df, CFI 0.931, TLI 0.896, RMSEA 0.092 (90% CI 0.071 to 0.114), SRMR 0.065;
    standardized loadings (Std.all) and factor correlations as printed there."""
    model = sem.fit_cfa(holzinger_swineford, HS_FACTORS)
    fit = model.fit
    print(fit)
    assert fit.n == 301 and fit.df == 24
    published = {"chi2": 85.306, "cfi": 0.931, "tli": 0.896, "rmsea": 0.092,
                 "rmsea_lower": 0.071, "rmsea_upper": 0.114, "srmr": 0.065}
    for name, value in published.items():
        assert getattr(fit, name) == pytest.approx(value, abs=1e-3), name
    std_all = {"x1": 0.772, "x2": 0.424, "x3": 0.581, "x4": 0.852, "x5": 0.855, "x6": 0.838,
               "x7": 0.570, "x8": 0.723, "x9": 0.665}
    loadings = model.loadings.set_index("item")
    for item, value in std_all.items():
        assert loadings.loc[item, "standardized_loading"] == pytest.approx(value, abs=1e-3), item
    correlations = model.factor_correlations
    assert correlations.loc["visual", "textual"] == pytest.approx(0.459, abs=1e-3)
    assert correlations.loc["visual", "speed"] == pytest.approx(0.471, abs=1e-3)
    assert correlations.loc["textual", "speed"] == pytest.approx(0.283, abs=1e-3)


def test_fit_agrees_with_semopys_own_statistics(holzinger_swineford):
    """Our chi-square, baseline, CFI and TLI are semopy's calc_stats (its RMSEA divides by
    N - 1 where lavaan divides by N: ours follows lavaan)."""
    import semopy

    fit = sem.fit_cfa(holzinger_swineford, HS_FACTORS).fit
    model = semopy.Model(sem.cfa_syntax(HS_FACTORS))
    model.fit(holzinger_swineford, options={"ftol": 1e-12})
    stats = semopy.calc_stats(model).T["Value"]
    assert fit.chi2 == pytest.approx(stats["chi2"], rel=1e-6)
    assert fit.df == stats["DoF"] and fit.df_baseline == stats["DoF Baseline"]
    assert fit.chi2_baseline == pytest.approx(stats["chi2 Baseline"], rel=1e-6)
    assert fit.cfi == pytest.approx(stats["CFI"], abs=1e-7)
    assert fit.tli == pytest.approx(stats["TLI"], abs=1e-7)
    assert math.sqrt((fit.chi2 / fit.df - 1) / (fit.n - 1)) == pytest.approx(stats["RMSEA"], abs=1e-7)


def test_invariance_reproduces_lavaan_holzinger_swineford_by_school(holzinger_swineford):
    """lavaan's tutorial on multiple groups (group = "school"; group.equal loadings, then
    loadings and intercepts), as semTools::measurementInvariance prints it:
    configural 115.85 on 48 df, CFI 0.923, RMSEA 0.097; metric 124.04 on 54, 0.921, 0.093;
    scalar 164.10 on 60, 0.882, 0.107."""
    items = [i for members in HS_FACTORS.values() for i in members]
    groups = [sem.GroupMoments.of(school, holzinger_swineford.loc[holzinger_swineford.school == school, items])
              for school in ("Pasteur", "Grant-White")]
    models = sem.measurement_invariance(groups, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    published = {"configural": (115.85, 48, 0.923, 0.097), "metric": (124.04, 54, 0.921, 0.093),
                 "scalar": (164.10, 60, 0.882, 0.107)}
    assert [m.level for m in models] == list(published)
    for model in models:
        chi2, df, cfi, rmsea = published[model.level]
        print(model.level, model.fit)
        assert model.fit.converged
        assert model.fit.chi2 == pytest.approx(chi2, abs=5e-3), model.level
        assert model.fit.df == df
        assert model.fit.cfi == pytest.approx(cfi, abs=1e-3), model.level
        assert model.fit.rmsea == pytest.approx(rmsea, abs=1e-3), model.level

    # configural = each school fitted on its own (semopy), chi-squares added
    separate = sum(sem.fit_cfa(holzinger_swineford[holzinger_swineford.school == school], HS_FACTORS).fit.chi2
                   for school in ("Pasteur", "Grant-White"))
    assert models[0].fit.chi2 == pytest.approx(separate, abs=1e-3)


def test_multigroup_gradient_is_the_objectives_derivative(holzinger_swineford):
    items = [i for members in HS_FACTORS.values() for i in members]
    groups = [sem.GroupMoments.of(school, holzinger_swineford.loc[holzinger_swineford.school == school, items])
              for school in ("Pasteur", "Grant-White")]
    for level in sem.LEVELS:
        model = sem._MultiGroupCFA(groups, [[0, 1, 2], [3, 4, 5], [6, 7, 8]], level)
        x = model.start() + np.random.default_rng(1).normal(0, 0.05, model.size)
        analytic = model.objective(x)[1]
        numeric = optimize.approx_fprime(x, lambda v: model.objective(v)[0], 1e-6)
        assert np.allclose(analytic, numeric, rtol=1e-4, atol=1e-3), level


# --------------------------------------------------------------------------------------
# Generated data


def simulate(n: int, loadings, residual_sd, intercepts, seed: int, factor_mean: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factor = rng.normal(factor_mean, 1.0, n)
    noise = rng.normal(0.0, 1.0, (n, len(loadings))) * np.asarray(residual_sd)
    return np.asarray(intercepts) + np.outer(factor, loadings) + noise


ITEMS = ["q1", "q2", "q3", "q4", "q5"]
TOPIC = psychometrics.Topic("sim_topic", ITEMS, [5] * 5)


def textbook_fit(chi2, df, chi2_b, df_b, n):
    """CFI (Bentler 1990), TLI (Tucker & Lewis 1973), RMSEA (Steiger & Lind 1980, N)."""
    cfi = 1 - max(chi2 - df, 0) / max(chi2_b - df_b, chi2 - df, 0)
    tli = (chi2_b / df_b - chi2 / df) / (chi2_b / df_b - 1)
    rmsea = math.sqrt(max(chi2 - df, 0) / (df * n))
    return cfi, tli, rmsea


def test_topic_statistics_on_generated_data_match_independent_computations():
    from sklearn.decomposition import FactorAnalysis

    values = simulate(800, [0.9, 0.8, 0.7, 0.6, 0.5], [0.6, 0.7, 0.8, 0.8, 0.9], [3.0, 3.2, 2.8, 3.5, 3.1], seed=3)
    # one item with a residual covariance the one-factor model lacks: a fit short of perfect
    values[:, 4] += 0.4 * values[:, 3] - 0.4 * values[:, 3].mean()
    frame = pd.DataFrame(values, columns=ITEMS)
    row, loadings = psychometrics.topic_statistics(frame, TOPIC, min_n=10)
    print(row)

    # alpha and its Feldt interval: pingouin's
    alpha, interval = pingouin.cronbach_alpha(frame)
    assert row["cronbach_alpha"] == pytest.approx(alpha, abs=1e-12)
    assert row["alpha_ci_lower"] == pytest.approx(interval[0], abs=5e-4)
    assert row["alpha_ci_upper"] == pytest.approx(interval[1], abs=5e-4)
    assert row["items"] == 5 and row["complete_respondents"] == 800

    # omega: the formula applied to loadings fitted by scikit-learn's ML factor analysis
    fa = FactorAnalysis(n_components=1, tol=1e-10, max_iter=10000).fit(values)
    lam, theta = np.abs(fa.components_[0]), fa.noise_variance_
    assert row["omega_total"] == pytest.approx(lam.sum() ** 2 / (lam.sum() ** 2 + theta.sum()), abs=1e-3)
    by_item = pd.DataFrame(loadings).set_index("canonical_item_id")
    assert np.allclose(by_item.loc[ITEMS, "loading"], lam, atol=2e-3)
    assert np.allclose(by_item.loc[ITEMS, "residual_variance"], theta, atol=2e-3)
    # and exactly the formula applied to the loadings item_loadings publishes
    lam_pub, theta_pub = by_item["loading"].to_numpy(), by_item["residual_variance"].to_numpy()
    assert row["omega_total"] == pytest.approx(lam_pub.sum() ** 2 / (lam_pub.sum() ** 2 + theta_pub.sum()), rel=1e-12)

    # chi-squares from the published loadings and the sample covariance, then the indices
    sample = np.cov(values.T, bias=True)
    implied = np.outer(lam_pub, lam_pub) + np.diag(theta_pub)
    chi2 = 800 * (np.linalg.slogdet(implied)[1] + np.trace(sample @ np.linalg.inv(implied))
                  - np.linalg.slogdet(sample)[1] - 5)
    chi2_b = 800 * (np.log(np.diag(sample)).sum() - np.linalg.slogdet(sample)[1])
    assert row["df"] == 5 and row["df_baseline"] == 10
    assert row["chi_square"] == pytest.approx(chi2, rel=1e-6)
    assert row["chi_square_baseline"] == pytest.approx(chi2_b, rel=1e-9)
    cfi, tli, rmsea = textbook_fit(row["chi_square"], 5, row["chi_square_baseline"], 10, 800)
    assert row["chi_square"] > 2 * row["df"] and 0 < cfi < 1  # the misfit shows
    assert row["cfi"] == pytest.approx(cfi, abs=1e-12)
    assert row["tli"] == pytest.approx(tli, abs=1e-12)
    assert row["rmsea"] == pytest.approx(rmsea, abs=1e-12)
    assert row["rmsea_ci_lower"] < row["rmsea"] < row["rmsea_ci_upper"]
    standardized = (sample - implied) / np.sqrt(np.outer(np.diag(sample), np.diag(sample)))
    assert row["srmr"] == pytest.approx(np.sqrt(np.mean(standardized[np.tril_indices(5)] ** 2)), rel=1e-6)
    # standardized loadings: loading / model-implied sd
    assert np.allclose(by_item["standardized_loading"], lam_pub / np.sqrt(np.diag(implied)), atol=1e-12)
    assert row["is_improper_solution"] is False

    # q1 correlates with every item more than the one-factor model allows (0.75 where the
    # others share 0.45: its loading would be 0.75 / sqrt(0.45) > 1): a Heywood case
    correlation = np.full((5, 5), 0.45)
    correlation[0, :] = correlation[:, 0] = 0.75
    np.fill_diagonal(correlation, 1.0)
    heywood = np.random.default_rng(4).multivariate_normal(np.full(5, 3.0), correlation, 500)
    improper, improper_loadings = psychometrics.topic_statistics(pd.DataFrame(heywood, columns=ITEMS), TOPIC, min_n=10)
    assert improper["is_improper_solution"] is True
    assert improper_loadings[0]["standardized_residual_variance"] < psychometrics.IMPROPER_BELOW


def test_floor_ceiling_and_suppression():
    rng = np.random.default_rng(5)
    values = rng.integers(1, 6, (40, 5)).astype(float)
    values[:4] = 1.0  # 4 respondents at the floor
    values[4:10] = 5.0  # 6 at the ceiling
    row, _ = psychometrics.topic_statistics(pd.DataFrame(values, columns=ITEMS), TOPIC, min_n=10)
    assert row["floor_share"] == pytest.approx(4 / 40) and row["ceiling_share"] == pytest.approx(6 / 40)

    nine, nine_loadings = psychometrics.topic_statistics(pd.DataFrame(values[:9], columns=ITEMS), TOPIC, min_n=10)
    assert nine["is_suppressed"] and nine["complete_respondents"] is None
    numbers = [c for c, t in psychometrics.TABLES["topic_psychometrics"] if t in ("double", "integer") and c != "items"]
    assert all(nine[c] is None for c in numbers)
    assert all(r["is_suppressed"] and r["standardized_loading"] is None for r in nine_loadings)
    ten, _ = psychometrics.topic_statistics(pd.DataFrame(values[:10], columns=ITEMS), TOPIC, min_n=10)
    assert not ten["is_suppressed"] and ten["complete_respondents"] == 10 and ten["cronbach_alpha"] is not None


def gender_frame(shift: float, seed: int) -> pd.DataFrame:
    """Two genders, 1,000 respondents each, the same one-factor model (group F's factor
    mean 0.3 higher), and item q3's intercept shifted by `shift` for F only; plus 20
    respondents of gender X (below the minimum group size) and 50 Unknown."""
    loadings, residual_sd = [0.8, 0.7, 0.75, 0.6, 0.65], [0.6, 0.7, 0.65, 0.8, 0.75]
    intercepts = np.array([3.0, 3.2, 2.9, 3.4, 3.1])
    shifted = intercepts + np.array([0, 0, shift, 0, 0])
    parts = [
        ("M", simulate(1000, loadings, residual_sd, intercepts, seed)),
        ("F", simulate(1000, loadings, residual_sd, shifted, seed + 1, factor_mean=0.3)),
        ("X", simulate(20, loadings, residual_sd, intercepts, seed + 2)),
        ("Unknown", simulate(50, loadings, residual_sd, intercepts, seed + 3)),
    ]
    frames = [pd.DataFrame(v, columns=ITEMS).assign(gender=g) for g, v in parts]
    return pd.concat(frames, ignore_index=True)


def test_invariance_flags_a_shifted_intercept_and_not_an_invariant_item():
    flagged = {r["model"]: r for r in psychometrics.invariance_rows(gender_frame(0.6, 11), ITEMS, "gender", 100)}
    same = {r["model"]: r for r in psychometrics.invariance_rows(gender_frame(0.0, 11), ITEMS, "gender", 100)}
    for rows in (flagged, same):
        print({m: (round(r["cfi"], 4), r["cfi_change"]) for m, r in rows.items()})
        assert list(rows) == ["configural", "metric", "scalar"]
        assert all(r["groups_compared"] == "F, M" and r["group_count"] == 2 for r in rows.values())
        assert all(r["complete_respondents"] == 2000 and r["smallest_group_respondents"] == 1000 for r in rows.values())
        assert rows["configural"]["cfi_change"] is None and rows["configural"]["is_noninvariant"] is None
        assert rows["metric"]["is_noninvariant"] is False  # the loadings are the same in both
        assert [rows[m]["df"] for m in ("configural", "metric", "scalar")] == [10, 14, 18]
        for model in ("metric", "scalar"):
            before = rows["configural" if model == "metric" else "metric"]
            assert rows[model]["cfi_change"] == pytest.approx(rows[model]["cfi"] - before["cfi"], abs=1e-12)
    assert flagged["scalar"]["cfi_change"] < -0.01 and flagged["scalar"]["is_noninvariant"] is True
    assert same["scalar"]["cfi_change"] >= -0.01 and same["scalar"]["is_noninvariant"] is False
    # the group means differ in both (F's factor mean is higher): scalar invariance allows that
    assert same["scalar"]["chi_square"] - same["metric"]["chi_square"] < 20


def test_invariance_needs_two_groups_of_the_minimum_size():
    frame = gender_frame(0.0, 11)
    rows = psychometrics.invariance_rows(frame[frame.gender != "F"], ITEMS, "gender", 100)
    assert [r["model"] for r in rows] == ["configural", "metric", "scalar"]
    assert all(r["is_suppressed"] and r["cfi"] is None and r["groups_compared"] is None for r in rows)
    with_x = psychometrics.invariance_rows(frame, ITEMS, "gender", 20)
    assert with_x[0]["groups_compared"] == "F, M, X" and with_x[0]["group_count"] == 3
    assert psychometrics.invariance_rows(frame.assign(gender=None), ITEMS, "gender", 20) == []


# --------------------------------------------------------------------------------------
# Documentation


def test_every_table_and_column_is_documented():
    declared = yaml.safe_load((PROJECT_DIR / "models/marts/survey/psychometrics.yml").read_text())
    source = next(s for s in declared["sources"] if s["name"] == psychometrics.SOURCE)
    tables = {t["name"]: t for t in source["tables"]}
    assert set(tables) == set(psychometrics.TABLES)
    for name, columns in psychometrics.TABLES.items():
        documented = [c["name"] for c in tables[name]["columns"]]
        assert documented == [c for c, _ in columns], name
        assert all(c.get("description") for c in tables[name]["columns"]), name
    contract = (PROJECT_DIR / "docs/contracts/marts-v1.md").read_text()
    for name in psychometrics.TABLES:
        assert f"`{name}`" in contract


# --------------------------------------------------------------------------------------
# The step on the built warehouse: DuckDB, then the Snowflake path on the emulator

MIN_GROUP_N = "30"  # the session sample is small (scale 0.02): ~60 students of each gender a year


def copy_warehouse(built_warehouse, folder: Path) -> dict[str, str]:
    """A private copy of the session's built warehouse and its dbt manifest (the session
    fixture is shared read-only; the step writes)."""
    from conftest import warehouse_env

    env = warehouse_env(folder)
    shutil.copy(built_warehouse.db, env["DBT_DUCKDB_PATH"])
    Path(env["DBT_TARGET_PATH"]).mkdir(parents=True)
    shutil.copy(Path(built_warehouse.env["DBT_TARGET_PATH"]) / "manifest.json", env["DBT_TARGET_PATH"])
    return env


@pytest.fixture(scope="module")
def computed(tmp_path_factory, built_warehouse):
    folder = tmp_path_factory.mktemp("psychometrics")
    env = copy_warehouse(built_warehouse, folder)
    proc = run_cli("psychometrics", "--min-group-n", MIN_GROUP_N, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import duckdb

    con = duckdb.connect(env["DBT_DUCKDB_PATH"], read_only=True)
    try:
        tables = {name: con.execute(f"select * from marts.{name}").df() for name in psychometrics.TABLES}
        types = {name: con.execute(
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = 'marts' and table_name = '{name}' order by ordinal_position").fetchall()
            for name in psychometrics.TABLES}
        reliability = con.execute("select * from marts.reliability").df()
    finally:
        con.close()
    return {"proc": proc, "env": env, "tables": tables, "types": types, "reliability": reliability}


def test_step_writes_every_table_over_the_reliability_respondents(computed):
    out = computed["proc"].stdout
    print(out)
    assert "[psychometrics 1/" in out and "4 tables written" in out
    sql_type = {"varchar": "VARCHAR", "integer": "INTEGER", "double": "DOUBLE", "boolean": "BOOLEAN"}
    for name, columns in psychometrics.TABLES.items():
        assert computed["types"][name] == [(c, sql_type[t]) for c, t in columns], name
    topics = computed["tables"]["topic_psychometrics"]
    reliability = computed["reliability"]
    key = ["school_year", "respondent_type", "topic_id"]
    merged = topics.merge(reliability, on=key, suffixes=("", "_reliability"), validate="one_to_one")
    assert len(merged) == len(reliability) == len(topics) > 0
    assert (merged.is_suppressed == merged.is_suppressed_reliability).all()
    assert (merged["items"] == merged["items_reliability"]).all()
    shown = merged[~merged.is_suppressed]
    assert len(shown) > 0
    assert (shown.complete_respondents == shown.complete_respondents_reliability).all()
    assert np.allclose(shown.cronbach_alpha, shown.cronbach_alpha_reliability, atol=1e-12)
    assert (shown.alpha_ci_lower < shown.cronbach_alpha).all() and (shown.cronbach_alpha < shown.alpha_ci_upper).all()
    assert shown.omega_total.between(0, 1).all() and shown.cfi.notna().all()
    numbers = [c for c, t in psychometrics.TABLES["topic_psychometrics"] if t in ("double", "integer") and c != "items"]
    assert merged.loc[merged.is_suppressed, numbers].isna().all().all()

    loadings = computed["tables"]["item_loadings"]
    assert len(loadings) == topics["items"].sum()
    shown_loadings = loadings[~loadings.is_suppressed]
    assert shown_loadings.standardized_loading.between(-1, 1).all()
    assert np.allclose(shown_loadings.standardized_residual_variance, 1 - shown_loadings.standardized_loading ** 2)

    pairs = computed["tables"]["topic_correlations"]
    per_type = topics.groupby(["school_year", "respondent_type"]).size()
    assert len(pairs) == sum(k * (k - 1) // 2 for k in per_type)
    assert (pairs.topic_id < pairs.other_topic_id).all()
    estimated = pairs.dropna(subset=["latent_correlation"])
    assert len(estimated) > 0
    assert (estimated.is_not_distinct == (estimated.latent_correlation.abs() > 0.85)).all()

    invariance = computed["tables"]["measurement_invariance"]
    assert set(invariance.respondent_type) == {"student"}  # only students have demographics
    assert set(invariance.subgroup_category) == {"gender", "race_ethnicity"}
    tested = invariance[~invariance.is_suppressed]
    assert len(tested) > 0 and set(tested.model) == {"configural", "metric", "scalar"}
    assert (tested.smallest_group_respondents >= int(MIN_GROUP_N)).all()
    assert not tested.groups_compared.str.contains("Unknown").any()
    assert tested.loc[tested.model == "configural", "cfi_change"].isna().all()
    changed = tested[tested.model != "configural"].dropna(subset=["cfi_change"])
    assert (changed.is_noninvariant == (changed.cfi_change < -0.01)).all()


def test_step_says_what_to_do_without_a_built_warehouse(tmp_path):
    from conftest import warehouse_env

    proc = run_cli("psychometrics", env=warehouse_env(tmp_path))
    assert proc.returncode == 2
    assert "Run `python -m orchestrate run` first" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr


def _psychometrics_tables(db: str) -> dict[str, pd.DataFrame]:
    import duckdb

    con = duckdb.connect(db, read_only=True)
    try:
        return {name: con.execute(f"select * from marts.{name}").df()
                .sort_values([c for c, t in psychometrics.TABLES[name] if t == "varchar"])
                .reset_index(drop=True) for name in psychometrics.TABLES}
    finally:
        con.close()


def test_units_with_unchanged_inputs_keep_their_rows_and_equal_a_recompute(built_warehouse, tmp_path):
    """A second write with the same inputs computes no unit and leaves every row as it was;
    a change to one school year's item scores recomputes that unit only, and the tables
    then equal those of a run that computes every unit (--recompute)."""
    import duckdb

    env = copy_warehouse(built_warehouse, tmp_path)
    db = env["DBT_DUCKDB_PATH"]
    first = run_cli("psychometrics", "--min-group-n", MIN_GROUP_N, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    units = first.stdout.count("[psychometrics ")
    assert f"{units} of {units} school year x respondent type units computed" in first.stdout
    before = _psychometrics_tables(db)

    again = run_cli("psychometrics", "--min-group-n", MIN_GROUP_N, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"0 of {units} school year x respondent type units computed ({units} unchanged" in again.stdout
    for name, frame in _psychometrics_tables(db).items():
        pd.testing.assert_frame_equal(frame, before[name], check_exact=True)

    con = duckdb.connect(db)
    try:
        (relation,) = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_name = 'int_response_items_listwise_filtered'").fetchone()
        year = con.execute(f"select max(school_year) from {relation} where respondent_type = 'student'").fetchone()[0]
        changed = con.execute(
            f"update {relation} set item_score = 1 + (item_score % 2) where respondent_type = 'student' "
            f"and school_year = ? and response_id in (select distinct response_id from {relation} "
            "where respondent_type = 'student' and school_year = ? order by 1 limit 40)", [year, year]).fetchone()[0]
    finally:
        con.close()
    assert changed > 0
    one = run_cli("psychometrics", "--min-group-n", MIN_GROUP_N, env=env)
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]
    assert f"1 of {units} school year x respondent type units computed" in one.stdout
    computed_lines = [line for line in one.stdout.splitlines()
                      if "[psychometrics " in line and "rows kept" not in line]
    assert len(computed_lines) == 1 and f"{year} student" in computed_lines[0]
    incremental = _psychometrics_tables(db)
    alpha = incremental["topic_psychometrics"].set_index(["school_year", "respondent_type", "topic_id"])
    old = before["topic_psychometrics"].set_index(["school_year", "respondent_type", "topic_id"])
    assert (alpha.loc[year, "student"]["cronbach_alpha"] != old.loc[year, "student"]["cronbach_alpha"]).any()

    full = run_cli("psychometrics", "--min-group-n", MIN_GROUP_N, "--recompute", env=env)
    assert full.returncode == 0, full.stdout[-3000:] + full.stderr[-3000:]
    assert f"{units} of {units} school year x respondent type units computed" in full.stdout
    for name, frame in _psychometrics_tables(db).items():  # a refit agrees to the optimizer's last bits
        pd.testing.assert_frame_equal(incremental[name], frame, check_exact=False, rtol=1e-9, atol=1e-12)


def copy_tables_to_emulator(emulator, duckdb_file: Path, tables: list[str], folder: Path) -> None:
    """Copy DuckDB tables (schema.table) into the emulator's schemas of the same names:
    each to Parquet, PUT on a stage, COPY INTO by column name."""
    import contextlib

    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    types = {"VARCHAR": "varchar", "DOUBLE": "double", "BIGINT": "integer", "INTEGER": "integer",
             "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp_ntz"}
    source = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        with contextlib.closing(emulator.connect(schema="public")) as con, contextlib.closing(con.cursor()) as cur:
            for qualified in tables:
                schema, name = qualified.split(".")
                columns = source.execute(
                    "select column_name, data_type from information_schema.columns where "
                    f"table_schema = '{schema}' and table_name = '{name}' order by ordinal_position").fetchall()
                cur.execute(f"create schema if not exists {schema}")
                cur.execute(f"create or replace table {qualified} ("
                            + ", ".join(f"{c} {types[t]}" for c, t in columns) + ")")
                path = folder / f"{name}.parquet"
                source.execute(f"copy (select * from {qualified}) to '{path}' (format parquet)")
                cur.execute(f"create or replace temporary stage {schema}.copy_stage")
                cur.execute(f"put 'file://{path}' @{schema}.copy_stage auto_compress = false")
                cur.execute(f"copy into {qualified} from @{schema}.copy_stage/{path.name} "
                            "file_format = (type = parquet) match_by_column_name = case_insensitive")
    finally:
        source.close()


def test_step_writes_through_the_snowflake_path(computed, built_warehouse, tmp_path):
    """The same step on the emulated Snowflake (target ci_snowflake): reads the marts it
    needs there and writes the four tables back through snowflake.connector; they hold
    what the DuckDB run wrote."""
    import contextlib
    import os
    import subprocess
    import sys

    import snowflake_emulator

    with snowflake_emulator.running(tmp_path / "fakesnow.log") as emulator:
        env = {**emulator.env, "DBT_TARGET_PATH": str(tmp_path / "target"),
               "DBT_LOG_PATH": str(tmp_path / "logs"), "DBT_SCHEMA_PREFIX": ""}
        parsed = subprocess.run(
            [str(Path(sys.executable).parent / "dbt"), "parse", "--target", "ci_snowflake",
             "--profiles-dir", str(PROJECT_DIR), "--project-dir", str(PROJECT_DIR)],
            cwd=PROJECT_DIR, env={**os.environ, **env}, capture_output=True, text=True)
        assert parsed.returncode == 0, parsed.stdout[-3000:]
        copy_tables_to_emulator(emulator, built_warehouse.db,
                                ["intermediate.int_response_items_listwise_filtered", "marts.respondents_wide",
                                 "seeds.topics", "seeds.canonical_items"], tmp_path / "parquet")
        proc = run_cli("psychometrics", "--target", "ci_snowflake", "--min-group-n", MIN_GROUP_N, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + emulator.errors()
        assert "survey_ci.marts.topic_psychometrics" in proc.stdout.lower()
        granted = emulator.grants()
        for name in psychometrics.TABLES:  # readers can query them, as every other mart
            assert granted.get(f"SURVEY_CI.MARTS.{name.upper()}", {}).get("SELECT", set()) == {
                "SURVEY_READER", "SURVEY_RESEARCHER"}, name
        with contextlib.closing(emulator.connect(schema="marts")) as con:
            for name, columns in psychometrics.TABLES.items():
                cursor = con.cursor().execute(f"select * from marts.{name}")
                snow = pd.DataFrame(cursor.fetchall(), columns=[d[0].lower() for d in cursor.description])
                duck = computed["tables"][name]
                assert list(snow.columns) == [c for c, _ in columns], name
                key = [c for c, t in columns if t == "varchar"]
                snow = snow.sort_values(key).reset_index(drop=True)
                duck = duck.sort_values(key).reset_index(drop=True)
                assert len(snow) == len(duck) > 0, name
                for column, sql_type in columns:
                    if sql_type == "double":
                        assert np.allclose(snow[column].astype(float), duck[column].astype(float),
                                           rtol=1e-6, atol=1e-9, equal_nan=True), (name, column)
                    else:
                        same = [(a is None or a != a) and pd.isna(b) or a == b
                                for a, b in zip(snow[column], duck[column])]
                        assert all(same), (name, column)


# --------------------------------------------------------------------------------------
# The research report and the notebook


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no headless browser: apt-get install chromium")


def headless(*args: str) -> "subprocess.CompletedProcess":
    import subprocess

    return subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--no-first-run", *args], capture_output=True, text=True, timeout=120)


def test_research_report_opens_in_a_browser_with_every_figure(computed, tmp_path):
    import base64
    import re
    from html.parser import HTMLParser

    from orchestrate.research_report import FIGURES

    out = tmp_path / "research"
    proc = run_cli("research-report", "--respondent-type", "student", "--out", str(out), env=computed["env"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    latest = computed["tables"]["topic_psychometrics"].school_year.max()
    report = out / f"{latest}_student.html"
    assert proc.stdout.strip().splitlines()[-1] == f"Report: {report}"
    html = report.read_text()

    # self-contained: no script, stylesheet link or address to fetch; every figure an embedded PNG
    assert not re.search(r"<script|<link|src=['\"]https?:|url\(", html, re.IGNORECASE)
    images = {}

    class Figures(HTMLParser):
        figure = None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "figure":
                self.figure = attrs["id"].removeprefix("figure-")
            elif tag == "img" and self.figure:
                images[self.figure] = attrs["src"]

    Figures().feed(html)
    assert set(images) == set(FIGURES)
    for key, src in images.items():
        assert src.startswith("data:image/png;base64,"), key
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n", key
    for text in ("complete respondents", "Cronbach's alpha", "Feldt", "McDonald's omega", "Definitions",
                 "schools in", "Measurement invariance", "Benchmarks"):
        assert text in html, text

    # a browser decodes every image: the page, with a probe, says so in its title
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", "<script>window.addEventListener('load', () => {"
                                  "const all = [...document.images]; document.title = 'FIGURES ' + "
                                  "all.filter(i => i.complete && i.naturalWidth > 100).length + '/' + all.length;"
                                  "});</script></body>"))
    dom = headless("--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert f"<title>FIGURES {len(FIGURES)}/{len(FIGURES)}</title>" in dom.stdout, dom.stdout[:500] + dom.stderr[-1000:]
    screenshot = tmp_path / "research_report.png"
    shot = headless(f"--screenshot={screenshot}", "--window-size=1300,2000", report.as_uri())
    assert screenshot.exists() and screenshot.stat().st_size > 50_000, shot.stderr[-1000:]
    print(f"screenshot: {screenshot}")


def test_research_report_says_what_to_do_for_an_unknown_year(computed, tmp_path):
    proc = run_cli("research-report", "--school-year", "1999-00", "--out", str(tmp_path), env=computed["env"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "1999-00" in last and "--school-year" in last


def test_notebook_runs_headless_on_the_warehouse(built_warehouse, monkeypatch):
    """notebooks/start_here.ipynb, executed as a researcher would (its own kernel), on the
    session's warehouse (read-only): it reproduces a topic_results number and plots."""
    import nbclient
    import nbformat

    monkeypatch.setenv("DBT_TARGET", "dev")
    monkeypatch.setenv("DBT_DUCKDB_PATH", str(built_warehouse.db))
    path = PROJECT_DIR / "notebooks" / "start_here.ipynb"
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "commit the notebook without outputs"
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"DuckDB {built_warehouse.db} (read-only)" in text
    assert "recomputed" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_every_name_the_notebooks_import_from_the_project_exists():
    """The notebooks' branches that CI does not execute (Snowflake: DBT_TARGET=prod) import
    from the project by name too: each such name exists in its module."""
    import ast
    import importlib

    import nbformat

    imported = []
    for path in sorted((PROJECT_DIR / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("orchestrate"):
                    imported += [(path.name, node.module, alias.name) for alias in node.names]
    assert imported
    missing = [f"{name}: from {module} import {what}" for name, module, what in imported
               if not hasattr(importlib.import_module(module), what)]
    assert not missing, missing
