r"""Simulation check of a regression: covariates from a design, responses from the family.

Each replicate draws a design (``normal``: an intercept and standard normal
covariates; ``uniform``: an intercept and covariates uniform on (0, 1); or a
file of covariate columns, held fixed, with an intercept added), the linear
predictor :math:`\eta_i = x_i^\top\beta`, the linked parameter
:math:`g^{-1}(\eta_i)` and a response from the family's ``[sampler]`` at each
row's parameters; then fits it with the derived regression
(:class:`~symmle.numbers.regression_fit.RegressionFitter`).  Per coefficient and
shared parameter, the verdicts of :func:`~symmle.simulate.verdicts.parameter_check`:

*bias* against its Monte Carlo error; *efficiency*: the Cramér–Rao bound, the
mean over replicates of the inverse expected information
:math:`[X^\top W X, \dots]^{-1}` at the true values (the per-observation
information of the derivation), over the empirical variance; *coverage* of
the fit's own 95% intervals; *agreement* with an independent optimiser
(:func:`scipy.optimize.minimize` of :math:`-\sum_i \log f(y_i)` built straight
from the density and the link, not from the derivation); *consistency*: the
RMSE at several sample sizes (random designs only).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp

from symmle.base.errors import DataError, SpecError
from symmle.base.numeric import to_function
from symmle.model.parse import parse_array
from symmle.simulate.progress import ProgressBar
from symmle.simulate.results import CheckResult
from symmle.simulate.verdicts import AGREE_RTOL, existence_verdict, parameter_check

__all__ = ["check_regression", "DESIGNS", "ArrayDesign"]

#: The random designs of ``--design`` (besides a file of covariates).
DESIGNS = ("normal", "uniform")


class ArrayDesign:
    """An in-memory design: the response, the design matrix and its term names."""

    in_memory = True
    offset = None
    dropped = None

    def __init__(self, y: np.ndarray, X: np.ndarray, terms: list[str], response: str = "y") -> None:
        self.y, self.X, self.terms, self.response = y, np.ascontiguousarray(X), list(terms), response
        self.n, self.p = self.X.shape

    def chunks(self, size: int | None = None):
        yield self.y, self.X, None


def _true(m, reg, true: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, float]]:
    names = {"beta", *(s.name for s in reg.shared)}
    unknown = set(true) - names
    if unknown:
        raise SpecError(
            f"unknown parameter '{sorted(unknown)[0]}' in --true; a regression of {m.name} has "
            f"{', '.join(['beta', *(s.name for s in reg.shared)])}"
        )
    missing = [k for k in ["beta", *(s.name for s in reg.shared)] if k not in true]
    if missing:
        raise SpecError(f"--true needs a value of {missing[0]}")
    raw = true["beta"]
    if isinstance(raw, str):
        beta = np.array([float(v) for v in parse_array(raw, what="true beta")], dtype=float).reshape(-1)
    else:
        beta = np.asarray(raw, dtype=float).reshape(-1)
    if beta.size < 1 or not np.all(np.isfinite(beta)):
        raise SpecError("true beta must be a list of finite numbers, e.g. beta=[-1,0.5,2]")
    from symmle.simulate.check import true_scalar

    shared = {}
    for s in reg.shared:
        q = next(q for q in m.parameters if q.symbol == s)
        shared[s.name] = true_scalar(q, true[s.name], f"true value of {s.name}")
    return beta, shared


def _covariates(design: str | Any) -> np.ndarray | None:
    """A fixed design's covariates (a file), or ``None`` for a random design."""
    if isinstance(design, str) and design in DESIGNS:
        return None
    if isinstance(design, np.ndarray):
        z = np.asarray(design, dtype=float)
    else:
        from symmle.numbers.data import load_columns

        z, _ = load_columns(design)
    z = z.reshape(z.shape[0], -1)
    if not np.all(np.isfinite(z)):
        row = int(np.argwhere(~np.isfinite(z))[0][0]) + 1
        raise DataError(f"the design's row {row} has a missing or infinite covariate")
    return z


class _RowSampler:
    """Draws one response per row from the family's ``[sampler]`` at each row's parameters."""

    def __init__(self, m, reg, shared: Mapping[str, float], consts: Mapping[str, float]) -> None:
        if m.sampler is None:
            raise SpecError(
                f"checking a regression of {m.name} needs the family's [sampler] (responses are drawn "
                "at a different parameter on every row)"
            )
        s = m.sampler
        symbols = [q.symbol for q in (*m.parameters, *m.constants)]
        self.args = [(k, to_function(symbols, sp.sympify(e))) for k, e in s.args]
        self.method = s.method
        self.transform = None
        if s.transform is not None:
            raw = s.draw if s.draw is not None else m.variable
            self.transform = to_function([raw, *symbols], s.transform)
        self.link_inverse = to_function([reg.eta], reg.link.inverse(reg.eta))
        self.linked = reg.parameter.name
        self.fixed = {**shared, **consts}
        self.order = [q.name for q in (*m.parameters, *m.constants)]

    def __call__(self, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        with np.errstate(all="ignore"):
            theta = np.asarray(self.link_inverse(eta), dtype=float)
        values = [theta if name == self.linked else self.fixed[name] for name in self.order]
        kwargs = {}
        for k, f in self.args:
            with np.errstate(all="ignore"):
                kwargs[k] = np.broadcast_to(np.asarray(f(*values), dtype=float), eta.shape)
        method = getattr(rng, self.method)
        try:
            y = np.asarray(method(**kwargs), dtype=float)
        except TypeError:  # an argument NumPy takes as integers (binomial's n): whole numbers given as such
            whole = {k: (v.astype(np.int64) if np.all(v == np.round(v)) else v) for k, v in kwargs.items()}
            y = np.asarray(method(**whole), dtype=float)
        if self.transform is not None:
            with np.errstate(all="ignore"):
                y = np.asarray(self.transform(y, *values), dtype=float) * np.ones_like(y)
        return y


def _design(rng: np.random.Generator, kind: str, n: int, p: int, fixed: np.ndarray | None) -> np.ndarray:
    if fixed is not None:
        return np.column_stack([np.ones(fixed.shape[0]), fixed])
    z = rng.standard_normal((n, p - 1)) if kind == "normal" else rng.random((n, p - 1))
    return np.column_stack([np.ones(n), z])


def _expected_information(reg, X, beta, shared, consts) -> np.ndarray | None:
    """The expected information of (beta, shared) for the design X at the true values, or None."""
    info = reg.information
    if info is None or any(e.has(sp.nan) for e in info):
        return None
    args = reg.variables[1:]  # (eta, shared..., constants...)
    k = len(reg.shared)
    eta = X @ beta
    vals = [shared[s.name] for s in reg.shared] + [consts[c.name] for c in reg.model.constant_symbols]
    entries = [[to_function(args, info[i, j]) for j in range(1 + k)] for i in range(1 + k)]
    with np.errstate(all="ignore"):
        e = [
            [np.broadcast_to(np.asarray(f(eta, *vals), dtype=float), eta.shape) for f in row]
            for row in entries
        ]
    p = X.shape[1]
    out = np.zeros((p + k, p + k))
    out[:p, :p] = X.T @ (X * e[0][0][:, None])
    for j in range(k):
        out[:p, p + j] = out[p + j, :p] = X.T @ e[0][1 + j]
        for i in range(k):
            out[p + i, p + j] = float(np.sum(e[1 + i][1 + j]))
    return out if np.all(np.isfinite(out)) else None


def _independent(m, reg, y, X, start: np.ndarray, consts: Mapping[str, float]) -> np.ndarray | None:
    """The MLE by BFGS on -sum log f(y_i) built from the density and the link (not from the derivation)."""
    from scipy.optimize import minimize

    symbols = [m.variable, *(q.symbol for q in (*m.parameters, *m.constants))]
    logf = to_function(symbols, sp.log(m.density))
    link_inverse = to_function([reg.eta], reg.link.inverse(reg.eta))
    p = X.shape[1]
    doms = [next(q for q in m.parameters if q.symbol == s).domain for s in reg.shared]

    def unpack(v):
        beta = v[:p]
        shared = [
            math.exp(min(u, 700.0)) if d in ("positive", "nonnegative") else u for u, d in zip(v[p:], doms)
        ]
        return beta, shared

    order = [q.name for q in (*m.parameters, *m.constants)]
    names = [s.name for s in reg.shared]

    def nll(v):
        beta, shared = unpack(v)
        with np.errstate(all="ignore"):
            theta = np.asarray(link_inverse(X @ beta), dtype=float)
            fixed = dict(zip(names, shared), **consts)
            values = [theta if name == reg.parameter.name else fixed[name] for name in order]
            total = float(np.sum(logf(y, *values)))
        return -total if math.isfinite(total) else 1e300

    v0 = np.concatenate(
        [start[:p], [math.log(s) if d in ("positive", "nonnegative") else s for s, d in zip(start[p:], doms)]]
    )
    v0 = v0 * (1 + 1e-3)  # not at the answer: the optimiser must find it
    res = minimize(nll, v0, method="BFGS", options={"gtol": 1e-9, "maxiter": 2000})
    if not np.all(np.isfinite(res.x)):
        return None
    beta, shared = unpack(res.x)
    return np.concatenate([beta, shared])


def check_regression(
    d,
    true: Mapping[str, Any],
    *,
    design: str | Any = "normal",
    n: int = 1000,
    reps: int = 300,
    seed: int | None = None,
    constants: Mapping[str, Any] | None = None,
    sizes=None,
    agree: int = 20,
    progress: bool = False,
) -> CheckResult:
    """Check a derived regression by simulation (see the module docstring).

    Parameters
    ----------
    d : Derivation
        A derivation of a linked model.
    true : mapping
        ``beta`` (a list, or text ``[-1, 0.5, 2]``; the first entry is the
        intercept) and every shared parameter.
    design : {"normal", "uniform"} or path or array
        The covariates: random, or fixed (a file's columns; then ``n`` is its
        number of rows and there is no consistency check).
    """
    from symmle.numbers.regression_fit import RegressionFitter

    started = time.perf_counter()
    reg = d.regression
    m = reg.model
    beta, shared = _true(m, reg, true)
    p = beta.size
    fixed = _covariates(design)
    if fixed is not None:
        if fixed.shape[1] != p - 1:
            raise SpecError(
                f"the design has {fixed.shape[1]} covariate columns, so beta needs {fixed.shape[1] + 1} "
                f"entries (the intercept first); it has {p}"
            )
        n = fixed.shape[0]
        all_sizes: tuple[int, ...] = (n,)
    else:
        if not (isinstance(design, str) and design in DESIGNS):
            raise SpecError(f"--design must be one of {', '.join(DESIGNS)}, or a file of covariate columns")
        base = sorted(
            {max(4 * p, n // 16), max(4 * p, n // 4), n} if sizes is None else {*map(int, sizes), n}
        )
        all_sizes = tuple(base)
    if n <= 2 * p:
        raise SpecError(f"n = {n} is too small for {p} coefficients: give at least {2 * p + 1} rows")
    consts = {q.name: float(q.value) for q in m.constants if q.value is not None}
    for k, v in (constants or {}).items():
        consts[k] = float(v)
    fitter = RegressionFitter(d, consts)
    draw = _RowSampler(m, reg, shared, consts)
    terms = ["Intercept", *(f"x{j}" for j in range(1, p))]
    names = [f"beta[{j + 1}]" for j in range(p)] + [s.name for s in reg.shared]
    truth = np.concatenate([beta, [shared[s.name] for s in reg.shared]])
    seq = np.random.SeedSequence(seed)
    streams = dict(zip(all_sizes, seq.spawn(len(all_sizes))))
    runs: dict[int, np.ndarray] = {}
    covered = np.zeros((reps, len(names)), dtype=bool)
    crlbs: list[np.ndarray] = []
    agreed: list[np.ndarray] = []
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    with ProgressBar(progress, reps * len(all_sizes), f"check {m.name}") as bar:
        for size in sorted(all_sizes, reverse=True):
            rng = np.random.default_rng(streams[size])
            est = np.full((reps, len(names)), np.nan)
            for r in range(reps):
                X = _design(rng, design if fixed is None else "", size, p, fixed)
                y = draw(X @ beta, rng)
                try:
                    res = fitter.fit(ArrayDesign(y, X, terms), check_data=False)
                except DataError:
                    bar.advance(1)
                    continue
                est[r] = [*res.estimates["beta"], *(res.estimates[s.name] for s in reg.shared)]
                if size == n:
                    lo, hi = res.ci95["beta"]
                    hits = list((lo <= beta) & (beta <= hi))
                    for s in reg.shared:
                        ci = res.ci95[s.name]
                        hits.append(ci is not None and ci[0] <= shared[s.name] <= ci[1])
                    covered[r] = hits
                    info = _expected_information(reg, X, beta, shared, consts)
                    if info is not None:
                        try:
                            crlbs.append(np.diag(np.linalg.inv(info)))
                        except np.linalg.LinAlgError:
                            pass
                    if len(kept) < agree:
                        se = [*res.stderr["beta"], *(res.stderr[s.name] or 0.0 for s in reg.shared)]
                        kept.append((y, X, est[r].copy(), np.asarray(se, dtype=float)))
                bar.advance(1)
            runs[size] = est
    ok = np.all(np.isfinite(runs[n]), axis=1)
    without = int(reps - ok.sum())
    for y, X, e, se in kept:
        other = _independent(m, reg, y, X, e, consts)
        if other is not None:  # relative to the size of the estimate or of its standard error
            agreed.append(np.abs(other - e) / np.maximum(np.abs(e), se))
    crlb = np.mean(crlbs, axis=0) if len(crlbs) == int(ok.sum()) and crlbs else None
    params = {}
    for j, name in enumerate(names):
        worst = float(max(a[j] for a in agreed)) if agreed else None
        agreement = (worst, len(agreed), None if worst is None else worst <= AGREE_RTOL, "independent BFGS")
        params[name] = parameter_check(
            name,
            "closed_form" if reg.closed_form else "numeric",
            float(truth[j]),
            runs[n][ok, j],
            None if crlb is None else float(crlb[j]),
            float(np.mean(covered[ok, j])) if ok.any() else None,
            agreement,
            n,
            {s: runs[s][np.all(np.isfinite(runs[s]), axis=1), j] for s in all_sizes},
        )
    warn = []
    if without:
        warn.append(f"{without} of {reps} replicates at n = {n} have no MLE (left out of the statistics)")
    if crlb is None:
        warn.append("no Cramér–Rao bound: the expected information of the family is incomplete")
    if reg.closed_form and reg.shared:
        warn.append(
            "the coefficients' intervals use t on N - p degrees of freedom; the shared parameters' MLE is "
            "biased by a factor (N - p)/N, which the bias check sees at small N"
        )
    return CheckResult(
        model=m.name,
        n=n,
        reps=reps,
        seed=int(seq.entropy),
        true={name: float(v) for name, v in zip(names, truth)},
        constants=consts,
        sampler="declared",
        parameters=params,
        without_mle=without,
        existence=existence_verdict(without, reps),
        sizes=all_sizes,
        seconds=time.perf_counter() - started,
        warnings=warn,
        estimates={name: runs[n][:, j].copy() for j, name in enumerate(names)},
    )
