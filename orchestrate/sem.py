"""Psychometric statistics: reliability, confirmatory factor analysis, fit indices and
measurement invariance, on plain numpy/pandas data (no warehouse here).

- Single-group CFA (one factor per topic, correlated factors per instrument) is fitted by
  semopy (maximum likelihood, its default objective `MLW`: the sample covariance divides
  by N and chi-square = N * F_ML, as lavaan's default `likelihood = "normal"`).
- Fit indices are computed here from the model-implied and sample covariances by the
  textbook formulas (each cited where it is computed), with lavaan's conventions, so the
  Holzinger-Swineford (1939) reference fit of lavaan's documentation is reproduced.
- Multi-group models for measurement invariance (configural, metric, scalar) need
  parameters constrained equal across groups and a mean structure with latent means;
  semopy fits groups only separately (semopy.multigroup) and its mean-structure model
  cannot estimate latent means, so they are fitted here by the multi-group maximum-
  likelihood discrepancy (Jöreskog 1971; Sörbom 1974) on each group's means and
  covariances, minimized with scipy (L-BFGS-B, analytic gradient). Checked against
  lavaan's published invariance fits of the same data set (tests/test_psychometrics.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats


# --------------------------------------------------------------------------------------
# Reliability


def cronbach_alpha(items: np.ndarray) -> float:
    """k / (k - 1) * (1 - sum of item variances / variance of the total), sample
    variances (Cronbach 1951); rows are complete respondents, columns items."""
    items = np.asarray(items, dtype=float)
    k = items.shape[1]
    total_variance = items.sum(axis=1).var(ddof=1)
    if k < 2 or not total_variance > 0:
        return math.nan
    return k / (k - 1) * (1 - items.var(axis=0, ddof=1).sum() / total_variance)


def feldt_interval(alpha: float, n: int, k: int, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of Cronbach's alpha (Feldt 1965; Feldt, Woodruff & Salih 1987):
    (1 - alpha) / (1 - alpha_population) follows F(n - 1, (n - 1)(k - 1))."""
    if not math.isfinite(alpha) or n < 2 or k < 2:
        return math.nan, math.nan
    df1, df2 = n - 1, (n - 1) * (k - 1)
    tail = (1 - level) / 2
    return (1 - (1 - alpha) * stats.f.isf(tail, df1, df2),
            1 - (1 - alpha) * stats.f.isf(1 - tail, df1, df2))


def omega_total(loadings: np.ndarray, residual_variances: np.ndarray) -> float:
    """McDonald's omega (total) of the unit-weighted sum score from a one-factor model:
    (sum of loadings)^2 / ((sum of loadings)^2 + sum of residual variances), with the
    loadings on the factor scaled to variance 1 (McDonald 1999, eq. 6.20b)."""
    common = float(np.sum(loadings)) ** 2
    return common / (common + float(np.sum(residual_variances)))


# --------------------------------------------------------------------------------------
# Fit indices


def ml_discrepancy(sample_cov: np.ndarray, implied_cov: np.ndarray) -> float:
    """F_ML = log|Sigma| + tr(S Sigma^-1) - log|S| - p (Jöreskog 1969)."""
    p = sample_cov.shape[0]
    sign, logdet_sigma = np.linalg.slogdet(implied_cov)
    _, logdet_s = np.linalg.slogdet(sample_cov)
    if sign <= 0:
        return math.inf
    return float(logdet_sigma + np.trace(sample_cov @ np.linalg.inv(implied_cov)) - logdet_s - p)


def independence_chi_square(sample_cov: np.ndarray, n: int) -> float:
    """Chi-square of the baseline (independence) model, every covariance zero and every
    variance free: N * (sum of log variances - log|S|) (Bentler & Bonett 1980)."""
    _, logdet_s = np.linalg.slogdet(sample_cov)
    return float(n * (np.sum(np.log(np.diag(sample_cov))) - logdet_s))


def comparative_fit(chi2: float, df: int, chi2_baseline: float, df_baseline: int) -> dict:
    """CFI (Bentler 1990) and TLI (Tucker & Lewis 1973). CFI is 1 - max(chi2 - df, 0) /
    max(chi2_b - df_b, chi2 - df, 0); TLI is (chi2_b/df_b - chi2/df) / (chi2_b/df_b - 1),
    null where its formula divides by zero (df = 0: a just-identified model)."""
    denominator = max(chi2_baseline - df_baseline, chi2 - df, 0.0)
    cfi = 1 - max(chi2 - df, 0.0) / denominator if denominator > 0 else math.nan
    tli = math.nan
    if df > 0 and df_baseline > 0 and chi2_baseline / df_baseline != 1:
        tli = (chi2_baseline / df_baseline - chi2 / df) / (chi2_baseline / df_baseline - 1)
    return {"cfi": cfi, "tli": tli}


def rmsea(chi2: float, df: int, n: int, groups: int = 1) -> float:
    """RMSEA = sqrt(max(chi2 - df, 0) / (df * N)) (Steiger & Lind 1980; N, not N - 1, as
    lavaan with ML), times sqrt(groups) for a multi-group model (Steiger 1998)."""
    if df <= 0:
        return math.nan
    return math.sqrt(max(chi2 - df, 0.0) / (df * n)) * math.sqrt(groups)


def rmsea_interval(chi2: float, df: int, n: int, groups: int = 1,
                   level: float = 0.90) -> tuple[float, float]:
    """The RMSEA's confidence interval from the noncentral chi-square (Browne & Cudeck
    1993): the noncentrality lambda at which the observed chi-square is the upper (lower)
    (1 - level)/2 quantile, turned into RMSEA as sqrt(lambda / (df * N)) * sqrt(groups)."""
    if df <= 0:
        return math.nan, math.nan
    tail = (1 - level) / 2

    def noncentrality(probability: float) -> float:
        # lambda with P(chi2_df(lambda) <= chi2) = probability; 0 when even lambda = 0 is too big
        def gap(lam):
            return stats.ncx2.cdf(chi2, df, lam) - probability if lam > 0 else stats.chi2.cdf(chi2, df) - probability
        if gap(0.0) < 0:
            return 0.0
        upper = max(chi2, 1.0)
        while gap(upper) > 0:
            upper *= 2
        return optimize.brentq(gap, 0.0, upper, xtol=1e-10)

    scale = df * n
    return (math.sqrt(noncentrality(1 - tail) / scale) * math.sqrt(groups),
            math.sqrt(noncentrality(tail) / scale) * math.sqrt(groups))


def srmr(sample_cov: np.ndarray, implied_cov: np.ndarray) -> float:
    """Standardized root mean square residual (Bentler 1995; lavaan's `srmr`): the root
    mean square, over the p(p+1)/2 elements on and below the diagonal, of the residuals
    (s_ij - sigma_ij) / sqrt(s_ii * s_jj)."""
    scale = np.sqrt(np.outer(np.diag(sample_cov), np.diag(sample_cov)))
    residuals = (sample_cov - implied_cov) / scale
    lower = residuals[np.tril_indices_from(residuals)]
    return float(np.sqrt(np.mean(lower ** 2)))


@dataclass
class Fit:
    """A model's fit: chi-square on df, baseline chi-square, CFI, TLI, RMSEA with its 90%
    interval, SRMR (null where undefined)."""

    n: int
    chi2: float
    df: int
    chi2_baseline: float
    df_baseline: int
    cfi: float
    tli: float
    rmsea: float
    rmsea_lower: float
    rmsea_upper: float
    srmr: float = math.nan
    converged: bool = True

    @classmethod
    def of(cls, chi2: float, df: int, chi2_baseline: float, df_baseline: int, n: int,
           groups: int = 1, srmr_value: float = math.nan, converged: bool = True) -> "Fit":
        lower, upper = rmsea_interval(chi2, df, n, groups)
        return cls(n=n, chi2=chi2, df=df, chi2_baseline=chi2_baseline, df_baseline=df_baseline,
                   **comparative_fit(chi2, df, chi2_baseline, df_baseline),
                   rmsea=rmsea(chi2, df, n, groups), rmsea_lower=lower, rmsea_upper=upper,
                   srmr=srmr_value, converged=converged)


# --------------------------------------------------------------------------------------
# Single-group CFA (semopy)


@dataclass
class CFA:
    """A fitted CFA: its fit, one row per item (factor, item, loading with the factor's
    variance 1, standardized loading, residual variance, standardized residual variance)
    and the factors' correlation matrix."""

    fit: Fit
    loadings: pd.DataFrame
    factor_correlations: pd.DataFrame
    implied_cov: np.ndarray = field(repr=False)
    sample_cov: np.ndarray = field(repr=False)


def cfa_syntax(factors: dict[str, list[str]]) -> str:
    """semopy (lavaan-style) syntax: each factor measured by its items, the first item's
    loading fixed to 1 (the marker), correlated factors."""
    return "\n".join(f"{factor} =~ {' + '.join(items)}" for factor, items in factors.items())


def fit_cfa(data: pd.DataFrame, factors: dict[str, list[str]]) -> CFA | None:
    """Fit a simple-structure CFA to complete rows by maximum likelihood with semopy.
    None when it cannot be estimated (too few rows, an item without variance, or the
    optimizer not converging)."""
    import semopy  # imported here: slow to import, and only the psychometrics step needs it

    items = [item for members in factors.values() for item in members]
    frame = data[items].astype(float)
    n, p = frame.shape
    sample_cov = np.cov(frame.to_numpy().T, bias=True)  # divides by N, as semopy and lavaan
    if n <= p or np.linalg.matrix_rank(sample_cov) < p:
        return None
    model = semopy.Model(cfa_syntax(factors))
    try:
        # tighter than semopy's default tolerance: lavaan's estimates to their third decimal
        result = model.fit(frame, options={"ftol": 1e-12})
    except (np.linalg.LinAlgError, ValueError):
        return None
    if not result.success or not np.all(np.isfinite(result.x)):
        return None
    implied_cov = model.calc_sigma()[0]
    observed = model.names_lambda[0]
    order = [observed.index(item) for item in items]
    implied_cov = implied_cov[np.ix_(order, order)]
    lam = model.mx_lambda[order]
    latent = model.names_lambda[1]
    psi = model.mx_psi
    psi_names = model.names_psi[0]
    psi = psi[np.ix_([psi_names.index(f) for f in latent], [psi_names.index(f) for f in latent])]
    theta = np.diag(model.mx_theta)[[model.names_theta[0].index(item) for item in items]]

    chi2 = n * ml_discrepancy(sample_cov, implied_cov)
    df = p * (p + 1) // 2 - len(result.x)
    fit = Fit.of(chi2, df, independence_chi_square(sample_cov, n), p * (p - 1) // 2, n,
                 srmr_value=srmr(sample_cov, implied_cov))

    rows = []
    factor_sd = np.sqrt(np.diag(psi))
    for factor, members in factors.items():
        column = latent.index(factor)
        for item in members:
            i = items.index(item)
            loading = lam[i, column] * factor_sd[column]  # the factor scaled to variance 1
            rows.append({
                "factor": factor,
                "item": item,
                "loading": loading,
                "standardized_loading": loading / math.sqrt(implied_cov[i, i]),
                "residual_variance": theta[i],
                "standardized_residual_variance": theta[i] / implied_cov[i, i],
            })
    correlations = psi / np.outer(factor_sd, factor_sd)
    return CFA(fit=fit, loadings=pd.DataFrame(rows),
               factor_correlations=pd.DataFrame(correlations, index=latent, columns=latent),
               implied_cov=implied_cov, sample_cov=sample_cov)


# --------------------------------------------------------------------------------------
# Multi-group CFA: measurement invariance

LEVELS = ("configural", "metric", "scalar")


@dataclass
class GroupMoments:
    """What the multi-group ML discrepancy needs of a group: n, means, covariance (÷ N)."""

    name: str
    n: int
    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def of(cls, name: str, rows: np.ndarray) -> "GroupMoments":
        rows = np.asarray(rows, dtype=float)
        return cls(name, rows.shape[0], rows.mean(axis=0), np.cov(rows.T, bias=True))


@dataclass
class InvarianceModel:
    level: str
    fit: Fit
    parameters: int
    estimates: dict = field(repr=False, default_factory=dict)


class _MultiGroupCFA:
    """Simple-structure CFA in several groups at once, with a mean structure.

    Group g: Sigma_g = Lambda_g Phi_g Lambda_g' + Theta_g, mu_g = nu_g + Lambda_g kappa_g.
    The first item of each factor is its marker (loading 1). Phi_g = L_g L_g' (Cholesky,
    so it stays positive definite), Theta_g diagonal. Levels (Meredith 1993):
    configural: everything free per group, kappa = 0; metric: loadings equal across
    groups; scalar: loadings and intercepts equal, kappa free in every group but the
    first. Minimizes sum_g n_g [log|Sigma_g| + tr(S_g Sigma_g^-1)
    + (m_g - mu_g)' Sigma_g^-1 (m_g - mu_g) - log|S_g| - p], which is the likelihood-ratio
    chi-square against the saturated model (means and covariances free in each group).
    """

    def __init__(self, groups: list[GroupMoments], factors: list[list[int]], level: str):
        self.groups, self.factors, self.level = groups, factors, level
        self.p = groups[0].mean.size
        self.f = len(factors)
        self.size = 0
        self.lam, self.chol, self.theta, self.nu, self.kappa = [], [], [], [], []
        shared_lam = self._take_loadings() if level in ("metric", "scalar") else None
        shared_nu = self._take(self.p) if level == "scalar" else None
        for g in range(len(groups)):
            self.lam.append(shared_lam if shared_lam is not None else self._take_loadings())
            self.chol.append([(r, c, self._take1()) for r in range(self.f) for c in range(r + 1)])
            self.theta.append(self._take(self.p))
            self.nu.append(shared_nu if shared_nu is not None else self._take(self.p))
            self.kappa.append(self._take(self.f) if level == "scalar" and g > 0 else None)

    def _take1(self) -> int:
        self.size += 1
        return self.size - 1

    def _take(self, count: int) -> np.ndarray:
        return np.array([self._take1() for _ in range(count)])

    def _take_loadings(self) -> list[tuple[int, int, int]]:
        return [(i, a, self._take1()) for a, members in enumerate(self.factors) for i in members[1:]]

    def matrices(self, x: np.ndarray, g: int):
        lam = np.zeros((self.p, self.f))
        for a, members in enumerate(self.factors):
            lam[members[0], a] = 1.0
        for i, a, j in self.lam[g]:
            lam[i, a] = x[j]
        chol = np.zeros((self.f, self.f))
        for r, c, j in self.chol[g]:
            chol[r, c] = x[j]
        kappa = x[self.kappa[g]] if self.kappa[g] is not None else np.zeros(self.f)
        return lam, chol, x[self.theta[g]], x[self.nu[g]], kappa

    def objective(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(x)
        for g, group in enumerate(self.groups):
            lam, chol, theta, nu, kappa = self.matrices(x, g)
            phi = chol @ chol.T
            sigma = lam @ phi @ lam.T + np.diag(theta)
            try:
                factor = np.linalg.cholesky(sigma)
            except np.linalg.LinAlgError:
                return 1e20, np.zeros_like(x)
            inv = np.linalg.inv(sigma)
            logdet = 2 * np.sum(np.log(np.diag(factor)))
            d = group.mean - (nu + lam @ kappa)
            moment = group.cov + np.outer(d, d)
            _, logdet_s = np.linalg.slogdet(group.cov)
            total += group.n * (logdet + np.sum(inv * moment) - logdet_s - self.p)
            # dF/dSigma and dF/dmu (Sigma symmetric), then the chain rule to each parameter
            g_sigma = group.n * (inv - inv @ moment @ inv)
            g_mu = -2 * group.n * (inv @ d)
            g_lam = 2 * g_sigma @ lam @ phi + np.outer(g_mu, kappa)
            g_chol = 2 * lam.T @ g_sigma @ lam @ chol
            for i, a, j in self.lam[g]:
                grad[j] += g_lam[i, a]
            for r, c, j in self.chol[g]:
                grad[j] += g_chol[r, c]
            np.add.at(grad, self.theta[g], np.diag(g_sigma))
            np.add.at(grad, self.nu[g], g_mu)
            if self.kappa[g] is not None:
                np.add.at(grad, self.kappa[g], lam.T @ g_mu)
        return total, grad

    def start(self, previous: np.ndarray | None = None,
              previous_model: "_MultiGroupCFA | None" = None) -> np.ndarray:
        """Starting values: from the less constrained model's solution when there is one
        (shared parameters as the groups' mean), else from the sample moments."""
        x = np.zeros(self.size)
        counts = np.zeros(self.size)
        for g, group in enumerate(self.groups):
            if previous is not None:
                lam, chol, theta, nu, kappa = previous_model.matrices(previous, g)
            else:  # each factor's variance from its marker's covariances, loadings from theirs
                variances = np.diag(group.cov)
                lam = np.zeros((self.p, self.f))
                chol = np.zeros((self.f, self.f))
                theta = variances / 2
                for a, members in enumerate(self.factors):
                    marker = members[0]
                    phi = max(float(np.mean(group.cov[marker, members[1:]])), 0.05 * variances[marker])
                    chol[a, a] = math.sqrt(phi)
                    lam[members, a] = group.cov[members, marker] / phi
                    lam[marker, a] = 1.0
                    theta[members] = np.maximum(variances[members] - lam[members, a] ** 2 * phi,
                                                0.1 * variances[members])
                nu, kappa = group.mean, np.zeros(self.f)
            for i, a, j in self.lam[g]:
                x[j] += lam[i, a]
                counts[j] += 1
            for r, c, j in self.chol[g]:
                x[j] += chol[r, c]
                counts[j] += 1
            np.add.at(x, self.theta[g], theta)
            np.add.at(counts, self.theta[g], 1)
            np.add.at(x, self.nu[g], nu)
            np.add.at(counts, self.nu[g], 1)
            if self.kappa[g] is not None:
                np.add.at(x, self.kappa[g], kappa)
                np.add.at(counts, self.kappa[g], 1)
        return x / np.maximum(counts, 1)

    def bounds(self) -> list[tuple[float | None, float | None]]:
        bounds: list[tuple[float | None, float | None]] = [(None, None)] * self.size
        for g in range(len(self.groups)):
            for j in self.theta[g]:
                bounds[j] = (1e-8, None)  # residual variances stay positive
        return bounds

    def fit(self, start: np.ndarray) -> tuple[np.ndarray, float, bool]:
        result = optimize.minimize(self.objective, start, jac=True, method="L-BFGS-B",
                                   bounds=self.bounds(),
                                   options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-9})
        # L-BFGS-B may stop on a line search at the optimum: accept a vanishing gradient
        n = sum(group.n for group in self.groups)
        converged = bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-6 * n
        return result.x, float(result.fun), converged


def measurement_invariance(groups: list[GroupMoments],
                           factors: list[list[int]]) -> list[InvarianceModel]:
    """Configural, metric and scalar models of the same simple-structure CFA in every
    group (factors: the item positions of each factor, marker first), each started from
    the solution of the one before. Baseline for CFI: the independence model in every
    group, means free (lavaan's default)."""
    p = groups[0].mean.size
    n = sum(group.n for group in groups)
    moments = len(groups) * (p * (p + 1) // 2 + p)
    chi2_baseline = sum(independence_chi_square(group.cov, group.n) for group in groups)
    df_baseline = len(groups) * p * (p - 1) // 2
    out: list[InvarianceModel] = []
    previous, previous_model = None, None
    for level in LEVELS:
        model = _MultiGroupCFA(groups, factors, level)
        x, chi2, converged = model.fit(model.start(previous, previous_model))
        fit = Fit.of(chi2, moments - model.size, chi2_baseline, df_baseline, n,
                     groups=len(groups), converged=converged)
        out.append(InvarianceModel(level, fit, model.size,
                                   {g.name: model.matrices(x, i) for i, g in enumerate(groups)}))
        previous, previous_model = x, model
    return out
