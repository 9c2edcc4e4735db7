"""Numerical runtime of compiled estimators.

Pure NumPy (SciPy only when a numeric solve is needed, imported there), no
SymPy and no symmle imports: ``symmle compile`` copies this file verbatim into
the generated module, so in-process and generated estimators run the same
code and give the same numbers.  That is why it is one file, the largest of
the package: a generated module must stand alone, so the runtime cannot import
its parts from elsewhere.  In order: chunked and tabulated samples and their
statistics; the rows of vector samples and their moments; parameter domains
and their unconstrained coordinates; the numeric maximisation and its
multimodal search; closed forms and their conditioning; estimates, standard
errors and row-wise estimation; checks of the data.

A *plan* is a dict of plain callables, each ``fn(values, data)`` with
``values`` a dict of floats by name (``N``, ``T1``, parameters, constants...):

``parameters``, ``constants``, ``known``: names, and constant values fixed at compile time;
``stats``: ``{name: g}``, ``g(values, chunk)`` the per-observation function of a statistic;
``raw``: names of the statistics that are the plain sum of the data;
``discrete``, ``sums``: integer data, and formulas with sums over the data (then a
discrete sample is tabulated: see :class:`Tabulated`);
``centred``: ``[(h, {k: name}, pilot_name)]``, centred power sums of ``h``;
``residual``: ``[(pilot_name, {name: q})]``, sums of ``q(values, chunk)``, which read
the pilot (a value of the variable, the mean of the first observations) and ``N``;
``closed``: ``{param: fn}``, closed-form and order-statistic estimators;
``quantiles``: ``[(name, u, level, param)]``, sample quantiles of ``u(values, chunk)`` at
``level(values, chunk)`` (a function of the constants), read as ``values[name]`` (the estimate of
``param``, whose log-likelihood is piecewise linear; see :func:`sample_quantile`);
``rounding``: ``{param: (loss, data) or None}``: how many times each closed form's own rounding
error may exceed the statistics', and the latter (in units of :data:`UNIT`; see :func:`_confirm_closed`);
``score``: the score of each regular parameter (in the order of ``regular``);
``reduced``, ``domains``: parameters left to numerics and every parameter's domain;
``profile``: ``[(param, fn)]``, closed forms given the reduced parameters;
``objective``, ``gradient``, ``hessian``: the profile log-likelihood and its derivatives;
``regular``, ``fisher``, ``observed``: for standard errors (``fisher`` may be ``None``);
``logf``: the log-density, ``logf(values, chunk)``;
``support``, ``variable`` (optional, for :func:`check_data`): ``(lo, hi)``, each ``fn(values, chunk)``
giving an end of the support that involves no parameter (``None`` for one that does), and the
variable's name;
``rowwise``: the estimators read only statistics, so many data sets (rows of a
2-D array) are estimated in one vectorised call (:func:`run_estimate_rows`).
"""

import math
import warnings

import numpy as np

#: Elements per chunk (2 MB of float64).  Temporaries of this size stay in
#: the allocator's reused memory and the CPU's cache; a temporary as large as
#: the data costs a fresh page fault per 4 kB, which made ``log(1 - x)`` on
#: 10**6 values three times slower than in chunks.
CHUNK = 1 << 18
MEMORY_CHUNK = CHUNK  #: elements per chunk of an array in memory
PILOT = 4096  #: size of the subsample for pilots and starting values


class NoMLE(ValueError):
    """The maximum-likelihood estimate does not exist or was not found."""


class EstimateWarning(UserWarning):
    """A caveat about an estimate that is still returned.

    Several local maxima of the likelihood, or a closed form that lost digits
    at these data: the number is the best symmle found, and the caveat
    travels with it (``symmle.fit`` lists it in ``FitResult.warnings``).
    """


def caution(message):
    """Issue an :class:`EstimateWarning` (the one channel for caveats of the runtime)."""
    warnings.warn(message, EstimateWarning, stacklevel=2)


def chunks(x, size=None):
    """Consecutive float chunks of a 1-D array.

    For a memory-mapped file, each chunk's pages are released once it has
    been reduced, so the resident memory stays bounded by a chunk whatever
    the file's size.
    """
    mapped = isinstance(x, np.memmap)
    size = size or (CHUNK if mapped else MEMORY_CHUNK)
    release = _releaser(x) if mapped else None
    for start in range(0, x.shape[0], size):
        yield np.asarray(x[start : start + size], dtype=float)
        if release is not None:
            release(start, min(start + size, x.shape[0]))


def _releaser(x):
    """``release(i, j)``: drop the resident pages of elements i..j of a memory map, or None."""
    import mmap

    mm = getattr(x, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED") or x.ndim != 1:
        return None
    try:
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError):
        return None
    first = x.ctypes.data - base
    page = mmap.PAGESIZE

    def release(i, j):
        lo = first + i * x.strides[0]
        hi = first + j * x.strides[0]
        lo -= lo % page
        if hi > lo:
            try:
                mm.madvise(mmap.MADV_DONTNEED, lo, min(hi - lo, len(mm) - lo))
            except (OSError, ValueError):
                pass

    return release


class Tabulated:
    """A sample of integers as its distinct values and their counts.

    Sums over the data (``sum_over``) then cost one evaluation per distinct
    value instead of one per observation: a negative binomial sample of 10**6
    counts has a few dozen distinct values.
    """

    def __init__(self, values, counts):
        self.values = values
        self.counts = counts
        self.shape = (int(counts.sum()),)


#: Largest range of integer data that is tabulated.
TABLE = 1 << 20


def tabulate(x, size=None):
    """``Tabulated(x)`` for integer data whose range is small compared with N, else ``x``."""
    n = x.shape[0]
    if n < 64:
        return x
    lo, hi = math.inf, -math.inf
    for chunk in chunks(x, size):
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo + 1 > min(TABLE, n // 4):
        return x
    counts = np.zeros(int(hi - lo) + 1, dtype=np.int64)
    for chunk in chunks(x, size):
        k = chunk - lo
        index = k.astype(np.int64)
        if not np.array_equal(index, k):
            return x  # not integers
        counts += np.bincount(index, minlength=counts.size)
    keep = np.flatnonzero(counts)
    return Tabulated(lo + keep.astype(float), counts[keep].astype(float))


def sum_over(fn, x, size=None):
    """``sum_i fn(x_i)`` in chunks, compensated across chunks (or over a table's distinct values).

    Data as a column (shape ``(n, 1)``, or a table of columns) against
    parameters given as arrays of ``k`` values: the ``k`` sums at once, an
    array (the coarse search's grid).
    """
    try:
        with np.errstate(all="ignore"):
            if np.ndim(x.values if isinstance(x, Tabulated) else x) == 2:
                data, counts = (x.values, x.counts) if isinstance(x, Tabulated) else (x, 1.0)
                v = np.asarray(fn(data), dtype=float)
                return np.sum(counts * np.broadcast_to(v, np.broadcast_shapes(v.shape, data.shape)), axis=0)
            if isinstance(x, Tabulated):
                v = np.broadcast_to(np.asarray(fn(x.values), dtype=float), x.values.shape)
                return math.fsum(x.counts * v)
            return math.fsum(_total(fn(c), c) for c in chunks(x, size))
    except (OverflowError, ZeroDivisionError):
        # Python-float arithmetic on parameters (a**-b) raises where NumPy gives inf
        return math.nan


def _total(values, chunk):
    values = np.asarray(values, dtype=float)
    total = float(np.sum(values)) if values.ndim else float(values) * chunk.size
    if math.isinf(total) and np.all(np.isfinite(values)):
        _overflow()
    return total


def _fsum(parts):
    try:
        return math.fsum(parts)
    except OverflowError:
        _overflow()


def _overflow():
    # finite terms whose sum is beyond double precision: a statistic of inf
    # would read as "no MLE", which is false
    raise NoMLE("a sum over the data overflows double precision (the values are too large): rescale the data")


def statistics(plan, x, values, size=None, needed=None):
    """``N``, the statistics, centred power sums and pilots, ``_xmin``, ``_xmax``.

    One pass over the data each; with ``needed`` (a set of names) only those.
    """
    stats = [s for s in plan["stats"] if needed is None or s in needed]
    groups = [g for g in plan["centred"] if needed is None or set(g[1].values()) & needed]
    residual = [g for g in plan.get("residual", ()) if needed is None or set(g[1]) & needed]
    extremes = needed is None or "_xmin" in needed or "_xmax" in needed
    # sums of the raw data need no temporaries: one call over an array in memory
    whole = (
        {} if isinstance(x, np.memmap) else {s: float(np.sum(x)) for s in stats if s in plan.get("raw", ())}
    )
    stats = [s for s in stats if s not in whole]
    if extremes and not isinstance(x, np.memmap) and x.shape[0]:
        extremes = False
        lo, hi = float(np.min(x)), float(np.max(x))
    else:
        lo, hi = math.inf, -math.inf
    parts = {s: [] for s in stats}
    centred = []
    around = []  # (pilot_name, values with the pilot, {name: (q, [sums])})
    for chunk in chunks(x, size):
        if extremes:
            lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
        with np.errstate(all="ignore"):
            for s in stats:
                parts[s].append(_total(plan["stats"][s](values, chunk), chunk))
            if not centred:
                for h, powers, pilot_name in groups:
                    pilot = float(
                        np.mean(
                            np.asarray(h(values, chunk[:PILOT]), dtype=float)
                            * np.ones(min(PILOT, chunk.size))
                        )
                    )
                    centred.append((h, powers, pilot_name, pilot, {k: [] for k in powers}))
            if not around:
                for pilot_name, sums in residual:
                    v = dict(values, N=float(x.shape[0]))
                    v[pilot_name] = float(np.mean(chunk[:PILOT]))
                    around.append((pilot_name, v, {name: (q, []) for name, q in sums.items()}))
            for _, v, acc in around:
                for q, parts_q in acc.values():
                    parts_q.append(_total(q(v, chunk), chunk))
            for h, _, _, pilot, acc in centred:
                u = np.asarray(h(values, chunk), dtype=float) - pilot
                for k in acc:
                    acc[k].append(
                        float(u.sum() if k == 1 else np.einsum("i,i->", u, u) if k == 2 else np.sum(u**k))
                    )
    out = {"N": float(x.shape[0]), "_xmin": lo, "_xmax": hi, **whole}
    for name, u, level, _ in plan.get("quantiles", ()):
        if (needed is None or name in needed) and x.shape[0]:
            q = _level(level, values)
            out[name], out[name + "_lo"], out[name + "_hi"] = sample_quantile(
                lambda c, u=u: u(values, c), x, q, size
            )
    if any(math.isinf(v) for v in whole.values()) and np.all(np.isfinite(x)):
        _overflow()
    for s in stats:
        out[s] = _fsum(parts[s])
    for _, powers, pilot_name, pilot, acc in centred:
        out[pilot_name] = pilot
        for k, p in acc.items():
            out[powers[k]] = _fsum(p)
    for pilot_name, v, acc in around:
        out[pilot_name] = v[pilot_name]
        for name, (_, parts_q) in acc.items():
            out[name] = _fsum(parts_q)
    return out


# --------------------------------------------------------------------------
# vector observations: the rows of an (N, D) array
# --------------------------------------------------------------------------

#: A pilot more than this many standard deviations from the mean (in some
#: coordinate) costs digits when the scatter is recentred (the relative error
#: grows as ``1 + (delta/sd)**2``): then a second pass is centred at the mean.
PILOT_SDS = 4.0
#: The correlation matrix of the data is singular when its smallest eigenvalue
#: is at most ``COLLINEAR * D * sqrt(N)`` unit roundoffs: the level of the
#: rounding errors of the scatter's entries, relative to ``sqrt(S_jj S_kk)``.
COLLINEAR = 8.0


def row_chunks(x, rows=None, dtype=float):
    """``(start, block)``: consecutive blocks of rows of a 2-D array.

    ``rows`` rows at a time (by default about :data:`CHUNK` elements), each
    block as an array of ``dtype`` (``None``: the array's own).  A block of a
    memory map is a view where no conversion is needed, and its pages are
    released once it has been reduced (as :func:`chunks` does), so the
    resident memory stays bounded by a block whatever the file's size.
    """
    n, d = x.shape
    rows = rows or max(1, CHUNK // max(d, 1))
    release = _row_releaser(x) if isinstance(x, np.memmap) else None
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        yield start, np.asarray(x[start:stop], dtype=dtype)
        if release is not None:
            release(start, stop)


def _row_releaser(x):
    """``release(i, j)``: drop the resident pages of rows i..j of a 2-D memory map, or None.

    Rows laid one after another (C order, or a slice of columns of it) are one
    range of bytes; columns laid one after another (Fortran order) are one
    range per column.
    """
    import mmap

    mm = getattr(x, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED") or x.ndim != 2:
        return None
    try:
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError):
        return None
    first = x.ctypes.data - base
    (n, d), (s0, s1), size = x.shape, x.strides, x.itemsize
    if s0 > 0 and s1 >= 0 and s0 >= (d - 1) * s1 + size:
        lanes = [first]  # rows one after another
    elif s0 > 0 and s1 > 0 and s1 >= (n - 1) * s0 + size:
        lanes = [first + k * s1 for k in range(d)]  # columns one after another
    else:
        return None
    page = mmap.PAGESIZE

    def release(i, j):
        for start in lanes:
            lo, hi = start + i * s0, start + j * s0
            lo -= lo % page
            if hi > lo:
                try:
                    mm.madvise(mmap.MADV_DONTNEED, lo, min(hi - lo, len(mm) - lo))
                except (OSError, ValueError):
                    pass

    return release


def _rows(x):
    """``x`` as a 2-D array of rows (a 1-D array is one column); a memory map stays one."""
    if not isinstance(x, np.memmap):
        x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2:
        raise BadData(f"expected an (N, D) array of rows, got one of shape {x.shape}")
    if x.shape[0] == 0:
        raise BadData("the data are empty")
    return x


class _Compensated:
    """A running sum of arrays with Neumaier's compensation: its error does not grow with the terms."""

    def __init__(self, shape):
        self.sum = np.zeros(shape)
        self.comp = np.zeros(shape)

    def add(self, term):
        t = self.sum + term
        big = np.abs(self.sum) >= np.abs(term)
        self.comp += np.where(big, (self.sum - t) + term, (term - t) + self.sum)
        self.sum = t

    def total(self):
        return self.sum + self.comp


def _not_finite(block, start, reason="is not a finite number", variable="x"):
    """Raise :class:`BadData` on the first cell of ``block`` that is not finite, else overflow."""
    bad = ~np.isfinite(block)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])  # in row order
        raise BadData(reason, start + i, block[i, j], variable, column=j)
    _overflow()


def _scatter_pass(x, pilot, rows):
    """One pass: ``sum_i [c_i, 1] [c_i, 1]^T`` with ``c_i = x_i - pilot``, compensated across blocks.

    Each block is centred into a buffer whose last column is 1, so that one
    BLAS product of the buffer with itself gives the block's scatter and its
    sum together.
    """
    n, d = x.shape
    rows = rows or max(1, CHUNK // (d + 1))
    buf = np.empty((min(rows, n), d + 1))
    buf[:, d] = 1.0
    acc = _Compensated((d + 1, d + 1))
    for start, block in row_chunks(x, rows):
        b = buf[: block.shape[0]]
        with np.errstate(all="ignore"):
            np.subtract(block, pilot, out=b[:, :d])
            g = b.T @ b
        if not np.isfinite(g.trace()):
            _not_finite(block, start)
        acc.add(g)
    return acc.total()


def vector_moments(x, chunk_rows=None):
    """``(n, mean, scatter)`` of the rows of an (N, D) array, in one pass over blocks of rows.

    ``mean`` has shape (D,); ``scatter`` (D, D) is ``sum_i (x_i - mean)(x_i -
    mean)^T``, so that the MLE of a Gaussian covariance is ``scatter / n``.
    The rows are centred at a pilot, the mean of the first :data:`PILOT` rows,
    as the scalar statistics are: each block's centred scatter and sum come
    from one BLAS product, they are summed with compensation across blocks,
    and the scatter is recentred at the mean exactly (``C - s s^T / n``).
    Centring first keeps the digits that ``sum x x^T - n m m^T`` would
    cancel: data of mean 1e9 and unit variance keep a relative accuracy of
    about 1e-13.  Where the pilot is more than :data:`PILOT_SDS` standard
    deviations from the mean in some coordinate (rows sorted by a column),
    recentring would lose more, and a second pass is centred at the mean.

    A memory-mapped array is read a block at a time (``chunk_rows`` rows,
    by default about :data:`CHUNK` elements) and never held in memory.
    Raises :class:`BadData` naming the first cell that is not a finite
    number, or for empty data; :class:`NoMLE` if a sum overflows.
    """
    x = _rows(x)
    n, d = x.shape
    head = np.ascontiguousarray(x[:PILOT], dtype=float)  # the same sum in any memory layout
    with np.errstate(all="ignore"):
        pilot = np.mean(head, axis=0)
    if not np.all(np.isfinite(pilot)):
        _not_finite(head, 0)
    for _ in range(2):
        g = _scatter_pass(x, pilot, chunk_rows)
        s = g[:d, d]
        delta = s / n
        scatter = g[:d, :d] - np.outer(s, delta)
        scatter = (scatter + scatter.T) / 2
        mean = pilot + delta
        spread = np.maximum(np.diag(scatter), 0.0) / n
        if np.all(delta * delta <= PILOT_SDS**2 * spread):
            break
        pilot = mean
    return n, mean, scatter


def column_sums(x, fn=None, chunk_rows=None):
    """``sum_i fn(x_i)`` over the rows of an (N, D) array (entrywise ``fn``; the rows without it): shape (D,).

    One pass over blocks of rows, compensated across blocks, so that sums of
    counts are exact below 2**53: ``fn=np.log`` gives the ``sum_i log x_i`` of a
    Dirichlet sample, no ``fn`` the totals of a multinomial one.  Raises
    :class:`BadData` naming the first cell where the data or ``fn`` of them is
    not finite.
    """
    x = _rows(x)
    acc = _Compensated(x.shape[1])
    for start, block in row_chunks(x, chunk_rows):
        with np.errstate(all="ignore"):
            v = block if fn is None else np.asarray(fn(block), dtype=float)
            part = v.sum(axis=0)
        if not np.all(np.isfinite(part)):
            if not np.all(np.isfinite(block)):
                _not_finite(block, start)
            bad = np.argwhere(~np.isfinite(v))
            if bad.size == 0:
                _overflow()
            i, j = (int(k) for k in bad[0])
            name = getattr(fn, "__name__", "the function")
            raise BadData(f"gives {name} = {show_number(v[i, j])}", start + i, block[i, j], column=j)
        acc.add(part)
    return acc.total()


def check_scatter(n, scatter, mean=None, names=None):
    """Raise :class:`NoMLE` unless ``scatter / n`` is positive definite beyond rounding.

    With fewer than D + 1 rows the scatter of D columns is singular, and so
    is it when a column is constant or a linear combination of columns is
    (collinear columns): then the Gaussian likelihood is unbounded and the
    MLE of the covariance does not exist.  Collinearity is read from the
    correlation matrix, whose smallest eigenvalue is compared with the
    rounding level of the scatter (:data:`COLLINEAR`); the message names the
    columns of its eigenvector (``names``, else 1-based indices).
    """
    d = scatter.shape[0]

    def label(j):
        return repr(str(names[j])) if names is not None else str(j + 1)

    if n < d + 1:
        raise NoMLE(
            f"{n} row(s) of {d} columns: the covariance needs at least D + 1 = {d + 1} rows "
            "(with fewer the scatter matrix is singular, so the MLE of the covariance does not exist)"
        )
    diag = np.diag(scatter)
    flat = np.flatnonzero(~(diag > 0))
    if flat.size:
        j = int(flat[0])
        held = "" if mean is None else f" ({show_number(mean[j])} in every row)"
        raise NoMLE(
            f"column {label(j)} is constant{held}: its variance is 0, so the covariance "
            "estimate is singular and its MLE does not exist"
        )
    scale = np.sqrt(diag)
    corr = scatter / np.outer(scale, scale)
    w, v = np.linalg.eigh(corr)
    if w[0] <= COLLINEAR * d * math.sqrt(n) * UNIT:
        weight = np.abs(v[:, 0])
        involved = [label(int(j)) for j in np.flatnonzero(weight >= 0.1 * weight.max())]
        raise NoMLE(
            f"columns {', '.join(involved)} are collinear (a combination of them is constant up to "
            f"rounding: the smallest eigenvalue of their correlation matrix is {w[0]:.1e}), so the "
            "covariance estimate is singular and its MLE does not exist"
        )


#: Most values gathered at once to select an order statistic of a memory-mapped sample
#: (8 MB of float64); beyond it, passes over the chunks narrow the range first.
SELECT = 1 << 20


def quantile_ranks(n, q):
    """0-based ranks ``(i, j)`` of the order statistics whose midpoint is the MLE of a ``q``-quantile.

    With ``k = n q`` a whole number (``1 <= k < n``), every value between the
    ``k``-th and ``(k + 1)``-th smallest maximises the likelihood: ``(k - 1, k)``.
    Otherwise the maximiser is unique, the ``ceil(k)``-th smallest: ``(j, j)``.
    """
    k = n * q
    whole = round(k)
    if abs(k - whole) <= 1e-9 * max(1.0, k) and 1 <= whole <= n - 1:
        return whole - 1, whole
    j = min(max(math.ceil(k), 1), n) - 1
    return j, j


def order_statistics_of(fn, x, ranks, size=None):
    """The values of 0-based ``ranks`` among ``fn(x_i)`` in ascending order, exactly.

    An array in memory is partitioned at once.  A memory-mapped one is never
    loaded whole: each pass over its chunks counts the values between pivots
    (quantiles of a strided subsample, or an even grid), which narrows the
    range that holds the rank, until at most :data:`SELECT` values are left
    to gather and partition.
    """
    if not isinstance(x, np.memmap) or x.shape[0] <= SELECT:
        u = np.concatenate(
            [np.broadcast_to(np.asarray(fn(c), dtype=float), c.shape) for c in chunks(x, size)]
        )
        return [float(v) for v in np.partition(u, ranks)[list(ranks)]]
    return [_select(fn, x, int(k), size) for k in ranks]


def _select(fn, x, k, size):
    n = x.shape[0]
    stride = max(1, n // (1 << 16))
    sub = np.asarray(fn(np.asarray(x[::stride], dtype=float)), dtype=float) * np.ones(
        len(range(0, n, stride))
    )
    lo, hi, below = -math.inf, math.inf, 0  # the value of rank k lies in (lo, hi]; `below` values are <= lo
    stuck = False
    while True:
        inside = sub[(sub > lo) & (sub <= hi)]
        if inside.size >= 2 and not stuck:
            pivots = np.quantile(inside, np.linspace(0, 1, 1025)[1:-1])
        elif math.isfinite(lo) and math.isfinite(hi):
            # an even grid, and the least value itself, so that the next pass splits the range
            pivots = np.r_[np.nextafter(lo, math.inf), np.linspace(lo, hi, 1025)[1:-1]]
        else:
            pivots = np.array([])
        pivots = np.unique(pivots[(pivots > lo) & (pivots < hi)])
        counts = np.zeros(pivots.size + 1, dtype=np.int64)
        gathered, total, least, most = [], 0, math.inf, -math.inf
        for chunk in chunks(x, size):
            u = np.broadcast_to(np.asarray(fn(chunk), dtype=float), chunk.shape)
            u = u[(u > lo) & (u <= hi)]
            if not u.size:
                continue
            total += u.size
            least, most = min(least, float(u.min())), max(most, float(u.max()))
            counts += np.bincount(np.searchsorted(pivots, u, side="left"), minlength=counts.size)
            if total <= SELECT:
                gathered.append(u)
        rank = k - below
        if total <= SELECT:
            return float(np.partition(np.concatenate(gathered), rank)[rank])
        if least == most:
            return least  # every value left is the same
        j = int(np.searchsorted(np.cumsum(counts), rank, side="right"))
        stuck = bool(counts[j] == total)
        if stuck:
            # no pivot split the range: narrow it to the values' own extent, which the next grid splits
            lo, hi = float(np.nextafter(least, -math.inf)), most
            continue
        edges = np.r_[lo, pivots, hi]
        below += int(counts[:j].sum())
        lo, hi = float(edges[j]), float(edges[j + 1])


def sample_quantile(fn, x, q, size=None):
    """``(estimate, lo, hi)``: the ``q``-quantile of ``fn(x_i)`` that maximises the likelihood.

    ``[lo, hi]`` is the interval of maximisers (``lo == hi`` when unique) and
    the estimate its midpoint (see :func:`quantile_ranks`).
    """
    i, j = quantile_ranks(x.shape[0], q)
    lo, hi = order_statistics_of(fn, x, sorted({i, j}), size) * (2 if i == j else 1)
    return (lo + hi) / 2 if lo != hi else lo, lo, hi


def _level(level, values):
    """The level ``q`` of a sample quantile (a function of the constants only)."""
    return float(np.asarray(level(values, np.zeros(1)), dtype=float).reshape(-1)[0])


def real_value(value):
    """A formula's value as a real number.

    Complex values (``lambertw``) lose a negligible imaginary part; any other becomes ``nan``.
    """
    if not np.iscomplexobj(value):
        return value
    z = np.asarray(value)
    real = np.where(np.abs(z.imag) <= 1e-12 * np.maximum(1.0, np.abs(z.real)), z.real, np.nan)
    return real if real.ndim else float(real)


def in_domain(value, domain):
    """Whether the number ``value`` lies in ``domain``."""
    if not math.isfinite(value):
        return False
    return {
        "real": True,
        "positive": value > 0,
        "nonnegative": value >= 0,
        "unit": 0 < value < 1,
        "integer": float(value).is_integer(),
        "positive_integer": float(value).is_integer() and value > 0,
    }[domain]


def to_z(theta, domain):
    """Unconstrained coordinate of a parameter value."""
    if domain in ("positive", "nonnegative"):
        return math.log(theta)
    if domain == "unit":
        return math.log(theta / (1 - theta))
    return theta


def from_z(z, domain):
    """Parameter value of an unconstrained coordinate (saturating, never overflowing)."""
    if domain in ("positive", "nonnegative"):
        return math.exp(z) if z < 709.0 else math.inf
    if domain == "unit":
        return 1 / (1 + math.exp(-z)) if z > -709.0 else 0.0
    return z


def dtheta_dz(theta, domain):
    if domain in ("positive", "nonnegative"):
        return theta
    if domain == "unit":
        return theta * (1 - theta)
    return 1.0


def d2theta_dz2(theta, domain):
    if domain in ("positive", "nonnegative"):
        return theta
    if domain == "unit":
        return theta * (1 - theta) * (1 - 2 * theta)
    return 0.0


_DECADES = 10.0 ** np.linspace(-5, 5, 41)
_SCALED = 10.0 ** np.linspace(-3, 3, 25)
_UNIT = np.linspace(0.01, 0.99, 33)
_OFFSETS = np.r_[-np.geomspace(100, 0.01, 15), 0.0, np.geomspace(0.01, 100, 15)]

#: Most values of the data that a real parameter's search starts from (quantiles beyond), with
#: one parameter and with several; their grid points x observations stay within ``SEARCH_WORK``.
DATA_STARTS = 256
MESH_DATA_STARTS = 48
SEARCH_WORK = 1 << 17
#: Most points, and grid points x observations, added to a one-parameter search at the likelihood's scale.
FILL = 4096
FILL_WORK = 1 << 16
#: Most points, and grid points x observations, of the mesh of a several-parameter search.
MESH = 4096
MESH_WORK = 1 << 23
#: Grid points x observations per block of a vectorised evaluation of the coarse search.
GRID_BLOCK = 1 << 18
#: Most local maxima of the coarse search that are polished.
STARTS = 8
#: Maxima of a subsample's search polished again on all the data: at most this many, and only
#: those whose predicted log-likelihood on all the data comes within ``MARGIN`` of the best's.
CONFIRMED = 4
MARGIN = 20.0


def candidates(domain, scale, centre):
    """Starting values spread over a domain, on the data's scale where it has one (sorted)."""
    if domain in ("positive", "nonnegative"):
        # shapes are scale-free, scales follow the data: search both
        return np.sort(np.r_[_DECADES, abs(scale) * _SCALED])
    if domain == "unit":
        return _UNIT
    return centre + scale * _OFFSETS


def data_starts(values, counts=None, most=DATA_STARTS):
    """Values of the data as starts of a location-like parameter, with the midpoints of neighbours.

    A likelihood of a location has its peaks where the data crowd, however
    narrow its density: the observations (their quantiles beyond ``most``)
    and the midpoints between neighbours put the search's resolution at the
    data's nearest-neighbour gaps.
    """
    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    values = values[keep]
    if values.size == 0:
        return values
    v = np.unique(values)
    if v.size > most:
        levels = np.linspace(0.0, 1.0, most)
        if counts is None:
            v = np.unique(np.quantile(values, levels))
        else:  # a table: quantiles weighted by the counts
            order = np.argsort(values)
            cum = np.cumsum(np.asarray(counts, dtype=float)[keep][order])
            v = np.unique(values[order][np.minimum(np.searchsorted(cum, levels * cum[-1]), cum.size - 1)])
    return np.r_[v, (v[1:] + v[:-1]) / 2]


def _finite(v):
    return v if np.isfinite(v) else -np.inf


def _strided(x):
    """At most ``PILOT`` observations spread evenly over ``x`` (sorted data stay represented)."""
    step = max(1, -(-x.shape[0] // PILOT))
    return np.asarray(x[::step], dtype=float)


class _Objective:
    """The profile log-likelihood and its derivatives on one data set (all the data, or a subsample)."""

    def __init__(self, plan, values, data, subsample=False):
        self.plan = plan
        self.names = plan["reduced"]
        self.values = values
        self.data = data
        self.subsample = subsample
        # evaluations per point of a grid: one per distinct value of a table, none for statistics
        n = data.values.size if isinstance(data, Tabulated) else data.shape[0]
        self.size = 1 if plan.get("vectorised") else max(1, n)

    def at(self, theta):
        v = dict(self.values)
        v.update(zip(self.names, (float(t) for t in theta)))
        return v

    def value(self, theta):
        return _finite(self.plan["objective"](self.at(theta), self.data))

    def grad(self, theta):
        v = self.at(theta)
        return np.array([g(v, self.data) for g in self.plan["gradient"]], dtype=float)

    def hess(self, theta):
        v = self.at(theta)
        return np.array([[f(v, self.data) for f in row] for row in self.plan["hessian"]], dtype=float)

    def grid(self, points):
        """The objective at every row of ``points`` (parameter values), ``-inf`` where not finite.

        A sum over the data is taken for a whole block of grid points at once
        (the data as a column against a row of parameter values); a formula
        that does not broadcast so, or disagrees with its pointwise value, is
        evaluated point by point.
        """
        points = np.asarray(points, dtype=float)
        if self.plan.get("vectorised"):
            # the objective reads only statistics (reduced over all the data)
            out = self._block(points, self.data)
        else:
            out = None
            try:
                out = self._columns(points)
            except (ArithmeticError, ValueError, TypeError, IndexError):
                pass
            if out is not None and not self._agrees(out, points):
                out = None
            if out is None:
                out = np.array([self.value(p) for p in points])
        return np.where(np.isfinite(out), out, -np.inf)

    def _block(self, points, data):
        v = dict(self.values)
        v.update({n: points[:, i] for i, n in enumerate(self.names)})
        with np.errstate(all="ignore"):
            return np.asarray(self.plan["objective"](v, data), dtype=float) * np.ones(len(points))

    def _columns(self, points):
        d = self.data
        column = Tabulated(d.values[:, None], d.counts[:, None]) if isinstance(d, Tabulated) else d[:, None]
        step = max(1, GRID_BLOCK // max(1, column.shape[0]))
        blocks = range(0, len(points), step)
        return np.concatenate([self._block(points[i : i + step], column) for i in blocks])

    def _agrees(self, out, points):
        if out.shape != (len(points),):
            return False
        for k in {0, int(np.argmax(np.where(np.isfinite(out), out, -np.inf)))}:
            a, b = float(out[k]), self.value(points[k])
            same = a == b or (not np.isfinite(a) and not np.isfinite(b))
            if not (same or abs(a - b) <= 1e-9 * max(1.0, abs(b))):
                return False
        return True


def maximise(plan, values, x, size=None):
    """Maximise the profile log-likelihood over the reduced parameters.

    A coarse search over each parameter's domain (on a subsample when the
    objective sums over many data) finds the local maxima it can resolve:
    for a real parameter the data themselves are starts, and with one
    parameter the grid is then refined to the width of the narrowest peak
    found.  The best local maxima are polished (Brent's method on the score
    for one parameter, a trust region on the exact Hessian in unconstrained
    coordinates for several, then Newton steps), polished again on all the
    data when the search ran on a subsample, and compared there.  The
    result must be a maximum; where the log-likelihood has several local
    maxima, a caution names the runner-up and how much lower it is.
    """
    from scipy import optimize

    names = plan["reduced"]
    domains = [plan["domains"][p] for p in names]
    if any(d in ("integer", "positive_integer") for d in domains):
        raise NoMLE("numeric estimation of an integer-valued parameter is not supported")
    full = _Objective(plan, values, x)
    if isinstance(x, Tabulated):
        # a table is small: search on all the data
        sample, weights, search = x.values, x.counts, full
    else:
        sample, weights = _strided(x), None
        if plan.get("vectorised") or sample.shape[0] == x.shape[0]:
            search = full
        else:
            # sums over the data in the objective: search on a subsample
            sub_values = dict(values)
            sub_values.update(statistics(plan, sample, values))
            search = _Objective(plan, sub_values, sample, subsample=True)
    centre, scale, spread = _centre_scale(sample, weights, robust="real" in domains)
    most = max(32, min(DATA_STARTS if len(names) == 1 else MESH_DATA_STARTS, SEARCH_WORK // 2 // search.size))
    grids = [
        np.unique(np.r_[candidates(d, scale, centre), data_starts(sample, weights, most)])
        if d == "real"
        else candidates(d, spread, centre)
        for d in domains
    ]
    polish = _polisher(names, domains, grids, optimize)
    if len(names) == 1:
        found, failed = _search_line(search, grids[0], polish, domains[0], sample)
    else:
        found, failed = _search_mesh(search, grids, polish)
    if search is not full:
        found, failed = _confirm_on_all(full, found, failed, grids, polish)
    return dict(zip(names, _choose(names, found, failed)))


def _centre_scale(sample, weights, robust=True):
    """``(median, interquartile scale, standard deviation)`` of the data (weighted by counts).

    A real parameter's grid spreads on the interquartile scale, which a few
    outliers do not stretch; the standard deviation stands in where the
    quartiles coincide (and for the other domains: ``robust=False``).
    """
    if sample.size == 0:
        return 0.0, 1.0, 1.0
    w = np.ones_like(sample) if weights is None else np.asarray(weights, dtype=float)
    mean = float(np.average(sample, weights=w))
    spread = math.sqrt(float(np.average((sample - mean) ** 2, weights=w)))
    spread = spread if spread > 0 and math.isfinite(spread) else 1.0
    if not robust:
        return 0.0, spread, spread
    order = np.argsort(sample)
    cum = np.cumsum(w[order])
    q = sample[order][np.minimum(np.searchsorted(cum, np.array([0.25, 0.5, 0.75]) * cum[-1]), cum.size - 1)]
    iqr = float(q[2] - q[0]) / 1.349
    return float(q[1]), (iqr if iqr > 0 and math.isfinite(iqr) else spread), spread


def _polisher(names, domains, grids, optimize):
    """``polish(objective, start, grid) -> (log-likelihood, theta, hessian)``; raises :class:`NoMLE`."""

    def polish(obj, start, grid=None):
        if len(names) == 1:
            grid = grids[0] if grid is None else grid
            theta = _brent(names[0], domains[0], start[0], grid, obj.grad, optimize)
        else:
            theta = _trust(obj, domains, start, optimize)
        for t, d, g in zip(theta, domains, grids):
            _inside_search(t, d, g)
        theta = _newton(names, domains, theta, obj.grad, obj.hess)
        return obj.value(theta), theta, obj.hess(theta)

    return polish


def _search_line(obj, grid, polish, domain, sample):
    """Local maxima of a one-parameter objective: grid, polish, grid refined to the peaks' width."""
    scores = _nowhere(obj.grid(grid[:, None]))
    found, failed = _polish_line(obj, grid, scores, polish, [], [])
    if domain == "real" and found and sample.size > 1:
        # the resolution follows the likelihood's scale: half the width of the narrowest peak
        width = min(1 / math.sqrt(-h[0, 0]) for _, _, h in found)
        most = max(1, min(FILL, FILL_WORK // obj.size))
        more = _fill(grid, float(np.min(sample)), float(np.max(sample)), width / 2, most)
        if more.size:
            order = np.argsort(np.r_[grid, more], kind="stable")
            grid = np.r_[grid, more][order]
            scores = np.r_[scores, obj.grid(more[:, None])][order]
            found, failed = _polish_line(obj, grid, scores, polish, found, failed)
    return found, failed


def _fill(grid, lo, hi, spacing, most):
    """At most ``most`` points that split the gaps of a sorted grid inside ``[lo, hi]`` to ``spacing``."""
    inside = grid[(grid >= lo) & (grid <= hi)]
    if inside.size < 2 or not (spacing > 0 and math.isfinite(spacing)):
        return np.empty(0)
    need = np.maximum(np.ceil(np.diff(inside) / spacing) - 1, 0)
    total = float(need.sum())
    if total > most:
        need = np.floor(need * (most / total))
    parts = [
        a + (b - a) * np.arange(1, k + 1) / (k + 1)
        for a, b, k in zip(inside[:-1], inside[1:], need.astype(int))
        if k
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def _polish_line(obj, grid, scores, polish, found, failed):
    """Polish the best local maxima of a one-parameter grid, but not twice the peak of one found."""
    found, failed = list(found), list(failed)
    left = np.r_[-np.inf, scores[:-1]]
    right = np.r_[scores[1:], -np.inf]
    peaks = np.flatnonzero(np.isfinite(scores) & (scores > left) & (scores >= right))
    tried = 0
    for k in peaks[np.argsort(-scores[peaks], kind="stable")]:
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
        if any(lo <= theta[0] <= hi for _, theta, _ in found):
            continue
        if tried == STARTS or _negligible(obj, scores[k], found):
            break
        tried += 1
        _try(polish, obj, grid[k : k + 1], scores[k], found, failed, grid)
    return _distinct(found), failed


def _search_mesh(obj, grids, polish):
    """Local maxima of a several-parameter objective: a mesh of the grids, then polish its peaks."""
    most = max(512, min(MESH, MESH_WORK // obj.size))
    axes = [np.asarray(g, dtype=float) for g in grids]
    while math.prod(a.size for a in axes) > most:
        # a coarser mesh keeps its neighbours: thin the longest axis, keeping its ends
        k = max(range(len(axes)), key=lambda i: axes[i].size)
        axes[k] = np.unique(np.r_[axes[k][::2], axes[k][-1]])
    mesh = np.array(np.meshgrid(*axes, indexing="ij"))
    points = mesh.reshape(len(axes), -1).T
    scores = _nowhere(obj.grid(points))
    # the points not below any neighbour in the mesh
    shape = mesh.shape[1:]
    padded = np.pad(scores.reshape(shape), 1, mode="constant", constant_values=-np.inf)
    above = np.full(shape, -np.inf)
    for shift in np.ndindex(*(3,) * len(shape)):
        if any(s != 1 for s in shift):
            above = np.maximum(above, padded[tuple(slice(s, s + n) for s, n in zip(shift, shape))])
    peaks = np.flatnonzero(np.isfinite(scores) & (scores >= above.reshape(-1)))
    found, failed = [], []
    for k in peaks[np.argsort(-scores[peaks], kind="stable")][:STARTS]:
        if _negligible(obj, scores[k], found):
            break
        _try(polish, obj, points[k], scores[k], found, failed)
    return _distinct(found), failed


def _nowhere(scores):
    if not np.any(np.isfinite(scores)):
        raise NoMLE(
            "the log-likelihood is not finite anywhere on the search grid: "
            "the MLE does not exist for these data"
        )
    return scores


def _negligible(obj, score, found):
    """A peak of the grid so far below a maximum found that it cannot compete, on all the data.

    A subsample's grid ranks peaks only roughly: there every peak is polished
    (within ``STARTS``) and :func:`_confirm_on_all` judges them on all the data.
    """
    return not obj.subsample and bool(found) and score < max(r[0] for r in found) - MARGIN


def _try(polish, obj, start, score, found, failed, grid=None):
    """Polish from ``start`` into ``found``; a failure goes to ``failed`` with the start's height."""
    start = np.asarray(start, dtype=float)
    try:
        found.append(polish(obj, start, grid))
    except NoMLE as exc:
        failed.append((obj.value(start) if score is None else float(score), start, exc))


def _distinct(found):
    """The maxima, highest first, one per peak (within 1e-3 standard errors of each other: one peak)."""
    out = []
    for ll, theta, h in sorted(found, key=lambda r: -r[0]):
        se = 1 / np.sqrt(np.maximum(-np.diag(h), 1e-300))
        if all(np.any(np.abs(theta - t) > 1e-3 * s) for _, t, _, s in out):
            out.append((ll, theta, h, se))
    return [r[:3] for r in out]


def _confirm_on_all(full, found, failed, grids, polish):
    """The maxima of a subsample's search, polished again on all the data.

    The subsample ranks its maxima only roughly, so each one's height on all
    the data is predicted by Newton's quadratic model there; those within
    ``MARGIN`` of the best prediction (at most ``CONFIRMED``) are polished.
    A start that failed on the subsample above every maximum found there is
    tried on all the data too.
    """
    starts = []
    for _, theta, _ in found:
        if len(found) == 1:
            starts.append((None, theta))
            break
        f, g, h = full.value(theta), full.grad(theta), full.hess(theta)
        gain = 0.0
        finite = np.all(np.isfinite(g)) and np.all(np.isfinite(h))
        if finite and np.max(np.linalg.eigvalsh((h + h.T) / 2)) < 0:
            gain = float(-0.5 * g @ np.linalg.solve(h, g))
        starts.append((f + gain, theta))
    if len(starts) > 1:
        starts.sort(key=lambda r: -r[0])
        starts = [s for s in starts[:CONFIRMED] if s[0] >= starts[0][0] - MARGIN]
    top = max((r[0] for r in found), default=-np.inf)
    starts += [(full.value(start), start) for score, start, _ in failed if score > top]
    out, lost = [], []
    for height, theta in starts:
        _try(polish, full, theta, height, out, lost, _around(grids, theta))
    return _distinct(out), lost


def _around(grids, theta):
    """A one-parameter grid with ``theta`` in it: Brent's bracket is its neighbours there."""
    return np.unique(np.r_[grids[0], theta]) if len(grids) == 1 else None


def _choose(names, found, failed):
    """The highest maximum, with a caution if there are several; an error where a failed start rose higher."""
    if failed and (not found or max(r[0] for r in failed) > found[0][0]):
        raise max(failed, key=lambda r: r[0])[2]
    if not found:
        raise NoMLE(f"numerical maximisation for {', '.join(names)} did not reach a maximum")
    ll, theta, _ = found[0]
    if len(found) > 1:
        ll2, theta2, _ = found[1]
        where = ", ".join(f"{n} = {t:.6g}" for n, t in zip(names, theta2))
        gap = ll - ll2
        how = (
            "as high: the maximum-likelihood estimate is not unique"
            if gap <= 1e-9 * max(1.0, abs(ll))
            else f"lower by {gap:.4g} in log-likelihood"
        )
        caution(
            f"the log-likelihood has several local maxima ({len(found)} found): the estimate is the "
            f"highest; the next, at {where}, is {how} (standard errors describe the highest peak alone)"
        )
    return theta


def _trust(obj, domains, start, optimize):
    """A trust region on the exact Hessian in unconstrained coordinates, from ``start``."""
    z0 = np.array([to_z(t, d) for t, d in zip(start, domains)])

    def theta_of(z):
        return [from_z(float(zi), d) for zi, d in zip(z, domains)]

    def neg(z):
        v = obj.value(theta_of(z))
        return -v if np.isfinite(v) else 1e300

    def neg_grad(z):
        theta = theta_of(z)
        return -obj.grad(theta) * np.array([dtheta_dz(t, d) for t, d in zip(theta, domains)])

    def neg_hess(z):
        # chain rule: d2l/dz2 = J H J + diag(dl/dtheta * d2theta/dz2)
        theta = theta_of(z)
        j = np.array([dtheta_dz(t, d) for t, d in zip(theta, domains)])
        j2 = np.array([d2theta_dz2(t, d) for t, d in zip(theta, domains)])
        h = j[:, None] * obj.hess(theta) * j[None, :] + np.diag(obj.grad(theta) * j2)
        return -h if np.all(np.isfinite(h)) else np.eye(len(z))

    # a trust region on exact second derivatives: a few iterations, even
    # where the log-likelihood is not concave
    with np.errstate(all="ignore"):
        try:
            res = optimize.minimize(
                neg,
                z0,
                jac=neg_grad,
                hess=neg_hess,
                method="trust-exact",
                options={"gtol": 1e-10, "maxiter": 500},
            )
        except (ArithmeticError, ValueError, NameError, np.linalg.LinAlgError):
            # trust-exact can fail on a degenerate Hessian (SciPy 1.17 raises
            # UnboundLocalError there): quasi-Newton needs no Hessian
            res = optimize.minimize(
                neg, z0, jac=neg_grad, method="BFGS", options={"gtol": 1e-10, "maxiter": 500}
            )
    return np.array(theta_of(res.x))


def _inside_search(theta, domain, grid):
    """Refuse an optimum that ran off far beyond the searched range towards the domain's edge.

    When the likelihood keeps increasing towards the boundary (a constant
    beta sample: a, b -> oo), optimisers stop wherever the increase falls
    below their tolerance, which is not a maximum.
    """
    if domain == "unit":
        escaped = min(theta, 1 - theta) < 1e-12
    elif domain in ("positive", "nonnegative"):
        escaped = not grid[0] * 1e-8 < theta < grid[-1] * 1e8
    else:
        span = grid[-1] - grid[0]
        escaped = not grid[0] - 1e8 * span < theta < grid[-1] + 1e8 * span
    if escaped or not math.isfinite(theta):
        raise NoMLE(
            f"the likelihood keeps increasing towards the edge of the domain ({domain}), up to {theta:.3g}: "
            "the MLE does not exist for these data (or lies beyond what double precision resolves)"
        )


def _brent(name, domain, best, grid, grad, optimize):
    """The root of the score bracketed by the grid's neighbours of ``best`` (widened until it turns over)."""
    zs = (
        np.log(grid)
        if domain in ("positive", "nonnegative")
        else np.log(grid / (1 - grid))
        if domain == "unit"
        else np.asarray(grid, dtype=float)
    )
    k = int(np.argmin(np.abs(zs - to_z(best, domain))))
    lo, hi = zs[max(k - 1, 0)], zs[min(k + 1, len(zs) - 1)]

    def score(z):
        return float(grad([from_z(z, domain)])[0])

    f_lo, f_hi = score(lo), score(hi)
    # widen by steps that start at the bracket's width and grow: on the grid's scale, whatever the data's
    step_lo = step_hi = max(hi - lo, 1e-300)
    for _ in range(60):
        if np.isfinite(f_lo) and np.isfinite(f_hi) and f_lo > 0 > f_hi:
            break
        if not (np.isfinite(f_lo) and f_lo > 0):
            lo -= step_lo
            step_lo *= 1.5
            f_lo = score(lo)
        if not (np.isfinite(f_hi) and f_hi < 0):
            hi += step_hi
            step_hi *= 1.5
            f_hi = score(hi)
    if not (f_lo > 0 > f_hi):
        raise NoMLE(
            f"the MLE of {name} does not exist for these data: "
            f"the likelihood does not turn over inside its domain ({domain})"
        )
    z = optimize.brentq(score, lo, hi, xtol=1e-10, rtol=1e-12, maxiter=200)  # Newton polishes
    return np.array([from_z(z, domain)])


def _newton(names, domains, theta, grad, hess):
    theta = np.asarray(theta, dtype=float)

    for _ in range(20):
        g, h = grad(theta), hess(theta)
        if not (np.all(np.isfinite(h)) and np.all(np.isfinite(g))):
            break
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            break
        new = theta - step
        if not all(in_domain(float(t), d) for t, d in zip(new, domains)):
            break
        theta = new
        if np.all(np.abs(step) <= 1e-13 * np.maximum(np.abs(theta), 1e-300)):
            break
    g, h = grad(theta), hess(theta)
    label = ", ".join(names)
    if (
        not (np.all(np.isfinite(theta)) and np.all(np.isfinite(h)))
        or np.max(np.linalg.eigvalsh((h + h.T) / 2)) >= 0
    ):
        raise NoMLE(
            f"numerical maximisation for {label} did not reach a maximum "
            "(the MLE may not exist for these data)"
        )
    # distance to the stationary point in standard-error units: |g| / sqrt(|H_ii|)
    if np.any(np.abs(g) > 1e-6 * np.sqrt(np.abs(np.diag(h)))):
        raise NoMLE(
            f"numerical maximisation for {label} did not converge: "
            "the score does not vanish at the last iterate"
        )
    return theta


def constant_values(plan, constants):
    values = dict(plan["known"])
    for name, v in constants.items():
        if name not in plan["constants"]:
            raise NoMLE(
                f"unknown constant '{name}'; "
                f"this model's constants: {', '.join(plan['constants']) or '(none)'}"
            )
        values[name] = float(v)
    for name in plan["constants"]:
        if name not in values:
            raise NoMLE(f"missing value for constant '{name}' (give it as {name}=VALUE)")
    return values


def as_data(x):
    return x.reshape(-1) if isinstance(x, np.memmap) else np.asarray(x, dtype=float).reshape(-1)


#: The unit roundoff of float64.
UNIT = 2.0**-53
#: A closed form is taken as evaluated when its rounding-error bound is at most
#: this many times the error that rounding the statistics causes anyway (the
#: catalogue's closed forms stay below 20 on data of any scale).
LOSS = 1000.0
#: A checked closed form stands when the numeric root is within this many times
#: that error of it (the root of the score is accurate to a few of them).
AGREE = 16.0


def _loss(plan, name, values, data):
    """How many times a closed form's own rounding error may exceed the statistics' (float or array).

    From ``plan["rounding"]``; 0 where there is no bound or no value.
    """
    bounds = plan.get("rounding", {}).get(name)
    if bounds is None:
        return 0.0
    factor = bounds[0](values, data)
    theta = values[name]
    if isinstance(factor, float) and isinstance(theta, float):
        # one data set: plain floats (NumPy's scalar machinery costs more than the check)
        return float(factor) if factor == factor and math.isfinite(theta) else 0.0
    factor = np.asarray(real_value(factor), dtype=float)
    return np.where(np.isfinite(np.asarray(theta, dtype=float)) & ~np.isnan(factor), factor, 0.0)


def _confirm_closed(plan, values, x, data, size, names):
    """Check the closed forms ``names`` at these data; solve from the score those that lost digits.

    A formula exact in algebra can lose every digit where it is evaluated
    (``LambertW`` near its branch point, a difference of nearly equal terms).
    Its first-order rounding-error bound costs one evaluation; where it
    exceeds :data:`LOSS` times the error the statistics' own rounding causes,
    the parameters are solved by Newton's method on the exact score, started
    at the closed form, and accepted as :func:`_newton` accepts any numeric
    solution.  A root farther than :data:`AGREE` times that error from the
    closed form replaces it, with a caution (``values`` is updated); a nearer
    one confirms it.  A profile closed form (given the reduced parameters)
    is solved again together with them.
    """
    bounded = [name for name in names if plan.get("rounding", {}).get(name) is not None]
    if not bounded:
        return
    lost = {}
    with np.errstate(all="ignore"):
        for name in bounded:
            factor = _loss(plan, name, values, data)
            if factor > LOSS and in_domain(float(values[name]), plan["domains"][name]):
                lost[name] = factor
    if not lost:
        return
    regular = plan["regular"]
    unknowns = [p for p in regular if p in lost]
    profile = {name for name, _ in plan["profile"]}
    if profile & set(lost):
        # the reduced parameters were solved with this closed form inside: solve them again too
        unknowns = [p for p in regular if p in lost or p in plan["reduced"] or p in profile]
    if len(lost) == 1:
        ((name, factor),) = lost.items()
        what = (
            f"the closed form of {name} is ill-conditioned at these data "
            f"(its rounding error can reach {factor:.0e}"
        )
    else:
        factors = ", ".join(f"{factor:.0e} ({name})" for name, factor in lost.items())
        what = (
            f"the closed forms of {', '.join(lost)} are ill-conditioned at these data "
            f"(their rounding errors can reach {factors}"
        )
    what += " times the statistics' own)"
    if plan.get("observed") is None or not plan.get("score") or len(unknowns) < len(lost):
        caution(f"{what}, and cannot be checked against the score: the estimate may have lost digits")
        return
    idx = [regular.index(p) for p in unknowns]
    score = [plan["score"][i] for i in idx]
    observed = [[plan["observed"][i][j] for j in idx] for i in idx]
    v = dict(values)
    # the score may read statistics the closed forms did not need (then one more pass, only here)
    stats = {
        *plan["stats"],
        *(u for _, powers, _ in plan["centred"] for u in powers.values()),
        *(n for _, sums in plan.get("residual", ()) for n in sums),
    } - set(v)
    if stats:
        v.update({k: val for k, val in statistics(plan, x, v, size, stats).items() if k not in v})

    def at(theta):
        u = dict(v)
        u.update(zip(unknowns, (float(t) for t in theta)))
        return u

    def grad(theta):
        return np.array([float(real_value(g(at(theta), data))) for g in score])

    def hess(theta):
        u = at(theta)
        return np.array([[float(real_value(f(u, data))) for f in row] for row in observed])

    start = np.array([values[p] for p in unknowns], dtype=float)
    try:
        with np.errstate(all="ignore"):
            root = _newton(unknowns, [plan["domains"][p] for p in unknowns], start, grad, hess)
    except NoMLE:
        caution(
            f"{what}, and the numeric solution from the score did not converge: the estimate is the "
            "closed form's value, which may have lost digits"
        )
        return
    moved = []
    for p, t, t0 in zip(unknowns, root, start):
        if p in lost:
            with np.errstate(all="ignore"):
                cond = abs(float(real_value(plan["rounding"][p][1](values, data))))
            if not abs(t - t0) <= AGREE * UNIT * (cond + abs(t0)):
                moved.append(
                    f"{p} = {t:.12g} (the closed form gave {t0:.12g}, "
                    f"a relative difference of {abs(t - t0) / abs(t):.1e})"
                )
    if not moved:
        return
    values.update(zip(unknowns, (float(t) for t in root)))
    caution(f"{what}; solved numerically from the score instead: {'; '.join(moved)}")


def _solve(plan, x, constants, size, needed):
    """``(values, data)``: statistics (only ``needed``, or all if None) and the estimates as
    one dict, and the data for the formulas' sums (a table of a discrete sample)."""
    values = constant_values(plan, constants)
    values.update(statistics(plan, x, values, size, needed))
    for name, _, level, parameter in plan.get("quantiles", ()):
        lo, hi = values.get(name + "_lo"), values.get(name + "_hi")
        if lo is not None and lo < hi:
            caution(
                f"every {parameter} in [{lo:.6g}, {hi:.6g}] maximises the likelihood "
                f"(N = {values['N']:g} times the level {_level(level, values):g} is a whole number, "
                "so the log-likelihood is flat between these two order statistics); "
                f"the estimate is the midpoint, {parameter} = {(lo + hi) / 2:.6g}, "
                "and the other estimates are the same anywhere in the interval"
            )
    data = tabulate(x, size) if plan.get("discrete") and plan.get("sums") else x
    for name, fn in plan["closed"].items():
        values[name] = fn(values, data)
    _confirm_closed(plan, values, x, data, size, list(plan["closed"]))
    if plan["reduced"]:
        values.update(maximise(plan, values, data, size))
        for name, fn in plan["profile"]:
            values[name] = fn(values, data)
        _confirm_closed(plan, values, x, data, size, [name for name, _ in plan["profile"]])
    return values, data


def _estimates(plan, values):
    return {p: float(values[p]) for p in plan["parameters"] if p in values}


def _covariance(plan, x, values):
    """Inverse information at ``values`` (statistics and estimates): ``(cov or None, source)``."""
    if not plan["regular"]:
        return None, ""
    if plan["fisher"] is not None:
        info = values["N"] * np.array([[f(values, x) for f in row] for row in plan["fisher"]])
        source = "expected"
    else:
        if plan["observed"] is None:
            return None, ""
        info = -np.array([[f(values, x) for f in row] for row in plan["observed"]])
        source = "observed"
    if not np.all(np.isfinite(info)):
        return None, source
    try:
        return np.linalg.inv(info), source
    except np.linalg.LinAlgError:
        return None, source


def run_estimate(plan, x, constants, size=None):
    """Maximum-likelihood estimates ``{param: float}`` (only the statistics they need)."""
    return _estimates(plan, _solve(plan, as_data(x), constants, size, set(plan["needed"]))[0])


def row_statistics(plan, rows, values):
    """The statistics of every row of a 2-D array (one data set per row), as arrays."""
    reps, n = rows.shape
    out = {"N": float(n), "_xmin": rows.min(axis=1), "_xmax": rows.max(axis=1)}
    with np.errstate(all="ignore"):
        for s, g in plan["stats"].items():
            out[s] = np.broadcast_to(np.asarray(g(values, rows), dtype=float), rows.shape).sum(axis=1)
        for h, powers, pilot_name in plan["centred"]:
            hx = np.broadcast_to(np.asarray(h(values, rows), dtype=float), rows.shape)
            pilot = hx[:, :PILOT].mean(axis=1)
            u = hx - pilot[:, None]
            out[pilot_name] = pilot
            for k, name in powers.items():
                out[name] = np.sum(u**k, axis=1)
        for name, u, level, _ in plan.get("quantiles", ()):
            ranked = np.sort(np.broadcast_to(np.asarray(u(values, rows), dtype=float), rows.shape), axis=1)
            i, j = quantile_ranks(n, _level(level, values))
            out[name + "_lo"], out[name + "_hi"] = ranked[:, i], ranked[:, j]
            out[name] = (ranked[:, i] + ranked[:, j]) / 2
        for pilot_name, sums in plan.get("residual", ()):
            pilot = rows[:, :PILOT].mean(axis=1)
            v = dict(values, N=float(n))
            v[pilot_name] = pilot[:, None]
            out[pilot_name] = pilot
            for name, q in sums.items():
                out[name] = np.broadcast_to(np.asarray(q(v, rows), dtype=float), rows.shape).sum(axis=1)
    return out


def run_estimate_rows(plan, rows, constants):
    """Estimates of many data sets at once: ``{param: array}``, one value per row of ``rows``.

    Where the estimators read only statistics (``plan["rowwise"]``), every
    row is reduced and estimated in one vectorised call; otherwise row by
    row.  A row whose MLE does not exist gets ``nan`` (or, for a closed form,
    its value on the boundary of the domain, which the caller can test with
    :func:`in_domain`).
    """
    rows = np.asarray(rows, dtype=float)
    if rows.ndim != 2:
        raise ValueError("rows must be a 2-D array: one data set per row")
    if plan.get("rowwise"):
        values = constant_values(plan, constants)
        values.update(row_statistics(plan, rows, values))
        out = {}
        for name, fn in plan["closed"].items():
            out[name] = np.broadcast_to(np.asarray(fn(values, rows), dtype=float), rows.shape[:1]).copy()
        values.update(out)
        lost = np.zeros(rows.shape[0], dtype=bool)
        with np.errstate(all="ignore"):
            for name in plan.get("rounding", {}):
                lost |= np.broadcast_to(_loss(plan, name, values, rows), lost.shape) > LOSS
        # the rare rows where a closed form lost digits: checked against the score one by one
        _estimate_each(plan, rows, constants, out, np.flatnonzero(lost))
        return {p: out[p] for p in plan["parameters"]}
    out = {p: np.full(rows.shape[0], np.nan) for p in plan["parameters"]}
    _estimate_each(plan, rows, constants, out, range(rows.shape[0]))
    return out


def _estimate_each(plan, rows, constants, out, which):
    """Estimate the rows ``which`` one by one into ``out`` (left as they are where no MLE exists)."""
    for r in which:
        try:
            est = run_estimate(plan, rows[r], constants)
        except NoMLE:
            continue
        for p, v in est.items():
            out[p][r] = v


def run_covariance(plan, x, estimates, constants, size=None):
    """``(covariance of the regular parameters, "expected" | "observed")``, or ``(None, source)``."""
    x = as_data(x)
    values = constant_values(plan, constants)
    values.update(statistics(plan, x, values, size))
    values.update(estimates)
    return _covariance(plan, x, values)


def run_fit(plan, x, constants, size=None):
    """``(estimates, standard errors, information source)`` from one reduction of the data."""
    values, data = _solve(plan, as_data(x), constants, size, None)
    cov, source = _covariance(plan, data, values)
    stderr = {p: None for p in plan["parameters"]}
    if cov is not None:
        for i, p in enumerate(plan["regular"]):
            stderr[p] = math.sqrt(cov[i, i]) if cov[i, i] >= 0 else None
    return _estimates(plan, values), stderr, source if cov is not None else ""


def run_stderr(plan, x, constants, size=None):
    """Asymptotic standard errors ``{param: float or None}`` at the estimate."""
    return run_fit(plan, x, constants, size)[1]


def run_log_likelihood(plan, x, values, size=None):
    """``sum_i log f(x_i)`` at the given parameter and constant values."""
    x = as_data(x)
    v = dict(plan["known"])
    v.update({k: float(val) for k, val in values.items()})
    missing = [n for n in (*plan["parameters"], *plan["constants"]) if n not in v]
    if missing:
        raise NoMLE(f"missing value for '{missing[0]}'")
    return sum_over(lambda c: plan["logf"](v, c), x, size)


# --------------------------------------------------------------------------
# checking the data before estimating
# --------------------------------------------------------------------------


class BadData(ValueError):
    """Data the model cannot take: empty, not finite, outside the support, not integers.

    ``index`` and ``value`` name the first bad observation (``None`` for empty
    data), ``reason`` says what is wrong with it; the message reads
    ``x[index] = value`` followed by the reason (``x[index, column]``, both
    0-based, for a cell of an (N, D) array).
    """

    def __init__(self, reason, index=None, value=None, variable="x", column=None):
        self.reason, self.index, self.value, self.column = reason, index, value, column
        if index is None:
            super().__init__(reason)
        else:
            at = index if column is None else f"{index}, {column}"
            super().__init__(f"{variable}[{at}] = {show_number(value)} {reason}")


def show_number(value):
    """A number as the user wrote it: ``0`` for ``0.0``, every digit of ``0.30000000000000004``."""
    value = float(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def show_support(lo, hi, open_lo=False, open_hi=False):
    """``[0, oo)``: the support's ends, closed where finite unless said open."""
    left = "(-oo" if not math.isfinite(lo) else ("(" if open_lo else "[") + show_number(lo)
    right = "oo)" if not math.isfinite(hi) else show_number(hi) + (")" if open_hi else "]")
    return f"{left}, {right}"


#: Parameter values at which the log-density is tried at each observation (see :func:`unexplained`):
#: spread over each domain and avoiding special values (a shape of 1, a log of 1).
PROBE_VALUES = {
    "real": (0.3, -1.3, 2.9, -0.07, 7.1, -17.3, 43.0, -310.0, 0.011, 2.3e3, -4.1e4),
    "positive": (1.7, 0.37, 4.3, 0.061, 13.1, 0.0083, 57.0, 0.00071, 310.0, 2.3e3, 4.1e4, 3.3e-5, 0.79),
    "nonnegative": (1.7, 0.37, 4.3, 0.061, 13.1, 0.0083, 57.0, 0.00071, 310.0, 2.3e3, 4.1e4, 3.3e-5, 0.79),
    "unit": (0.35, 0.11, 0.83, 0.52, 0.03, 0.97, 0.68, 0.003, 0.997),
    "integer": (3.0, -2.0, 0.0, 1.0, 7.0, -9.0, 25.0, -120.0, 1000.0),
    "positive_integer": (6.0, 1.0, 2.0, 3.0, 11.0, 40.0, 150.0, 1000.0, 4.0),
}
#: Number of combinations of :data:`PROBE_VALUES` tried (besides three taken from each observation).
PROBES = 24


def _fixed_probes(domains, names):
    """Combinations of :data:`PROBE_VALUES`: each parameter runs through its list at its own stride."""
    out = []
    for i in range(PROBES):
        p = {}
        for j, name in enumerate(names):
            grid = PROBE_VALUES[domains[name]]
            p[name] = grid[(i * (2 * j + 1) + j) % len(grid)]
        out.append(p)
    return out


def _row_probes(domains, names, rows):
    """Three choices of the parameters on the scale of each observation of ``rows`` (arrays like it).

    A real parameter at, below and above the observation, a positive one at
    its size and beyond it: where a support ends at a parameter, it reaches
    the observation, whatever the data's scale.
    """
    size = np.abs(rows)
    out = []
    for shift in (0.0, -1.0, 1.0):
        p = {}
        for name in names:
            d = domains[name]
            if d in ("real", "integer"):
                v = rows + shift * (size + 1.0)
                p[name] = v if d == "real" else np.floor(v) if shift < 0 else np.ceil(v)
            elif d in ("positive", "nonnegative", "positive_integer"):
                v = np.where(size > 0, size, 1.0) if shift == 0 else 2.0 * size + 1.0
                p[name] = np.ceil(v) if d == "positive_integer" else v
            else:  # unit
                p[name] = 0.5 if shift == 0 else PROBE_VALUES["unit"][1 if shift < 0 else 2]
        out.append(p)
    return out


def unexplained(plan, rows, values):
    """Which of ``rows`` (observations) have a log-density that is finite for no parameter value.

    The log-density is tried at every observation for one choice of the
    parameters and, where it is not finite, for the others (:data:`PROBES`
    fixed ones, then three on the observation's scale).  An observation
    where it is ``-inf``, ``+inf`` or ``nan`` for all of them makes the
    likelihood 0, unbounded or undefined whatever the parameters: no MLE
    exists.  Returns a boolean array like ``rows``.
    """
    names = list(plan["parameters"])
    domains = plan["domains"]
    fixed = _fixed_probes(domains, names)
    suspect = np.flatnonzero(~np.isfinite(_logf_at(plan, values, fixed[0], rows)))
    for i in range(1, PROBES + 3):
        if suspect.size == 0:
            break
        sub = rows[suspect]
        p = fixed[i] if i < PROBES else _row_probes(domains, names, sub)[i - PROBES]
        suspect = suspect[~np.isfinite(_logf_at(plan, values, p, sub))]
    mask = np.zeros(rows.shape, dtype=bool)
    mask[suspect] = True
    return mask


def _logf_at(plan, values, params, rows):
    """The log-density at ``rows`` for the parameters ``params``; 0 where it cannot be evaluated.

    A formula that raises says nothing about the observations: they count
    as explained, so a value is never refused for a failure of the code.
    """
    v = dict(values)
    v.update(params)
    with np.errstate(all="ignore"):
        try:
            out = np.asarray(real_value(plan["logf"](v, rows)), dtype=float)
        except (ArithmeticError, ValueError, TypeError):
            return np.zeros(rows.shape)
    return np.broadcast_to(out, rows.shape)


def _unexplained_reason(plan, values, value, lo, hi):
    """Why the observation ``value`` is refused (see :func:`unexplained`), after the value itself."""
    names = list(plan["parameters"])
    row = np.array([float(value)])
    probes = (*_fixed_probes(plan["domains"], names), *_row_probes(plan["domains"], names, row))
    seen = np.array([_logf_at(plan, values, p, row)[0] for p in probes])
    kinds = ", ".join(
        s
        for s, hit in (("-inf", -np.inf in seen), ("+inf", np.inf in seen), ("nan", np.isnan(seen).any()))
        if hit
    )
    tail = f"the log-density there is not finite ({kinds}) at every parameter value tried"
    if value == lo or value == hi:
        support = show_support(lo, hi, open_lo=value == lo, open_hi=value == hi)
        return f"is outside the support {support} of the model: {tail}"
    return f"is outside where the model's density is positive and finite: {tail}"


def support_ends(plan, values):
    """The ends of the support that involve no parameter, as numbers (else infinite)."""
    ends = []
    for fn, default in zip(plan.get("support") or (None, None), (-math.inf, math.inf)):
        v = math.nan
        if fn is not None:
            try:
                with np.errstate(all="ignore"):
                    v = float(real_value(np.asarray(fn(values, np.zeros(1)), dtype=float).reshape(-1)[0]))
            except (KeyError, TypeError, ValueError):
                v = math.nan  # a constant without a value: named by the caller
        ends.append(default if math.isnan(v) else v)
    return ends[0], ends[1]


def check_data(plan, x, values, size=None):
    """Raise :class:`BadData` on the first observation that is not a number the model can take.

    Empty data are refused first; then, in the order of the observations,
    one that is not a finite number, outside the support's fixed ends
    (those that involve no parameter, at the constants in ``values``) or,
    for a discrete model, not an integer.  One pass over the data, in
    chunks.
    """
    variable = plan.get("variable", "x")
    if x.shape[0] == 0:
        raise BadData("the data are empty")
    lo, hi = support_ends(plan, values)
    start = 0
    for chunk in chunks(x, size):
        found = []  # (index in the chunk, reason)
        bad = ~np.isfinite(chunk)
        if bad.any():
            found.append((int(np.flatnonzero(bad)[0]), "is not a finite number"))
        with np.errstate(invalid="ignore"):
            out = (chunk < lo) | (chunk > hi)
            frac = np.isfinite(chunk) & (chunk != np.round(chunk)) if plan.get("discrete") else out[:0]
        if out.any():
            found.append(
                (int(np.flatnonzero(out)[0]), f"is outside the support {show_support(lo, hi)} of the model")
            )
        if frac.any():
            found.append((int(np.flatnonzero(frac)[0]), "is not an integer (the model is discrete)"))
        if found:
            k, reason = min(found)
            raise BadData(reason, start + k, chunk[k], variable)
        start += chunk.size


def check_density(plan, x, values, size=None):
    """Raise :class:`BadData` on the first observation whose log-density is finite for no parameter value.

    For data that passed :func:`check_data` (see :func:`unexplained`).  The
    log-density is evaluated once per observation (once per distinct value
    of a discrete sample that tabulates) and again only where it is not
    finite.
    """
    table = tabulate(x, size) if plan.get("discrete") else x
    bad_values = None
    if isinstance(table, Tabulated):
        bad_values = table.values[unexplained(plan, table.values, values)]
        if bad_values.size == 0:
            return
    start = 0
    for chunk in chunks(x, size):
        mask = unexplained(plan, chunk, values) if bad_values is None else np.isin(chunk, bad_values)
        if mask.any():
            k = int(np.flatnonzero(mask)[0])
            lo, hi = support_ends(plan, values)
            reason = _unexplained_reason(plan, values, chunk[k], lo, hi)
            raise BadData(reason, start + k, chunk[k], plan.get("variable", "x"))
        start += chunk.size


def run_checked(run, plan, x, constants):
    """``run(plan, x, constants)`` on checked data (a generated module's functions).

    The data are checked first (:func:`check_data`); where ``run`` then
    finds no MLE or a value that is not finite, an observation whose
    log-density is finite for no parameter value is named instead, if
    there is one (:func:`check_density`: a pass of the log-density over the
    data, made only then).
    """
    x = as_data(x)
    values = constant_values(plan, constants)
    check_data(plan, x, values)
    try:
        out = run(plan, x, constants)
    except NoMLE:
        check_density(plan, x, values)
        raise
    if any(isinstance(v, float) and not math.isfinite(v) for v in out.values()):
        check_density(plan, x, values)
    return out
