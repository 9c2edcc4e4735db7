"""The result of a regression fit: a coefficient table as statsmodels and R users know it.

:class:`RegressionResult` extends :class:`~symmle.numbers.fitting.FitResult`
(the same ``estimates``, ``stderr``, ``ci95`` mappings, with ``beta`` a list in
the order of ``terms``) with the term names, the test statistic of each
coefficient (``t`` on ``N - p`` degrees of freedom for least squares with an
estimated dispersion, else ``z``), its two-sided p-value, AIC, BIC, the
residual degrees of freedom and the iterations of the fit.  AIC and BIC count
every estimated parameter (the coefficients and the shared parameters, as R's
``logLik`` does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symmle.base.terminal import printable
from symmle.numbers.fitting import Z95, FitResult, _plain, interval

__all__ = ["RegressionResult"]


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


@dataclass(frozen=True)
class RegressionResult(FitResult):
    """A regression fit (see the module docstring).

    Made by :func:`~symmle.numbers.regression_fit.fit_regression`.

    Attributes (besides those of FitResult)
    ---------------------------------------
    terms : list of str
        The names of the coefficients, in the order of ``estimates["beta"]``.
    response : str
    link : dict of str to str
        The linked parameter and its link.
    statistic : str
        ``"t"`` or ``"z"``.
    z, p_values : dict
        Per parameter (``beta`` a list), ``None`` for the shared parameters.
    aic, bic : float
    df_resid : int
        ``N - p``.
    iterations : int
        Newton iterations (0 for the closed form).
    method : str
    """

    terms: list[str] = field(default_factory=list)
    response: str = ""
    link: dict[str, str] = field(default_factory=dict)
    statistic: str = "z"
    z: dict[str, Any] = field(default_factory=dict)
    p_values: dict[str, Any] = field(default_factory=dict)
    df_resid: int = 0
    iterations: int = 0
    method: str = ""
    #: the whole covariance of (beta, shared parameters) is not kept; the coefficients' is
    cov_beta: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def build(
        cls, d, design, *, beta, phi, cov_beta, cov_phi, log_likelihood, iterations, method, t_dist, ci
    ) -> RegressionResult:
        """Assemble the result: statistics, p-values and intervals from the estimates and covariances."""
        from scipy import stats

        reg = d.regression
        n, p = design.n, design.p
        df = n - p
        se_beta = np.sqrt(np.clip(np.diag(cov_beta), 0, None))
        zs = beta / se_beta
        if t_dist:
            pv = 2 * stats.t.sf(np.abs(zs), df)
            crit = float(stats.t.ppf(0.975, df))
        else:
            pv = 2 * stats.norm.sf(np.abs(zs))
            crit = Z95
        name = reg.parameter.name
        estimates: dict[str, Any] = {"beta": [float(b) for b in beta]}
        stderr: dict[str, Any] = {"beta": [float(s) for s in se_beta]}
        ci95: dict[str, Any] = {"beta": (beta - crit * se_beta, beta + crit * se_beta)}
        ci_method: dict[str, Any] = {"beta": "t" if t_dist else "wald"}
        kind = {"beta": "closed_form" if iterations == 0 else "numeric"}
        z: dict[str, Any] = {"beta": [float(v) for v in zs]}
        p_values: dict[str, Any] = {"beta": [float(v) for v in pv]}
        warnings: list[str] = []
        for j, s in enumerate(reg.shared):
            q = next(q for q in reg.model.parameters if q.symbol == s)
            v = float(phi[j])
            var = float(cov_phi[j, j]) if cov_phi.size else math.nan
            se = math.sqrt(var) if var > 0 else None
            estimates[s.name] = v
            stderr[s.name] = se
            kind[s.name] = "closed_form" if s.name in reg.profile else "numeric"
            if se is None:
                ci95[s.name], ci_method[s.name] = None, None
            else:
                ci95[s.name], ci_method[s.name] = interval(v, se, q.domain, ci)
            z[s.name] = None
            p_values[s.name] = None
            if s.name in reg.profile:
                warnings.append(
                    f"{s.name}_hat = {reg.profile[s.name]} is the MLE (R1 = the sum over the rows of "
                    f"{reg.residual_statistics[0].expr} at the fit), biased in finite samples: the {p} "
                    f"coefficients use up {p} of the {n} degrees of freedom"
                    if len(reg.residual_statistics) == 1
                    else f"{s.name}_hat is the MLE, biased in finite samples"
                )
        k = p + len(reg.shared)
        if t_dist:
            warnings.append(
                f"standard errors of the coefficients use the unbiased residual variance (factor N/(N - p) = "
                f"{n}/{df}), with t intervals and p-values on {df} degrees of freedom, as least squares does"
            )
        return cls(
            model=d.model.name,
            n=n,
            estimates=estimates,
            kind=kind,
            stderr=stderr,
            ci95=ci95,
            log_likelihood=float(log_likelihood),
            information="observed",
            warnings=warnings + [w for w in reg.warnings if "numerically" not in w],
            ci_method=ci_method,
            terms=list(design.terms),
            response=design.response,
            link={name: reg.link.name},
            statistic="t" if t_dist else "z",
            z=z,
            p_values=p_values,
            n_parameters=k,
            df_resid=df,
            iterations=iterations,
            method=method,
            cov_beta=cov_beta,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``symmle fit --json`` for a regression (schema 1)."""
        doc = super().to_dict()
        doc.update(
            {
                "terms": list(self.terms),
                "response": self.response,
                "link": dict(self.link),
                "statistic": self.statistic,
                "z": {k: _plain(v) for k, v in self.z.items()},
                "p_values": {k: _plain(v) for k, v in self.p_values.items()},
                "aic": _finite(self.aic),
                "bic": _finite(self.bic),
                "df_resid": self.df_resid,
                "iterations": self.iterations,
                "method": self.method,
            }
        )
        return doc

    def to_text(self) -> str:
        """The coefficient table, then the shared parameters and the fit statistics."""
        ((param, link),) = self.link.items()
        stat = self.statistic
        head = ("", "coef", "std err", stat, f"P>|{stat}|", "[0.025", "0.975]")
        rows = [head]
        lo, hi = self.ci95["beta"]
        for j, term in enumerate(self.terms):
            rows.append(
                (
                    term,
                    f"{self.estimates['beta'][j]:.6g}",
                    f"{self.stderr['beta'][j]:.4g}",
                    f"{self.z['beta'][j]:.3f}",
                    f"{self.p_values['beta'][j]:.3g}",
                    f"{lo[j]:.6g}",
                    f"{hi[j]:.6g}",
                )
            )
        shared = [k for k in self.estimates if k != "beta"]
        for k in shared:
            se, ci = self.stderr[k], self.ci95[k]
            rows.append(
                (
                    k,
                    f"{self.estimates[k]:.6g}",
                    "n/a" if se is None else f"{se:.4g}",
                    "",
                    "",
                    "" if ci is None else f"{ci[0]:.6g}",
                    "" if ci is None else f"{ci[1]:.6g}",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        fmt = lambda r: "  ".join(  # noqa: E731
            (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(r, widths))
        )
        rule = "-" * len(fmt(head))
        linked = param if link == "identity" else f"{link}({param})"
        lines = [
            f"{self.model}: maximum-likelihood regression of {self.response}, "
            f"{linked} = x'beta, n = {self.n}",
            "=" * len(rule),
            fmt(head),
            rule,
        ]
        lines += [fmt(r) for r in rows[1 : 1 + len(self.terms)]]
        if shared:
            lines.append(rule)
            lines += [fmt(r) for r in rows[1 + len(self.terms) :]]
        lines.append(rule)
        lines.append(
            f"Log-likelihood: {self.log_likelihood:.10g}    AIC: {self.aic:.6g}    BIC: {self.bic:.6g}"
        )
        lines.append(
            f"N: {self.n}    Df residuals: {self.df_resid}    "
            f"Df model: {len(self.terms) - ('Intercept' in self.terms)}    "
            f"Method: {self.method}"
            + (f", {self.iterations} iteration{'s' * (self.iterations != 1)}" if self.iterations else "")
        )
        lines.append(f"Standard errors from the {self.information} information")
        if self.warnings:
            lines += ["", "Warnings"] + [f"  - {w}" for w in self.warnings]
        return printable("\n".join(lines) + "\n")
