r"""What a vector lecture shows besides the pipeline's own expressions: the data, rearrangements, checks.

The pipeline writes a vector model's log-likelihood, gradients and estimators in matrix statistics
(``T1 = sum_n x^(n)``, ``T2 = sum_n x^(n) x^(n)T``...).  A lecture writes the observations themselves
and sums over them, in the forms a lecturer would: :class:`Observation` is :math:`\mathbf{x}^{(n)}`
and :class:`DataSum` a sum over the data of a vector or matrix (a scalar one is SymPy's ``Sum``).

The forms shown are only rearranged, never derived here:

* :func:`tidy`: scalar coefficients out of traces, the trace of a sum split into traces, a trace
  rotated into a 1 x 1 quadratic form (``tr(A u v^T) = v^T A u``, shown without ``tr``), a sum of
  transposes as the transpose of the sum, and a factor such as ``(mu - x)`` turned into
  ``-(x - mu)``;
* :meth:`Display.centred`: the statistics written through sums centred at a vector ``c`` of the
  variable's shape, ``T1 = C1 + N c``, ``T2 = C2 + C1 c^T + c C1^T + N c c^T`` with
  ``C1 = sum_n (x^(n) - c)`` and ``C2 = sum_n (x^(n) - c)(x^(n) - c)^T`` (exact identities), then
  simplified in the normal form of :mod:`symmle.symbolic.matrix_forms`; at an estimate ``c = hat``
  with ``hat = T1 / N`` the centred first sum vanishes.

Every form is checked against the pipeline's before it is shown (:class:`Checker`): both are computed
out at D = 2 and D = 3 on random admissible parameters and random data (exact rational arithmetic,
transcendental functions to 30 digits), with the estimates given by the pipeline's estimators.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.matrices.expressions.special import OneMatrix

from symmle.report.lecture.core import combine_logs, quick
from symmle.symbolic.matrix_calculus import MatrixDifferential, ScalarDifferential
from symmle.symbolic.matrix_explicit import explicit
from symmle.symbolic.matrix_forms import Context, scalar, to_form
from symmle.symbolic.matrix_information import DuplicationMatrix

__all__ = [
    "expand_scalar",
    "Checker",
    "DataSum",
    "Display",
    "DuplicationInverse",
    "Observation",
    "data_sum",
    "mat_mul",
    "tidy",
]


class Observation(MatrixExpr):
    r"""The observation :math:`\mathbf{x}^{(n)}`: the variable ``x`` at index ``n`` (a display object)."""

    is_MatrixSymbol_like = True

    def __new__(cls, x: sp.MatrixSymbol, index: Any) -> Observation:
        return MatrixExpr.__new__(cls, x, sp.sympify(index))

    @property
    def variable(self) -> sp.MatrixSymbol:
        return self.args[0]

    @property
    def index(self) -> sp.Expr:
        return self.args[1]

    @property
    def shape(self) -> tuple:
        return self.variable.shape

    def _latex(self, printer: Any, *args: Any) -> str:
        return f"{printer._print(self.variable)}^{{({printer._print(self.index)})}}"

    def _sympystr(self, printer: Any, *args: Any) -> str:
        return f"{printer._print(self.variable)}[{printer._print(self.index)}]"


class DataSum(MatrixExpr):
    r"""The sum :math:`\sum_{n=1}^{N} M(\mathbf{x}^{(n)})` of a vector or matrix over the data (display)."""

    is_DataSum = True

    def __new__(cls, summand: MatrixExpr, index: sp.Symbol, upper: sp.Expr) -> DataSum:
        return MatrixExpr.__new__(cls, summand, index, sp.sympify(upper))

    @property
    def summand(self) -> MatrixExpr:
        return self.args[0]

    @property
    def index(self) -> sp.Symbol:
        return self.args[1]

    @property
    def upper(self) -> sp.Expr:
        return self.args[2]

    @property
    def shape(self) -> tuple:
        return self.summand.shape

    @property
    def free_symbols(self) -> set:
        return (self.summand.free_symbols - {self.index}) | self.upper.free_symbols

    def _latex(self, printer: Any, *args: Any) -> str:
        head = printer.limits(r"\sum", (self.index, 1, self.upper)) if hasattr(printer, "limits") else r"\sum"
        inner = printer._print(self.summand)
        if isinstance(self.summand, sp.MatAdd):
            inner = rf"\left({inner}\right)"
        return f"{head} {inner}"

    def _sympystr(self, printer: Any, *args: Any) -> str:
        return f"Sum({printer._print(self.summand)}, ({self.index}, 1, {printer._print(self.upper)}))"


class DuplicationInverse(MatrixExpr):
    r"""The Moore–Penrose inverse of the duplication matrix (a display object).

    :math:`\mathbf{D}_n^{+} = (\mathbf{D}_n^{\top}\mathbf{D}_n)^{-1}\mathbf{D}_n^{\top}` (:meth:`written`).
    """

    is_MatrixSymbol_like = True

    def __new__(cls, n: Any) -> DuplicationInverse:
        return MatrixExpr.__new__(cls, sp.sympify(n))

    @property
    def shape(self) -> tuple:
        n = self.args[0]
        return (n * (n + 1) / 2, n**2)

    def written(self) -> sp.Basic:
        d = DuplicationMatrix(self.args[0])
        return sp.MatMul(sp.Inverse(sp.MatMul(sp.Transpose(d), d)), sp.Transpose(d))

    def _latex(self, printer: Any, *args: Any) -> str:
        return rf"\mathbf{{D}}_{{{printer._print(self.args[0])}}}^{{+}}"


def expand_scalar(e: sp.Expr) -> sp.Expr:
    """``sp.expand`` of a scalar with its traces and determinants held whole.

    (SymPy's expand would descend into the matrix products inside them and evaluate them, slowly.)
    """
    atoms = sorted(e.atoms(sp.Trace, sp.Determinant), key=sp.default_sort_key)
    held = {a: sp.Dummy() for a in atoms}
    back = {v: k for k, v in held.items()}
    return sp.expand(e.xreplace(held)).xreplace(back)


def data_sum(summand: sp.Basic, index: sp.Symbol, upper: sp.Expr) -> sp.Basic:
    """A sum over the data: :class:`DataSum` of a matrix, SymPy's ``Sum`` of a scalar."""
    if isinstance(summand, MatrixExpr):
        return DataSum(summand, index, upper)
    return sp.Sum(summand, (index, 1, upper))


def mat_mul(coeff: sp.Expr, factors: Iterable[sp.Basic]) -> sp.Basic:
    """``coeff`` times the product of ``factors`` (nested products flattened, nothing else evaluated)."""
    flat: list[sp.Basic] = []
    for f in factors:
        if isinstance(f, sp.MatMul):
            c, mats = f.as_coeff_matrices()
            coeff = coeff * c
            flat.extend(mats)
        else:
            flat.append(f)
    if not flat:
        return coeff
    if coeff == 1 and len(flat) == 1:
        return flat[0]
    return sp.MatMul(*([coeff] if coeff != 1 else []), *flat)


# ---------------------------------------------------------------- rearrangements (identities)


def _coeff_factors(m: sp.Basic) -> tuple[sp.Expr, list[sp.Basic]]:
    if isinstance(m, sp.MatMul):
        c, mats = m.as_coeff_matrices()
        return c, list(mats)
    return sp.S.One, [m]


def _rotate_to_scalar(factors: list[sp.Basic]) -> list[sp.Basic] | None:
    """A rotation of a product whose trace is taken that is a 1 x 1 product, if the product is not one."""
    if len(factors) < 2 or (factors[0].shape[0] == 1 and factors[-1].shape[1] == 1):
        return None
    for j in range(1, len(factors)):
        if factors[j].shape[0] == 1:
            return factors[j:] + factors[:j]
    return None


def _negated(m: sp.Basic) -> sp.Basic:
    c, mats = _coeff_factors(m)
    return mat_mul(-c, mats)


def _transposed_sum(m: sp.MatAdd) -> sp.Basic:
    """``A^T + B^T`` as ``(A + B)^T`` (each term a transpose, possibly times a scalar)."""
    inner = []
    for t in m.args:
        c, mats = _coeff_factors(t)
        if len(mats) == 1 and isinstance(mats[0], OneMatrix) and mats[0].shape[0] == 1:
            mats = [sp.Transpose(OneMatrix(mats[0].shape[1], 1))]  # a row of ones is 1^T
        if len(mats) != 1 or not isinstance(mats[0], sp.Transpose):
            return m
        inner.append(mat_mul(c, [mats[0].arg]))
    return sp.Transpose(sp.MatAdd(*inner))


def _data_negative(m: sp.Basic, data: Callable[[sp.Basic], bool]) -> bool:
    """Whether a sum (or the transpose of one) reads better negated: its data terms all carry a minus."""
    body = m.arg if isinstance(m, sp.Transpose) else m
    if not isinstance(body, sp.MatAdd):
        return False
    terms = [t for t in body.args if data(t)]
    return bool(terms) and all(_coeff_factors(t)[0].could_extract_minus_sign() for t in terms)


def _flip(m: sp.Basic) -> sp.Basic:
    if isinstance(m, sp.Transpose):
        return sp.Transpose(sp.MatAdd(*[_negated(t) for t in m.arg.args]))
    return sp.MatAdd(*[_negated(t) for t in m.args])


def tidy(expr: Any, data: Callable[[sp.Basic], bool] = lambda e: False) -> Any:
    """``expr`` rearranged for display by identities (see the module docstring); nothing is simplified.

    ``data(term)`` says whether a term holds an observation: a factor whose data terms all carry a
    minus sign is negated (``(mu - x)`` -> ``-(x - mu)``).
    """
    if not isinstance(expr, sp.Basic) or expr.is_Atom or isinstance(expr, (sp.MatrixSymbol, Observation)):
        return expr
    if isinstance(expr, sp.Lambda):
        return expr
    if isinstance(expr, ElementwiseApplyFunction):
        v = tidy(expr.expr, data)
        if isinstance(v, sp.Transpose):  # f.(v^T) = f.(v)^T
            return sp.Transpose(ElementwiseApplyFunction(expr.function, v.arg))
        return ElementwiseApplyFunction(expr.function, v)
    if isinstance(expr, DataSum):
        c, mats = _coeff_factors(tidy(expr.summand, data))
        inner, outer = sp.sympify(c).as_independent(expr.index, as_Add=False)
        # (not inner * DataSum(...): SymPy's product would call doit() and undo the tidying)
        return mat_mul(inner, [DataSum(mat_mul(outer, mats), expr.index, expr.upper)])
    if isinstance(expr, sp.Sum) and len(expr.limits) == 1:
        body = tidy(expr.function, data)
        c, g = body.as_independent(expr.limits[0][0], as_Add=False) if body.is_Mul else (sp.S.One, body)
        return c * sp.Sum(g, *expr.limits)
    if isinstance(expr, sp.Trace):
        return _tidy_trace(tidy(expr.arg, data), data)
    if isinstance(expr, sp.MatMul):
        c, mats = expr.as_coeff_matrices()
        c = tidy(c, data)
        out = []
        for f in mats:
            f = tidy(f, data)
            if _data_negative(f, data):
                c, f = -c, _flip(f)
            out.append(f)
        return mat_mul(c, out)
    if isinstance(expr, sp.MatAdd):
        return _transposed_sum(sp.MatAdd(*[tidy(a, data) for a in expr.args]))
    if isinstance(expr, MatrixExpr):
        args = [tidy(a, data) for a in expr.args]
        return expr.func(*args) if any(a is not b for a, b in zip(args, expr.args)) else expr
    args = [tidy(a, data) for a in expr.args]
    return expr.func(*args)


def _tidy_trace(arg: sp.Basic, data: Callable[[sp.Basic], bool]) -> sp.Expr:
    if isinstance(arg, sp.MatAdd):
        return sp.Add(*[_tidy_trace(t, data) for t in arg.args])
    c, mats = _coeff_factors(arg)
    sums = [k for k, f in enumerate(mats) if isinstance(f, DataSum)]
    if len(sums) == 1:  # tr(A sum_n M_n B) = sum_n tr(A M_n B)
        k = sums[0]
        s = mats[k]
        inner = mats[:k] + _coeff_factors(s.summand)[1] + mats[k + 1 :]
        inner_c = _coeff_factors(s.summand)[0]
        return c * sp.Sum(_tidy_trace(tidy(mat_mul(inner_c, inner), data), data), (s.index, 1, s.upper))
    rotated = _rotate_to_scalar(mats)
    if rotated is not None:
        mats = rotated
    return c * sp.Trace(mat_mul(sp.S.One, mats))


# ---------------------------------------------------------------- the data and the statistics


class Display:
    """The observations and statistics of a vector model, as a lecture writes them.

    Parameters
    ----------
    lik : Likelihood
        The pipeline's log-likelihood in the statistics.
    index : Symbol
        The index of the observations (``n``, as in :math:`\\mathbf{x}^{(n)}`).
    symmetric, invertible : iterables of MatrixSymbol
        The declarations of the matrix calculus (covariances, ``T2``).
    """

    def __init__(
        self, lik: Any, index: sp.Symbol, symmetric: Iterable = (), invertible: Iterable = ()
    ) -> None:
        self.lik = lik
        self.x: sp.MatrixSymbol = lik.model.variable
        self.N: sp.Symbol = lik.N
        self.n = index
        self.obs = Observation(self.x, index)
        self.summands = {s.symbol: s.expr for s in lik.statistics}
        self.symmetric = frozenset(symmetric)
        self.ctx = Context.of(symmetric, invertible)
        outer = sp.MatMul(self.x, self.x.T)
        self.first = next((t for t, g in self.summands.items() if g == self.x), None)
        self.second = next((t for t, g in self.summands.items() if g == outer), None)

    def is_data(self, e: sp.Basic) -> bool:
        """Whether ``e`` holds an observation (or the variable)."""
        return bool(e.has(self.x)) or bool(e.atoms(Observation))

    def tidy(self, expr: Any) -> Any:
        """:func:`tidy` with this model's observations as the data."""
        return tidy(expr, self.is_data)

    def at_observation(self, expr: sp.Basic) -> sp.Basic:
        r"""``expr`` at the n-th observation: ``x`` -> :math:`\mathbf{x}^{(n)}`."""
        return sp.sympify(expr).xreplace({self.x: self.obs})

    def sum_of(self, summand: sp.Basic) -> sp.Basic:
        """The sum over the data of ``summand`` (in ``x``)."""
        return data_sum(self.at_observation(summand), self.n, self.N)

    def in_sums(self, expr: Any) -> Any:
        """``expr`` with each statistic written as the sum over the data it stands for."""
        if not isinstance(expr, sp.Basic):
            return expr
        return expr.xreplace({t: self.sum_of(g) for t, g in self.summands.items()})

    def context_of(self, expr: sp.Basic, symmetric: Iterable = ()) -> Context:
        """The context of the rules for ``expr``: its differentials of symmetric matrices are symmetric."""
        ctx = Context.of([*self.ctx.symmetric, *symmetric], self.ctx.invertible)
        for d in sp.sympify(expr).atoms(MatrixDifferential):
            ctx = ctx.with_differential(d, d.base in ctx.symmetric)
        return ctx

    def normal(self, e: sp.Basic) -> sp.Basic:
        """``e`` in the normal form of :mod:`symmle.symbolic.matrix_forms` (coefficients cancelled)."""
        ctx = self.context_of(e)
        if isinstance(e, MatrixExpr):
            f = to_form(e, ctx)
            return type(f)(f.shape, {p: sp.cancel(c) for p, c in f.terms.items() if sp.cancel(c) != 0}).expr()
        return sp.factor_terms(sp.cancel(expand_scalar(scalar(e, ctx))))

    def centred(self, expr: sp.Basic, centre: sp.Basic, first_vanishes: bool = False) -> sp.Basic | None:
        """``expr`` through the sums centred at ``centre`` (see the module docstring), or ``None``.

        ``None`` unless the model has the first statistic ``sum x`` and the result holds no
        statistic of ``x`` and ``x x^T`` any more.  With ``first_vanishes`` (``centre`` is the
        estimate ``T1 / N``), the centred first sum is zero.
        """
        if self.first is None or centre.shape != self.x.shape:
            return None
        D = self.x.shape[0]
        c1 = sp.MatrixSymbol("C1_centred", D, 1)
        c2 = sp.MatrixSymbol("C2_centred", D, D)
        ctx = self.context_of(expr, [c2])
        first = self.N * centre if first_vanishes else c1 + self.N * centre
        rules = {self.first: first}
        if self.second is not None:
            middle = sp.ZeroMatrix(D, D) if first_vanishes else c1 * centre.T + centre * c1.T
            rules[self.second] = c2 + middle + self.N * centre * centre.T

        def run() -> sp.Basic | None:
            e = sp.sympify(expr).xreplace(rules)
            if isinstance(e, MatrixExpr):
                f = to_form(e, ctx)
                out = type(f)(f.shape, {p: sp.cancel(c) for p, c in f.terms.items() if sp.cancel(c) != 0})
                e = out.expr()
            else:
                e = expand_scalar(scalar(e, ctx))
                free = sp.Add(*[t for t in sp.Add.make_args(e) if not t.has(c1, c2)])
                e = combine_logs(free) + sp.Add(*[t for t in sp.Add.make_args(e) if t.has(c1, c2)])
            if e.has(self.first) or (self.second is not None and e.has(self.second)):
                return None
            diff = self.obs - centre
            back = {c1: DataSum(diff, self.n, self.N), c2: DataSum(diff * diff.T, self.n, self.N)}
            return self.tidy(e.xreplace(back))

        return quick("write an expression in centred sums", run)


# ---------------------------------------------------------------- checks


def _rational(v: float, den: int = 64) -> sp.Rational:
    return sp.Rational(round(float(v) * den), den)


class Checker:
    """Checks that two expressions of a vector lecture are equal, at D = 2 and D = 3.

    Each side is computed out (:func:`~symmle.symbolic.matrix_explicit.explicit`) at random
    admissible values in exact rational arithmetic: parameters and constants by their domain, data
    on the model's support, the statistics as sums over those data, the estimates (``hat_p``) from
    the pipeline's estimators, the differentials at random (symmetric where their variable is), the
    observation :class:`Observation` and the sums over the data written out.

    Parameters
    ----------
    display : Display
    domains : mapping
        ``{symbol: domain}`` of the parameters and constants (``vector``, ``spd``, ``simplex``...).
    support : str or None
        The named support of the variable (``real``, ``simplex``, ``onehot``, ``counts``).
    estimates : mapping
        ``{hat symbol: estimator}`` in the statistics.
    """

    DIMS = (2, 3)
    TOLERANCE = sp.Float("1e-20", 30)

    def __init__(
        self,
        display: Display,
        domains: Mapping[sp.Basic, str],
        support: str | None,
        estimates: Mapping[sp.Basic, sp.Basic],
    ) -> None:
        self.d = display
        self.domains = dict(domains)
        self.support = support
        self.estimates = dict(estimates)
        self.seed = 0
        self._bases: dict[int, dict] = {}

    # random values
    def _matrix(self, rng: np.random.Generator, rows: int, cols: int, domain: str | None) -> sp.Matrix:
        if domain == "spd":
            a = rng.normal(size=(rows, rows))
            m = sp.Matrix(rows, rows, lambda i, j: _rational(a[i, j], 8))
            return m * m.T + sp.eye(rows)
        if domain in ("positive", "positive_vector"):
            return sp.Matrix(rows, cols, lambda i, j: _rational(rng.uniform(0.5, 2.0)))
        if domain == "simplex":
            v = [_rational(rng.uniform(0.5, 1.5)) for _ in range(rows * cols)]
            total = sum(v)
            return sp.Matrix(rows, cols, [e / total for e in v])
        if domain == "symmetric":
            a = rng.normal(size=(rows, cols))
            m = sp.Matrix(rows, cols, lambda i, j: _rational(a[i, j]))
            return (m + m.T) / 2
        return sp.Matrix(rows, cols, lambda i, j: _rational(rng.normal()))

    def _scalar(self, rng: np.random.Generator, s: sp.Symbol, domain: str | None) -> sp.Rational:
        if domain in ("positive_integer", "integer") or s.is_integer:
            return sp.Integer(int(rng.integers(2, 6)))
        if domain == "unit":
            return _rational(rng.uniform(0.1, 0.9))
        if domain in ("positive", "nonnegative") or s.is_positive:
            return _rational(rng.uniform(0.5, 2.0))
        return _rational(rng.normal())

    def _observation(self, rng: np.random.Generator, dim: int) -> sp.Matrix:
        if self.support == "simplex":
            return self._matrix(rng, dim, 1, "simplex")
        if self.support == "onehot":
            k = int(rng.integers(0, dim))
            return sp.Matrix(dim, 1, lambda i, j: 1 if i == k else 0)
        if self.support == "counts":
            return sp.Matrix(dim, 1, lambda i, j: int(rng.integers(0, 5)))
        return self._matrix(rng, dim, 1, None)

    def _base(self, dim: int) -> dict:
        """The values at dimension ``dim`` every check shares (cached): the sizes, the data and the
        observations, the parameters and constants, the statistics and the estimates."""
        if dim in self._bases:
            return self._bases[dim]
        d = self.d
        rng = np.random.default_rng([self.seed, dim])
        size = dim + 3
        mapping: dict = {s: sp.Integer(dim) for s in _dimensions([*self.domains], d.x)}
        mapping[d.N] = sp.Integer(size)
        data = [self._observation(rng, dim) for _ in range(size)]
        for k, v in enumerate(data, start=1):
            mapping[Observation(d.x, k)] = v
        for s in sorted(self.domains, key=lambda s: s.name):
            self._draw(rng, s, mapping)
        for t, g in d.summands.items():  # the statistics: sums over the data
            mapping[t] = _explicit_sum([explicit(g, {**mapping, d.x: v}) for v in data])
        for hat, est in self.estimates.items():  # the estimates, from the pipeline's estimators
            mapping[hat] = explicit(est, mapping)
        mapping[d.x] = data[0]  # the variable itself (a density at one point): the first observation
        self._bases[dim] = mapping
        return mapping

    def _draw(self, rng: np.random.Generator, s: sp.Basic, mapping: dict) -> None:
        """A random admissible value of the symbol ``s`` into ``mapping``."""
        if isinstance(s, MatrixDifferential):
            kind = "symmetric" if s.base in self.d.symmetric else None
            rows, cols = (int(sp.sympify(v).xreplace(mapping)) for v in s.shape)
            mapping[s] = self._matrix(rng, rows, cols, kind)
        elif isinstance(s, sp.MatrixSymbol):
            rows, cols = (int(sp.sympify(v).xreplace(mapping)) for v in s.shape)
            mapping[s] = self._matrix(rng, rows, cols, self.domains.get(s))
        elif isinstance(s, ScalarDifferential):
            mapping[s] = _rational(rng.normal())
        else:
            mapping[s] = self._scalar(rng, s, self.domains.get(s))

    def _point(self, dim: int, exprs: list[sp.Basic]) -> dict:
        """The shared values at ``dim`` and a value of each further symbol of ``exprs`` (differentials...),
        each drawn from a generator of its own name, so that the same symbol has the same value in
        every check."""
        d = self.d
        mapping = dict(self._base(dim))
        symbols: set = set()
        for e in exprs:
            symbols |= e.atoms(sp.MatrixSymbol) | {s for s in e.free_symbols if isinstance(s, sp.Symbol)}
        for s in sorted(symbols, key=lambda s: s.name):
            if s in mapping or s == d.x or s in d.summands or s in self.estimates or s == d.n:
                continue
            dims = _dimensions([s], d.x) if isinstance(s, sp.MatrixSymbol) else set()
            mapping.update({k: sp.Integer(dim) for k in dims if k not in mapping})
            self._draw(np.random.default_rng([self.seed, dim, zlib.crc32(s.name.encode())]), s, mapping)
        return mapping

    def _value(self, e: sp.Basic, mapping: dict) -> sp.Basic:
        size = int(mapping[self.d.N])

        def written_out(s: sp.Basic) -> sp.Basic:
            if isinstance(s, DataSum):
                body, i = s.summand, s.index
                return sp.MatAdd(*[body.xreplace({i: k}) for k in range(1, size + 1)])
            (i, lo, hi) = s.limits[0]
            return sp.Add(*[s.function.xreplace({i: k}) for k in range(1, size + 1)])

        def multiplied_out(s: sp.Product) -> sp.Basic:
            (i, lo, hi) = s.limits[0]
            return sp.Mul(*[s.function.xreplace({i: k}) for k in range(1, size + 1)])

        e = sp.sympify(e).replace(lambda s: isinstance(s, DuplicationInverse), lambda s: s.written())
        e = e.replace(lambda s: isinstance(s, (DataSum, sp.Sum)), written_out)
        e = e.replace(lambda s: isinstance(s, sp.Product), multiplied_out)
        return explicit(e, mapping)

    def points(self, *exprs: sp.Basic) -> list[dict]:
        """One random point per dimension of the check (see the class docstring) for ``exprs``."""
        return [self._point(dim, list(exprs)) for dim in self.DIMS]

    def value(self, e: sp.Basic, point: dict) -> sp.Basic:
        """``e`` computed out at a point of :meth:`points`."""
        return self._value(e, point)

    def equal(self, a: Any, b: Any) -> bool:
        """Whether ``a`` and ``b`` are equal (see the class docstring); ``False`` if it cannot be told."""
        if not isinstance(a, sp.Basic) or not isinstance(b, sp.Basic):
            return False
        return quick("check a displayed form", lambda: self._equal(a, b)) is True

    def _equal(self, a: sp.Basic, b: sp.Basic) -> bool:
        a, b = sp.sympify(a), sp.sympify(b)
        if getattr(a, "shape", None) != getattr(b, "shape", None) and not (_is_scalar(a) and _is_scalar(b)):
            return False
        for dim in self.DIMS:
            mapping = self._point(dim, [a, b])
            va, vb = self._value(a, mapping), self._value(b, mapping)
            if not _close(va, vb, self.TOLERANCE):
                return False
        return True


def _is_scalar(e: sp.Basic) -> bool:
    return not isinstance(e, MatrixExpr) or e.shape == (1, 1)


def _dimensions(exprs: list[sp.Basic], x: sp.MatrixSymbol) -> set:
    dims = set(sp.sympify(x.shape[0]).free_symbols)
    for e in exprs:
        for m in e.atoms(sp.MatrixSymbol):
            for s in m.shape:
                dims |= sp.sympify(s).free_symbols
    return dims


def _explicit_sum(values: list[sp.Basic]) -> sp.Basic:
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def _entries(v: sp.Basic) -> list[sp.Basic]:
    if isinstance(v, sp.MatrixBase):
        return list(v)
    return [v]


def _close(a: sp.Basic, b: sp.Basic, tol: sp.Float) -> bool:
    ea, eb = _entries(a), _entries(b)
    if len(ea) != len(eb):
        return False
    for u, v in zip(ea, eb):
        if u == v:  # exact arithmetic: most entries of an identity are the same expression
            continue
        du, dv = sp.N(u, 30), sp.N(v, 30)
        if not (du.is_number and dv.is_number):
            return False
        scale = max(abs(du), abs(dv), sp.Integer(1))
        if abs(du - dv) > tol * scale:
            return False
    return True
