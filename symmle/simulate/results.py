"""The result of a simulation check: :class:`CheckResult`, its JSON document and terminal table.

:func:`symmle.simulate.check.check` makes one; :mod:`symmle.simulate.verdicts` holds each of its
parameters against the theory (:class:`~symmle.simulate.verdicts.ParameterCheck`, with the
tolerances that :func:`~symmle.simulate.verdicts.tolerances` records in the document).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from symmle.base.terminal import printable
from symmle.simulate.verdicts import ParameterCheck, Verdict, tolerances

__all__ = ["CheckResult"]


@dataclass(frozen=True)
class CheckResult:
    """The result of a simulation check, made by :func:`~symmle.simulate.check.check`.

    Attributes
    ----------
    model : str
        Name of the model.
    n, reps : int
        Sample size and number of replicates.
    seed : int
        The seed given, or the fresh entropy drawn:
        ``check(..., seed=result.seed)`` repeats the run.
    true, constants : dict of str to float
        The parameter values simulated from, and the constants' values.
    sampler : str
        How the samples were drawn: ``"declared"`` (the model's
        ``[sampler]``) or ``"generic"`` (inverse CDF, or a table of
        cumulative mass, built from the density).
    parameters : dict of str to ParameterCheck
        What was found for each parameter.
    without_mle : int
        Replicates at ``n`` whose MLE was not found.
    existence : Verdict
        Whether those replicates are few enough (:data:`~symmle.simulate.verdicts.FAILURE_LIMIT`).
    sizes : tuple of int
        Sample sizes of the consistency check.
    seconds : float
        Time the check took.
    warnings : list of str
    estimates : dict of str to ndarray
        The ``reps`` estimates at ``n`` of every parameter (``nan`` where
        the MLE was not found), for plots and further study.

    Examples
    --------
    >>> from symmle.simulate.check import check
    >>> r = check("poisson", {"lam": 3}, n=40, reps=40, seed=2, agree=2)
    >>> r.passed, r.failures(), r.sampler, r.estimates["lam"].shape
    (True, [], 'declared', (40,))
    >>> doc = r.to_dict()
    >>> doc["verdict"], doc["replicates_without_mle"]
    ('pass', 0)
    >>> print(r.to_text().splitlines()[0])
    poisson: simulation check, n = 40, 40 replicates, seed 2, declared sampler
    """

    model: str
    n: int
    reps: int
    seed: int  #: the seed given, or the fresh entropy drawn: ``check(..., seed=result.seed)`` repeats the run
    true: dict[str, float]
    constants: dict[str, float]
    sampler: str
    parameters: dict[str, ParameterCheck]
    without_mle: int  #: replicates at ``n`` whose MLE was not found
    existence: Verdict
    sizes: tuple[int, ...]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    estimates: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return self.existence.passed is not False and all(p.passed for p in self.parameters.values())

    def failures(self) -> list[str]:
        """``["sigma2: agreement", ...]``: every failed check."""
        out = [] if self.existence.passed is not False else ["estimates: MLE not found too often"]
        for name, p in self.parameters.items():
            out += [f"{name}: {c}" for c in p.failures()]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``symmle check --json`` (schema 1)."""
        return {
            "schema": 1,
            "model": self.model,
            "n": self.n,
            "reps": self.reps,
            "seed": self.seed,
            "sampler": self.sampler,
            "true": self.true,
            "constants": self.constants,
            "sizes": list(self.sizes),
            "parameters": {name: p.to_dict() for name, p in self.parameters.items()},
            "replicates_without_mle": self.without_mle,
            "existence": self.existence.to_dict(),
            "tolerances": tolerances(),
            "passed": self.passed,
            "verdict": "pass" if self.passed else "fail",
            "failures": self.failures(),
            "seconds": round(self.seconds, 4),
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        """Return the check as a table for the terminal (``symmle check``).

        A header line, one row per parameter with each statistic and its
        verdict, the sizes and timing, a line per failed check, the
        warnings, and a final ``PASS``/``FAIL`` line.
        """
        seed = f"seed {self.seed}"
        consts = ", ".join(f"{k} = {v:g}" for k, v in self.constants.items())
        head = [
            f"{self.model}: simulation check, n = {self.n}, {self.reps} replicates, {seed}, "
            f"{self.sampler} sampler" + (f"; {consts}" if consts else "")
        ]
        rows = [
            (
                "parameter",
                "true",
                "mean",
                "bias ± MC error",
                "variance",
                "CRLB",
                "efficiency",
                "coverage",
                "agreement",
                "slope (expected)",
                "verdict",
            )
        ]
        for name, p in self.parameters.items():
            c = p.checks
            rows.append(
                (
                    name,
                    f"{p.true:.6g}",
                    _fmt(p.mean, ".6g"),
                    "n/a" if p.bias is None else f"{p.bias:.3g} ± {p.bias_mc_error:.2g}" + _mark(c["bias"]),
                    _fmt(p.variance, ".4g"),
                    _fmt(p.crlb, ".4g"),
                    _fmt(p.efficiency, ".4f") + _mark(c["efficiency"]),
                    _fmt(p.coverage, ".3f") + _mark(c["coverage"]),
                    (
                        "n/a"
                        if c["agreement"].passed is None
                        else f"{p.agreement:.1e}"
                        if p.agreement is not None
                        else c["agreement"].label
                    )
                    + _mark(c["agreement"]),
                    ("n/a" if p.slope is None else f"{p.slope:.3f} ({p.expected_slope:g})")
                    + _mark(c["consistency"]),
                    "pass" if p.passed else "FAIL",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = (
            head
            + [""]
            + ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        )
        agreed = max((p.agreement_rows for p in self.parameters.values()), default=0)
        lines += [
            "",
            (
                f"  sizes {', '.join(map(str, self.sizes))}; agreement on up to {agreed} replicates; "
                f"{self.without_mle} replicate(s) at n without an MLE; {self.seconds:.2f} s"
            ),
        ]
        failed = [
            (name, cname, v)
            for name, p in self.parameters.items()
            for cname, v in p.checks.items()
            if v.passed is False
        ]
        if self.existence.passed is False:
            lines.append(f"  FAIL estimates: {self.existence.note}")
        for name, cname, v in failed:
            lines.append(f"  FAIL {name} {cname}: {_explain(v)}")
        if self.warnings:
            lines += ["", "Warnings"] + [f"  - {w}" for w in self.warnings]
        lines += [
            "",
            "PASS: every check passed" if self.passed else f"FAIL: {len(self.failures())} check(s) failed",
        ]
        return printable("\n".join(lines) + "\n")  # the model's name is untrusted text


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, spec)


def _mark(v: Verdict) -> str:
    return " *" if v.passed is False else ""


def _explain(v: Verdict) -> str:
    parts = []
    if v.value is not None and v.target is not None and v.tolerance is not None:
        parts.append(f"{v.value:.4g}, expected {v.target:g} ± {v.tolerance:.3g}")
    if v.note:
        parts.append(v.note)
    return "; ".join(parts) or "failed"
