r"""Finite mixtures of a vector family (mvnormal and kin), fitted by EM with the M-step derived.

The scalar case is :mod:`symmle.numbers.mixture_em`; this module is its vector
counterpart.  A K-component mixture of a vector family :math:`f(x; \theta)`
(``dimension = "D"``: vector means, symmetric positive definite matrices) has the
density :math:`p(x) = \sum_k w_k f(x; \theta_k)`.  EM alternates:

* **E-step.**  The responsibilities :math:`r_{ik} = w_k f(x_i; \theta_k) / p(x_i)`
  in log space: the family's log-density (the model's density, logged, with
  ``x_i - mu`` kept whole) is evaluated on blocks of rows, each symmetric
  positive definite parameter through its Cholesky factor (its inverse from the
  inverse of the triangular factor, ``log det`` as twice the sum of the logs of the
  factor's diagonal), and the rows are normalised by a log-sum-exp.
* **M-step.**  The component's *weighted* MLE.  The vector derivation gives each
  estimator as an expression in N and the sufficient statistics (``T1 = sum x_i``,
  ``T2 = sum x_i x_i^T``, entrywise sums such as ``sum log x_i``), and the
  log-likelihood is linear in them, so :math:`Q_k = \sum_i r_{ik} \log f(x_i;
  \theta_k)` is the same expression with :math:`N_k = \sum_i r_{ik}`,
  :math:`S_{k1} = \sum_i r_{ik} x_i`, :math:`S_{k2} = \sum_i r_{ik} x_i x_i^T`
  (and the weighted entrywise sums) in their place.  The derived closed forms are
  evaluated as they are, through the weighted mean and scatter (``T1 = N m``,
  ``T2 = S + N m m^T``, the rewrite :func:`symmle.numbers.vector_plan.vector_formulas`
  makes and checks, so that ``Sigma_hat`` becomes ``S_k / N_k`` without
  cancellation).  A family with a parameter without a closed form is refused
  (a numeric weighted M-step is :mod:`symmle.numbers.mixture_em`'s, for scalar
  families only).  The weights are :math:`w_k = N_k / N` (the simplex's
  Lagrangian).  Nothing here knows which family it mixes.

The log-likelihood must not decrease from one iteration to the next (a decrease
beyond rounding is a :class:`VerificationError`).  EM stops when the relative
change of the log-likelihood is at most 1e-10 and that of the parameters at
most 1e-8.  Each iteration is two EM steps followed by a SQUAREM extrapolation
(Varadhan and Roland, 2008; its length capped, the cap growing by 4 each time it
binds) and one EM step from there, kept only where its log-likelihood beats the
two plain steps, so the trace stays monotone.  Several starts (k-means++ seeds drawn with ``seed`` on the
standardised rows, refined by a few Lloyd steps) are run and the best kept; the
number of distinct optima is reported.  A covariance becoming singular (a
component on collinear points, or on fewer than D + 1 points) or a weight
vanishing ends a start; when every start ends so, the fit is a
:class:`DataError`.

Standard errors come from the observed information of the mixture
log-likelihood in the free coordinates (``w_1..w_{K-1}``, then each
component's parameters: a vector's entries, a symmetric matrix's ``D(D+1)/2``
distinct entries): with :math:`g_{ik}` the gradient of :math:`\log w_k f(x_i;
\theta_k)` and :math:`a_i = \sum_k r_{ik} g_{ik}`,

.. math:: -H = \sum_i a_i a_i^T - \sum_i \sum_k r_{ik} g_{ik} g_{ik}^T - \sum_k \nabla^2 Q_k .

The per-observation gradients come from the score of the derived log-likelihood
(matrix calculus), which is linear in N and the statistics: read off once per
component as ``a + M s_i``; :math:`\nabla^2 Q_k` is the second differential of
the derived log-likelihood by the rules of :mod:`symmle.symbolic.matrix_information`,
read in vec/vech coordinates and evaluated at the weighted statistics (exact, no
expectation taken).  Both use the log-likelihood rewritten in sums centred at the
component's mean where the centre cancels (see :class:`_Information`), so that data
far from the origin keep their digits.  Both are cross-checked numerically before
they are reported, along random directions: the gradient against central
differences of the log-likelihood at a point off the optimum, the information
against central differences of that gradient at the estimate (on the first
:data:`CHECK_ROWS` rows); a failed check withholds the standard errors, with a
warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from symmle.base import _runtime
from symmle.base.errors import DataError, DerivationError, SpecError, VerificationError
from symmle.base.terminal import printable
from symmle.numbers.fitting import interval
from symmle.numbers.matrix_eval import evaluate
from symmle.numbers.mixture_em import (
    MAX_ITER,
    MIN_COUNT,
    MIN_WEIGHT,
    MONOTONE_SLACK,
    TOL_LOGLIK,
    TOL_PARAMS,
    MixtureResult,
    check_components,
    choose_by_bic,
    parse_components,
)
from symmle.numbers.vector_data import validate_rows
from symmle.numbers.vector_plan import vector_formulas

__all__ = ["VectorMixtureResult", "fit_vector_mixture", "fit_vector_components", "COLLAPSE"]

#: a covariance whose smallest eigenvalue, relative to the one-component fit's, falls below this has
#: become singular (the component sits on a lower-dimensional set: the likelihood is unbounded there)
COLLAPSE = 1e-10
#: rows per block of the E-step and of the sums
CHUNK_ROWS = 65536
#: rows on which the exact observed information is cross-checked by finite differences
CHECK_ROWS = 400
#: Lloyd steps refining each k-means++ seed
LLOYD_STEPS = 10
#: at most this many rows (a random subset) seed the starts
SEED_ROWS = 20000
#: SQUAREM steps between EM steps (kept only where they raise the log-likelihood)
ACCELERATE = True


@dataclass(frozen=True)
class VectorMixtureResult(MixtureResult):
    """A mixture of a vector family: :class:`~symmle.numbers.mixture_em.MixtureResult` whose
    component parameters are stacks (``mu``: K vectors, ``Sigma``: K matrices), with a table
    that shows them component by component."""

    def to_text(self) -> str:
        rows = [("component", "parameter", "estimate", "std. error", "95% interval", "kind")]
        K = self.components
        labels: dict[str, list[str]] = {}
        for k in range(K):
            for name, value in self.estimates.items():
                v = np.asarray(value)[k]
                se = None if self.stderr.get(name) is None else np.asarray(self.stderr[name])[k]
                ci = self.ci95.get(name)
                how = self.ci_method.get(name)
                for label, index in _entries(name, v):
                    at = lambda a, index=index: a if index is None else np.asarray(a)[index]  # noqa: E731
                    rows.append(
                        (
                            str(k + 1),
                            label,
                            f"{at(v):.10g}",
                            "n/a" if se is None else f"{at(se):.4g}",
                            "n/a"
                            if ci is None
                            else f"[{at(np.asarray(ci[0])[k]):.6g}, {at(np.asarray(ci[1])[k]):.6g}]",
                            self.kind[name],
                        )
                    )
                    if how is not None and k == 0 and not isinstance(how, str):
                        m = np.asarray(how, dtype=object)[k][index or ()]
                        labels.setdefault(str(m), []).append(label)
                if how is not None and k == 0 and isinstance(how, str):
                    labels.setdefault(how, []).append(name)
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = [
            f"{self.model} mixture of {K}: maximum-likelihood fit (EM) to n = {self.n} observations",
            "",
        ]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        if self.columns is not None:
            lines += ["", "  coordinates: " + ", ".join(f"{k} = {c}" for k, c in enumerate(self.columns, 1))]
        lines += ["", f"  log-likelihood = {self.log_likelihood:.10g}"]
        if self.aic is not None:
            lines.append(f"  AIC = {self.aic:.10g}, BIC = {self.bic:.10g} (k = {self.n_parameters})")
        lines.append(
            f"  EM: {self.iterations} iterations, {'converged' if self.converged else 'NOT converged'}; "
            f"{self.starts} starts, {self.distinct_optima} distinct "
            f"optim{'um' if self.distinct_optima == 1 else 'a'}"
        )
        if self.information:
            lines.append(f"  standard errors from the {self.information} information of the mixture")
        text = {
            "wald": "as estimate +/- 1.96 se",
            "wald-log": "on the log scale, mapped back (delta method)",
            "wald-logit": "on the logit scale, mapped back (delta method)",
        }
        head = "  95% Wald intervals: "
        for how, names in labels.items():
            lines.append(f"{head}{', '.join(names)} {text.get(how, how)}")
            head = " " * len(head)
        if self.warnings:
            lines += ["", "Warnings"] + [f"  - {w}" for w in self.warnings]
        text = "\n".join(lines) + "\n"
        if self.selection:
            text = self._selection_text() + text
        return printable(text)


def _entries(name: str, value: Any) -> list[tuple[str, tuple | None]]:
    v = np.asarray(value)
    if v.ndim == 0:
        return [(name, None)]
    if v.ndim == 1:
        return [(f"{name}[{i + 1}]", (i,)) for i in range(v.shape[0])]
    return [(f"{name}[{i + 1},{j + 1}]", (i, j)) for j in range(v.shape[1]) for i in range(j, v.shape[0])]


# ---------------------------------------------------------------- the family's pieces


class _Prepared:
    """A scalar expression over matrices, split once into its matrix leaves (traces, determinants)
    and a compiled scalar body, so that the E-step does not walk SymPy's tree at every iteration
    (what :func:`symmle.numbers.matrix_eval.evaluate` does for each call)."""

    def __init__(self, expr: sp.Basic) -> None:
        from symmle.base.numeric import to_function
        from symmle.numbers.matrix_eval import _matrix_leaf, _outermost

        self.expr = expr
        self.f = None
        if getattr(expr, "is_Matrix", False) or not isinstance(expr, sp.Expr):
            return
        atoms = [a for a in sp.preorder_traversal(expr) if _matrix_leaf(a)]
        outer = sorted(_outermost(atoms), key=sp.default_sort_key)
        self.stand = [(a, sp.Symbol(f"_leaf_{k}")) for k, a in enumerate(outer)]
        body = expr.xreplace(dict(self.stand))
        self.names = sorted(body.free_symbols, key=str)
        self.f = to_function(self.names, body)

    def __call__(self, env: Mapping) -> Any:
        if self.f is None:
            return evaluate(self.expr, env)
        values = {s: evaluate(a, env) for a, s in self.stand}
        return self.f(*[values[s] if s in values else env[s] for s in self.names])


class _Collapse(Exception):
    """A start that ran into a degenerate component (the message says how)."""

    def __init__(self, message: str, singular: bool) -> None:
        super().__init__(message)
        self.singular = singular


def _vech_pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for j in range(n) for i in range(j, n)]


def _duplication(n: int) -> np.ndarray:
    from symmle.numbers.matrix_eval import duplication

    return duplication(n)


class _Family:
    """What EM needs from a vector Derivation, prepared once at the data's dimension."""

    def __init__(self, d, dim: int, timeout: float | None) -> None:
        m, lik = d.model, d.likelihood
        self.d, self.dim = d, dim
        self.params = list(m.parameters)
        for q in self.params:
            if q.domain == "simplex":
                raise SpecError(
                    f"--mixture: '{m.name}' has a simplex parameter ({q.name}); "
                    "mixtures of it are not supported"
                )
        f = vector_formulas(d, timeout=timeout)
        self.f = f
        self.N = lik.N
        self.D = m.dimension
        self.variable = m.variable
        self.base: dict = {m.dimension: dim}
        for q in m.constants:
            if q.value is None:
                raise DataError(f"the model's constant {q.name} needs a value (--const {q.name}=...)")
            self.base[q.symbol] = (
                np.asarray(np.array(q.value.tolist(), dtype=float)) if q.is_matrix else float(q.value)
            )
        # the log-density, x - mu kept whole; each spd parameter's inverse and log-determinant from its
        # Cholesky factor
        logf = sp.expand_log(sp.log(m.density), force=True)
        self.chol: list[tuple[Any, sp.MatrixSymbol, sp.Symbol]] = []
        for q in self.params:
            if q.domain != "spd":
                continue
            inv = sp.MatrixSymbol(f"_inverse_{q.name}", self.D, self.D)
            logdet = sp.Symbol(f"_logdet_{q.name}")
            logf = logf.xreplace(
                {
                    sp.Inverse(q.symbol): inv,
                    sp.MatPow(q.symbol, -1): inv,
                    sp.log(sp.Determinant(q.symbol)): logdet,
                }
            )
            self.chol.append((q, inv, logdet))
        self.logf = logf
        self.logf_fast = _Prepared(logf)
        self.entrywise = []
        for t, e in f.entrywise:
            body = e.function
            from symmle.base.numeric import to_function

            (var,) = body.variables
            fn = to_function([var], body.expr)
            self.entrywise.append((t, lambda a, fn=fn: np.asarray(fn(a), dtype=float)))
        self.closed = f.closed
        if f.numeric:
            raise DerivationError(
                f"--mixture: {f.numeric[0]} of '{m.name}' has no closed form; a numeric weighted M-step "
                "is not implemented for vector families yet"
            )
        self.sizes = [self._size(q) for q in self.params]
        self.P = sum(self.sizes)

    def _size(self, q) -> int:
        if q.domain == "spd":
            return self.dim * (self.dim + 1) // 2
        return self.dim if q.is_matrix else 1

    # ------------------------------------------------ values of one component

    def prepare(self, theta: dict) -> dict:
        """``theta`` (by symbol) with each spd parameter's Cholesky pieces (_Collapse if one is not PD)."""
        env = {**self.base, **theta}
        for q, inv, logdet in self.chol:
            s = np.asarray(theta[q.symbol], dtype=float)
            try:
                if not np.all(np.isfinite(s)):
                    raise np.linalg.LinAlgError
                c = np.linalg.cholesky(s)
            except np.linalg.LinAlgError:
                raise _Collapse(f"{q.name} is not positive definite", True) from None
            c_inv = np.linalg.inv(c)  # triangular: S^-1 = L^-T L^-1
            env[inv] = c_inv.T @ c_inv
            env[logdet] = 2.0 * float(np.sum(np.log(np.diag(c))))
        return env

    def log_density(self, block: np.ndarray, env: dict) -> np.ndarray:
        with np.errstate(all="ignore"):
            v = self.logf_fast({**env, self.variable: block[:, :, None]})
        return np.broadcast_to(np.asarray(v, dtype=float), (block.shape[0],))

    def m_step(self, n: float, mean: np.ndarray, scatter: np.ndarray, sums: dict):
        """The weighted MLE of one component from N_k, its weighted mean, scatter and entrywise sums."""
        f = self.f
        env = {**self.base, self.N: float(n), f.mean: mean.reshape(-1, 1), f.scatter: scatter}
        if "x" in f.moments:
            env[f.moments["x"]] = n * mean.reshape(-1, 1)
        if "xx" in f.moments:
            env[f.moments["xx"]] = scatter + n * np.outer(mean, mean)
        env.update(sums)
        with np.errstate(all="ignore"):
            for name, expr in self.closed:
                q = next(p for p in self.params if p.name == name)
                env[q.symbol] = np.asarray(evaluate(expr, env), dtype=float)
                if not q.is_matrix:
                    env[q.symbol] = float(env[q.symbol])
        return {q.symbol: env[q.symbol] for q in self.params}, env

    # ------------------------------------------------ coordinates

    def flatten(self, theta: dict) -> np.ndarray:
        parts = []
        for q in self.params:
            v = np.asarray(theta[q.symbol], dtype=float)
            if q.domain == "spd":
                parts.append(np.array([v[i, j] for i, j in _vech_pairs(self.dim)]))
            else:
                parts.append(v.reshape(-1))
        return np.concatenate(parts)

    def unflatten(self, phi: np.ndarray) -> dict:
        out, k = {}, 0
        for q, size in zip(self.params, self.sizes):
            v = phi[k : k + size]
            k += size
            if q.domain == "spd":
                s = np.zeros((self.dim, self.dim))
                for (i, j), e in zip(_vech_pairs(self.dim), v):
                    s[i, j] = s[j, i] = e
                out[q.symbol] = s
            elif q.is_matrix:
                out[q.symbol] = v.reshape(-1, 1).copy()
            else:
                out[q.symbol] = float(v[0])
        return out


# ---------------------------------------------------------------- one EM run


@dataclass
class _Run:
    loglik: float
    weights: np.ndarray
    thetas: list[dict]
    iterations: int
    converged: bool
    trace: list[float]


def logsumexp(a: np.ndarray, axis: int = 1) -> np.ndarray:
    """``log sum exp`` along ``axis`` (rows of finite maxima; a row of -inf gives -inf)."""
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)


def _chunks(n: int):
    for start in range(0, n, CHUNK_ROWS):
        yield start, min(start + CHUNK_ROWS, n)


class _EM:
    def __init__(self, fam: _Family, x: np.ndarray, reference: dict) -> None:
        self.fam, self.x = fam, x
        self.n = x.shape[0]
        self.centre = np.asarray(x[: min(self.n, 1000)], dtype=float).mean(axis=0)
        self.G = [
            (t, np.concatenate([fn(np.asarray(x[a:b], dtype=float)) for a, b in _chunks(self.n)]))
            for t, fn in fam.entrywise
        ]
        # the one-component fit's spd parameters: the scale a singular covariance is measured against
        self.ref_inverse_factor = {}
        for q, _, _ in fam.chol:
            s = np.asarray(reference[q.symbol], dtype=float)
            self.ref_inverse_factor[q.name] = np.linalg.inv(np.linalg.cholesky(s))

    def e_step(self, w: np.ndarray, envs: list[dict]) -> tuple[np.ndarray, float]:
        K = w.shape[0]
        r = np.empty((self.n, K))
        total = 0.0
        with np.errstate(divide="ignore"):
            lw = np.log(w)
        for a, b in _chunks(self.n):
            block = np.asarray(self.x[a:b], dtype=float)
            lp = np.column_stack([lw[k] + self.fam.log_density(block, envs[k]) for k in range(K)])
            ll = logsumexp(lp, axis=1)
            r[a:b] = np.exp(lp - ll[:, None])
            total += float(np.sum(ll))
        return r, total

    def weighted(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """N_k, the weighted means (K, D) and scatters (K, D, D), from rows centred at a pilot."""
        K, D = r.shape[1], self.x.shape[1]
        nk = r.sum(axis=0)
        s1 = np.zeros((K, D))
        for a, b in _chunks(self.n):
            s1 += r[a:b].T @ (np.asarray(self.x[a:b], dtype=float) - self.centre)
        delta = s1 / nk[:, None]
        scatter = np.zeros((K, D, D))
        for a, b in _chunks(self.n):
            z = np.asarray(self.x[a:b], dtype=float) - self.centre
            for k in range(K):
                zk = z - delta[k]
                scatter[k] += (zk * r[a:b, k : k + 1]).T @ zk
        scatter = (scatter + np.swapaxes(scatter, 1, 2)) / 2
        return nk, self.centre + delta, scatter

    def m_step(self, r: np.ndarray):
        fam = self.fam
        nk, means, scatters = self.weighted(r)
        K = r.shape[1]
        if np.any(nk / self.n < MIN_WEIGHT) or np.any(nk < MIN_COUNT):
            k = int(np.argmin(nk))
            raise _Collapse(
                f"the weight of component {k + 1} vanishes (it holds {nk[k]:.3g} observations' worth)", False
            )
        thetas, envs = [], []
        for k in range(K):
            sums = {t: (r[:, k] @ g).reshape(-1, 1) for t, g in self.G}
            theta, _ = fam.m_step(nk[k], means[k], scatters[k], sums)
            self._check(theta, k)
            thetas.append(theta)
            envs.append(fam.prepare(theta))
        return nk / self.n, thetas, envs

    def _check(self, theta: dict, k: int) -> None:
        for q in self.fam.params:
            v = np.asarray(theta[q.symbol], dtype=float)
            if not np.all(np.isfinite(v)):
                raise _Collapse(f"component {k + 1}'s {q.name} is not finite", True)
            if q.domain in ("positive", "positive_vector") and np.any(v <= 0):
                raise _Collapse(f"component {k + 1}'s {q.name} leaves its domain ({q.domain})", True)
            if q.domain == "spd":
                lref = self.ref_inverse_factor[q.name]  # L^-1 of the one-component fit's matrix
                rel = lref @ v @ lref.T
                low = float(np.min(np.linalg.eigvalsh((rel + rel.T) / 2)))
                if not low > COLLAPSE:
                    raise _Collapse(
                        f"the covariance {q.name} of component {k + 1} becomes singular (the component sits "
                        "on collinear points, or on fewer than D + 1 of them)",
                        True,
                    )

    def _em_step(self, r: np.ndarray, ll: float, it: int):
        """One EM step from the responsibilities ``r`` of a state of log-likelihood ``ll``."""
        w1, t1, e1 = self.m_step(r)
        r1, ll1 = self.e_step(w1, e1)
        if not np.isfinite(ll1):
            raise _Collapse("the log-likelihood is not finite", True)
        if ll1 < ll - MONOTONE_SLACK * max(1.0, abs(ll)):
            raise VerificationError(
                f"internal error: the EM log-likelihood decreased from {ll!r} to {ll1!r} at iteration {it}"
            )
        return w1, t1, r1, ll1

    def _extrapolate(self, states: list, it: int, longest: float):
        """SQUAREM (Varadhan and Roland, 2008): from three EM iterates, a step along the squared
        extrapolation (its length capped at ``longest``), then one EM step from there.

        Returns ``(state or None, binding)``: ``None`` where the step leaves the parameter space or
        does not beat the plain steps; ``binding`` when the cap shortened the step."""
        fam = self.fam
        (w0, t0, _, _), (w1, t1, _, _), (w2, t2, _, ll2) = states
        p0, p1, p2 = (
            np.concatenate([w, *[fam.flatten(t) for t in th]]) for w, th in ((w0, t0), (w1, t1), (w2, t2))
        )
        step, curve = p1 - p0, p2 - 2 * p1 + p0
        norm = float(np.linalg.norm(curve))
        if not norm > 0:
            return None, False
        alpha = -float(np.linalg.norm(step)) / norm
        binding = alpha <= -longest
        alpha = max(alpha, -longest)
        if not alpha < -1.0:  # -1 is the plain double step
            return None, binding
        p3 = p0 - 2 * alpha * step + alpha**2 * curve
        K = w0.shape[0]
        w3 = p3[:K]
        if not np.all(w3 > 0):
            return None, binding
        t3 = [fam.unflatten(p3[K + k * fam.P : K + (k + 1) * fam.P]) for k in range(K)]
        try:
            for k, t in enumerate(t3):
                self._check(t, k)
            r3, ll3 = self.e_step(w3, [fam.prepare(t) for t in t3])
            if not np.isfinite(ll3):
                return None, binding
            out = self._em_step(r3, ll3, it)
        except _Collapse:
            return None, binding
        return (out if out[3] > ll2 else None), binding

    def run(self, r0: np.ndarray) -> _Run:
        """EM from the responsibilities ``r0``, accelerated by SQUAREM where that keeps monotonicity:
        each iteration is two EM steps, and an extrapolated point (followed by one EM step) replaces
        their result only where its log-likelihood is higher."""
        fam = self.fam
        w, thetas, envs = self.m_step(r0)
        r, ll = self.e_step(w, envs)
        trace = [ll]
        converged = False
        it = 0
        longest = 1.0  # the cap on the extrapolation's length: grows by 4 each time it binds
        for it in range(1, MAX_ITER + 1):
            first = self._em_step(r, ll, it)
            second = self._em_step(first[2], first[3], it)
            trace += [first[3], second[3]]
            new = second
            if ACCELERATE:
                jump, binding = self._extrapolate([(w, thetas, r, ll), first, second], it, longest)
                if binding:
                    longest *= 4.0
                if jump is not None:
                    new = jump
                    trace.append(new[3])
            w_new, thetas_new, r_new, ll_new = new
            dl = abs(ll_new - ll) / max(1.0, abs(ll_new))
            old = np.concatenate([fam.flatten(t) for t in thetas])
            cur = np.concatenate([fam.flatten(t) for t in thetas_new])
            scale = np.maximum(np.abs(old), 1e-8 * max(1.0, float(np.max(np.abs(old)))))
            dp = max(float(np.max(np.abs(cur - old) / scale)), float(np.max(np.abs(w_new - w) / w)))
            w, thetas, r, ll = w_new, thetas_new, r_new, ll_new
            if dl <= TOL_LOGLIK and dp <= TOL_PARAMS:
                converged = True
                break
        return _Run(ll, w, thetas, len(trace) - 1, converged, trace)


# ---------------------------------------------------------------- starts


def _starts(x: np.ndarray, K: int, n_starts: int, rng: np.random.Generator):
    """Hard responsibilities from k-means++ seeds on the standardised rows, refined by Lloyd steps.

    On more than :data:`SEED_ROWS` rows the seeds and Lloyd steps use a random subset of that
    many, and every row then goes to its nearest centre, block by block.
    """
    n = x.shape[0]
    if n > SEED_ROWS:
        pick = np.sort(rng.choice(n, SEED_ROWS, replace=False))
        sample = np.asarray(x[pick], dtype=float)
    else:
        sample = np.asarray(x, dtype=float)
    centre, sd = sample.mean(axis=0), sample.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (sample - centre) / sd
    m = z.shape[0]

    def nearest(rows, c):
        return np.argmin(((rows[:, None, :] - c[None, :, :]) ** 2).sum(-1), axis=1)

    for _ in range(n_starts):
        centres = [z[rng.integers(m)]]
        for _k in range(1, K):
            d2 = np.min(((z[:, None, :] - np.array(centres)[None, :, :]) ** 2).sum(-1), axis=1)
            total = d2.sum()
            centres.append(z[rng.choice(m, p=d2 / total)] if total > 0 else z[rng.integers(m)])
        c = np.array(centres)
        labels = nearest(z, c)
        for _step in range(LLOYD_STEPS):
            new_c = np.array([z[labels == k].mean(axis=0) if np.any(labels == k) else c[k] for k in range(K)])
            new_labels = nearest(z, new_c)
            c = new_c
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
        if n > SEED_ROWS:
            labels = np.concatenate(
                [nearest((np.asarray(x[a:b], dtype=float) - centre) / sd, c) for a, b in _chunks(n)]
            )
        r = np.zeros((n, K))
        r[np.arange(n), labels] = 1.0
        yield r


# ---------------------------------------------------------------- observed information


def _centred(fam: _Family, ell: sp.Expr, symmetric: list, invertible: list, kinds: dict, timeout):
    """``(ell_c, Z1, Z2, shifts, centre)``: the log-likelihood in sums centred at a point, or None.

    See :class:`_Information`; ``None`` where the centre does not cancel (not a location family),
    where no statistic is ``sum x_i``, or where the rewrite fails or runs out of time.
    """
    from symmle.base.budget import attempt
    from symmle.symbolic.matrix_calculus import context
    from symmle.symbolic.matrix_forms import NoRule, scalar

    D = fam.D
    t1 = next((t for t, k in kinds.items() if k == "x"), None)
    t2 = next((t for t, k in kinds.items() if k == "xx"), None)
    vectors = [q for q in fam.params if q.is_matrix and q.domain == "vector"]
    if t1 is None or not vectors:
        return None
    c = sp.MatrixSymbol("_centre", D, 1)
    z1 = sp.MatrixSymbol("_Z1", D, 1)
    z2 = sp.MatrixSymbol("_Z2", D, D) if t2 is not None else None
    N = fam.N
    rules = {t1: N * c + z1}
    if t2 is not None:
        rules[t2] = z2 + c * z1.T + z1 * c.T + N * c * c.T
    shifts = {q.symbol: sp.MatrixSymbol(f"_shift_{q.name}", D, 1) for q in vectors}
    rules.update({v: c + s for v, s in shifts.items()})
    ctx = context([*symmetric, *([z2] if z2 is not None else [])], invertible)

    def run():
        e = ell.xreplace(rules)
        for _ in range(2):
            e = sp.expand(scalar(e, ctx))
        return e

    try:
        out, timed_out = attempt("the log-likelihood in centred sums", timeout or 5.0, run)
    except (NoRule, TypeError, ValueError):
        return None
    if out is None or timed_out or out.has(c):
        return None
    return out, z1, z2, shifts, vectors[0]


class _Information:
    """The exact observed information of the mixture log-likelihood (see the module docstring).

    The derivatives are taken of the derived log-likelihood *centred* at a point ``c``: with
    ``T1 = N c + Z1``, ``T2 = Z2 + c Z1^T + Z1 c^T + N c c^T`` and each vector parameter of the
    observation's shape written ``c + shift``, the matrix rules simplify it, and where ``c``
    cancels (a location family) the log-likelihood is a function of the centred sums ``Z`` and the
    shifts, still linear in N and the statistics.  Evaluated at ``c`` = the component's mean, every
    sum is of ``x_i - mu_k``: no digits are lost to data far from the origin (``sum x x^T - ...``
    would lose them all at a mean of 1e8).  Where ``c`` does not cancel, the log-likelihood is
    used as derived.  The derivatives with respect to a shift are those with respect to its
    parameter (``c`` is held fixed).
    """

    def __init__(self, fam: _Family, timeout: float | None) -> None:
        from symmle.base.budget import attempt
        from symmle.symbolic.matrix_calculus import as_scalar, context, gradient
        from symmle.symbolic.matrix_forms import NoRule
        from symmle.symbolic.matrix_information import _block, _second
        from symmle.symbolic.vector_stationarity import verification_kwargs

        self.fam = fam
        d = fam.d
        lik = d.likelihood
        free = [s.symbol for s, _ in lik.coefficients if not s.informative]
        ell = as_scalar(lik.log_likelihood).subs({t: 0 for t in free})
        kw = verification_kwargs(lik)
        symmetric, invertible = list(kw["symmetric"]), list(kw["invertible"])
        outer = sp.MatMul(fam.variable, fam.variable.T)
        kinds = {
            s.symbol: ("x" if s.expr == fam.variable else "xx" if s.expr == outer else "entry")
            for s, _ in lik.coefficients
            if s.informative
        }
        self.exprs = {s.symbol: s.expr for s, _ in lik.coefficients if s.informative}
        self.diff = {q.name: q.symbol for q in fam.params}
        self.centre = None
        centred = _centred(fam, ell, symmetric, invertible, kinds, timeout)
        if centred is not None:
            ell, z1, z2, shifts, centre = centred
            kinds = {t: k for t, k in kinds.items() if k == "entry"}
            if ell.has(z1):
                kinds[z1] = "x"
            if z2 is not None and ell.has(z2):
                kinds[z2] = "xx"
                symmetric.append(z2)
            self.diff.update({q.name: shifts[q.symbol] for q in fam.params if q.symbol in shifts})
            self.centre = centre
        self.kinds = kinds
        ctx = context(symmetric, invertible)
        self.score = {}
        for q in fam.params:
            out = gradient(
                ell, self.diff[q.name], symmetric=symmetric, invertible=invertible, timeout=timeout
            )
            if not out.ok:
                raise DerivationError(f"no score of {q.name}: {out.reason}")
            self.score[q.name] = out.value

        def second_differentials() -> dict:
            blocks = {}
            for i, a in enumerate(fam.params):
                for b in fam.params[i:]:
                    second, du, dv, c2 = _second(ell, self.diff[a.name], self.diff[b.name], ctx)
                    blocks[(a.name, b.name)] = _block(second, du, dv, c2).expr()
            return blocks

        try:
            blocks, timed_out = attempt(
                "the second differentials of the mixture", timeout, second_differentials
            )
        except NoRule as exc:
            raise DerivationError(f"no second differential of the log-likelihood: {exc}") from None
        if blocks is None or timed_out:
            raise DerivationError("the second differentials of the log-likelihood ran out of time")
        self.blocks = blocks

    def _centre_of(self, env: dict) -> np.ndarray:
        if self.centre is None:
            return np.zeros(self.fam.dim)
        return np.asarray(env[self.centre.symbol], dtype=float).reshape(-1)

    def _local(self, env: dict) -> dict:
        """The component's values with each shifted parameter's shift from the centre."""
        c = self._centre_of(env).reshape(-1, 1)
        local = dict(env)
        for q in self.fam.params:
            if self.diff[q.name] is not q.symbol:
                local[self.diff[q.name]] = np.asarray(env[q.symbol], dtype=float).reshape(-1, 1) - c
        return local

    def _stat_shapes(self) -> list[tuple[sp.Basic, tuple[int, int]]]:
        dim = self.fam.dim
        out = []
        for t, kind in self.kinds.items():
            if kind == "xx":
                out.append((t, (dim, dim)))
            elif kind == "x" or getattr(self.exprs.get(t), "is_Matrix", False):
                out.append((t, (dim, 1)))
            else:
                out.append((t, (1, 1)))
        return out

    def _entry_values(self, block: np.ndarray, t) -> np.ndarray:
        fam = self.fam
        v = np.asarray(evaluate(self.exprs[t], {**fam.base, fam.variable: block[:, :, None]}), dtype=float)
        return v.reshape(block.shape[0], -1)

    def row_stats(self, block: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """(B, S): each row's statistics, flattened (``x_i - c``, its outer product, entrywise values)."""
        z = block - centre
        B = block.shape[0]
        parts = []
        for t, kind in self.kinds.items():
            if kind == "x":
                parts.append(z)
            elif kind == "xx":
                parts.append((z[:, :, None] * z[:, None, :]).reshape(B, -1))
            else:
                parts.append(self._entry_values(block, t))
        return np.concatenate(parts, axis=1)

    def _coordinates(self, values: dict) -> np.ndarray:
        """A gradient (by parameter, as the score gives it) in the free coordinates (vech: G_jj, 2 G_jk)."""
        fam = self.fam
        parts = []
        for q in fam.params:
            g = np.asarray(values[q.name], dtype=float)
            if q.domain == "spd":
                g = np.broadcast_to(g, (fam.dim, fam.dim))
                parts.append(
                    np.array([g[i, j] if i == j else g[i, j] + g[j, i] for i, j in _vech_pairs(fam.dim)])
                )
            elif q.is_matrix:
                parts.append(np.broadcast_to(g, (fam.dim, 1)).reshape(-1))
            else:
                parts.append(np.broadcast_to(g, ()).reshape(1))
        return np.concatenate(parts)

    def score_map(self, local: dict) -> tuple[np.ndarray, np.ndarray]:
        """``(a, M)``: the score of one component is ``N a + M vec(T)``, linear in N and the statistics
        (the log-likelihood is), so the gradient of ``log f(x_i)`` is ``a + M s_i`` for the statistics
        ``s_i`` of row i: the map is read off the derived score at N = 1, T = 0 and at each unit T."""
        fam = self.fam
        shapes = self._stat_shapes()
        zero = {t: np.zeros(shape) for t, shape in shapes}

        def at(n: float, stats: dict) -> np.ndarray:
            env = {**local, **stats, fam.N: n}
            return self._coordinates({q.name: evaluate(self.score[q.name], env) for q in fam.params})

        a = at(1.0, zero)
        columns = []
        for t, shape in shapes:
            for m in range(shape[0] * shape[1]):
                unit = np.zeros(shape[0] * shape[1])
                unit[m] = 1.0
                columns.append(at(0.0, {**zero, t: unit.reshape(shape)}))
        return a, np.column_stack(columns)

    def component_hessian(self, env: dict) -> np.ndarray:
        """The Hessian of the weighted log-likelihood Q_k (statistics in ``env``) in free coordinates."""
        fam = self.fam
        P = fam.P
        out = np.zeros((P, P))
        offsets = np.cumsum([0, *fam.sizes])
        dup = _duplication(fam.dim)
        for i, a in enumerate(fam.params):
            for j, b in enumerate(fam.params):
                if j < i:
                    continue
                k = np.asarray(evaluate(self.blocks[(a.name, b.name)], env), dtype=float)
                k = k.reshape(self._vec(a), self._vec(b))
                if a.domain == "spd":
                    k = dup.T @ k
                if b.domain == "spd":
                    k = k @ dup
                out[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]] = k
                if j > i:
                    out[offsets[j] : offsets[j + 1], offsets[i] : offsets[i + 1]] = k.T
        return (out + out.T) / 2

    def _vec(self, q) -> int:
        if q.domain == "spd":
            return self.fam.dim**2
        return self.fam.dim if q.is_matrix else 1

    def _stats_env(self, x: np.ndarray, r: np.ndarray, local: dict, centre: np.ndarray) -> dict:
        """``local`` with N and the statistics weighted by ``r`` (one component's responsibilities)."""
        out = {**local, self.fam.N: float(r.sum())}
        shapes = dict(self._stat_shapes())
        for t in self.kinds:
            out[t] = np.zeros(shapes[t])
        for a, b in _chunks(x.shape[0]):
            block = np.asarray(x[a:b], dtype=float)
            z = block - centre
            rb = r[a:b]
            for t, kind in self.kinds.items():
                if kind == "x":
                    out[t] = out[t] + (rb @ z).reshape(-1, 1)
                elif kind == "xx":
                    out[t] = out[t] + (z * rb[:, None]).T @ z
                else:
                    out[t] = out[t] + (rb @ self._entry_values(block, t)).reshape(shapes[t])
        return out

    def gradient_and_hessian(self, x: np.ndarray, w: np.ndarray, thetas: list[dict], hessian: bool = True):
        """The gradient and Hessian of the mixture log-likelihood in (w_1..w_{K-1}, theta_1, ..., theta_K)."""
        fam = self.fam
        K, P = w.shape[0], fam.P
        dim = K - 1 + K * P
        envs = [fam.prepare(t) for t in thetas]
        locals_ = [self._local(e) for e in envs]
        centres = [self._centre_of(e) for e in envs]
        grad = np.zeros(dim)
        hess = np.zeros((dim, dim))
        nk = np.zeros(K)
        with np.errstate(divide="ignore"):
            lw = np.log(w)
        maps = [self.score_map(locals_[k]) for k in range(K)]
        for a, b in _chunks(x.shape[0]):
            block = np.asarray(x[a:b], dtype=float)
            lp = np.column_stack([lw[k] + fam.log_density(block, envs[k]) for k in range(K)])
            r = np.exp(lp - logsumexp(lp, axis=1)[:, None])
            nk += r.sum(axis=0)
            B = block.shape[0]
            g = np.zeros((B, K, dim))
            for k in range(K):
                if k < K - 1:
                    g[:, k, k] = 1.0 / w[k]
                else:
                    g[:, k, : K - 1] = -1.0 / w[K - 1]
                stats = self.row_stats(block, centres[k])
                g[:, k, K - 1 + k * P : K - 1 + (k + 1) * P] = maps[k][0] + stats @ maps[k][1].T
            ai = np.einsum("ik,ikd->id", r, g)
            grad += ai.sum(axis=0)
            if hessian:
                hess += -ai.T @ ai + np.einsum("ik,ikd,ike->de", r, g, g)
        if hessian:
            for k in range(K):
                # sum_i r_ik d^2 log f(x_i; theta_k): the second differential at the weighted statistics
                r = self._responsibilities(x, w, envs, k)
                local = self._stats_env(x, r, locals_[k], centres[k])
                block = slice(K - 1 + k * P, K - 1 + (k + 1) * P)
                hess[block, block] += self.component_hessian(local)
                if k < K - 1:
                    hess[k, k] += -nk[k] / w[k] ** 2
                else:
                    hess[: K - 1, : K - 1] += -nk[K - 1] / w[K - 1] ** 2
        return grad, (hess + hess.T) / 2

    def _responsibilities(self, x, w, envs, k) -> np.ndarray:
        fam = self.fam
        out = np.empty(x.shape[0])
        with np.errstate(divide="ignore"):
            lw = np.log(w)
        for a, b in _chunks(x.shape[0]):
            block = np.asarray(x[a:b], dtype=float)
            lp = np.column_stack([lw[j] + fam.log_density(block, envs[j]) for j in range(len(envs))])
            out[a:b] = np.exp(lp[:, k] - logsumexp(lp, axis=1))
        return out


def _pack(fam: _Family, w: np.ndarray, thetas: list[dict]) -> np.ndarray:
    return np.concatenate([w[:-1], *[fam.flatten(t) for t in thetas]])


def _unpack(fam: _Family, phi: np.ndarray, K: int) -> tuple[np.ndarray, list[dict]]:
    w = np.r_[phi[: K - 1], 1.0 - np.sum(phi[: K - 1])]
    P = fam.P
    return w, [fam.unflatten(phi[K - 1 + k * P : K - 1 + (k + 1) * P]) for k in range(K)]


def mixture_loglik(fam: _Family, x: np.ndarray, w: np.ndarray, thetas: list[dict]) -> float:
    """``sum_i log sum_k w_k f(x_i; theta_k)``."""
    envs = [fam.prepare(t) for t in thetas]
    total = 0.0
    with np.errstate(divide="ignore"):
        lw = np.log(w)
    for a, b in _chunks(x.shape[0]):
        block = np.asarray(x[a:b], dtype=float)
        lp = np.column_stack([lw[k] + fam.log_density(block, envs[k]) for k in range(len(envs))])
        total += float(np.sum(logsumexp(lp, axis=1)))
    return total


def numerical_hessian(fam: _Family, x: np.ndarray, w: np.ndarray, thetas: list[dict]) -> np.ndarray:
    """Central-difference Hessian of the mixture log-likelihood in the free coordinates (for tests)."""
    K = w.shape[0]
    phi0 = _pack(fam, w, thetas)
    n = phi0.size
    h = 1e-4 * np.maximum(np.abs(phi0), 1e-2)

    def ll(phi):
        ww, tt = _unpack(fam, phi, K)
        return mixture_loglik(fam, x, ww, tt)

    out = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.zeros(n), np.zeros(n)
            ei[i], ej[j] = h[i], h[j]
            v = (ll(phi0 + ei + ej) - ll(phi0 + ei - ej) - ll(phi0 - ei + ej) + ll(phi0 - ei - ej)) / (
                4 * h[i] * h[j]
            )
            out[i, j] = out[j, i] = v
    return out


def _cross_check(
    info: _Information, x: np.ndarray, w: np.ndarray, thetas: list[dict], hess: np.ndarray
) -> str:
    """'' if the exact gradient and Hessian agree with central differences on (a subset of) the rows.

    Along random directions in coordinates scaled by ``1/sqrt|H_ii|``: the exact gradient's
    directional derivative against central differences of the log-likelihood at a point off the
    optimum (where the gradient is not zero), and the exact Hessian times each direction against
    central differences of the exact gradient at the estimate.  A wrong entry anywhere changes
    the product along a random direction (almost surely), at a fraction of the cost of every entry.
    """
    fam = info.fam
    K = w.shape[0]
    sub = np.asarray(x[:CHECK_ROWS], dtype=float)
    phi0 = _pack(fam, w, thetas)
    n = phi0.size
    _, h_sub = info.gradient_and_hessian(sub, w, thetas)
    diag = np.abs(np.diag(h_sub))
    scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
    rng = np.random.default_rng(7)
    eps = 1e-4

    def ll(phi):
        ww, tt = _unpack(fam, phi, K)
        return mixture_loglik(fam, sub, ww, tt)

    def grad(phi):
        ww, tt = _unpack(fam, phi, K)
        return info.gradient_and_hessian(sub, ww, tt, hessian=False)[0]

    # 1. the gradient, away from the optimum
    phi1 = phi0 + 0.3 * scale * rng.standard_normal(n)
    g1 = grad(phi1)
    for _ in range(3):
        # the steps as represented (a coordinate far from 0 rounds a small step)
        plus = phi1 + eps * scale * rng.standard_normal(n)
        minus = 2 * phi1 - plus
        u = (plus - minus) / (2 * eps)
        exact = float(g1 @ u)
        fd = (ll(plus) - ll(minus)) / (2 * eps)
        if not abs(exact - fd) <= 1e-5 * max(1.0, abs(exact), float(np.abs(g1 * u).sum())):
            return f"the exact gradient disagrees with central differences ({exact:.8g} vs {fd:.8g})"
    # 2. the Hessian at the estimate, against differences of the exact gradient
    for _ in range(3):
        plus = phi0 + eps * scale * rng.standard_normal(n)
        minus = 2 * phi0 - plus
        u = (plus - minus) / (2 * eps)
        exact = scale * (h_sub @ u)
        fd = scale * (grad(plus) - grad(minus)) / (2 * eps)
        worst = float(np.max(np.abs(exact - fd))) / max(1.0, float(np.max(np.abs(exact))))
        if not worst <= 1e-5:
            return (
                "the exact observed information disagrees with differences of the exact gradient "
                f"({worst:.2g})"
            )
    return ""


# ---------------------------------------------------------------- the fit


def _entry_domain(q, index: tuple) -> str:
    if q.domain == "positive_vector":
        return "positive"
    if q.domain == "spd":
        return "positive" if index[0] == index[1] else "real"
    return q.domain if not q.is_matrix else "real"


def fit_vector_mixture(
    d,
    data: Any,
    components: int,
    constants: Mapping[str, Any] | None = None,
    *,
    columns: list[str] | None = None,
    seed: int = 0,
    starts: int = 10,
    ci: str = "transformed",
    timeout: float | None = None,
) -> VectorMixtureResult:
    """Fit a K-component mixture of the vector model of ``d`` to the rows of ``data`` by EM.

    Returns a :class:`VectorMixtureResult`: ``estimates["w"]`` the K weights, each component
    parameter a stack of K values (``mu``: shape (K, D), ``Sigma``: (K, D, D)), components in
    canonical order (sorted by the first coordinate of the first parameter), standard errors of
    the same shapes from the observed information.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> rng = np.random.default_rng(3)
    >>> x = np.r_[rng.normal(0, 1, (200, 2)), rng.normal(6, 1, (200, 2))]
    >>> r = fit_vector_mixture(symmle.derive("mvnormal"), x, 2, seed=0, starts=3)
    >>> r.converged, np.round(r.estimates["w"], 2).tolist(), np.asarray(r.estimates["mu"]).shape
    (True, [0.5, 0.5], (2, 2))
    """
    K = check_components(components, "mixture")
    m = d.model
    if not m.is_vector:
        raise SpecError(
            f"'{m.name}' is not a vector model: its mixtures are fitted by symmle.numbers.mixture_em"
        )
    if m.is_regression:
        raise SpecError("a mixture of regressions is not supported: drop --mixture or the link")
    if m.support_set != "real":
        raise SpecError(
            f"--mixture: '{m.name}' has rows on a {m.support_set} support; "
            "only families on R^D can be mixed for now"
        )
    x = data if isinstance(data, np.memmap) else np.asarray(data, dtype=float)
    if x.ndim != 2:
        raise DataError(
            f"a vector model needs rows of observations (an (N, D) table); the data have shape {x.shape}"
        )
    n, dim = x.shape
    validate_rows(x, columns, support="real")
    if n < K * (dim + 1):
        raise DataError(
            f"a mixture of {K} components in {dim} dimensions needs at least "
            f"K (D + 1) = {K * (dim + 1)} rows, "
            f"not {n}"
        )
    missing = {k: e for k, e in d.solutions.items() if e.kind == "none"}
    if missing:
        name, e = next(iter(missing.items()))
        raise DerivationError(f"symmle derived no estimator of {name}, so it cannot fit this model: {e.note}")
    fam = _Family(d, dim, timeout)
    # the one-component fit: the scale a collapsing covariance is measured against
    try:
        nn, mean, scatter = _runtime.vector_moments(x)
    except _runtime.BadData as exc:
        raise DataError(str(exc)) from None
    if any(q.domain == "spd" for q in fam.params):
        try:
            _runtime.check_scatter(nn, scatter, mean, columns)
        except _runtime.NoMLE as exc:
            raise DataError(str(exc)) from None
    sums = {
        t: sum(fn(np.asarray(x[a:b], dtype=float)).sum(axis=0) for a, b in _chunks(n)).reshape(-1, 1)
        for t, fn in fam.entrywise
    }
    reference, _ = fam.m_step(float(n), mean, scatter, sums)
    em = _EM(fam, x, reference)
    rng = np.random.default_rng(seed)
    n_starts = max(1, int(starts)) if K > 1 else 1  # one component: EM has one answer
    runs: list[_Run] = []
    failures: list[_Collapse] = []
    for r0 in _starts(x, K, n_starts, rng):
        try:
            runs.append(em.run(r0))
        except _Collapse as exc:
            failures.append(exc)
    if not runs:
        first = next((f for f in failures if f.singular), failures[0])
        raise DataError(
            f"the {K}-component mixture degenerates on these data in every start: {first}; "
            "the likelihood is unbounded there and the MLE does not exist"
        )
    best = max(runs, key=lambda r: r.loglik)
    optima: list[float] = []
    for run in sorted(runs, key=lambda r: -r.loglik):
        if not any(abs(run.loglik - o) <= 1e-7 * max(1.0, abs(o)) for o in optima):
            optima.append(run.loglik)
    first = fam.params[0]
    keys = [float(np.asarray(t[first.symbol], dtype=float).reshape(-1)[0]) for t in best.thetas]
    order = np.lexsort((best.weights, np.array(keys)))
    w = best.weights[order]
    thetas = [best.thetas[i] for i in order]
    warnings: list[str] = []
    if not best.converged:
        warnings.append(f"EM did not converge in {MAX_ITER} iterations")
    if failures:
        singular = sum(1 for f in failures if f.singular)
        what = (
            "a singular covariance (the likelihood is unbounded there)" if singular else "a vanishing weight"
        )
        warnings.append(
            f"{len(failures)} of {n_starts} starts ran into {what} and were dropped; "
            "the estimate is the best of the others"
        )
    P = fam.P
    stderr: dict[str, Any] = {"w": None, **{q.name: None for q in fam.params}}
    information = ""
    try:
        info = _Information(fam, timeout)
        _, hess = info.gradient_and_hessian(x, w, thetas)
        problem = _cross_check(info, x, w, thetas, hess)
    except (DerivationError, ValueError, TypeError, np.linalg.LinAlgError, _Collapse) as exc:
        hess, problem = None, f"the observed information could not be formed ({exc})"
    if problem:
        warnings.append(f"no standard errors: {problem}")
    else:
        cov = None
        try:
            cov = np.linalg.inv(-hess)
        except np.linalg.LinAlgError:
            warnings.append("the observed information is singular: no standard errors")
        if cov is not None and not (np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0)):
            warnings.append("the observed information is not positive definite: no standard errors")
        elif cov is not None:
            se = np.sqrt(np.diag(cov))
            se_w = np.r_[se[: K - 1], math.sqrt(max(float(np.sum(cov[: K - 1, : K - 1])), 0.0))]
            per = [fam.unflatten(se[K - 1 + k * P : K - 1 + (k + 1) * P]) for k in range(K)]
            stderr = {"w": se_w, **{q.name: _stack([p[q.symbol] for p in per], q) for q in fam.params}}
            information = "observed"
    estimates: dict[str, Any] = {
        "w": w,
        **{q.name: _stack([t[q.symbol] for t in thetas], q) for q in fam.params},
    }
    ci95: dict[str, Any] = {}
    ci_method: dict[str, Any] = {}
    for name, est in estimates.items():
        se = stderr[name]
        if se is None:
            ci95[name], ci_method[name] = None, None
            continue
        q = next((p for p in fam.params if p.name == name), None)
        est_a, se_a = np.asarray(est, dtype=float), np.asarray(se, dtype=float)
        lo, hi = np.empty_like(est_a), np.empty_like(est_a)
        how = np.empty(est_a.shape, dtype=object)
        for index in np.ndindex(est_a.shape):
            dom = "unit" if q is None else _entry_domain(q, index[1:] or (0, 0))
            (a, b), hw = interval(float(est_a[index]), float(se_a[index]), dom, ci)
            lo[index], hi[index], how[index] = a, b, hw
        ci95[name] = (lo, hi)
        unique = set(how.reshape(-1).tolist())
        ci_method[name] = unique.pop() if len(unique) == 1 else how.tolist()
    return VectorMixtureResult(
        model=m.name,
        n=int(n),
        estimates=estimates,
        kind={name: "em" for name in estimates},
        stderr=stderr,
        ci95=ci95,
        log_likelihood=best.loglik,
        information=information,
        warnings=warnings,
        ci_method=ci_method,
        columns=list(columns) if columns is not None else None,
        n_parameters=K - 1 + K * P,
        components=K,
        iterations=best.iterations,
        converged=best.converged,
        starts=n_starts,
        distinct_optima=len(optima),
        trace=tuple(best.trace),
    )


def _stack(values: list, q) -> np.ndarray:
    arrs = [np.asarray(v, dtype=float) for v in values]
    if q.domain == "spd":
        return np.stack(arrs)
    if q.is_matrix:
        return np.stack([a.reshape(-1) for a in arrs])
    return np.array([float(a) for a in arrs])


def fit_vector_components(
    d,
    data: Any,
    components: Any,
    constants: Mapping[str, Any] | None = None,
    *,
    columns: list[str] | None = None,
    seed: int = 0,
    starts: int = 10,
    ci: str = "transformed",
    timeout: float | None = None,
) -> VectorMixtureResult:
    """Fit mixtures of the vector model of ``d`` with each number of components in ``components``
    and keep the one of least BIC (:func:`symmle.numbers.mixture_em.choose_by_bic`).

    K = 1 is the plain fit (one component, weight 1).  A K whose mixture degenerates on the data
    is listed in ``selection`` with its error and skipped.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> rng = np.random.default_rng(3)
    >>> x = np.r_[rng.normal(0, 1, (200, 2)), rng.normal(6, 1, (200, 2))]
    >>> r = fit_vector_components(symmle.derive("mvnormal"), x, "1..3", seed=0, starts=3)
    >>> r.components, [row["k"] for row in r.selection]
    (2, [1, 2, 3])
    """
    return choose_by_bic(
        parse_components(components, "components"),
        lambda k: fit_vector_mixture(
            d, data, k, constants, columns=columns, seed=seed, starts=starts, ci=ci, timeout=timeout
        ),
    )
