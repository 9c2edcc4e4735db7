"""The result of a vector model's simulation check: verdicts per entry, JSON per parameter in its shape.

:class:`VectorCheckResult` is a :class:`~symmle.simulate.results.CheckResult` whose
``parameters`` hold one :class:`~symmle.simulate.verdicts.ParameterCheck` per *entry*
(``mu[1]``, ``Sigma[2,1]``, ``s2``), so the terminal table, the verdict and the plots are the
scalar check's.  Its JSON document (``symmle check --json``) groups the entries back into their
parameters: ``parameters.mu.mean`` is a list, ``parameters.Sigma.mean`` a list of rows (the
symmetric matrix filled from its lower triangle), and so is every per-entry statistic, with
the full per-entry record under ``parameters.<name>.entries``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from symmle.base.terminal import printable
from symmle.simulate.results import CheckResult

__all__ = ["VectorCheckResult"]

_STATS = ("true", "mean", "bias", "bias_mc_error", "variance", "crlb", "efficiency", "coverage")


@dataclass(frozen=True)
class VectorCheckResult(CheckResult):
    """A simulation check of a vector model (see the module docstring).

    Attributes
    ----------
    dimension : int
        The dimension simulated at.
    shapes : dict of str to tuple
        Each parameter's shape: ``()``, ``(D,)`` or ``(D, D)``.
    entry_names : dict of str to list of str
        Each parameter's entries, in order (the lower triangle of a symmetric matrix).
    true_values : dict of str to float, list or list of lists
        The true value of each parameter in its shape.
    constant_values : dict
        The constants' values in their shapes.
    """

    dimension: int = 0
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    entry_names: dict[str, list[str]] = field(default_factory=dict)
    true_values: dict[str, Any] = field(default_factory=dict)
    constant_values: dict[str, Any] = field(default_factory=dict)

    def _shaped(self, name: str, values: list[Any]) -> Any:
        """Per-entry values in the parameter's shape (a symmetric matrix from its lower triangle)."""
        shape = self.shapes[name]
        if not shape:
            return values[0]
        if len(shape) == 1:
            return list(values)
        dim = shape[0]
        out: list[list[Any]] = [[None] * dim for _ in range(dim)]
        k = 0
        for j in range(dim):
            for i in range(j, dim):
                out[i][j] = out[j][i] = values[k]
                k += 1
        return out

    def parameter_dict(self, name: str) -> dict[str, Any]:
        """The JSON entry of one parameter: every statistic in the parameter's shape."""
        docs = {k: self.parameters[k].to_dict() for k in self.entry_names[name]}
        first = next(iter(docs.values()))
        out: dict[str, Any] = {"kind": first["kind"], "shape": list(self.shapes[name])}
        for stat in _STATS:
            out[stat] = self._shaped(name, [doc[stat] for doc in docs.values()])
        out["agreement"] = {
            "max_rel_diff": self._shaped(name, [doc["agreement"]["max_rel_diff"] for doc in docs.values()]),
            "replicates": max(doc["agreement"]["replicates"] for doc in docs.values()),
        }
        out["consistency"] = {
            "sizes": first["consistency"]["sizes"],
            "rmse": self._shaped(name, [doc["consistency"]["rmse"] for doc in docs.values()]),
            "slope": self._shaped(name, [doc["consistency"]["slope"] for doc in docs.values()]),
            "expected_slope": first["consistency"]["expected_slope"],
        }
        out["checks"] = {
            check: self._shaped(name, [doc["checks"][check]["passed"] for doc in docs.values()])
            for check in first["checks"]
        }
        out["verdict"] = "pass" if all(doc["verdict"] == "pass" for doc in docs.values()) else "fail"
        out["entries"] = docs
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``symmle check --json`` (schema 1), parameters in their shapes."""
        doc = super().to_dict()
        doc["dimension"] = self.dimension
        doc["true"] = dict(self.true_values)
        doc["constants"] = dict(self.constant_values)
        doc["parameters"] = {name: self.parameter_dict(name) for name in self.entry_names}
        return doc

    def to_text(self) -> str:
        """The scalar check's table, one row per entry; matrix constants shown on their own line."""
        text = CheckResult.to_text(replace(self, constants={}))
        head, _, rest = text.partition("\n")
        head += f", D = {self.dimension}"
        if self.constant_values:
            shown = "; ".join(f"{k} = {np.asarray(v).tolist()}" for k, v in self.constant_values.items())
            head += f"; {shown}"
        return printable(head + "\n" + rest)
