"""A compiled regression, in-process: :meth:`Derivation.compile` of a linked model.

:class:`CompiledRegression` runs the very source that ``symmle compile`` writes
(:func:`symmle.numbers.regression_codegen.regression_module_source`), so the module a user
imports and the estimator in-process are one code.  The source is made only by symmle's printer
from a Derivation, every name in it an identifier and every text an escaped literal; it is
compiled here as ``lambdify`` compiles the code it prints.

Its errors are symmle's: data the model cannot take and data for which the MLE does not exist
are :class:`~symmle.base.errors.DataError`, a bad value or name given to it a
:class:`~symmle.base.errors.SpecError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from symmle.base.errors import DataError, SpecError, SymmleError
from symmle.numbers.regression_codegen import regression_module_source

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["CompiledRegression"]


class CompiledRegression:
    """Estimates, standard errors and log-likelihood of a regression, as NumPy code.

    Call it on the responses and the design: ``est(y, X, offset=None, **constants) ->
    {"beta": array (p,), <shared parameter>: float, ...}``, ``beta`` in ``X``'s column order.

    Examples
    --------
    >>> import numpy as np, symmle
    >>> est = symmle.derive("poisson_regression").compile()
    >>> X = np.column_stack([np.ones(6), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
    >>> y = np.array([1.0, 2.0, 3.0, 4.0, 4.0, 4.0])
    >>> np.round(np.exp(est(y, X)["beta"]), 10).tolist()  # the first group's mean, and the ratio of means
    [2.0, 2.0]
    """

    def __init__(self, d: Derivation, *, timeout: float | None = None) -> None:
        self.derivation = d
        self.source = regression_module_source(d, timeout=timeout)
        namespace: dict[str, Any] = {"__name__": "symmle_compiled_regression"}
        exec(compile(self.source, "<symmle compiled regression>", "exec"), namespace)  # noqa: S102
        self._ns = namespace
        self.plan: dict[str, Any] = namespace["PLAN"]
        self.parameters = tuple(namespace["PARAMETERS"])
        self.constants = tuple(namespace["CONSTANTS"])
        self.kind = d.regression.kind

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a function of the generated module; its errors become symmle's."""
        ns = self._ns
        try:
            return fn(*args, **kwargs)
        except ns["DataError"] as exc:
            raise DataError(str(exc)) from None
        except ns["SpecError"] as exc:
            raise SpecError(str(exc)) from None
        except ns["SymmleError"] as exc:
            raise SymmleError(str(exc)) from None

    def __call__(self, y: Any, X: Any, offset: Any = None, **constants: Any) -> dict[str, Any]:
        """Maximum-likelihood estimates (see :meth:`estimate`)."""
        return self.estimate(y, X, offset, **constants)

    def estimate(self, y: Any, X: Any, offset: Any = None, **constants: Any) -> dict[str, Any]:
        """Maximum-likelihood estimates: ``beta`` an array in ``X``'s column order, the others floats."""
        return self._run(self._ns["estimate"], y, X, offset, **constants)

    def stderr(self, y: Any, X: Any, offset: Any = None, **constants: Any) -> dict[str, Any]:
        """Asymptotic standard errors, of the estimates' shapes (``None`` where none exists)."""
        return self._run(self._ns["stderr"], y, X, offset, **constants)

    def estimate_with_stderr(
        self, y: Any, X: Any, offset: Any = None, **constants: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(estimates, standard errors)`` from one fit."""
        return self._run(self._ns["estimate_with_stderr"], y, X, offset, **constants)

    def fit_blocks(
        self, run: Callable[[], Any], y: Any, X: Any, offset: Any, terms: list[str], **constants: Any
    ) -> dict[str, Any]:
        """The module's fit of data already checked, given by blocks of rows (``symmle fit``'s path).

        ``run()`` yields ``(y, X, offset)`` blocks (it is called for every pass); ``y`` and
        ``offset`` are whole, ``X`` the whole design or ``None`` for one read only by blocks.
        Returns the module's fit record: ``beta``, ``phi``, ``cov_beta``, ``cov_phi``,
        ``log_likelihood``, ``iterations``.
        """
        ns = self._ns
        c = self._run(ns["regression_constants"], self.plan, constants)
        return self._run(ns["regression_fit_blocks"], self.plan, run, y, X, offset, list(terms), c)

    def log_likelihood(self, y: Any, X: Any, offset: Any = None, **params_and_constants: Any) -> float:
        """:math:`\\sum_i l(y_i, x_i^\\top\\beta + o_i, \\phi)` at ``beta=...`` and the other values."""
        return self._run(self._ns["log_likelihood"], y, X, offset, **params_and_constants)
