r"""The Fisher information and the Cramér–Rao bound of a vector model, block by block, as lecture steps.

:class:`VectorInformationSteps` is the part of :class:`~symmle.report.lecture.vector.VectorLecture` that
writes the information of one observation as the pipeline found it
(:class:`~symmle.symbolic.matrix_information.FisherInformation`): for each pair of parameters the
second differential of the log-density (by the same rules), its expectation (the expectations of the
statistics from the score identity) as a bilinear form in the two directions, and the block of the
information matrix in the parameters' coordinates (a vector's entries; the distinct entries
:math:`\operatorname{vech}\boldsymbol{\Sigma}` of a symmetric matrix, through the duplication matrix).
Then the Cramér–Rao bound block by block, where the information is block-diagonal.  Every form shown
is checked against the pipeline's (:class:`~symmle.report.lecture.vector_forms.Checker`).
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.matexpr import MatrixExpr

from symmle.report.lecture.core import INFORMATION, Lecture, Step, quick
from symmle.report.lecture.finish import label_for, reference
from symmle.report.lecture.vector_forms import (
    Checker,
    DataSum,
    Display,
    DuplicationInverse,
    expand_scalar,
    mat_mul,
)
from symmle.symbolic.matrix_calculus import RULES, MatrixDifferential, context
from symmle.symbolic.matrix_forms import scalar, to_form
from symmle.symbolic.matrix_information import DuplicationMatrix, second_differential, vech_pairs

__all__ = ["VectorInformationSteps", "as_scalar_block", "block_stated", "bound_blocks", "coordinates_tex"]

#: Coordinate kinds whose blocks a lecture can state (a simplex needs its free coordinates).
_KNOWN = {"scalar", "vec", "vech"}


def block_stated(model: Any, p: sp.Basic, kind: str) -> bool:
    """Whether a block in ``kind`` coordinates of parameter ``p`` means what it says.

    A parameter on the simplex has no information on all its entries (they are constrained to sum to
    one): its block is meaningful only on its free coordinates (kind ``free``,
    :class:`~symmle.symbolic.constrained.SimplexInformation`).
    """
    q = next((q for q in (*model.parameters, *model.constants) if q.symbol == p), None)
    simplex = q is not None and q.domain == "simplex"
    return kind == "free" if simplex else kind in _KNOWN


def as_scalar_block(block: sp.Basic) -> sp.Basic:
    """A 1 x 1 block of a scalar parameter as a scalar (``1/N*Matrix([[c]])`` -> ``c/N``)."""
    if getattr(block, "shape", None) == (1, 1) and isinstance(block, (sp.MatrixBase, MatrixExpr)):
        entry = quick("a 1 x 1 block", lambda: sp.factor(sp.Matrix(block.as_explicit())[0, 0]))
        return entry if entry is not None else block
    return block


def bound_blocks(info: Any) -> list[tuple[sp.Basic, sp.Basic]] | None:
    """``[(parameter, its block of the Cramér–Rao bound)]`` where the bound is block-diagonal, else None."""
    crlb, fi = info.crlb, getattr(info, "blocks", None)
    if crlb is None or fi is None or not hasattr(fi, "params"):
        return None  # none derived, or a simplex's information on free coordinates (one block)
    params = list(fi.params)
    if isinstance(crlb, sp.BlockDiagMatrix):
        diag = list(crlb.diag)
    elif len(params) == 1:
        diag = [crlb]
    else:
        return None
    out = []
    for p, b in zip(params, diag):
        out.append((p, b if isinstance(p, sp.MatrixSymbol) else as_scalar_block(b)))
    return out


def coordinates_tex(p_tex: str, kind: str) -> str:
    r"""The coordinates of a parameter as LaTeX (``\operatorname{vech}\boldsymbol{\Sigma}``)."""
    if kind == "vech":
        return rf"\operatorname{{vech}}{p_tex}"
    return p_tex


class VectorInformationSteps(Lecture):
    """The information and Cramér–Rao steps of a vector lecture.

    The subclass sets ``show`` (a :class:`Display`), ``check`` (a :class:`Checker`), ``kw`` (the
    declarations of the matrix calculus) and ``quantities`` (``{symbol: Quantity}``).
    """

    show: Display
    check: Checker
    kw: dict
    quantities: dict

    def at_dims(self) -> str:
        """``$D = 2$ and $D = 3$`` in the model's dimension: where the entrywise checks are made."""
        d = self.tex(self.model.dimension)
        return f"${d} = 2$ and ${d} = 3$"

    def vectors(self) -> list[sp.Basic]:
        """Parameters and constants of the variable's shape: the centres a sum can be written about."""
        x = self.show.x
        return [s for s in self.quantities if isinstance(s, sp.MatrixSymbol) and s.shape == x.shape]

    def shown(self, candidate: Any, derived: Any) -> Any:
        """``candidate`` if it is checked equal to ``derived``, else ``derived`` tidied (or as it is)."""
        if candidate is not None and self.check.equal(candidate, derived):
            return candidate
        tidied = self.show.tidy(derived)
        return tidied if self.check.equal(tidied, derived) else derived

    def coordinate(self, p: sp.Basic, kind: str) -> str:
        return coordinates_tex(self.tex(p), kind)

    def _usable(self, p: sp.Basic, kind: str) -> bool:
        return block_stated(self.model, p, kind)

    def _second(self, a: sp.Basic, b: sp.Basic, form: sp.Expr) -> sp.Expr | None:
        """``-d_b d_a log f(x)`` of one observation, by the rules of matrix calculus.

        ``None`` if the rules refuse it, or if its expectation (the statistics of the sample at the
        expectations the pipeline used) is not checked equal to the pipeline's ``form``.
        """
        out = second_differential(self.lik.log_likelihood, a, b, **self.kw, timeout=2.0)
        fi = self.info.blocks
        if not out.ok or fi is None:
            return None
        ctx = context(**self.kw)
        for d in out.value.atoms(MatrixDifferential):
            ctx = ctx.with_differential(d, d.base in ctx.symmetric)
        expected = fi.expectations.apply(-out.value, ctx) / self.N
        if not self.check.equal(expected, form):
            return None
        per = -out.value.xreplace({self.N: sp.S.One, **self.show.summands})
        # centred about a vector parameter where shorter: the sums over one observation are its terms
        forms = []
        for c in self.vectors():
            centred = self.show.centred(-out.value, c)
            if centred is not None:
                forms.append(self.one_observation(centred))
        forms.append(self.show.tidy(per))
        checked = [f for f in forms if self.check.equal(f, per)]
        return min(checked, key=lambda f: len(self.tex(f))) if checked else per

    def one_observation(self, expr: sp.Basic) -> sp.Basic:
        """A sample expression with ``N = 1``: each sum over the data is its one term, at ``x``."""
        back = {self.show.obs: self.show.x}

        def one(s: sp.Basic) -> sp.Basic:
            body = s.summand if isinstance(s, DataSum) else s.function
            return body.xreplace(back)

        out = expr.replace(lambda s: isinstance(s, (DataSum, sp.Sum)), one)
        return self.show.tidy(out.xreplace({self.N: sp.S.One}))

    def information_steps(self) -> list[Step]:
        """The Fisher information of one observation, block by block, and the Cramér–Rao bound."""
        info = self.info
        fi = info.blocks
        if not self.theta:
            return []
        if fi is None:
            why = "; ".join(info.warnings) or "it was not derived"
            return [
                Step(
                    "Fisher information",
                    f"symmle has no Fisher information for this model: {why.replace('$', chr(92) + '$')}.",
                    (),
                    kind="fisher",
                    section=INFORMATION,
                )
            ]
        params = list(fi.params)
        kinds = {}
        for (a, b), block in fi.blocks.items():
            kinds[a], kinds[b] = block.row_coordinates, block.col_coordinates
        usable = [p for p in params if self._usable(p, kinds.get(p, ""))]
        left_out = [p for p in params if p not in usable]
        steps = [self._forms_step(fi, usable)] if usable else []
        steps += self._blocks_step(fi, usable, kinds)
        if left_out:
            names = self.listing([f"${self.tex(p)}$" for p in left_out])
            steps.append(
                Step(
                    "Fisher information (constrained parameters)",
                    f"The entries of {names} are constrained to sum to one, so the information is "
                    "defined on their free coordinates (all but one entry), not on every entry: symmle "
                    "does not state it here.",
                    (),
                    kind="fisher",
                    section=INFORMATION,
                )
            )
        if usable and not left_out and bound_blocks(info):
            steps.append(self._crlb_step(fi, usable, kinds))
        elif usable and not left_out:
            steps.append(
                Step(
                    "Cramér–Rao bound",
                    "The information is not block-diagonal, so the Cramér–Rao bound is the inverse of the "
                    f"whole matrix $N I$ of {reference('fisher')}; symmle states it block by block only "
                    "where the cross blocks vanish.",
                    (),
                    kind="crlb",
                    section=INFORMATION,
                )
            )
        return steps

    # ------------------------------------------------------------------ the bilinear forms
    def _forms_step(self, fi: Any, usable: list) -> Step:
        lines: list[tuple[Any, Any]] = []
        f_x = self.tex(self.f(self.show.x))
        for (a, b), form in fi.forms.items():
            if a not in usable or b not in usable:
                continue
            d2 = rf"\mathrm{{d}}_{{{self.tex(a)}}} \mathrm{{d}}_{{{self.tex(b)}}}"
            second = quick(
                f"second differential in {a}, {b}", lambda a=a, b=b, form=form: self._second(a, b, form)
            )
            if second is not None:
                shown = self.show.tidy(second)
                if not self.check.equal(shown, second):
                    shown = second
                lines.append((rf"-{d2} \log {f_x}", shown))
            lines.append((rf"-\mathrm{{E}}\left[{d2} \log {f_x}\right]", self.shown(None, form)))
        used = []
        ex = fi.expectations
        for t, v in ex.matrices.items():
            g = self.show.summands.get(t)
            if g is None:
                continue
            per = self.show.tidy(sp.Function("E")(g))
            used.append(f"${self.tex(per)} = {self.tex(self.show.tidy(self.show.normal(v / self.N)))}$")
        for part, v in ex.parts.items():
            g = part.xreplace(self.show.summands)
            per = sp.Function("E")(self.show.tidy(g))
            used.append(f"${self.tex(per)} = {self.tex(self.show.tidy(self.show.normal(v / self.N)))}$")
        text = (
            f"The Fisher information of one observation ${self.tex(self.show.x)}$ is minus the expected "
            f"second differential of its log-{self.density_word} {reference('log_likelihood')} (the "
            "log-likelihood of one observation), a bilinear form in two directions of the parameters "
            "(a prime marks the second direction where both are in the same parameter):"
        )
        after = []
        if used:
            after.append(
                "The expectations follow from the score identity "
                r"$\mathrm{E}[\partial \ell / \partial \theta] = 0$: " + self.listing(used) + "."
            )
        return Step(
            "Second differentials",
            text,
            tuple(lines),
            after=" ".join(after),
            kind="fisher",
            section=INFORMATION,
            label=label_for("fisher", "forms"),
        )

    def _blocks_step(self, fi: Any, usable: list, kinds: dict) -> list[Step]:
        lines: list[tuple[Any, Any]] = []
        vech = [p for p in usable if kinds.get(p) == "vech"]
        for (a, b), block in fi.blocks.items():
            if a not in usable or b not in usable:
                continue
            rows = self.coordinate(a, block.row_coordinates)
            cols = self.coordinate(b, block.col_coordinates)
            lhs = f"I({rows})" if a == b else f"I({rows}, {cols})"
            m = block.matrix
            if isinstance(m, sp.MatrixBase) and m.shape == (1, 1):
                m = m[0, 0]
            lines.append((lhs, self.shown(None, m)))
        if not lines:
            return []
        coords = []
        for p in usable:
            k = kinds.get(p)
            if k == "vech":
                coords.append(
                    f"the distinct entries ${self.coordinate(p, 'vech')}$ of the symmetric ${self.tex(p)}$ "
                    "(its lower triangle, column by column)"
                )
            elif k == "vec" and isinstance(p, sp.MatrixSymbol) and p.shape[1] == 1:
                coords.append(f"the entries of ${self.tex(p)}$")
            elif k == "scalar":
                coords.append(f"${self.tex(p)}$ itself")
        rules = [RULES["vec_kron"]]
        if vech:
            dims = {self.tex(p.shape[0]) for p in vech}
            rules.append(RULES["duplication"])
            dup = ", ".join(rf"$\mathbf{{D}}_{{{d}}}$" for d in sorted(dims))
            dup_text = (
                f", with {dup} the duplication matrix ($\\operatorname{{vec}}$ stacks the columns, and "
                f"$\\operatorname{{vech}}$ the lower triangle)"
            )
        else:
            dup_text = ""
        text = (
            f"In coordinates ({self.listing(coords)}) each form of {reference('fisher', 'forms')} is "
            r"$\operatorname{vec}(\mathrm{d}\theta)^{\top} I \operatorname{vec}(\mathrm{d}\theta')$, by "
            + self.listing([f"${r}$" for r in rules])
            + dup_text
            + ". The blocks of the information matrix are"
        )
        checked = all(self.info.verified[i][j] for i in range(len(fi.params)) for j in range(len(fi.params)))
        after = (
            f"Each block was checked at {self.at_dims()} against minus the expected Hessian of the "
            "log-density written out entry by entry, the expectation taken exactly."
            if checked
            else ""
        )
        return [
            Step(
                "Fisher information",
                text,
                tuple(lines),
                after=after,
                kind="fisher",
                section=INFORMATION,
                label=label_for("fisher"),
            )
        ]

    # ------------------------------------------------------------------ the means of the estimators
    def _statistic(self, f: sp.Basic) -> tuple[sp.Basic, bool] | None:
        """``(T, transposed)`` if the factor ``f`` is a statistic ``T`` or its transpose."""
        if f in self.show.summands:
            return f, False
        if isinstance(f, sp.Transpose) and f.arg in self.show.summands:
            return f.arg, True
        return None

    def _pair_mean(self, a: sp.Basic, b: sp.Basic, outer: bool) -> sp.Basic | None:
        """``E[T_a T_b^T]`` (``outer``) or ``E[T_a^T T_b]`` of IID observations.

        ``sum_{n,m} E[g_a(x_n) g_b(x_m)^T] = N E[g_a g_b^T] + N (N - 1) E[g_a] E[g_b]^T``, with
        ``N E[g_a g_b^T]`` the expectation of the statistic whose summand is ``g_a g_b^T`` (its trace for
        ``T_a^T T_b``).
        """
        fi, N = self.info.blocks, self.N
        known = fi.expectations.matrices
        if a not in known or b not in known:
            return None
        ga, gb = self.show.summands[a], self.show.summands[b]
        product = sp.MatMul(ga, gb.T) if outer else sp.MatMul(gb, ga.T)
        c = next((t for t, g in self.show.summands.items() if g == product), None)
        if c is None:
            return None
        if c in known:
            both = known[c] if outer else sp.Trace(known[c])
        elif not outer and sp.Trace(c) in fi.expectations.parts:
            both = fi.expectations.parts[sp.Trace(c)]
        else:
            return None
        ea, eb = known[a], known[b]
        rest = ea * eb.T if outer else sp.Trace(ea.T * eb)
        return both + (N - 1) / N * rest

    def _product_mean(self, factors: tuple) -> sp.Basic | None:
        """``E[product]``: at most two statistics, adjacent (the observations are independent)."""
        known = self.info.blocks.expectations.matrices
        hits = [(k, s) for k, f in enumerate(factors) for s in [self._statistic(f)] if s is not None]
        if not hits:
            return mat_mul(sp.S.One, factors)
        if len(hits) == 1:
            k, (t, transposed) = hits[0]
            if t not in known:
                return None
            v = sp.Transpose(known[t]) if transposed else known[t]
            return mat_mul(sp.S.One, [*factors[:k], v, *factors[k + 1 :]])
        if len(hits) == 2 and hits[1][0] == hits[0][0] + 1:
            (k, (a, ta)), (_, (b, tb)) = hits
            if ta == tb:
                return None
            pair = self._pair_mean(a, b, outer=tb)
            if pair is None:
                return None
            return mat_mul(sp.S.One, [*factors[:k], pair, *factors[k + 2 :]])
        return None

    def _trace_mean(self, atom: sp.Trace) -> sp.Basic | None:
        parts = self.info.blocks.expectations.parts
        if atom in parts:
            return parts[atom]
        arg = atom.arg
        factors = tuple(arg.as_coeff_matrices()[1]) if isinstance(arg, sp.MatMul) else (arg,)
        c = arg.as_coeff_matrices()[0] if isinstance(arg, sp.MatMul) else sp.S.One
        inner = self._product_mean(factors)
        if inner is None:
            return None
        return c * (sp.Trace(inner) if isinstance(inner, MatrixExpr) else inner)

    def estimator_mean(self, p: sp.Basic) -> sp.Basic | None:
        """``E[p_hat]`` of a closed-form estimator of at most second degree in the statistics, or None.

        The expectations of the statistics are those the information was computed with (the score
        identity); products of two statistics follow from the independence of the observations
        (:meth:`_pair_mean`).
        """
        e = self.st.estimators.get(p.name)
        if e is None or e.kind != "closed_form" or self.info.blocks is None:
            return None
        stats = set(self.show.summands)

        def run() -> sp.Basic | None:
            ctx = self.show.context_of(e.expr)
            if isinstance(e.expr, MatrixExpr):
                f = to_form(e.expr, ctx)
                total = []
                for prod, c in f.terms.items():
                    m = self._product_mean(prod)
                    if m is None or c.has(*stats):
                        return None
                    total.append(c * m if not isinstance(m, MatrixExpr) else mat_mul(c, [m]))
                mean = sp.MatAdd(*total) if len(total) > 1 else total[0]
            else:
                expanded = expand_scalar(scalar(e.expr, ctx))
                mean = sp.S.Zero
                for term in sp.Add.make_args(expanded):
                    atoms = [a for a in term.atoms(sp.Trace) if a.has(*stats)]
                    if len(atoms) > 1 or (not atoms and term.has(*stats)):
                        return None
                    if atoms:
                        m = self._trace_mean(atoms[0])
                        if m is None:
                            return None
                        term = term.xreplace({atoms[0]: m})
                    mean += term
            return self.show.normal(mean)

        return quick(f"the mean of the estimator of {p}", run)

    def bias_sentences(self) -> list[str]:
        """Each closed-form estimator: unbiased, or its mean where it is biased."""
        out = []
        for p in self.theta:
            m = self.estimator_mean(p)
            if m is None:
                continue
            hat = self.tex(self.hats[p])
            difference = self.show.normal(m - p)
            zero = difference == 0 or isinstance(difference, sp.ZeroMatrix)
            mean = rf"$\mathrm{{E}}\left[{hat}\right] = {self.tex(self.show.tidy(m))}$"
            if zero:
                out.append(f"Here ${hat}$ is unbiased ({mean}), so the bound applies to it at every $N$.")
            else:
                out.append(
                    f"Here ${hat}$ is biased ({mean}), so the bound does not apply to it as it stands."
                )
        return out

    # ------------------------------------------------------------------ the bound
    def _duplication_inverse(self, bound: sp.Basic) -> tuple[sp.Basic, tuple[str, str] | None] | None:
        """``(c D^T (A kron A) D)^-1 = c^-1 D^+ (A^-1 kron A^-1) D^+T`` (checked), and each entry's variance.

        The entries' bound, ``(S_jj S_kk + S_jk^2) / (2 c)`` with ``S = A^-1``, is the diagonal of the
        right-hand side; it is stated only where ``S`` is a matrix symbol, and checked entry by entry.
        """
        if not isinstance(bound, sp.Inverse) or not isinstance(bound.arg, sp.MatMul):
            return None
        c, mats = bound.arg.as_coeff_matrices()
        if len(mats) != 3:
            return None
        left, middle, right = mats
        if not (
            isinstance(right, DuplicationMatrix)
            and left == sp.Transpose(right)
            and isinstance(middle, KroneckerProduct)
            and len(middle.args) == 2
            and middle.args[0] == middle.args[1]
        ):
            return None
        a = middle.args[0]
        s = a.arg if isinstance(a, sp.Inverse) else sp.Inverse(a)
        plus = DuplicationInverse(right.n)
        form = mat_mul(1 / c, [plus, KroneckerProduct(s, s), sp.Transpose(plus)])
        if not self.check.equal(form, bound):
            return None
        if not isinstance(s, sp.MatrixSymbol) or not self._entries_hold(bound, s, c):
            return form, None
        name = self.tex(sp.MatrixSymbol(f"tilde_{s.name}", *s.shape))
        entry = self.tex(sp.Symbol(s.name))
        lhs = rf"\operatorname{{Var}}\left(\left[{name}\right]_{{jk}}\right)"
        two_c = self.tex(sp.factor(2 * c))
        rhs = rf"\frac{{{entry}_{{jj}} {entry}_{{kk}} + {entry}_{{jk}}^{{2}}}}{{{two_c}}}"
        return form, (lhs, rhs)

    def _entries_hold(self, bound: sp.Basic, s: sp.MatrixSymbol, c: sp.Expr) -> bool:
        """Whether the diagonal of ``bound`` in vech order is ``(S_jj S_kk + S_jk^2) / (2 c)``."""
        for point in self.check.points(bound, s):
            b, m, k = (self.check.value(e, point) for e in (bound, s, c))
            n = m.rows
            for idx, (r, q) in enumerate(vech_pairs(n)):
                want = (m[r, r] * m[q, q] + m[r, q] ** 2) / (2 * k)
                if abs(sp.N(b[idx, idx] - want, 30)) > sp.Float("1e-20") * max(1, abs(sp.N(want, 30))):
                    return False
        return True

    def _crlb_step(self, fi: Any, usable: list, kinds: dict) -> Step:
        diag = [b for _, b in bound_blocks(self.info) or []]
        lines: list[tuple[Any, Any]] = []
        relations: list[str] = []
        notes: list[str] = []
        for p, bound in zip(fi.params, diag):
            kind = kinds.get(p, "vec")
            tilde_name = f"tilde_{p.name}"
            tilde = (
                sp.MatrixSymbol(tilde_name, *p.shape)
                if isinstance(p, sp.MatrixSymbol)
                else sp.Symbol(tilde_name)
            )
            coord = self.coordinate(tilde, kind)
            scalar = not isinstance(bound, MatrixExpr) and not isinstance(bound, sp.MatrixBase)
            head = r"\operatorname{Var}" if scalar else r"\operatorname{Cov}"
            info_tex = f"I({self.coordinate(p, kind)})"
            lines.append((rf"{head}\left({coord}\right)", rf"\left(N {info_tex}\right)^{{-1}}"))
            relations.append(r"\ge" if scalar else r"\succeq")
            lines.append((None, self.shown(None, bound)))
            relations.append("=")
            rule = quick("the inverse of a duplication block", lambda b=bound: self._duplication_inverse(b))
            if rule is not None:
                form, entries = rule
                lines.append((None, form))
                relations.append("=")
                notes.append(
                    r"For a block $c\,\mathbf{D}^{\top} (\mathbf{A} \otimes \mathbf{A}) \mathbf{D}$ the "
                    r"inverse is $c^{-1} \mathbf{D}^{+} (\mathbf{A}^{-1} \otimes \mathbf{A}^{-1}) "
                    r"\mathbf{D}^{+\top}$, with $\mathbf{D}^{+} = (\mathbf{D}^{\top} \mathbf{D})^{-1} "
                    r"\mathbf{D}^{\top}$ the Moore–Penrose inverse of the duplication matrix (checked at "
                    f"{self.at_dims()})."
                )
                if entries is not None:
                    lines.append(entries)
                    relations.append(r"\ge")
                    notes.append(
                        "Its diagonal gives the bound on the variance of each entry (checked at "
                        f"{self.at_dims()})."
                    )
        text = (
            f"The cross blocks of {reference('fisher')} vanish, so the information is block-diagonal and "
            "the Cramér–Rao bound splits block by block: any unbiased estimator (written with a tilde) "
            "from $N$ observations has covariance at least the inverse of its block of the total "
            r"information $N I$ ($A \succeq B$: $A - B$ is positive semidefinite):"
            if len(fi.params) > 1
            else "By the Cramér–Rao inequality, any unbiased estimator (written with a tilde) from $N$ "
            "observations has covariance at least the inverse of the total information $N I$ "
            r"($A \succeq B$: $A - B$ is positive semidefinite):"
        )
        notes.append(
            "The bound holds for unbiased estimators; the maximum-likelihood estimator need not be one."
        )
        notes += self.bias_sentences()
        notes.append(
            "Under the usual regularity conditions it is asymptotically unbiased and attains this bound "
            r"as $N \to \infty$; the bound gives its asymptotic covariance and the standard errors of "
            "its entries."
        )
        after = " ".join(notes)
        return Step(
            "Cramér–Rao bound",
            text,
            tuple(lines),
            after=after,
            kind="crlb",
            section=INFORMATION,
            relations=tuple(relations),
            label=label_for("crlb"),
        )
