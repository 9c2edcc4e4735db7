r"""Simulation check of a mixture of a vector family (``symmle check mvnormal --mixture K``).

The vector counterpart of :mod:`symmle.simulate.mixture_check`.  The true values are given per
component: ``w=[0.4,0.6]``, ``mu=[[0,0],[3,3]]`` (K vectors), ``Sigma=[[[1,0],[0,1]],[[1,0.5],
[0.5,2]]]`` (K matrices).  The outer list is split at its top-level commas and each component's
value is read by the safe parser (:func:`symmle.model.parse.parse_array`, never ``eval``) and
checked as a plain vector check checks it (:func:`symmle.simulate.vector_check.vector_true_values`:
a symmetric positive definite ``spd`` matrix, one dimension shared by every value); the weights
must lie on the simplex.

Each replicate draws ``n`` component labels from the true weights and every row from its
component with the family's declared ``[sampler]`` (:mod:`symmle.simulate.vector_sampling`), then
fits the K-component mixture with :func:`symmle.numbers.mixture_vector.fit_vector_mixture`, as
``symmle fit --mixture K`` does.  The fit returns its components sorted by the first coordinate
of the first parameter (then the weight); the true components are put in the same order.

Per entry of each component (``w``, ``mu[2]``, the lower triangle ``Sigma[2,1]`` of a symmetric
matrix): the Monte Carlo bias with its error, the empirical SD, the mean fitted standard error
and the coverage of the fitted 95 % intervals, with the verdicts and tolerances of the scalar
mixture check (:func:`symmle.simulate.mixture_check._entry`).  Degenerate, unconverged or
internally failing replicates are counted and left out, as there.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from symmle.base.budget import DEFAULT_TIMEOUT
from symmle.base.errors import DataError, SpecError, VerificationError
from symmle.simulate.mixture_check import (
    MAX_DRAWS,
    WEIGHTS,
    EntryCheck,
    MixtureCheckResult,
    _entry,
    true_names,
    true_weights,
)
from symmle.simulate.progress import ProgressBar
from symmle.simulate.verdicts import Verdict, existence_verdict

__all__ = ["VectorMixtureCheckResult", "check_vector_mixture", "vector_mixture_truth", "split_components"]


def split_components(raw: Any, name: str, K: int) -> list[Any]:
    """The K per-component values of ``name``: the top-level items of a list.

    Text (``"[[0, 0], [3, 3]]"``) is split at the commas outside any bracket or parenthesis,
    nothing evaluated; a sequence or array gives its first-axis items.

    >>> split_components("[[0, 0], [3, 3]]", "mu", 2)
    ['[0, 0]', '[3, 3]']
    >>> split_components("[1, 2.5]", "sigma2", 2)
    ['1', '2.5']
    """
    what = f"--true {name}"
    if isinstance(raw, str):
        text = raw.strip()
        if not (text.startswith("[") and text.endswith("]")):
            raise SpecError(f"{what} must be a list of {K} values, one per component, e.g. {name}=[...]")
        items: list[Any] = []
        depth, start = 0, 1
        for i, c in enumerate(text[1:-1], start=1):
            if c in "([":
                depth += 1
            elif c in ")]":
                depth -= 1
                if depth < 0:
                    raise SpecError(f"{what}: unbalanced brackets")
            elif c == "," and depth == 0:
                items.append(text[start:i].strip())
                start = i + 1
        if depth != 0:
            raise SpecError(f"{what}: unbalanced brackets")
        last = text[start:-1].strip()
        if last or items:
            items.append(last)
        if any(not item for item in items):
            raise SpecError(f"{what}: an empty item in the list")
    else:
        try:
            items = list(raw)
        except TypeError:
            raise SpecError(f"{what} must be a list of {K} values, one per component") from None
    if len(items) != K:
        raise SpecError(
            f"{what} has {len(items)} component value(s); a mixture of {K} needs {K}, one per component"
        )
    return items


def vector_mixture_truth(
    model: Any, true: Mapping[str, Any], K: int
) -> tuple[np.ndarray, list[dict], int, list]:
    """The true weights and per-component values (by name), checked, in canonical order, and D.

    Returns ``(w, values, dim, warnings)``: ``values[k]`` maps each parameter to a float, a (D,)
    or a (D, D) array.

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> true = {"w": "[0.6, 0.4]", "mu": "[[3, 0], [0, 0]]", "Sigma": "[[[1, 0], [0, 1]], [[2, 0], [0, 2]]]"}
    >>> w, values, dim, warn = vector_mixture_truth(load_model("mvnormal"), true, 2)
    >>> w.tolist(), values[0]["mu"].tolist(), dim, warn
    ([0.4, 0.6], [0.0, 0.0], 2, [])
    """
    from symmle.simulate.vector_check import vector_true_values

    names = true_names(model, true, K)
    w = true_weights(true[WEIGHTS], K)
    split = {name: split_components(true[name], name, K) for name in names}
    values: list[dict] = []
    dims: list[int] = []
    for k in range(K):
        try:
            v, dim = vector_true_values(model, {name: split[name][k] for name in names})
        except SpecError as exc:
            raise SpecError(f"--true, component {k + 1}: {exc}") from None
        values.append(v)
        dims.append(dim)
    if len(set(dims)) > 1:
        raise SpecError(
            f"--true: the components have different dimensions ({', '.join(map(str, dims))}); "
            f"every one must have the dimension {model.dimension}"
        )
    for a in range(K):
        for b in range(a + 1, K):
            if all(np.array_equal(values[a][name], values[b][name]) for name in names):
                raise SpecError(
                    f"--true: components {a + 1} and {b + 1} have the same parameters, "
                    "so the mixture is not identifiable"
                )
    first = names[0]
    keys = np.array([float(np.asarray(v[first], dtype=float).reshape(-1)[0]) for v in values])
    order = np.lexsort((w, keys))
    w, values = w[order], [values[i] for i in order]
    warnings = []
    if np.unique(keys).size < K:
        warnings.append(
            f"two true components share the first coordinate of {first}: the fit orders its "
            f"components by it, so their labels are not identified and their per-component "
            "statistics mix the two"
        )
    return w, values, dims[0], warnings


@dataclass(frozen=True)
class VectorEntryCheck(EntryCheck):
    """One entry (``mu[2]``, ``Sigma[2,1]``) of one component."""

    @property
    def label(self) -> str:
        return f"{self.name} of component {self.component}"


@dataclass(frozen=True)
class VectorMixtureCheckResult(MixtureCheckResult):
    """:class:`~symmle.simulate.mixture_check.MixtureCheckResult` of a vector family.

    ``entries`` maps each entry name (``w``, ``mu[1]``, ``Sigma[2,1]``) to its K checks;
    ``true`` gives each parameter as K vectors or matrices; the table has a component column.
    """

    def _row_titles(self) -> tuple[str, ...]:
        return ("component", "parameter")

    def _row_head(self, e: EntryCheck) -> tuple[str, ...]:
        return (str(e.component), e.name)

    def _ordered_entries(self) -> list[EntryCheck]:
        rows = list(self.entries.values())
        return [row[k] for k in range(self.components) for row in rows]


def check_vector_mixture(
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
) -> VectorMixtureCheckResult:
    """Check the EM fit of a K-component mixture of a vector family by simulation.

    As :func:`symmle.simulate.mixture_check.check_mixture`; ``true`` gives ``w`` (K weights)
    and each parameter as a list of K component values (vectors, matrices or numbers).

    Examples
    --------
    >>> true = {"w": [0.5, 0.5], "mu": [[0, 0], [5, 5]], "Sigma": [np.eye(2), np.eye(2)]}
    >>> r = check_vector_mixture("mvnormal", true, 2, n=200, reps=3, seed=1, starts=2)
    >>> r.failed, [e.label for e in r.entries["mu[2]"]]
    (0, ['mu[2] of component 1', 'mu[2] of component 2'])
    """
    from symmle.model.build import load_model
    from symmle.numbers.mixture_em import check_components
    from symmle.numbers.mixture_vector import _entries, fit_vector_mixture
    from symmle.simulate.vector_check import _constant_values
    from symmle.simulate.vector_sampling import vector_sampler
    from symmle.symbolic.derivation import Derivation, derive

    started = time.perf_counter()
    K = check_components(components)
    if K < 2:
        raise SpecError("a mixture check needs at least 2 components")
    if generic_sampler:
        raise SpecError(
            "--generic-sampler draws scalar models only: a vector model is drawn by its [sampler]"
        )
    if isinstance(model, Derivation):
        d: Derivation | None = model
        m = model.model
    else:
        d, m = None, load_model(model)
    if not m.is_vector or m.is_regression:
        raise SpecError(
            "check_vector_mixture checks mixtures of vector families (no scalar or regression model)"
        )
    if m.support_set != "real":
        raise SpecError(
            f"--mixture: '{m.name}' has rows on a {m.support_set} support; "
            "only families on R^D can be mixed for now"
        )
    if constants:
        m = m.with_constants(dict(constants))
        d = None
    consts = _constant_values(m)
    w, values, dim, warn = vector_mixture_truth(m, true, K)
    n, reps, starts = int(n), int(reps), int(starts)
    if n < K * (dim + 1):
        raise SpecError(
            f"n must be at least K (D + 1) = {K * (dim + 1)} for a mixture of {K} in {dim} dimensions"
        )
    if reps < 2:
        raise SpecError("reps must be at least 2")
    if starts < 1:
        raise SpecError("starts must be at least 1")
    if n * reps * dim > MAX_DRAWS:
        raise SpecError(
            f"the simulation would draw {n * reps * dim:.3g} values; the limit is {MAX_DRAWS:.0e}"
        )
    draws = [vector_sampler(m, {**values[k], **consts}, dim) for k in range(K)]
    if d is None:
        d = derive(m, timeout=timeout)
    names = [q.name for q in m.parameters]
    # the entries checked: each parameter's (a symmetric matrix's lower triangle), and the weights
    layout = [(WEIGHTS, WEIGHTS, ())] + [
        (label, name, index or ()) for name in names for label, index in _entries(name, values[0][name])
    ]
    truth = {
        label: np.array(
            [w[k] if name == WEIGHTS else np.asarray(values[k][name])[index] for k in range(K)], dtype=float
        )
        for label, name, index in layout
    }
    seq = np.random.SeedSequence(seed)
    data_seq, fit_seq = seq.spawn(2)
    rng = np.random.default_rng(data_seq)
    fit_seeds = np.random.default_rng(fit_seq).integers(0, 2**31 - 1, size=reps)
    est = {label: np.full((reps, K), np.nan) for label, _, _ in layout}
    se = {label: np.full((reps, K), np.nan) for label, _, _ in layout}
    covered = {label: np.full((reps, K), np.nan) for label, _, _ in layout}
    ok = np.zeros(reps, dtype=bool)
    degenerate = not_converged = internal = 0
    internal_notes: list[str] = []
    with ProgressBar(progress, reps, f"check {m.name} mixture of {K}") as bar:
        for r in range(reps):
            labels = rng.choice(K, size=n, p=w)
            x = np.empty((n, dim))
            for k in range(K):
                mask = labels == k
                if mask.any():
                    x[mask] = draws[k](int(mask.sum()), rng)
            try:
                res = fit_vector_mixture(
                    d, x, K, seed=int(fit_seeds[r]), starts=starts, ci=ci, timeout=timeout
                )
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
            for label, name, index in layout:
                at = (slice(None), *index)
                est[label][r] = np.asarray(res.estimates[name], dtype=float)[at]
                if res.stderr.get(name) is not None:
                    se[label][r] = np.asarray(res.stderr[name], dtype=float)[at]
                if res.ci95.get(name) is not None:
                    lo, hi = (np.asarray(b, dtype=float)[at] for b in res.ci95[name])
                    covered[label][r] = (lo <= truth[label]) & (truth[label] <= hi)
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
    entries: dict[str, list[EntryCheck]] = {}
    for label, _, _ in layout:
        row = []
        for k in range(K):
            e = _entry(
                label, k, truth[label][k], est[label][ok, k], se[label][ok, k], covered[label][ok, k], n
            )
            row.append(VectorEntryCheck(**{f: getattr(e, f) for f in e.__dataclass_fields__}))
        entries[label] = row
    existence = existence_verdict(failed, reps)
    existence = Verdict(
        existence.passed,
        existence.value,
        existence.target,
        existence.tolerance,
        f"{failed} of {reps} replicates failed (degenerate, not converged or an internal error)",
    )
    true_doc: dict[str, Any] = {WEIGHTS: [float(v) for v in w]}
    for name in names:
        true_doc[name] = [np.asarray(values[k][name], dtype=float).tolist() for k in range(K)]
    return VectorMixtureCheckResult(
        model=m.name,
        components=K,
        n=n,
        reps=reps,
        seed=int(seq.entropy),
        sampler=draws[0].kind,
        order_by=f"the first coordinate of {names[0]}",
        true=true_doc,
        constants={k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in consts.items()},
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
