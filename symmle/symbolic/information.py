r"""Fisher information, Cramér–Rao bound, and their numerical verification.

The per-observation information is :math:`I(\theta) = -E[\partial^2 \log f]`.
With the split of :mod:`symmle.symbolic.likelihood`, the second derivatives are
linear in the functions :math:`g_j(x)`, so only the expectations
:math:`E[g_j(X)]` are needed, plus :math:`E[\partial^2 h]` for the part
:math:`h` that does not separate.  They are found, cheapest first, by

1. the score identities :math:`E[\partial_k \log f] = 0`, a linear system in
   the :math:`E[g_j]` (exact for exponential families, no integration);
2. the integration strategies of :mod:`symmle.symbolic.expectation`
   (location-scale form, substitutions, folds at kinks, moments in
   :math:`\log x`), each under its share of the budget.

Where the log-density is not twice differentiable (a ``DiracDelta`` that
does not vanish, as for ``Abs(x - m)``), the Hessian form does not apply, and
the entry is the outer-product form :math:`E[\partial_k \log f\,\partial_l
\log f]` instead, which exists whenever the score is square-integrable.

Every entry is then compared with quadrature (or summation) of the same
integrand at a parameter point; an entry that cannot be found or fails the
check is reported as missing, never guessed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from symmle.symbolic.expectation import Expectations, agrees, as_real, tidy, try_step
from symmle.symbolic.kinks import without_null_deltas
from symmle.symbolic.likelihood import Likelihood

__all__ = ["Information", "fisher_information", "SHARES"]

#: A strategy (one way to one expectation) gets this fraction of the budget:
#: 2 s of the default 20 s, and a simplification half of that.  A strategy
#: that cannot finish in its share gives way, and is not tried again for the
#: same model.
SHARES = 10


@dataclass(frozen=True)
class Information:
    """Fisher information of one observation and the Cramér–Rao bound.

    Made by :func:`fisher_information`.

    Attributes
    ----------
    fisher : Matrix
        :math:`I(\\theta)`, in the model's parameter order.  Entries that do
        not exist (non-regular parameters) or could not be found are ``nan``.
    crlb : Matrix or None
        :math:`(N I)^{-1}`; ``None`` where it cannot be formed.
    verified : tuple of tuple of bool
        ``verified[i][j]`` says whether entry ``(i, j)`` passed its
        numerical check.
    expectations : dict of Expr to Expr
        The expectations :math:`E[g(X)]` the entries were computed from.
    warnings : tuple of str
    outer : tuple of tuple of bool
        ``outer[i][j]`` says whether entry ``(i, j)`` is
        :math:`E[\\partial_i \\log f\\,\\partial_j \\log f]` (the log-density
        is not twice differentiable there) rather than
        :math:`-E[\\partial_i \\partial_j \\log f]`.

    Examples
    --------
    >>> from symmle import derive
    >>> info = derive("normal").information
    >>> info.fisher
    Matrix([
    [1/sigma2,               0],
    [       0, 1/(2*sigma2**2)]])
    >>> info.verified, info.expectations
    (((True, True), (True, True)), {x: mu, x**2: mu**2 + sigma2})
    >>> derive("uniform").information.fisher   # the support depends on theta
    Matrix([[nan]])
    """

    fisher: sp.Matrix
    crlb: sp.Matrix | None
    verified: tuple[tuple[bool, ...], ...]
    expectations: dict[sp.Expr, sp.Expr] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    outer: tuple[tuple[bool, ...], ...] = ()
    #: a vector model's information block by block
    #: (:class:`~symmle.symbolic.matrix_information.FisherInformation`), else ``None``
    blocks: Any = None


def _expectation_by_identities(
    lik: Likelihood, regular: list[sp.Symbol], timeout: float | None, share: float | None
) -> dict[sp.Expr, sp.Expr]:
    """Solve the score identities :math:`E[\\partial_k \\log f] = 0` for the :math:`E[g_j]`."""
    unknowns = {
        s.expr: sp.Dummy(f"E{s.symbol.name}") for s, c in lik.coefficients if c.free_symbols & set(regular)
    }
    if not unknowns:
        return {}
    coupled_unknowns = []
    eqs = []
    for p in regular:
        e = sp.diff(lik.baseline, p) + sum(
            (sp.diff(c, p) * unknowns[s.expr] for s, c in lik.coefficients if s.expr in unknowns), sp.S.Zero
        )
        if lik.coupled != 0 and lik.coupled.has(p):
            # E[d h / d theta] is an unknown of its own, left undetermined
            d = sp.Dummy("Eh")
            coupled_unknowns.append(d)
            e += d
        eqs.append(e)
    syms = list(unknowns.values()) + coupled_unknowns

    def run():
        sol = sp.linsolve(eqs, syms)
        return next(iter(sol)) if sol else None

    sol, _ = try_step("expectations from the score identities", timeout, run)
    if sol is None:
        return {}
    out = {}
    free = set(syms)
    for g, value in zip(unknowns, sol):
        if not (value.free_symbols & free):
            out[g] = tidy(value, None if share is None else share / 2)
    return out


def _where(point: Mapping[sp.Symbol, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in point.items())


def _entry(lik: Likelihood, known: dict, search: Expectations, p: sp.Symbol, q: sp.Symbol):
    r"""``(value, integrand, outer)`` of entry ``(p, q)``, or ``None`` if an expectation is not found.

    ``integrand`` is what quadrature checks the value against
    (:math:`-\partial_p\partial_q \log f`, or the product of the scores
    when ``outer``).
    """
    # a DiracDelta can only come from the part that does not separate
    h2 = without_null_deltas(sp.diff(lik.coupled, p, q)) if lik.coupled != 0 else sp.S.Zero
    if h2.has(sp.DiracDelta):
        # a kink: no Hessian form, but E[score_p score_q] exists if the score is square-integrable
        logf = lik.baseline + sum((c * s.expr for s, c in lik.coefficients), sp.S.Zero) + lik.coupled
        product = sp.diff(logf, p) * sp.diff(logf, q)
        e = search(product)
        return None if e is None else (e, product, True)
    # E[-d2]: replace each g_j by its expectation, integrate what is left; the part that does
    # not separate first, as the one most likely to have no closed form (then nothing else is tried)
    b2 = sp.diff(lik.baseline, p, q)
    value, d2 = -b2, -b2 - h2
    if h2 != 0:
        e = search(h2)
        if e is None:
            return None
        value -= e
    for s, c in lik.coefficients:
        c2 = sp.diff(c, p, q)
        if c2 == 0:
            continue
        d2 -= c2 * s.expr
        if s.expr not in known:
            e = search(s.expr)
            if e is None:
                return None
            known[s.expr] = tidy(e, search.polish)  # shown in the lecture notes
        value -= c2 * known[s.expr]
    return tidy(value, search.polish), d2, False


def _crlb(sub: sp.Matrix, idx: list[int], n: int, N: sp.Symbol, timeout, polish) -> sp.Matrix | None:
    r""":math:`(N I)^{-1}` of the regular block ``sub``, in an ``n`` by ``n`` matrix; ``None`` if singular.

    Cofactors over :math:`N \det I` (``Matrix.inv()`` simplifies at each
    pivot: tens of seconds on entries with polygamma functions), each entry
    simplified within what is left of one half-share, or kept as it is.
    """
    found, _ = try_step(
        "Cramér–Rao bound",
        timeout,
        lambda: (sub.adjugate(method="berkowitz"), sub.det(method="berkowitz")),
    )
    if found is None or found[1] == 0:
        return None
    adjugate, det = found
    until = None if polish is None else time.monotonic() + polish
    crlb = sp.Matrix(n, n, lambda i, j: sp.nan)
    for r, i in enumerate(idx):
        for c in range(r, len(idx)):
            raw = adjugate[r, c] / (N * det)
            left = None if until is None else until - time.monotonic()
            value = None
            if left is None or left > 0.05:
                value, _ = try_step("simplify the Cramér–Rao bound", left, lambda raw=raw: sp.simplify(raw))
            crlb[i, idx[c]] = crlb[idx[c], i] = raw if value is None else value
    return crlb


def fisher_information(
    lik: Likelihood, regular: list[sp.Symbol], *, timeout: float | None = None
) -> Information:
    """Per-observation Fisher information of ``lik``'s model.

    Parameters
    ----------
    lik : Likelihood
    regular : list of Symbol
        Regular parameters (the support does not depend on them).  The
        information of the others does not exist; their rows are ``nan``.
    timeout : float, optional
        Budget of the whole step; each strategy within it gets
        ``timeout / SHARES``.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> from symmle.symbolic.likelihood import build_likelihood
    >>> lam = load_model("exponential").symbols["lam"]
    >>> fisher_information(build_likelihood(load_model("exponential")), [lam]).fisher
    Matrix([[lam**(-2)]])
    """
    model = lik.model
    if model.is_vector:
        from symmle.symbolic.vector_information import vector_fisher_information

        return vector_fisher_information(lik, list(model.parameter_symbols), timeout=timeout)
    params = list(model.parameter_symbols)
    n = len(params)
    warnings: list[str] = []
    share = None if timeout is None else timeout / SHARES
    expectations = _expectation_by_identities(lik, regular, timeout, share)
    search = Expectations(model, share)
    point = search.point
    method = "summation" if model.discrete else "integration"
    # where the log-density has second derivatives (no kink), a missing entry leaves standard
    # errors to the observed information at the estimate
    smooth = lik.coupled == 0 or not lik.coupled.has(sp.Abs, sp.sign, sp.Heaviside, sp.DiracDelta)
    fallback = (
        "; it is left out, and standard errors use the observed information at the estimate instead"
        if smooth
        else "; it is left out"
    )
    entries = [[sp.nan] * n for _ in range(n)]
    verified = [[False] * n for _ in range(n)]
    outer = [[False] * n for _ in range(n)]
    # the entries share one budget: a model whose expectations do not integrate
    # costs a few shares of it, and never more than all of it
    deadline = None if timeout is None else time.monotonic() + timeout
    for a in range(n):
        for b in range(a, n):
            p, q = params[a], params[b]
            if p not in regular or q not in regular:
                continue
            name = f"I[{p},{q}]"
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0.05:
                warnings.append(
                    f"Fisher information entry {name} was not attempted: "
                    f"the {timeout:g} s budget of the Fisher information ran out{fallback}"
                )
                continue
            found, timed_out = try_step(
                f"Fisher information {name}",
                left,
                lambda p=p, q=q: _entry(lik, expectations, search, p, q),
            )
            if found is None:
                why = (
                    f"was not found within the {timeout:g} s budget of the Fisher information"
                    if timed_out
                    else "has no closed form that symmle could find and check"
                )
                warnings.append(f"Fisher information entry {name} {why}{fallback}")
                continue
            value, integrand, is_outer = found
            found_numeric = search.numeric(integrand)
            if found_numeric is None:
                warnings.append(
                    f"Fisher information entry {name}: numerical {method} at {_where(point)} gave no "
                    f"value to check the closed form against{fallback}"
                )
                continue
            numeric, rounding = found_numeric
            symbolic = as_real(value.subs(point))
            if not agrees(symbolic, numeric, rounding):
                detail = (
                    f"({symbolic:.8g} against {numeric:.8g})"
                    if np.isfinite(symbolic)
                    else "(it is not a real number there)"
                )
                warnings.append(
                    f"Fisher information entry {name}: the closed form found disagrees with numerical "
                    f"{method} at {_where(point)} {detail}{fallback}"
                )
                continue
            entries[a][b] = entries[b][a] = value
            verified[a][b] = verified[b][a] = True
            outer[a][b] = outer[b][a] = is_outer
            if is_outer:
                warnings.append(
                    f"the log-density is not twice differentiable in {p}"
                    + ("" if p == q else f" and {q}")
                    + f", so Fisher information entry {name} is E[(d log f/d{p})(d log f/d{q})] "
                    "rather than -E[d2 log f]"
                )
    for p in params:
        if p not in regular:
            warnings.append(f"the Fisher information for {p} does not exist (the support depends on {p})")
    fisher = sp.Matrix(entries)
    idx = [params.index(p) for p in regular]
    if idx and all(verified[i][j] for i in idx for j in idx):
        values = np.array([[as_real(fisher[i, j].subs(point)) for j in idx] for i in idx])
        if not np.all(np.isfinite(values)) or np.min(np.linalg.eigvalsh(values)) <= 0:
            warnings.append(f"the Fisher information is not positive definite at {_where(point)}")
    crlb = None
    sub = fisher.extract(idx, idx) if idx else sp.Matrix()
    if idx and not any(e == sp.nan for e in sub):
        crlb = _crlb(sub, idx, n, lik.N, timeout, search.polish)
    return Information(
        fisher,
        crlb,
        tuple(map(tuple, verified)),
        expectations,
        tuple(warnings),
        tuple(map(tuple, outer)),
    )
