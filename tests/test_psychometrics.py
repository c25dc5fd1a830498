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
