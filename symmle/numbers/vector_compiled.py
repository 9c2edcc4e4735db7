"""Compiled estimators of a vector model, in-process: :meth:`Derivation.compile` of a vector model.

:class:`CompiledVectorModel` runs the very source that ``symmle compile`` writes
(:func:`symmle.numbers.vector_codegen.vector_module_source`), so the module a user imports and
the estimator that ``symmle check`` simulates are one code.  The source is made only by
symmle's printer from a Derivation, every name in it an identifier and every text an escaped
literal; it is compiled here as ``lambdify`` compiles the code it prints.

Its errors are symmle's: data the model cannot take (a bad cell, a row outside the model's
set, too few rows for a covariance) and a maximisation that finds no MLE are
:class:`~symmle.base.errors.DataError`, a bad value or name given to it a
:class:`~symmle.base.errors.SpecError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from symmle.base.errors import DataError
from symmle.numbers.vector_codegen import vector_module_source

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["CompiledVectorModel"]


class CompiledVectorModel:
    """Estimators, standard errors and log-likelihood of a vector model, as NumPy code.

    Call it on an (N, D) array of rows: ``est(x) -> {"mu": array (D,), "Sigma": array (D, D)}``.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> from symmle.model.build import model_from_dict
    >>> m = model_from_dict({"name": "mvn", "variable": "x", "dimension": "D", "density":
    ...     "exp(-transpose(x - mu) @ inverse(Sigma) @ (x - mu)/2)/sqrt((2*pi)**D*det(Sigma))",
    ...     "parameters": {"mu": "vector", "Sigma": "spd"}})
    >>> est = symmle.derive(m).compile()
    >>> x = np.array([[0.0, 1.0], [2.0, 1.0], [1.0, 4.0], [1.0, 2.0]])
    >>> est(x)["mu"], est(x)["Sigma"].tolist()[0]
    (array([1., 2.]), [0.5, 0.0])
    """

    def __init__(self, d: Derivation, *, timeout: float | None = None) -> None:
        self.derivation = d
        self.source = vector_module_source(d, timeout=timeout)
        namespace: dict[str, Any] = {"__name__": "symmle_compiled_vector_model"}
        exec(compile(self.source, "<symmle compiled vector model>", "exec"), namespace)  # noqa: S102
        self._ns = namespace
        self.plan: dict[str, Any] = namespace["PLAN"]
        self.parameters = tuple(self.plan["parameters"])
        self.constants = tuple(self.plan["constants"])
        self.kinds = dict(self.plan["kinds"])
        self.domains = dict(self.plan["domains"])
        self.formulas = {name: d.solutions[name].expr for name in self.parameters}

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a function of the generated module; its errors become symmle's."""
        bad, nomle = self._ns["BadData"], self._ns["NoMLE"]
        try:
            return fn(*args, **kwargs)
        except bad as exc:
            from symmle.numbers.vector_data import _cell_error

            raise _cell_error(exc, None) from None
        except nomle as exc:
            raise DataError(str(exc)) from None

    def __call__(self, x: Any, **constants: Any) -> dict[str, Any]:
        """Maximum-likelihood estimates from rows ``x`` (constants by name)."""
        return self.estimate(x, **constants)

    def estimate(self, x: Any, **constants: Any) -> dict[str, Any]:
        """Maximum-likelihood estimates from rows ``x``: a float, a (D,) or a (D, D) array each."""
        return self._run(self._ns["estimate"], x, **constants)

    def stderr(self, x: Any, **constants: Any) -> dict[str, Any]:
        """Asymptotic standard errors, of the estimates' shapes (``None`` where none exists)."""
        return self._run(self._ns["stderr"], x, **constants)

    def estimate_with_stderr(self, x: Any, **constants: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(estimates, standard errors)`` from one reduction of the data."""
        return self._run(self._ns["estimate_with_stderr"], x, **constants)

    def log_likelihood(self, x: Any, **params_and_constants: Any) -> float:
        """:math:`\\sum_i \\log f(x_i)` at the given values (vectors and matrices as arrays or lists)."""
        return self._run(self._ns["log_likelihood"], x, **params_and_constants)

    def estimate_rows(self, samples: Any, **constants: Any) -> dict[str, np.ndarray]:
        """Estimates of ``R`` data sets (an ``(R, n, D)`` array), vectorised where closed forms allow."""
        return self._run(self._ns["estimate_rows"], samples, **constants)

    def stderr_rows(
        self, estimates: Mapping[str, np.ndarray], n: int, dim: int, **constants: Any
    ) -> dict[str, np.ndarray | None]:
        """Standard errors at ``R`` replicates' estimates from samples of size ``n``, all at once."""
        run = self._ns["run_vector_stderr_rows"]
        return self._run(run, self.plan, dict(estimates), n, constants, dim)

    def fisher(self, dim: int, **params_and_constants: Any) -> np.ndarray | None:
        """The per-observation Fisher information in :meth:`coordinates` (``None`` if not derived)."""
        return self._run(self._ns["fisher_information"], dim, **params_and_constants)

    def coordinates(self, dim: int) -> list[str]:
        """The names of the information matrix's coordinates: ``mu[1]``, ``Sigma[2,1]``, ..."""
        return list(self._ns["coordinates"](dim))
