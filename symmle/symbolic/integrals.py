r"""Definite integrals in closed form: the forms SymPy handles, and the ones it handles slowly.

Helpers of :mod:`symmle.symbolic.expectation`, each exact algebra (whatever
they return is still checked by quadrature there):

* :func:`light` tidies an integrand after a substitution without turning
  exponentials into hyperbolic functions;
* :func:`merge_bases` multiplies an integrand out into products of powers of
  its bases, proportional bases merged;
* :func:`beta_integrals` gives Euler's Beta integrals term by term, which
  SymPy reaches only through Meijer G functions (seconds, with symbolic
  exponents);
* :func:`definite` is SymPy's ``integrate`` after those;
* :func:`derivative_at_zero` differentiates a Mellin transform at
  :math:`s = 0` (products of gamma functions by their logarithmic
  derivative, without differentiating the product symbolically);
* :func:`warm_up` pays SymPy's one-time set-up of definite integration.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "S",
    "Cold",
    "integrate",
    "light",
    "closed_form",
    "merge_bases",
    "beta_integrals",
    "definite",
    "derivative_at_zero",
    "warm_up",
]

#: The variable of Mellin transforms, :math:`\int a(v) v^s\,dv`.
S = sp.Dummy("s", positive=True)


def light(expr: sp.Expr) -> sp.Expr:
    """``expr`` with the arguments of its exponentials expanded and its powers combined.

    Enough to see that ``exp(m/b)*exp(-(m + b*t)/b)`` is ``exp(-t)``, without
    what ``simplify`` might do (turn exponentials into ``cosh``).

    Examples
    --------
    >>> m, t = sp.symbols("m t", real=True)
    >>> b = sp.Symbol("b", positive=True)
    >>> light(sp.exp(m / b) * sp.exp(-(m + b * t) / b))
    exp(-t)
    """
    expanded = expr.replace(lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.expand(e.args[0])))
    # sums that a substitution left unexpanded (m**2 - 2*m*(m + s*t) + (m + s*t)**2), where
    # expanding them makes them smaller
    expanded = expanded.replace(lambda e: isinstance(e, sp.Add), _smaller_expanded)
    return sp.powsimp(sp.expand_power_base(expanded), deep=True)


def _smaller_expanded(e: sp.Expr) -> sp.Expr:
    x = sp.expand(e, power_exp=False, log=False)
    return x if sp.count_ops(x) < sp.count_ops(e) else e


def closed_form(value: sp.Expr | None) -> sp.Expr | None:
    """``value`` if it is a finite closed form, else ``None`` (Meijer G functions are expanded first)."""
    if value is None:
        return None
    if value.has(sp.meijerg):
        value = sp.hyperexpand(value)
    bad = (sp.Integral, sp.Sum, sp.meijerg, sp.nan, sp.zoo, sp.oo, -sp.oo)
    return None if value.has(*bad) else value


def merge_bases(expr: sp.Expr, v: sp.Symbol) -> sp.Expr:
    r"""Multiply ``expr`` out into terms that are each a product of powers of its bases.

    Every sum in ``v`` that is raised to a power stands for a symbol while the
    products are multiplied out, so its powers add up (:math:`(1 + v^c)^{-k-1}
    (1 + v^c)^{-1} = (1 + v^c)^{-k-2}`) and it is never expanded itself.
    Proportional bases are put on one: :math:`b_1 = r\,b_2` with :math:`r`
    free of ``v`` gives :math:`b_1^e = r^e b_2^e` when :math:`r > 0` or
    :math:`e` is an integer, so :math:`(\nu + t^2)^{-2} (1 + t^2/\nu)^{-c} =
    \nu^{c} (\nu + t^2)^{-2-c}` and :math:`(x^a - 1)^{-1} (1 - x^a)^{b-1} =
    -(1 - x^a)^{b-2}`.
    """
    pows = [p for p in expr.atoms(sp.Pow) if isinstance(p.base, sp.Add) and p.base.has(v)]
    if not pows:
        return sp.expand_mul(expr)
    # bases with a fractional exponent first: an integer power can move onto them, not back
    pows.sort(key=lambda p: (bool(p.exp.is_integer), sp.default_sort_key(p)))
    names: dict[sp.Expr, sp.Dummy] = {}
    swap: dict[sp.Expr, sp.Expr] = {}
    for p in pows:
        base, ratio = p.base, sp.S.One
        for known in names:
            r = sp.cancel(p.base / known)
            if not r.has(v) and (r.is_positive or p.exp.is_integer):
                base, ratio = known, r
                break
        name = names.setdefault(base, sp.Dummy("B"))
        swap[p] = ratio**p.exp * name**p.exp
    # a base that also appears without a power (a plain factor) is the same symbol
    swap.update({base: name for base, name in names.items() if base not in swap})
    merged = sp.powsimp(sp.expand_mul(expr.xreplace(swap)), combine="exp")
    return merged.xreplace({name: base for base, name in names.items()})


def _binomial(base: sp.Expr, v: sp.Symbol) -> tuple[sp.Expr, sp.Expr, sp.Expr] | None:
    """``(beta, gamma, k)`` if ``base`` is ``beta + gamma*v**k`` with ``beta``, ``k`` free of ``v``."""
    terms = sp.Add.make_args(base)
    if len(terms) != 2:
        return None
    for beta, other in (terms, terms[::-1]):
        if beta.has(v):
            continue
        gamma, power = other.as_independent(v, as_Add=False)
        b, k = power.as_base_exp()
        if b == v and not k.has(v):
            return beta, gamma, k
    return None


def beta_integrals(h: sp.Expr, v: sp.Symbol, hi: sp.Expr) -> sp.Expr | None:
    r"""Term by term, Euler's Beta integrals, when every term of ``h`` is one.

    .. math::

        \int_0^\infty v^a (\beta + \gamma v^k)^{-c}\,dv
          = \frac{\beta^{-c}}{k} \Big(\frac{\beta}{\gamma}\Big)^{p} B(p, c - p),
        \qquad
        \int_0^1 v^a (1 - v^k)^{c}\,dv = \frac{1}{k} B(p, c + 1),
        \qquad p = \frac{a + 1}{k},

    for :math:`\beta, \gamma, k > 0` (where the integrals converge; the
    value is checked by quadrature after).  SymPy reaches these through
    Meijer G functions, slowly when the exponents are symbols.
    """
    total = sp.S.Zero
    for term in sp.Add.make_args(h):
        coeff, rest = term.as_independent(v, as_Add=False)
        a, binom = sp.S.Zero, None
        for factor in sp.Mul.make_args(rest):
            base, e = factor.as_base_exp()
            if e.has(v):
                return None
            if base == v:
                a += e
                continue
            found = _binomial(base, v) if binom is None else None
            if found is None:
                return None
            binom = (*found, e)
        if binom is None:
            return None
        beta, gamma, k, e = binom
        if not k.is_positive:
            return None
        p = (a + 1) / k
        if hi == sp.oo and beta.is_positive and gamma.is_positive:
            c = -e
            total += (
                coeff * beta**-c * (beta / gamma) ** p * sp.gamma(p) * sp.gamma(c - p) / (k * sp.gamma(c))
            )
        elif hi == 1 and beta == 1 and gamma == -1:
            total += coeff * sp.gamma(p) * sp.gamma(e + 1) / (k * sp.gamma(p + e + 1))
        else:
            return None
    return total


class Cold(Exception):
    """SymPy's definite integration is not set up yet: :func:`warm_up`, then try again."""


def integrate(h: sp.Expr, v: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr | None:
    """SymPy's ``integrate``, a closed form or ``None``; :class:`Cold` before :func:`warm_up`."""
    if not _warm:
        raise Cold
    return closed_form(sp.integrate(h, (v, lo, hi), conds="none"))


def definite(h: sp.Expr, v: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr | None:
    if h.is_rational_function(v):
        h = sp.factor(h)  # one fraction: SymPy integrates it far faster than a nest of them
    h = merge_bases(h, v)
    if lo == 0 and hi in (1, sp.oo):
        value = beta_integrals(h, v, hi)
        if value is not None:
            return closed_form(value)
    return integrate(h, v, lo, hi)


def _gamma_product_derivative(term: sp.Expr, m: int) -> sp.Expr | None:
    r""":math:`T^{(m)}(0)` for a product of gamma functions and powers with arguments linear in :math:`s`.

    With :math:`L = (\log T)' = \sum_i e_i u_i' \psi(u_i) + \sum_j v_j' \log B_j`,
    :math:`L^{(r)} = \sum_i e_i u_i'^{\,r+1} \psi^{(r)}(u_i)` for :math:`r \ge 1`, and
    :math:`T^{(n)} = \sum_{j<n} \binom{n-1}{j} T^{(j)} L^{(n-1-j)}`: no symbolic
    differentiation of the (large) product itself.  ``None`` if ``term`` is not of that form.
    """
    logs = [sp.S.Zero] * m
    for factor in sp.Mul.make_args(term):
        if not factor.has(S):
            continue
        base, e = factor.as_base_exp()
        if isinstance(base, sp.gamma) and not e.has(S):
            u = base.args[0]
            du = sp.diff(u, S)
            if du.has(S):
                return None
            u0 = u.subs(S, 0)
            for r in range(m):
                logs[r] += e * du ** (r + 1) * sp.polygamma(r, u0)
        elif not base.has(S):
            de = sp.diff(e, S)
            if de.has(S):
                return None
            if m:
                logs[0] += de * sp.log(base)
        else:
            return None
    values = [term.subs(S, 0)]
    for n in range(1, m + 1):
        values.append(sum((sp.binomial(n - 1, j) * values[j] * logs[n - 1 - j] for j in range(n)), sp.S.Zero))
    return values[m]


def derivative_at_zero(moment: sp.Expr, m: int) -> sp.Expr:
    r""":math:`M^{(m)}(0)`, from the series where the derivative is 0/0 there (:math:`\pi s/\sin \pi s`)."""
    terms = [_gamma_product_derivative(t, m) for t in sp.Add.make_args(moment)]
    if all(t is not None for t in terms):
        value = sp.Add(*terms)
        if not value.has(sp.nan, sp.zoo):
            return value
    value = sp.diff(moment, S, m).subs(S, 0) if m else moment.subs(S, 0)
    if value.has(sp.nan, sp.zoo) or value is sp.nan:
        series = sp.series(moment, S, 0, m + 1).removeO()
        value = sp.factorial(m) * series.coeff(S, m)
    return value


_warm = False


def warm_up() -> None:
    """Pay SymPy's one-time set-up of definite integration (about 1 s) outside any strategy's share.

    The first definite integral of a process builds SymPy's table of Meijer G
    forms; charged to the first strategy, it would make that one run out of
    its share whatever it integrates.  It is paid only when a strategy needs
    SymPy's ``integrate`` (:class:`Cold`): Beta integrals do not.
    """
    global _warm
    if not _warm:
        u = sp.Dummy("u", positive=True)
        sp.integrate(sp.exp(-u), (u, 0, sp.oo), conds="none")
        _warm = True
