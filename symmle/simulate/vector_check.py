r"""The simulation check of a vector model: every entry of every estimator against the theory.

:func:`check_vector` is what :func:`symmle.simulate.check.check` runs for a model whose variable
is a vector.  The true values are read as vectors and matrices (``mu=[0,1]``,
``Sigma=[[2,0.5],[0.5,1]]``) by the safe parser (:func:`symmle.model.parse.parse_array`, never
``eval``), each checked against its domain (:func:`symmle.model.domains.check_matrix_value`: an
``spd`` matrix symmetric with a Cholesky factor, a simplex positive and summing to 1) and
against the others' dimension.  Replicates are drawn by the spec's ``[sampler]``
(:mod:`symmle.simulate.vector_sampling`) as ``(R, n, D)`` blocks and estimated by the compiled
model, all replicates of a block in one vectorised call for closed forms
(:meth:`~symmle.numbers.vector_compiled.CompiledVectorModel.estimate_rows`).

Per entry (``mu[1]``, ``Sigma[2,1]``, the lower triangle of a symmetric matrix), the checks of
the scalar model (:func:`symmle.simulate.verdicts.parameter_check`, same tolerances): the bias
against its Monte Carlo error, the variance against the Cramér–Rao bound (the diagonal of
:math:`(n I(\theta))^{-1}` in the coordinates of the information, vech for a symmetric matrix),
the coverage of the 95 % Wald intervals with the standard errors of ``fit``, the agreement with
an independent optimiser of the density written out at the dimension
(:mod:`symmle.simulate.vector_agreement`), and the error's decay with ``n``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from symmle.base.errors import SpecError
from symmle.numbers.fitting import Z95
from symmle.simulate.progress import ProgressBar
from symmle.simulate.simulation import BLOCK_BYTES, NUMERIC_BLOCK
from symmle.simulate.vector_agreement import entries, vector_agreement
from symmle.simulate.vector_results import VectorCheckResult
from symmle.simulate.vector_sampling import vector_sampler
from symmle.simulate.verdicts import ParameterCheck, existence_verdict, parameter_check

if TYPE_CHECKING:
    from symmle.model.spec import Model, Quantity
    from symmle.symbolic.derivation import Derivation

__all__ = ["check_vector", "vector_true_values"]


def _matrix_value(q: Quantity, raw: Any, what: str) -> sp.ImmutableMatrix:
    """A true value of ``q``, read and checked as a matrix constant's is (``spec.matrix_value``)."""
    from symmle.model.spec import matrix_value

    try:
        return matrix_value(q, raw, what)
    except SpecError as exc:  # "value of 'Sigma' is not ...": say which value
        raise SpecError(f"true {exc}" if str(exc).startswith("value of") else str(exc)) from None


def _as_array(q: Quantity, value: sp.ImmutableMatrix) -> np.ndarray:
    a = np.array(value.evalf(), dtype=float)
    return a if q.domain == "spd" else a.reshape(-1)


def vector_true_values(model: Model, true: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The true values of a vector model's parameters, checked, and the dimension they share.

    Parameters
    ----------
    model : Model
        A vector model (its matrix constants' values, if given, fix the dimension too).
    true : mapping
        Every parameter's value by name: text (``"[0, 1]"``, ``"[[2, 0.5], [0.5, 1]]"``,
        ``"2.5"``), a number, a list or an array.

    Returns
    -------
    (dict, int)
        The values (floats, (D,) or (D, D) arrays) and D.

    Raises
    ------
    SpecError
        One line: an unknown or missing name, text the parser refuses, a value outside its
        domain (a non-symmetric or not positive definite ``spd`` matrix, a simplex that does
        not sum to 1), or values of different dimensions.

    Examples
    --------
    >>> from symmle.model.build import model_from_dict
    >>> m = model_from_dict({"variable": "x", "dimension": "D", "density":
    ...     "exp(-transpose(x - mu) @ inverse(Sigma) @ (x - mu)/2)/sqrt((2*pi)**D*det(Sigma))",
    ...     "parameters": {"mu": "vector", "Sigma": "spd"}})
    >>> values, dim = vector_true_values(m, {"mu": "[0, 1]", "Sigma": "[[2, 0.5], [0.5, 1]]"})
    >>> dim, values["Sigma"].tolist()
    (2, [[2.0, 0.5], [0.5, 1.0]])
    >>> vector_true_values(m, {"mu": "[0, 1, 2]", "Sigma": "[[2, 0.5], [0.5, 1]]"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    symmle.SpecError: the true values have different dimensions: 'mu' has 3, 'Sigma' has 2 (every ...
    """
    from symmle.simulate.check import true_names, true_scalar

    true_names(model, true)
    out: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for q in model.constants:
        if q.is_matrix and q.value is not None:
            sizes[f"constant '{q.name}'"] = int(q.value.shape[0])
    for q in model.parameters:
        what = f"true value of {q.name}"
        if q.is_matrix:
            value = _matrix_value(q, true[q.name], what)
            sizes[f"'{q.name}'"] = int(value.shape[0])
            out[q.name] = _as_array(q, value)
        else:
            out[q.name] = true_scalar(q, true[q.name], what)
    if not sizes:
        raise SpecError(f"model '{model.name}' has no vector or matrix value to fix its dimension")
    if len(set(sizes.values())) > 1:
        (a, na), (b, nb) = next(
            ((x, y) for x, y in zip(sizes.items(), list(sizes.items())[1:]) if x[1] != y[1])
        )
        raise SpecError(
            f"the true values have different dimensions: {a} has {na}, {b} has {nb} "
            f"(every vector and matrix of the model has the one dimension {model.dimension})"
        )
    return out, next(iter(sizes.values()))


def _constant_values(model: Model) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for q in model.constants:
        if q.value is None:
            raise SpecError(f"missing value for constant '{q.name}' (give it as --const {q.name}=VALUE)")
        out[q.name] = _as_array(q, q.value) if q.is_matrix else float(q.value)
    return out


def _valid(model: Model, est: Mapping[str, np.ndarray]) -> np.ndarray:
    """Replicates whose every estimate is finite and in its domain."""
    ok = None
    for q in model.parameters:
        v = np.asarray(est[q.name], dtype=float)
        with np.errstate(invalid="ignore"):
            good = np.all(np.isfinite(v.reshape(v.shape[0], -1)), axis=1)
            if q.domain in ("positive", "positive_vector", "simplex"):
                good &= np.all((v > 0).reshape(v.shape[0], -1), axis=1)
            if q.domain == "spd":
                safe = np.where(np.isfinite(v), v, 0.0)
                good &= np.linalg.eigvalsh((safe + np.swapaxes(safe, -1, -2)) / 2)[:, 0] > 0
        ok = good if ok is None else ok & good
    assert ok is not None
    return ok


def _crlb(compiled: Any, theta: Mapping[str, Any], consts: Mapping[str, Any], dim: int, n: int, model: Model):
    """The Cramér–Rao bound of every entry at the true values (``None`` where the information is singular)."""
    info = compiled.fisher(dim, **theta, **consts)
    out: dict[str, float | None] = {}
    cov = None
    if info is not None and np.all(np.isfinite(info)):
        try:
            cov = np.linalg.inv(n * info)
        except np.linalg.LinAlgError:
            cov = None
    names = compiled.coordinates(dim)
    for k, name in enumerate(names):
        v = None if cov is None else float(cov[k, k])
        out[name] = v if v is not None and np.isfinite(v) and v > 0 else None
    return out


def check_vector(
    m: Model,
    true: Mapping[str, Any],
    *,
    n: int = 1000,
    reps: int = 1000,
    seed: int | None = None,
    constants: Mapping[str, Any] | None = None,
    sizes: Sequence[int] | None = None,
    agree: int = 50,
    generic_sampler: bool = False,
    progress: bool = False,
    timeout: float | None = None,
    derivation: Derivation | None = None,
) -> VectorCheckResult:
    """Check a vector model's estimators by simulation at known values, as :func:`symmle.check` does.

    Raises
    ------
    SpecError
        A true value or constant missing, unknown, outside its domain or of another dimension;
        ``generic_sampler``; a model without a ``[sampler]``.
    """
    from symmle.simulate.check import MAX_DRAWS, _sizes
    from symmle.symbolic.derivation import derive

    started = time.perf_counter()
    if generic_sampler:
        raise SpecError(
            "--generic-sampler draws scalar models only: a vector model is drawn by its [sampler]"
        )
    if constants:
        m = m.with_constants(dict(constants))
    consts = _constant_values(m)
    theta, dim = vector_true_values(m, true)
    n, reps, agree = int(n), int(reps), int(agree)
    if n < 2:
        raise SpecError("n must be at least 2")
    if reps < 2:
        raise SpecError("reps must be at least 2")
    if agree < 0:
        raise SpecError("agree must be at least 0")
    agree = min(agree, reps)
    all_sizes = _sizes(n, sizes)
    if any(q.domain == "spd" for q in m.parameters):  # below D + 1 rows the covariance MLE does not exist
        least = dim + 1
        if n < least or (sizes is not None and min(all_sizes) < least):
            raise SpecError(
                f"every sample size must be at least D + 1 = {least} rows: with fewer the scatter "
                "matrix is singular and the MLE of the covariance does not exist"
            )
        all_sizes = tuple(sorted({max(s, least) for s in all_sizes}))
    draws = reps * sum(all_sizes) * dim
    if draws > MAX_DRAWS:
        raise SpecError(
            f"the simulation would draw {draws:.3g} values (reps x the sample sizes "
            f"{', '.join(map(str, all_sizes))} x D = {dim}); "
            f"the limit is {MAX_DRAWS:.0e}: lower --n or --reps"
        )
    draw = vector_sampler(m, {**theta, **consts}, dim)
    d = derivation if derivation is not None else derive(m, timeout=timeout)
    compiled = d.compile(timeout=timeout)
    kinds = dict(compiled.kinds)
    numeric = any(k == "numeric" for k in kinds.values())
    seq = np.random.SeedSequence(seed)
    streams = dict(zip(all_sizes, seq.spawn(len(all_sizes))))
    total = reps * len(all_sizes) + agree
    runs: dict[int, dict[str, np.ndarray]] = {}
    covered: dict[str, list[np.ndarray]] = {}
    kept: list[np.ndarray] = []
    with ProgressBar(progress, total, f"check {m.name}") as bar:
        for size in sorted(all_sizes, reverse=True):
            bar.describe(f"check {m.name}: n = {size}")
            rng = np.random.default_rng(streams[size])
            per_block = max(1, BLOCK_BYTES // (8 * size * dim))
            if numeric:
                per_block = min(per_block, NUMERIC_BLOCK)
            parts: dict[str, list[np.ndarray]] = {}
            done = 0
            while done < reps:
                b = min(per_block, reps - done)
                x = draw((b, size), rng)
                if size == n and done < agree:
                    kept.append(x[: agree - done].copy())
                est = compiled.estimate_rows(x)
                for k, v in est.items():
                    parts.setdefault(k, []).append(v)
                if size == n:
                    _cover(compiled, m, est, theta, size, dim, covered)
                done += b
                bar.advance(b)
            runs[size] = {k: np.concatenate(v) for k, v in parts.items()}
        with_mle = {size: _valid(m, est) for size, est in runs.items()}
        bar.describe(f"check {m.name}: independent optimiser")
        rows = np.concatenate(kept) if kept else None
        agreed = vector_agreement(m, consts, theta, runs[n], with_mle[n], rows, bar.advance, timeout)

    ok = with_mle[n]
    without = int(reps - ok.sum())
    warn: list[str] = list(d.warnings)
    if without:
        warn.append(f"{without} of {reps} replicates at n = {n} have no MLE (left out of the statistics)")
    for size in all_sizes:
        k = int(reps - with_mle[size].sum())
        if size != n and k:
            warn.append(f"{k} of {reps} replicates at n = {size} have no MLE (left out of the RMSE)")
    crlb = _crlb(compiled, theta, consts, dim, n, m)
    if all(v is None for v in crlb.values()):
        warn.append("the Fisher information at the true values is singular or was not derived: no CRLB")
    params: dict[str, ParameterCheck] = {}
    entry_names: dict[str, list[str]] = {}
    true_entries: dict[str, float] = {}
    estimates: dict[str, np.ndarray] = {}
    for q in m.parameters:
        truth = entries(q.name, q.domain, theta[q.name])
        by_size = {s: dict(entries(q.name, q.domain, runs[s][q.name])) for s in all_sizes}
        entry_names[q.name] = [k for k, _ in truth]
        for k, t in truth:
            t = float(t)
            true_entries[k] = t
            est_k = by_size[n][k]
            estimates[k] = np.asarray(est_k, dtype=float).copy()
            hits = covered.get(k)
            coverage = float(np.mean(np.concatenate(hits)[ok])) if hits and ok.any() else None
            params[k] = parameter_check(
                k,
                kinds[q.name],
                t,
                est_k[ok],
                crlb.get(k),
                coverage,
                agreed.get(k, (None, 0, None, "not run (agree=0)")),
                n,
                {s: by_size[s][k][with_mle[s]] for s in all_sizes},
            )
    return VectorCheckResult(
        model=m.name,
        n=n,
        reps=reps,
        seed=int(seq.entropy),
        true=true_entries,
        constants={},
        sampler=draw.kind,
        parameters=params,
        without_mle=without,
        existence=existence_verdict(without, reps),
        sizes=all_sizes,
        seconds=time.perf_counter() - started,
        warnings=warn,
        estimates=estimates,
        dimension=dim,
        shapes={q.name: tuple(np.shape(theta[q.name])) for q in m.parameters},
        entry_names=entry_names,
        true_values={k: np.asarray(v).tolist() for k, v in theta.items()},
        constant_values={k: np.asarray(v).tolist() for k, v in consts.items()},
    )


def _cover(
    compiled: Any,
    m: Model,
    est: Mapping[str, np.ndarray],
    theta: Mapping[str, Any],
    n: int,
    dim: int,
    covered: dict[str, list[np.ndarray]],
) -> None:
    """Whether each replicate's 95 % Wald interval of each entry holds the truth (fit's standard errors)."""
    with np.errstate(all="ignore"):
        se = compiled.stderr_rows(est, n, dim)
    for q in m.parameters:
        s = se.get(q.name)
        if s is None:
            continue
        pairs = zip(
            entries(q.name, q.domain, est[q.name]),
            entries(q.name, q.domain, np.broadcast_to(s, np.shape(est[q.name]))),
            entries(q.name, q.domain, theta[q.name]),
        )
        for (k, e), (_, s_k), (_, t) in pairs:
            with np.errstate(invalid="ignore"):
                hit = np.abs(np.asarray(e) - float(t)) <= Z95 * np.asarray(s_k)
            covered.setdefault(k, []).append(hit)
