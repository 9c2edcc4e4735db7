"""Several families fitted to the same data: one table ranked by AIC, with the goodness of fit.

:func:`compare` fits every model and runs :func:`symmle.simulate.bootstrap.gof` on it (one child of
the seed's stream per model, so a run is repeatable and the models' streams are independent).  A
model that cannot fit the data (the data leave its support, its MLE does not exist, no estimator
could be derived) is never dropped silently: it is listed in ``excluded`` with the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import SpecError, SymmleError
from symmle.base.terminal import printable
from symmle.numbers.cdf import CDF_TIMEOUT
from symmle.numbers.gof import NAMES, GofResult
from symmle.simulate.bootstrap import gof

__all__ = ["Comparison", "compare"]


@dataclass(frozen=True)
class Comparison:
    """The fits of several models to one data set, ranked by AIC (made by :func:`compare`).

    Attributes
    ----------
    fits : list of GofResult
        The models that fit, best (smallest AIC) first.
    excluded : list of (str, str)
        ``(model, reason)`` for every model that could not fit the data.
    n : int
        Observations.
    boot : int
        Bootstrap replicates of each model's p-values.
    seed : int or None
        The seed of the whole comparison.
    """

    fits: list[GofResult]
    excluded: list[tuple[str, str]]
    n: int
    boot: int
    seed: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``symmle compare --json`` (schema 1), fits in rank order."""
        fits = []
        for rank, r in enumerate(self.fits, start=1):
            doc: dict[str, Any] = {
                "rank": rank,
                "model": r.model,
                "k": len(r.estimates),
                "estimates": {k: _plain(v) for k, v in r.estimates.items()},
                "log_likelihood": _plain(r.log_likelihood),
                "aic": _plain(r.aic),
                "bic": _plain(r.bic),
            }
            for key, s in r.statistics.items():
                doc[key] = s.to_dict()
            doc["cdf"] = r.cdf
            doc["warnings"] = list(r.warnings)
            fits.append(doc)
        return {
            "schema": 1,
            "n": self.n,
            "boot": self.boot,
            "seed": self.seed,
            "fits": fits,
            "excluded": [{"model": m, "reason": why} for m, why in self.excluded],
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """One table like R's ``gofstat`` over several fits, ranked by AIC."""
        lines = [f"{len(self.fits)} of {len(self.fits) + len(self.excluded)} models fitted to n = {self.n}"]
        lines[0] += " observations, ranked by AIC"
        if self.fits:
            lines.append("")
        keys = [k for k in NAMES if any(k in r.statistics for r in self.fits)]
        head = ["rank", "model", "k", "log-lik", "AIC", "BIC"]
        short = {"ks": "KS", "cvm": "CvM", "ad": "AD", "chi2": "chi2"}
        for k in keys:
            head += [short[k], "p"] if self.boot else [short[k]]
        rows = [head]
        for rank, r in enumerate(self.fits, start=1):
            row = [str(rank), r.model, str(len(r.estimates)), f"{r.log_likelihood:.6g}"]
            row += [_num(r.aic), _num(r.bic)]
            for k in keys:
                s = r.statistics.get(k)
                row += ["" if s is None else f"{s.statistic:.4g}"]
                if self.boot:
                    row += ["" if s is None or s.p_value is None else f"{s.p_value:.3f}"]
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        for r in rows if self.fits else []:
            cells = [c.ljust(w) if i in (1,) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
            lines.append("  " + "  ".join(cells).rstrip())
        if self.fits:
            lines.append("")
            lines.append("  " + ", ".join(f"{NAMES[k]} ({short[k]})" for k in keys))
            if self.boot:
                worst = max(
                    (s.mc_error for r in self.fits for s in r.statistics.values() if s.mc_error is not None),
                    default=0.0,
                )
                lines.append(
                    f"  p-values: parametric bootstrap, B = {self.boot} per model"
                    + (f" (seed {self.seed})" if self.seed is not None else "")
                    + f"; Monte Carlo error at most {worst:.3f}"
                )
            else:
                lines.append("  no p-values (--boot 0)")
        if self.excluded:
            lines += ["", "Excluded"] + [f"  - {m}: {why}" for m, why in self.excluded]
        notes = [f"{r.model}: {w}" for r in self.fits for w in r.warnings] + list(self.warnings)
        if notes:
            lines += ["", "Warnings"] + [f"  - {w}" for w in notes]
        return printable("\n".join(lines) + "\n")


def compare(
    models: Sequence[Any],
    data: Any,
    *,
    constants: Mapping[str, Mapping[str, Any]] | None = None,
    boot: int = 1000,
    seed: int | None = None,
    progress: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    cdf_timeout: float | None = CDF_TIMEOUT,
) -> Comparison:
    """Fit each of ``models`` to ``data`` and rank them by AIC, with KS, CvM and AD and their p-values.

    Parameters
    ----------
    models : sequence
        Catalogue names, spec files, Models or Derivations (scalar models).
    data : array_like
        The observations.
    constants : mapping, optional
        ``{model name: {constant: value}}`` for models with constants.
    boot : int
        Bootstrap replicates of each model's p-values (0: statistics only).
    seed : int, optional
        Seed of the comparison; each model gets its own child stream.
    progress : bool
        Progress bars on standard error.
    timeout : float, optional
        Budget in seconds of each symbolic step.
    cdf_timeout : float, optional
        Budget of each symbolic integral of a distribution function (see :func:`gof`).

    Returns
    -------
    Comparison

    Examples
    --------
    >>> x = np.random.default_rng(0).exponential(2.0, size=300)
    >>> c = compare(["exponential", "normal"], -x, boot=0)
    >>> [r.model for r in c.fits], c.excluded[0][0]
    (['normal'], 'exponential')
    """
    if not models:
        raise SpecError("compare needs at least one model")
    x = np.asarray(data, dtype=float).reshape(-1)
    seq = np.random.SeedSequence(seed)
    children = seq.spawn(len(models))
    fits: list[GofResult] = []
    excluded: list[tuple[str, str]] = []
    for ref, child in zip(models, children):
        name = _name(ref)
        try:
            r = gof(
                ref,
                x,
                (constants or {}).get(name),
                boot=boot,
                seed=child,
                progress=progress,
                timeout=timeout,
                cdf_timeout=cdf_timeout,
            )
        except SymmleError as exc:
            excluded.append((name, str(exc)))
            continue
        fits.append(r)
    fits.sort(key=lambda r: (r.aic is None, r.aic if r.aic is not None else math.inf))
    warn = []
    if len({r.distribution.model.discrete for r in fits if r.distribution is not None}) > 1:
        warn.append(
            "the fits mix discrete and continuous models: a log-likelihood of masses and one of "
            "densities are not on one scale, so their AIC and BIC do not compare"
        )
    return Comparison(fits, excluded, int(x.shape[0]), int(boot), int(seq.entropy) if boot else None, warn)


def _name(ref: Any) -> str:
    for attr in ("name",):
        if hasattr(ref, attr) and isinstance(getattr(ref, attr), str):
            return getattr(ref, attr)
    if hasattr(ref, "model") and hasattr(ref.model, "name"):
        return ref.model.name
    return str(ref)


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.6g}"


def _plain(v: Any) -> Any:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None
