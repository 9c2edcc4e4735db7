"""Drawing IID samples of a model at given parameter and constant values.

This is the one place in symmle that draws samples: :func:`sampler` builds
a :class:`ModelSampler`, which checks every draw against the support.  A
model is sampled in one of two ways, and the sampler records which
(``kind``):

``"declared"``
    The family's ``[sampler]`` table, here: a whitelisted
    ``numpy.random.Generator`` method whose arguments (and optional transform
    of the raw draw) are SymPy expressions already parsed by
    :mod:`symmle.model.build`.  Nothing is ever evaluated as Python text.

``"generic"``
    Built from the density itself, for any model (every inline ``--pdf``
    model has no ``[sampler]``): numerical inversion of the CDF for a
    continuous model (:mod:`symmle.simulate.inversion`), a guide table over
    the tabulated pmf for a discrete one (:mod:`symmle.simulate.tables`).

Every draw lies in the support: discrete draws are integers of the
support, continuous draws lie strictly inside it (a value rounded onto a
finite end is moved to the nearest float inside).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy as sp

from symmle.base._runtime import in_domain
from symmle.base.errors import SpecError, SymmleError
from symmle.base.numeric import to_function
from symmle.model.spec import Model
from symmle.simulate.inversion import continuous_sampler
from symmle.simulate.tables import discrete_sampler
from symmle.simulate.target import where

__all__ = ["ModelSampler", "draw", "sampler"]

_BIG = np.finfo(float).max


class ModelSampler:
    """Draws IID samples of one model at fixed parameter and constant values.

    Build one with :func:`sampler`; call it with a size and a generator.

    Attributes
    ----------
    model : Model
        The model sampled.
    values : dict of str to float
        The parameter and constant values, by name.
    kind : str
        ``"declared"`` (the family's ``[sampler]``) or ``"generic"`` (built
        from the density).
    method : str
        How draws are made, for reports: ``"numpy.random.Generator.gamma"``,
        ``"PINV in log(x - lo)"``, ``"PINV"`` (in ``x``), ``"tabulated CDF
        in ..."``, ``"guide table over k = 0..57"``.
    support : (float, float)
        The support at ``values``.
    """

    def __init__(
        self,
        model: Model,
        values: Mapping[str, float],
        kind: str,
        method: str,
        support: tuple[float, float],
        raw: Callable[[int | tuple[int, ...], np.random.Generator], np.ndarray],
    ) -> None:
        self.model = model
        self.values = dict(values)
        self.kind = kind
        self.method = method
        self.support = support
        self._raw = raw

    def __repr__(self) -> str:
        vals = ", ".join(f"{k}={v:g}" for k, v in self.values.items())
        return f"<ModelSampler {self.model.name} ({vals}): {self.kind}, {self.method}>"

    def __call__(self, size: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Draw an array of shape ``size``.

        Parameters
        ----------
        size : int or tuple of int
            Shape of the result, e.g. ``(reps, n)`` for ``reps`` samples of
            size ``n`` in one vectorised call.
        rng : numpy.random.Generator
            The source of randomness (the only one).

        Returns
        -------
        numpy.ndarray
            Float array of draws (integer-valued for a discrete model).

        Raises
        ------
        SymmleError
            If a declared sampler draws outside the support (a wrong spec).
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
        x = np.asarray(self._raw(size, rng), dtype=float)
        return _inside(x, self.support, self.model, self.kind)


def sampler(model: Model, values: Mapping[str, float], *, generic: bool = False) -> ModelSampler:
    """A sampler of ``model`` at ``values``.

    Parameters
    ----------
    model : Model
        The model.
    values : mapping
        Parameter *and* constant values by name (a constant with a value
        fixed in the model may be left out).  SymPy symbols as keys are
        accepted too.
    generic : bool
        Build the generic sampler from the density even if the model
        declares a ``[sampler]``.

    Returns
    -------
    ModelSampler

    Raises
    ------
    SpecError
        A missing or unknown name, a value outside its domain, an empty
        support, or declared sampler arguments NumPy rejects.
    SymmleError
        If the generic sampler cannot be built (the message says why).

    Examples
    --------
    >>> import numpy as np
    >>> from symmle.model.build import inline_model, load_model
    >>> s = sampler(load_model("gamma"), {"a": 2.0, "b": 3.0})
    >>> s.kind, s.method
    ('declared', 'numpy.random.Generator.gamma')
    >>> s((2, 5), np.random.default_rng(0)).shape
    (2, 5)
    >>> lindley = inline_model("th**2/(1+th)*(1+x)*exp(-th*x)", "x", "0,oo", ["th:positive"])
    >>> g = sampler(lindley, {"th": 1.5})
    >>> g.kind
    'generic'
    >>> x = g(100_000, np.random.default_rng(1))
    >>> bool(abs(x.mean() - (2 + 1.5) / (1.5 * 2.5)) < 0.01)   # mean (th+2)/(th(th+1))
    True
    """
    vals = _values(model, values)
    point = {q.symbol: vals[q.name] for q in (*model.parameters, *model.constants)}
    support = _support(model, point, vals)
    if model.sampler is not None and not generic:
        method, raw = _declared(model, point, vals)
        return ModelSampler(model, vals, "declared", method, support, raw)
    build = discrete_sampler if model.discrete else continuous_sampler
    with np.errstate(all="ignore"):  # the density is probed at extreme points on purpose
        method, raw = build(model, point, vals, support)
    return ModelSampler(model, vals, "generic", method, support, raw)


def draw(
    model: Model,
    values: Mapping[str, float],
    size: int | tuple[int, ...],
    rng: np.random.Generator,
    *,
    generic: bool = False,
) -> np.ndarray:
    """Draw ``size`` IID values of ``model`` at ``values``: ``sampler(...)(size, rng)``.

    Examples
    --------
    >>> import numpy as np
    >>> from symmle.model.build import load_model
    >>> x = draw(load_model("poisson"), {"lam": 3.0}, 4, np.random.default_rng(0), generic=True)
    >>> x.dtype, bool(np.all(x == np.round(x)))
    (dtype('float64'), True)
    """
    return sampler(model, values, generic=generic)(size, rng)


# --------------------------------------------------------------------------
# values and support
# --------------------------------------------------------------------------


def _values(model: Model, values: Mapping[Any, Any]) -> dict[str, float]:
    """Every parameter and constant value by name, checked against its domain."""
    if not isinstance(values, Mapping):
        raise SpecError(f"values must be a mapping of name to number, not {type(values).__name__}")
    given: dict[str, Any] = {}
    for key, v in values.items():
        given[key.name if isinstance(key, sp.Symbol) else str(key)] = v
    quantities = (*model.parameters, *model.constants)
    names = {q.name for q in quantities}
    unknown = sorted(set(given) - names)
    if unknown:
        raise SpecError(
            f"unknown name '{unknown[0]}' for model {model.name}; "
            f"it has {', '.join(q.name for q in quantities)}"
        )
    out: dict[str, float] = {}
    for q in quantities:
        role = "parameter" if q in model.parameters else "constant"
        if q.name not in given:
            if q.value is None:
                raise SpecError(f"no value given for {role} '{q.name}' of model {model.name}")
            out[q.name] = float(q.value)
            continue
        raw = given[q.name]
        if isinstance(raw, bool) or not isinstance(raw, (int, float, np.integer, np.floating, sp.Number)):
            raise SpecError(f"value of {role} '{q.name}' must be a number, not {raw!r}")
        v = float(raw)
        if not in_domain(v, q.domain):
            raise SpecError(f"value {v:g} of {role} '{q.name}' is not in its domain '{q.domain}'")
        if q.value is not None and not math.isclose(v, float(q.value), rel_tol=1e-12, abs_tol=1e-300):
            raise SpecError(f"constant '{q.name}' is fixed at {float(q.value):g} by the model; got {v:g}")
        out[q.name] = v
    return out


def _support(
    model: Model, point: Mapping[sp.Symbol, float], vals: Mapping[str, float]
) -> tuple[float, float]:
    try:
        lo, hi = model.support_at(point)
    except (TypeError, ValueError):
        raise SpecError(f"the support of {model.name} is not numeric at {where(vals)}") from None
    if not lo < hi:
        raise SpecError(f"the support [{lo:g}, {hi:g}] of {model.name} is empty at {where(vals)}")
    if model.discrete:
        if math.isinf(lo):
            raise SymmleError(f"cannot sample {model.name}: a discrete support needs a finite lower end")
        if not float(lo).is_integer() or not (math.isinf(hi) or float(hi).is_integer()):
            raise SpecError(
                f"the support [{lo:g}, {hi:g}] of discrete {model.name} has a non-integer end "
                f"at {where(vals)}"
            )
    return lo, hi


def _inside(x: np.ndarray, support: tuple[float, float], model: Model, kind: str) -> np.ndarray:
    """Check draws against the support; move continuous draws rounded onto an end inside."""
    lo, hi = support
    if np.isnan(x).any():
        raise SymmleError(f"the {kind} sampler of {model.name} drew NaN")
    if model.discrete:
        bad = (x < lo) | (x > hi) | (x != np.round(x))
    else:
        bad = (x < lo) | (x > hi)
    if bad.any():
        raise SymmleError(
            f"the {kind} sampler of {model.name} drew {x[bad].flat[0]:g}, "
            f"outside the support [{lo:g}, {hi:g}]"
        )
    if not model.discrete:
        # an end of the support (also an infinite one) is not a value of the variable
        low = math.nextafter(lo, math.inf) if math.isfinite(lo) else -_BIG
        high = math.nextafter(hi, -math.inf) if math.isfinite(hi) else _BIG
        if low <= high:
            np.clip(x, low, high, out=x)
    return x


# --------------------------------------------------------------------------
# declared samplers
# --------------------------------------------------------------------------


def _declared(model: Model, point: Mapping[sp.Symbol, float], vals: Mapping[str, float]):
    s = model.sampler
    assert s is not None
    kwargs: dict[str, float] = {}
    for key, expr in s.args:
        value = expr.subs(point)
        try:
            number = float(value)
        except TypeError:
            number = math.nan
        if not math.isfinite(number):
            raise SpecError(
                f"sampler argument {key} = {expr} of {model.name} is not a finite real number "
                f"at {where(vals)}"
            )
        kwargs[key] = number
    call = f"numpy.random.Generator.{s.method}({', '.join(f'{k}={v:g}' for k, v in kwargs.items())})"
    try:  # NumPy validates its arguments: ask it once, here, rather than at the first draw
        with np.errstate(all="ignore"):
            getattr(np.random.default_rng(0), s.method)(**kwargs, size=1)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SpecError(f"sampler of {model.name}: {call} is invalid at {where(vals)}: {exc}") from None
    transform = None
    if s.transform is not None:
        raw_symbol = s.draw if s.draw is not None else model.variable
        transform = to_function([raw_symbol], s.transform.subs(point))
    method = s.method  # one of symmle.model.spec.SAMPLER_METHODS

    def raw(size, rng):
        x = np.asarray(getattr(rng, method)(**kwargs, size=size), dtype=float)
        if transform is not None:
            with np.errstate(all="ignore"):
                x = np.asarray(transform(x), dtype=float) * np.ones_like(x)
        return x

    return f"numpy.random.Generator.{method}", raw
