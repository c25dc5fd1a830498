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
            return (stats.ncx2.cdf(chi2, df, lam) if lam > 0 else stats.chi2.cdf(chi2, df)) - probability
        if gap(0.0) < 0:
            return 0.0
        # bracket around the point estimate chi2 - df, a few standard deviations wide
        centre = max(chi2 - df, 0.0)
        spread = 4 * math.sqrt(2 * (df + 2 * centre)) + 1
        low, high = max(centre - spread, 0.0), centre + spread
        if gap(low) < 0:
            low = 0.0
        while gap(high) > 0:
            high += spread
        return optimize.brentq(gap, low, high, xtol=1e-9, rtol=1e-12)

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
           groups: int = 1, srmr_value: float = math.nan, converged: bool = True,
           interval: bool = True) -> "Fit":
        lower, upper = rmsea_interval(chi2, df, n, groups) if interval else (math.nan, math.nan)
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
            # The item's variance is its common part (loading squared: one factor per item)
            # plus its residual, so the standardized loading is the root of the common
            # share: exactly 1 at a boundary solution (residual variance 0), where dividing
            # by the root of the implied variance gave 1 + 2e-16; above 1 only when the
            # residual variance is negative (a Heywood case, is_improper_solution).
            common = loading ** 2
            variance = common + theta[i]
            rows.append({
                "factor": factor,
                "item": item,
                "loading": loading,
                "standardized_loading": math.copysign(math.sqrt(common / variance), loading),
                "residual_variance": theta[i],
                "standardized_residual_variance": theta[i] / variance,
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

    Parameters live in one vector x; for each kind of matrix entry an index array (group
    x entry) says which element of x it is (shared entries have the same index in every
    group; index `size` is a constant 0), so the objective and its gradient are computed
    for all groups at once.
    """

    def __init__(self, groups: list[GroupMoments], factors: list[list[int]], level: str):
        self.groups, self.factors, self.level = groups, factors, level
        G, p, f = len(groups), groups[0].mean.size, len(factors)
        self.p, self.f = p, f
        self.n = np.array([g.n for g in groups], dtype=float)
        self.mean = np.stack([g.mean for g in groups])
        self.cov = np.stack([g.cov for g in groups])
        self.logdet_s = np.linalg.slogdet(self.cov)[1]
        self.markers = ([m[0] for m in factors], list(range(f)))
        loading_cells = [(i, a) for a, members in enumerate(factors) for i in members[1:]]
        self.lam_cells = tuple(np.array(c, dtype=int) for c in zip(*loading_cells)) if loading_cells else (np.array([], int),) * 2
        self.chol_cells = np.tril_indices(f)
        self.size = 0

        def block(count: int, shared: bool) -> np.ndarray:
            first = self._take(count)
            return np.stack([first if shared or g == 0 else self._take(count) for g in range(G)])

        self.lam_idx = block(len(loading_cells), shared=level in ("metric", "scalar"))
        self.chol_idx = block(len(self.chol_cells[0]), shared=False)
        self.theta_idx = block(p, shared=False)
        self.nu_idx = block(p, shared=level == "scalar")
        self.kappa_idx = np.full((G, f), -1)  # -1: fixed at 0 (the constant after x)
        if level == "scalar":
            for g in range(1, G):
                self.kappa_idx[g] = self._take(f)
        self.kappa_idx[self.kappa_idx < 0] = self.size

    def _take(self, count: int) -> np.ndarray:
        self.size += count
        return np.arange(self.size - count, self.size)

    def matrices(self, x: np.ndarray):
        """Lambda, the Cholesky factor of Phi, theta, nu and kappa of every group (stacked)."""
        xe = np.append(x, 0.0)
        G = len(self.groups)
        lam = np.zeros((G, self.p, self.f))
        lam[:, self.markers[0], self.markers[1]] = 1.0
        lam[:, self.lam_cells[0], self.lam_cells[1]] = xe[self.lam_idx]
        chol = np.zeros((G, self.f, self.f))
        chol[:, self.chol_cells[0], self.chol_cells[1]] = xe[self.chol_idx]
        return lam, chol, xe[self.theta_idx], xe[self.nu_idx], xe[self.kappa_idx]

    def objective(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        lam, chol, theta, nu, kappa = self.matrices(x)
        phi = chol @ chol.transpose(0, 2, 1)
        sigma = lam @ phi @ lam.transpose(0, 2, 1)
        sigma[:, np.arange(self.p), np.arange(self.p)] += theta
        try:
            factor = np.linalg.cholesky(sigma)
        except np.linalg.LinAlgError:
            return 1e20, np.zeros_like(x)
        inv = np.linalg.inv(sigma)
        logdet = 2 * np.log(np.diagonal(factor, axis1=1, axis2=2)).sum(axis=1)
        d = self.mean - (nu + np.einsum("gpf,gf->gp", lam, kappa))
        moment = self.cov + d[:, :, None] * d[:, None, :]
        total = float(np.sum(self.n * (logdet + np.einsum("gij,gij->g", inv, moment) - self.logdet_s - self.p)))
        # dF/dSigma and dF/dmu (Sigma symmetric), then the chain rule to each parameter
        g_sigma = self.n[:, None, None] * (inv - inv @ moment @ inv)
        g_mu = -2 * self.n[:, None] * np.einsum("gij,gj->gi", inv, d)
        g_lam = 2 * g_sigma @ lam @ phi + g_mu[:, :, None] * kappa[:, None, :]
        g_chol = 2 * lam.transpose(0, 2, 1) @ g_sigma @ lam @ chol
        grad = np.zeros(self.size + 1)
        np.add.at(grad, self.lam_idx, g_lam[:, self.lam_cells[0], self.lam_cells[1]])
        np.add.at(grad, self.chol_idx, g_chol[:, self.chol_cells[0], self.chol_cells[1]])
        np.add.at(grad, self.theta_idx, np.diagonal(g_sigma, axis1=1, axis2=2))
        np.add.at(grad, self.nu_idx, g_mu)
        np.add.at(grad, self.kappa_idx, np.einsum("gpf,gp->gf", lam, g_mu))
        return total, grad[:-1]

    def start(self, previous: np.ndarray | None = None,
              previous_model: "_MultiGroupCFA | None" = None) -> np.ndarray:
        """Starting values: from the less constrained model's solution when there is one
        (shared parameters as the groups' mean), else from the sample moments."""
        if previous is not None:
            lam, chol, theta, nu, kappa = previous_model.matrices(previous)
        else:  # each factor's variance from its marker's covariances, loadings from theirs
            G = len(self.groups)
            lam = np.zeros((G, self.p, self.f))
            chol = np.zeros((G, self.f, self.f))
            variances = np.diagonal(self.cov, axis1=1, axis2=2)
            theta = variances / 2
            for g in range(G):
                for a, members in enumerate(self.factors):
                    marker = members[0]
                    others = self.cov[g, marker, members[1:]]
                    phi = max(float(others.mean()) if len(others) else 0.0, 0.05 * variances[g, marker])
                    chol[g, a, a] = math.sqrt(phi)
                    lam[g, members, a] = self.cov[g, members, marker] / phi
                    lam[g, marker, a] = 1.0
                    theta[g, members] = np.maximum(variances[g, members] - lam[g, members, a] ** 2 * phi,
                                                   0.1 * variances[g, members])
            nu, kappa = self.mean, np.zeros((G, self.f))
        total = np.zeros(self.size + 1)
        counts = np.zeros(self.size + 1)
        for idx, values in ((self.lam_idx, lam[:, self.lam_cells[0], self.lam_cells[1]]),
                            (self.chol_idx, chol[:, self.chol_cells[0], self.chol_cells[1]]),
                            (self.theta_idx, theta), (self.nu_idx, nu), (self.kappa_idx, kappa)):
            np.add.at(total, idx, values)
            np.add.at(counts, idx, 1)
        return (total / np.maximum(counts, 1))[:-1]

    def bounds(self) -> list[tuple[float | None, float | None]]:
        bounds: list[tuple[float | None, float | None]] = [(None, None)] * self.size
        for j in self.theta_idx.ravel():
            bounds[j] = (1e-8, None)  # residual variances stay positive
        return bounds

    def fit(self, start: np.ndarray) -> tuple[np.ndarray, float, bool]:
        result = optimize.minimize(self.objective, start, jac=True, method="L-BFGS-B",
                                   bounds=self.bounds(),
                                   options={"maxiter": 5000, "ftol": 1e-11, "gtol": 1e-6 * self.n.sum()})
        # L-BFGS-B may stop on a line search at the optimum: accept a vanishing gradient
        converged = bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-5 * self.n.sum()
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
                     groups=len(groups), converged=converged, interval=False)
        matrices = model.matrices(x)
        out.append(InvarianceModel(level, fit, model.size,
                                   {g.name: tuple(m[i] for m in matrices) for i, g in enumerate(groups)}))
        previous, previous_model = x, model
    return out
