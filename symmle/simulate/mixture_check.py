r"""Simulation check of a finite mixture fitted by EM (``symmle check MODEL --mixture K``).

Each replicate draws ``n`` component labels from the true weights, then every
observation from its component with the family's sampler
(:func:`symmle.simulate.sampling.sampler`: the ``[sampler]`` table or the
generic inverse-CDF sampler, so any catalogue family or ``--pdf`` model works),
and fits the K-component mixture with
:func:`symmle.numbers.mixture_em.fit_mixture`, as ``symmle fit --mixture K``
does.

Label switching: the fit returns its components in the canonical order (sorted
by the first parameter, then the weight), so the true components are put in the
same order before they are compared.  Where two true components tie in the first
parameter the order of the estimates is not identified and a warning says so.

Per parameter and component: the true value, the mean estimate, the Monte Carlo
bias with its error :math:`s/\sqrt{R}`, the empirical SD :math:`s` of the
estimates, the mean of the fitted standard errors, and the coverage of the fitted
95 % intervals.  Verdicts use the tolerances of :mod:`symmle.simulate.verdicts`:
*bias* (:math:`|\bar\theta-\theta| \le Z s/\sqrt R + B s/\sqrt n`) and *coverage*
(:math:`|c - 0.95| \le Z\sqrt{0.95\cdot0.05/R} + C/\sqrt n + D(\gamma_1^2+|\gamma_2|)`).
A replicate whose fit degenerates (a collapsing component or a vanishing weight),
does not converge, or breaks an internal check (the log-likelihood decreasing) is
left out of the statistics and counted; more than
:data:`~symmle.simulate.verdicts.FAILURE_LIMIT` of them fails the check, and so
does any internal error.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from symmle.base._runtime import in_domain
from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import DataError, SpecError, VerificationError
from symmle.base.terminal import printable
from symmle.simulate.progress import ProgressBar
from symmle.simulate.verdicts import (
    BIAS_ALLOWANCE,
    COVERAGE_ALLOWANCE,
    SHAPE_ALLOWANCE,
    Verdict,
    Z,
    existence_verdict,
    tolerances,
)

if TYPE_CHECKING:
    from symmle.model.spec import Model

__all__ = ["EntryCheck", "MixtureCheckResult", "check_mixture", "mixture_truth"]

#: the name of the weights in --true and in the results
WEIGHTS = "w"
#: how far the true weights' sum may stray from 1 (rounding of decimal text)
SIMPLEX_TOL = 1e-9
#: most values one mixture check may draw (each replicate is an EM fit: far fewer than a closed form's)
MAX_DRAWS = 10**8


# --------------------------------------------------------------------------
# the true values
# --------------------------------------------------------------------------


def _vector(raw: Any, name: str, K: int) -> np.ndarray:
    """A list of K finite numbers from text (``"[0.3, 0.7]"``, the safe parser) or a sequence."""
    what = f"--true {name}"
    if isinstance(raw, str):
        from symmle.model.parse import parse_array

        text = raw.strip()
        if not text.startswith("["):
            raise SpecError(f"{what} must be a list of {K} numbers, one per component, e.g. {name}=[...]")
        arr = parse_array(text, what=what)
        if arr.shape[1] != 1:
            raise SpecError(f"{what} must be a flat list of {K} numbers, not a matrix")
        try:
            values = np.array([float(v) for v in arr], dtype=float)
        except (TypeError, ValueError):
            raise SpecError(f"{what}: every entry must be a real number") from None
    else:
        try:
            values = np.asarray(raw, dtype=float)
        except (TypeError, ValueError):
            raise SpecError(f"{what} must be a list of {K} numbers") from None
        if values.ndim != 1:
            raise SpecError(f"{what} must be a list of {K} numbers, one per component")
    if values.size != K:
        raise SpecError(f"{what} has {values.size} value(s); a mixture of {K} needs {K}, one per component")
    if not np.all(np.isfinite(values)):
        raise SpecError(f"{what}: every entry must be a finite number")
    return values


def true_weights(raw: Any, K: int) -> np.ndarray:
    """The K true weights from text or a sequence, checked to lie on the simplex (interior)."""
    w = _vector(raw, WEIGHTS, K)
    if np.any(w <= 0) or np.any(w >= 1):
        raise SpecError(f"--true {WEIGHTS}: every weight must lie strictly between 0 and 1")
    total = float(np.sum(w))
    if abs(total - 1.0) > SIMPLEX_TOL:
        raise SpecError(f"--true {WEIGHTS} must sum to 1 (the weights lie on the simplex), not {total:.10g}")
    return w / total


def true_names(model: Model, true: Mapping[str, Any], K: int) -> list[str]:
    """The component parameters' names, once ``true`` gives ``w`` and each of them and nothing else."""
    names = [q.name for q in model.parameters]
    if WEIGHTS in names:
        raise SpecError(
            f"the model has a parameter named '{WEIGHTS}', the name of a mixture's weights: rename it"
        )
    allowed = [WEIGHTS, *names]
    unknown = [k for k in true if k not in allowed]
    if unknown:
        raise SpecError(
            f"unknown parameter {str(unknown[0])[:40]!r} in --true; a mixture of {model.name} has "
            f"{', '.join(allowed)}"
        )
    missing = [k for k in allowed if k not in true]
    if missing:
        example = ",".join(f"{k}=[...]" for k in allowed)
        raise SpecError(f"missing true value of '{missing[0]}' (give every one as a list of {K}: {example})")
    return names


def mixture_truth(model: Model, true: Mapping[str, Any], K: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The true weights (K) and component parameters (P x K), checked, in canonical order.

    ``true`` maps ``w`` and every parameter of ``model`` to a list of K values
    (text such as ``"[0.3, 0.7]"`` goes through the safe parser, never ``eval``).
    The weights must lie on the simplex, every value in its parameter's domain,
    and no two components may coincide.  The components are returned sorted by
    the first parameter, then the weight (the order of
    :func:`~symmle.numbers.mixture_em.fit_mixture`), with warnings (a tie).

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> w, theta, warn = mixture_truth(load_model("exponential"), {"w": "[0.6, 0.4]", "lam": "[5, 0.5]"}, 2)
    >>> w.tolist(), theta.tolist(), warn
    ([0.4, 0.6], [[0.5, 5.0]], [])
    """
    names = true_names(model, true, K)
    w = true_weights(true[WEIGHTS], K)
    theta = np.empty((len(names), K))
    for p, q in enumerate(model.parameters):
        values = _vector(true[q.name], q.name, K)
        for k, v in enumerate(values):
            if not in_domain(float(v), q.domain):
                raise SpecError(
                    f"--true {q.name}: the value {v:g} of component {k + 1} is not in its domain '{q.domain}'"
                )
        theta[p] = values
    for a in range(K):
        for b in range(a + 1, K):
            if np.array_equal(theta[:, a], theta[:, b]):
                raise SpecError(
                    f"--true: components {a + 1} and {b + 1} have the same parameters, "
                    "so the mixture is not identifiable"
                )
    order = np.lexsort((w, theta[0]))
    w, theta = w[order], theta[:, order]
    warnings = []
    if np.unique(theta[0]).size < K:
        warnings.append(
            f"two true components share a value of {names[0]}: the fit "
            f"orders its components by {names[0]}, so their labels are not identified and their "
            "per-component statistics mix the two"
        )
    return w, theta, warnings


# --------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryCheck:
    """What the simulation found for one parameter of one component (``mu[2]``, ``w[1]``)."""

    name: str
    component: int
    true: float
    mean: float | None
    bias: float | None
    bias_mc_error: float | None
    sd: float | None
    mean_se: float | None
    coverage: float | None
    checks: dict[str, Verdict]

    @property
    def label(self) -> str:
        return f"{self.name}[{self.component}]"

    @property
    def passed(self) -> bool:
        return all(v.passed is not False for v in self.checks.values())


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class MixtureCheckResult:
    """The result of :func:`check_mixture`: per-component statistics and verdicts, JSON and text.

    ``entries`` maps ``w`` and each parameter to its K :class:`EntryCheck` (components
    in canonical order); ``estimates`` maps them to ``reps x K`` arrays (``nan`` in a
    failed replicate).
    """

    model: str
    components: int
    n: int
    reps: int
    seed: int
    sampler: str
    order_by: str
    true: dict[str, list[float]]
    constants: dict[str, float]
    entries: dict[str, list[EntryCheck]]
    starts: int
    degenerate: int
    not_converged: int
    internal_errors: int
    without_se: int
    existence: Verdict
    seconds: float
    warnings: list[str] = field(default_factory=list)
    estimates: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def failed(self) -> int:
        """Replicates left out of the statistics."""
        return self.degenerate + self.not_converged + self.internal_errors

    @property
    def passed(self) -> bool:
        return (
            self.existence.passed is not False
            and self.internal_errors == 0
            and all(e.passed for row in self.entries.values() for e in row)
        )

    def failures(self) -> list[str]:
        out = []
        if self.existence.passed is False:
            out.append(f"estimates: {self.failed} of {self.reps} replicates failed")
        if self.internal_errors:
            out.append(f"estimates: {self.internal_errors} internal error(s) of EM")
        for row in self.entries.values():
            for e in row:
                out += [f"{e.label}: {c}" for c, v in e.checks.items() if v.passed is False]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``symmle check --mixture K --json`` (schema 1): lists of K per statistic."""
        params = {}
        for name, row in self.entries.items():
            params[name] = {
                "true": [e.true for e in row],
                "mean": [_num(e.mean) for e in row],
                "bias": [_num(e.bias) for e in row],
                "bias_mc_error": [_num(e.bias_mc_error) for e in row],
                "sd": [_num(e.sd) for e in row],
                "variance": [_num(None if e.sd is None else e.sd**2) for e in row],
                "mean_se": [_num(e.mean_se) for e in row],
                "coverage": [_num(e.coverage) for e in row],
                "checks": {c: [e.checks[c].to_dict() for e in row] for c in row[0].checks},
                "verdict": "pass" if all(e.passed for e in row) else "fail",
            }
        tol = tolerances()
        return {
            "schema": 1,
            "model": self.model,
            "mixture": self.components,
            "n": self.n,
            "reps": self.reps,
            "seed": self.seed,
            "sampler": self.sampler,
            "order_by": self.order_by,
            "true": self.true,
            "constants": self.constants,
            "starts": self.starts,
            "parameters": params,
            "replicates_failed": {
                "total": self.failed,
                "degenerate": self.degenerate,
                "not_converged": self.not_converged,
                "internal_error": self.internal_errors,
            },
            "replicates_without_se": self.without_se,
            "existence": self.existence.to_dict(),
            "tolerances": {k: tol[k] for k in ("z", "bias", "coverage", "existence", "constants")},
            "passed": self.passed,
            "verdict": "pass" if self.passed else "fail",
            "failures": self.failures(),
            "seconds": round(self.seconds, 4),
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def _row_titles(self) -> tuple[str, ...]:
        return ("parameter",)

    def _row_head(self, e: EntryCheck) -> tuple[str, ...]:
        return (e.label,)

    def _ordered_entries(self) -> list[EntryCheck]:
        return [e for row in self.entries.values() for e in row]

    def to_text(self) -> str:
        """The check as a table for the terminal, one row per parameter and component."""
        consts = ", ".join(
            f"{k} = {v:g}" if isinstance(v, (int, float)) else f"{k} = {v}" for k, v in self.constants.items()
        )
        head = (
            f"{self.model} mixture of {self.components}: simulation check, n = {self.n}, "
            f"{self.reps} replicates, seed {self.seed}, {self.sampler} sampler"
            + (f"; {consts}" if consts else "")
        )
        rows = [
            (*self._row_titles(), "true", "mean", "bias ± MC error", "SD", "mean SE", "coverage", "verdict")
        ]
        for e in self._ordered_entries():
            rows.append(
                (
                    *self._row_head(e),
                    f"{e.true:.6g}",
                    _fmt(e.mean, ".6g"),
                    "n/a"
                    if e.bias is None
                    else f"{e.bias:.3g} ± {e.bias_mc_error:.2g}" + _mark(e.checks["bias"]),
                    _fmt(e.sd, ".4g"),
                    _fmt(e.mean_se, ".4g"),
                    _fmt(e.coverage, ".3f") + _mark(e.checks["coverage"]),
                    "pass" if e.passed else "FAIL",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [head, ""] + ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines += [
            "",
            f"  components in canonical order (by {self.order_by}); {self.failed} of {self.reps} replicates "
            f"failed ({self.degenerate} degenerate, {self.not_converged} not converged, "
            f"{self.internal_errors} internal error); {self.without_se} without standard errors; "
            f"{self.starts} EM starts per fit; {self.seconds:.2f} s",
        ]
        if self.existence.passed is False:
            lines.append(f"  FAIL estimates: {self.existence.note}")
        if self.internal_errors:
            lines.append(
                f"  FAIL estimates: {self.internal_errors} replicate(s) broke an internal check of EM"
            )
        for row in self.entries.values():
            for e in row:
                for c, v in e.checks.items():
                    if v.passed is False:
                        lines.append(f"  FAIL {e.label} {c}: {_explain(v)}")
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


# --------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------


def _entry(
    name: str, k: int, true: float, est: np.ndarray, se: np.ndarray, covered: np.ndarray, n: int
) -> EntryCheck:
    """Statistics and verdicts of one entry from the replicates that succeeded (``se``/``covered``
    ``nan`` where the fit gave no standard error)."""
    true = float(true)
    count = est.size
    checks: dict[str, Verdict] = {}
    mean = bias = mc = sd = None
    if count >= 2:
        mean = float(np.mean(est))
        bias = mean - true
        sd = float(np.std(est, ddof=1))
        mc = sd / math.sqrt(count)
        tol = Z * mc + BIAS_ALLOWANCE * sd / math.sqrt(n)
        checks["bias"] = Verdict(bool(abs(bias) <= tol), bias, 0.0, tol)
    else:
        checks["bias"] = Verdict(False, note="fewer than 2 replicates with an estimate")
    has_se = np.isfinite(se)
    mean_se = float(np.mean(se[has_se])) if has_se.any() else None
    cov_rows = covered[np.isfinite(covered)]
    coverage = float(np.mean(cov_rows)) if cov_rows.size else None
    if coverage is not None and sd:
        centred = est - est.mean()
        m2 = float(np.mean(centred**2))
        skew = float(np.mean(centred**3)) / m2**1.5
        kurt = float(np.mean(centred**4)) / m2**2
        tol = (
            Z * math.sqrt(0.95 * 0.05 / cov_rows.size)
            + COVERAGE_ALLOWANCE / math.sqrt(n)
            + SHAPE_ALLOWANCE * (skew**2 + abs(kurt - 3.0))
        )
        checks["coverage"] = Verdict(bool(abs(coverage - 0.95) <= tol), coverage, 0.95, tol)
    else:
        checks["coverage"] = Verdict(None, note="no standard errors")
    return EntryCheck(name, k + 1, float(true), mean, bias, mc, sd, mean_se, coverage, checks)


# --------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------


def check_mixture(
    model: Any,
    true: Mapping[str, Any],
    components: int,
    *,
    n: int = 1000,
    reps: int = 100,
    seed: int | None = None,
    constants: Mapping[str, Any] | None = None,
    generic_sampler: bool = False,
    starts: int = 10,
    ci: str = "transformed",
    progress: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> MixtureCheckResult:
    """Check the EM fit of a K-component mixture by simulation at known weights and parameters.

    Parameters
    ----------
    model : str, Path, Model or Derivation
        The component family.
    true : mapping
        ``w`` and every parameter of the family, each a list of K values (or text
        ``"[0.3, 0.7]"``).
    components : int
        K, at least 2.
    n, reps : int
        Sample size and number of replicates.
    seed : int, optional
        Seed of the random streams (data and EM starts); ``None`` draws fresh
        entropy, recorded in the result.
    constants : mapping, optional
        Values of the family's constants.
    generic_sampler : bool
        Draw each component by the generic inverse-CDF sampler.
    starts : int
        EM starts of each fit (as :func:`~symmle.numbers.mixture_em.fit_mixture`).
    ci : str
        The intervals whose coverage is measured (as ``symmle fit --ci``).
    progress : bool
        A progress bar on standard error.
    timeout : float, optional
        Budget in seconds of each symbolic step.

    Examples
    --------
    >>> true = {"w": [0.5, 0.5], "lam": [0.2, 5]}
    >>> r = check_mixture("exponential", true, 2, n=300, reps=4, seed=1, starts=2)
    >>> r.failed, [e.label for e in r.entries["lam"]]
    (0, ['lam[1]', 'lam[2]'])
    """
    from symmle.model.build import load_model
    from symmle.numbers.mixture_em import check_components, fit_mixture
    from symmle.simulate.check import _constant_values, _number
    from symmle.simulate.sampling import sampler as make_sampler
    from symmle.symbolic.derivation import Derivation, derive

    started = time.perf_counter()
    K = check_components(components)
    if K < 2:
        raise SpecError("a mixture check needs at least 2 components")
    if isinstance(model, Derivation):
        d: Derivation | None = model
        m = model.model
    else:
        d, m = None, load_model(model)
    if m.is_vector and not m.is_regression:
        from symmle.simulate.mixture_vector_check import check_vector_mixture

        return check_vector_mixture(
            d if d is not None else m,
            true,
            K,
            n=n,
            reps=reps,
            seed=seed,
            constants=constants,
            generic_sampler=generic_sampler,
            starts=starts,
            ci=ci,
            progress=progress,
            timeout=timeout,
        )
    if m.is_vector or m.is_regression:
        raise SpecError(
            "--mixture: only scalar families can be mixed for now (no vector or regression models)"
        )
    if constants:
        m = m.with_constants(
            {k: (v if isinstance(v, str) else _number(v, f"constant {k}")) for k, v in constants.items()}
        )
        d = None
    consts = _constant_values(m)
    w, theta, warn = mixture_truth(m, true, K)
    n, reps, starts = int(n), int(reps), int(starts)
    if n < 2 * K:
        raise SpecError(f"n must be at least {2 * K} for a mixture of {K}")
    if reps < 2:
        raise SpecError("reps must be at least 2")
    if starts < 1:
        raise SpecError("starts must be at least 1")
    if n * reps > MAX_DRAWS:
        raise SpecError(f"the simulation would draw {n * reps:.3g} values; the limit is {MAX_DRAWS:.0e}")
    names = [q.name for q in m.parameters]
    draws = [
        make_sampler(m, {**dict(zip(names, theta[:, k].tolist())), **consts}, generic=generic_sampler)
        for k in range(K)
    ]
    if d is None:
        d = derive(m, timeout=timeout)
    seq = np.random.SeedSequence(seed)
    data_seq, fit_seq = seq.spawn(2)
    rng = np.random.default_rng(data_seq)
    fit_seeds = np.random.default_rng(fit_seq).integers(0, 2**31 - 1, size=reps)
    keys = [WEIGHTS, *names]
    est = {k: np.full((reps, K), np.nan) for k in keys}
    se = {k: np.full((reps, K), np.nan) for k in keys}
    covered = {k: np.full((reps, K), np.nan) for k in keys}
    truth = {WEIGHTS: w, **{name: theta[p] for p, name in enumerate(names)}}
    ok = np.zeros(reps, dtype=bool)
    degenerate = not_converged = internal = 0
    internal_notes: list[str] = []
    with ProgressBar(progress, reps, f"check {m.name} mixture of {K}") as bar:
        for r in range(reps):
            labels = rng.choice(K, size=n, p=w)
            x = np.empty(n)
            for k in range(K):
                mask = labels == k
                if mask.any():
                    x[mask] = draws[k](int(mask.sum()), rng)
            try:
                res = fit_mixture(d, x, K, consts, seed=int(fit_seeds[r]), starts=starts, ci=ci)
            except DataError:
                degenerate += 1
                bar.advance(1)
                continue
            except VerificationError as exc:
                internal += 1
                internal_notes.append(str(exc))
                bar.advance(1)
                continue
            bar.advance(1)
            if not res.converged:
                not_converged += 1
                continue
            ok[r] = True
            for key in keys:
                est[key][r] = res.estimates[key]
                if res.stderr.get(key) is not None:
                    se[key][r] = res.stderr[key]
                if res.ci95.get(key) is not None:
                    lo, hi = res.ci95[key]
                    covered[key][r] = (np.asarray(lo) <= truth[key]) & (truth[key] <= np.asarray(hi))
    failed = degenerate + not_converged + internal
    without_se = int(np.sum(ok & np.isnan(se[WEIGHTS][:, 0])))
    if failed:
        warn.append(
            f"{failed} of {reps} replicates failed ({degenerate} degenerate, {not_converged} not converged, "
            f"{internal} internal error) and are left out of the statistics"
        )
    if internal_notes:
        warn.append(internal_notes[0])
    if without_se:
        warn.append(f"{without_se} replicate(s) have no standard errors (left out of the coverage)")
    entries = {
        key: [
            _entry(key, k, truth[key][k], est[key][ok, k], se[key][ok, k], covered[key][ok, k], n)
            for k in range(K)
        ]
        for key in keys
    }
    existence = existence_verdict(failed, reps)
    existence = Verdict(
        existence.passed,
        existence.value,
        existence.target,
        existence.tolerance,
        f"{failed} of {reps} replicates failed (degenerate, not converged or an internal error)",
    )
    return MixtureCheckResult(
        model=m.name,
        components=K,
        n=n,
        reps=reps,
        seed=int(seq.entropy),
        sampler=draws[0].kind,
        order_by=names[0],
        true={key: [float(v) for v in truth[key]] for key in keys},
        constants=consts,
        entries=entries,
        starts=starts,
        degenerate=degenerate,
        not_converged=not_converged,
        internal_errors=internal,
        without_se=without_se,
        existence=existence,
        seconds=time.perf_counter() - started,
        warnings=warn,
        estimates={k: v.copy() for k, v in est.items()},
    )
