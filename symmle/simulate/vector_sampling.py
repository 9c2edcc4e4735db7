"""Drawing rows of a vector model from its ``[sampler]``: NumPy's multivariate methods.

A vector model's ``[sampler]`` (checked by :mod:`symmle.model.sampler_table`) names either a
method that draws vectors (``multivariate_normal``, ``dirichlet``, ``multinomial``: see
:data:`symmle.model.spec.VECTOR_SAMPLER_ARGS`) or a scalar method that draws each of the D
entries on its own, its arguments scalars or D-vectors broadcast over the entries.  The
arguments are SymPy matrix expressions in the parameters and constants, evaluated here with
NumPy (:func:`symmle.numbers.matrix_eval.evaluate`) at the given values; nothing is ever
evaluated as Python text, and the method is one of the whitelist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp

from symmle.base.errors import SpecError, SymmleError
from symmle.model.spec import VECTOR_SAMPLER_ARGS, Model
from symmle.numbers.matrix_eval import evaluate

__all__ = ["VectorSampler", "vector_sampler"]


class VectorSampler:
    """Draws IID rows of a vector model at fixed values: ``draw((reps, n), rng) -> (reps, n, D)``.

    Attributes
    ----------
    model : Model
    dimension : int
    kind : str
        ``"declared"``: the model's ``[sampler]``.
    method : str
        ``"numpy.random.Generator.multivariate_normal"`` and so on.
    """

    def __init__(self, model: Model, dim: int, method: str, kwargs: dict[str, Any], entrywise: bool) -> None:
        self.model = model
        self.dimension = dim
        self.kind = "declared"
        self.method = f"numpy.random.Generator.{method}"
        self._name = method
        self._kwargs = kwargs
        self._entrywise = entrywise

    def __repr__(self) -> str:
        return f"<VectorSampler {self.model.name} (D = {self.dimension}): {self.method}>"

    def __call__(self, size: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Rows of shape ``size + (D,)``; a draw that is not a finite number is an error of the spec."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
        shape = (size,) if isinstance(size, int) else tuple(size)
        if self._entrywise:
            shape = shape + (self.dimension,)
        x = np.asarray(getattr(rng, self._name)(**self._kwargs, size=shape), dtype=float)
        if not np.all(np.isfinite(x)):
            raise SymmleError(f"the declared sampler of {self.model.name} drew a value that is not finite")
        return x


def _argument(expr: sp.Basic, env: Mapping[Any, Any], key: str, model: Model) -> Any:
    try:
        with np.errstate(all="ignore"):
            value = np.asarray(evaluate(expr, env), dtype=float)
    except (ValueError, TypeError, ZeroDivisionError, np.linalg.LinAlgError) as exc:
        raise SpecError(
            f"sampler argument {key} = {expr} of {model.name} cannot be evaluated: {exc}"
        ) from None
    if not np.all(np.isfinite(value)):
        raise SpecError(f"sampler argument {key} = {expr} of {model.name} is not finite at the given values")
    return value


def vector_sampler(model: Model, values: Mapping[str, Any], dim: int) -> VectorSampler:
    """The sampler of vector ``model`` at ``values`` (by name: floats, (D,) or (D, D) arrays).

    Raises
    ------
    SpecError
        If the model has no ``[sampler]``, or NumPy refuses its arguments at these values.

    Examples
    --------
    >>> from symmle.model.build import model_from_dict
    >>> m = model_from_dict({"variable": "x", "dimension": "K", "support": "simplex", "density":
    ...     "exp(loggamma(sum(a)) - sum(loggamma(a)) + transpose(a - 1) @ log(x))",
    ...     "parameters": {"a": "positive_vector"},
    ...     "sampler": {"method": "dirichlet", "args": {"alpha": "a"}}})
    >>> s = vector_sampler(m, {"a": np.array([2.0, 3.0])}, 2)
    >>> s.method, s((4, 10), np.random.default_rng(0)).shape
    ('numpy.random.Generator.dirichlet', (4, 10, 2))
    """
    s = model.sampler
    if s is None:
        raise SpecError(
            f"model '{model.name}' has no [sampler]: symmle draws the rows of a vector model only "
            "with a declared sampler (numpy.random.Generator's multivariate_normal, dirichlet, multinomial)"
        )
    env: dict[Any, Any] = {model.dimension: dim}
    for q in (*model.parameters, *model.constants):
        v = values[q.name]
        env[q.symbol] = np.asarray(v, dtype=float).reshape(-1, 1) if q.is_matrix and q.domain != "spd" else v
    kwargs: dict[str, Any] = {}
    wanted = VECTOR_SAMPLER_ARGS.get(s.method)
    for key, expr in s.args:
        value = _argument(expr, env, key, model)
        kind = wanted[key] if wanted is not None else None
        if kind == "vector" or (kind is None and value.ndim == 2 and value.shape[1] == 1):
            value = value.reshape(-1)
        elif kind == "scalar":
            value = value.reshape(())
            if s.method == "multinomial" and key == "n":
                if not float(value).is_integer() or value < 1:
                    raise SpecError(f"sampler argument n of {model.name} must be a positive integer")
                value = int(value)
        kwargs[key] = value if not isinstance(value, np.ndarray) or value.ndim else float(value)
    if s.method == "multivariate_normal":
        kwargs["method"] = "cholesky"  # the covariance was checked positive definite
    call = f"numpy.random.Generator.{s.method}"
    try:  # NumPy validates its arguments: ask it once, here, rather than at the first draw
        with np.errstate(all="ignore"):
            getattr(np.random.default_rng(0), s.method)(**kwargs, size=(1, dim) if wanted is None else 1)
    except (ValueError, TypeError, OverflowError, np.linalg.LinAlgError) as exc:
        raise SpecError(f"sampler of {model.name}: {call} is invalid at the given values: {exc}") from None
    return VectorSampler(model, dim, s.method, kwargs, entrywise=wanted is None)
