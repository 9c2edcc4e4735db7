"""What a MAP fit adds to a :class:`~symmle.numbers.fitting.FitResult`: the priors and the log-posterior."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from symmle.base.numeric import to_function

if TYPE_CHECKING:
    from symmle.symbolic.derivation import Derivation

__all__ = ["map_fields"]


def map_fields(d: Derivation, loglik: float, values: Mapping[str, float]) -> dict[str, Any]:
    """``estimator``, ``prior`` and ``log_posterior`` (log-likelihood plus log-prior at ``values``)."""
    m = d.model
    syms = [q.symbol for q in m.parameters]
    log_prior = to_function(syms, d.prior.log_prior)
    with np.errstate(all="ignore"):
        lp = complex(log_prior(*[float(values[s.name]) for s in syms]))
    posterior = loglik + lp.real if abs(lp.imag) <= 1e-12 * max(1.0, abs(lp.real)) else float("nan")
    priors = []
    for pr in d.prior.priors:
        entry = pr.to_dict()
        entry["text"] = (
            pr.describe()
            if pr.family is not None
            else f"pi({', '.join(pr.parameters)}) = {sp.sstr(pr.density)}"
        )
        priors.append(entry)
    return {"estimator": "map", "prior": priors, "log_posterior": float(posterior)}
