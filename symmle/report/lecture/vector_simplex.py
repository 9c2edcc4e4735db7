r"""The lecture of a simplex parameter: its maximum by the Lagrangian, its information on free coordinates.

:class:`SimplexSteps` is the part of :class:`~symmle.report.lecture.vector.VectorLecture` for a
parameter :math:`\mathbf{p}` on the simplex (:math:`\mathbf{1}^{\top}\mathbf{p} = 1`).  It writes the
stages of the pipeline's :class:`~symmle.symbolic.constrained.LagrangeDerivation` as a lecturer does:
the Lagrangian :math:`L(\mathbf{p}, \lambda) = \ell + \lambda (1 - \mathbf{1}^{\top}\mathbf{p})`, its
gradient set to zero, :math:`\mathbf{p}` in terms of :math:`\lambda`, the constraint solved for
:math:`\lambda` (with the identities of the statistics used, e.g. :math:`\mathbf{1}^{\top}\mathbf{T}_1 =
N` for one-hot rows) and the estimate; and the pipeline's
:class:`~symmle.symbolic.constrained.SimplexInformation`: the second differential, the expectation of the
statistic, the information on the :math:`K - 1` free coordinates and the Cramér–Rao bound.

Every expression shown is a stage's value, or a form checked equal to it
(:class:`~symmle.report.lecture.vector_forms.Checker`); the forms in the free coordinates
:math:`\mathbf{p}_{1:K-1}`, :math:`p_K` are checked at :math:`K = 2, 3` with those coordinates taken from
the same random point of the simplex, and the inverse of the information
(:math:`(\operatorname{diag}(\mathbf{q}) - \mathbf{q}\mathbf{q}^{\top}) / M`) exactly, as rational
matrices, before it is shown.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr

from symmle.report.lecture.core import INFORMATION, MAXIMISING, Step, quick
from symmle.report.lecture.finish import label_for, reference
from symmle.symbolic.constrained import LagrangeDerivation, SimplexInformation
from symmle.symbolic.matrix_calculus import RULES, MatrixDifferential

__all__ = ["SimplexSteps", "simplex_parameter"]

#: The rules of the Lagrangian's gradient, in the order a lecture states them.
_GRADIENT_RULES = ("trace", "product", "chain", "entrywise", "cyclic")


def simplex_parameter(model: Any, p: sp.Basic) -> bool:
    """Whether ``p`` is a parameter (or constant) of ``model`` on the simplex."""
    q = next((q for q in (*model.parameters, *model.constants) if q.symbol == p), None)
    return q is not None and q.domain == "simplex"


class SimplexSteps:
    """The steps of a simplex parameter in a vector lecture.

    The subclass (:class:`~symmle.report.lecture.vector.VectorLecture`) provides ``tex``, ``listing``,
    ``show``, ``check``, ``st``, ``info``, ``lik``, ``N``, ``hats``, ``at_dims`` and ``shown``.
    """

    # ------------------------------------------------------------------ the records
    def lagrange_record(self, p: sp.Basic) -> LagrangeDerivation | None:
        """The pipeline's Lagrangian derivation of ``p``, if it made one."""
        return next((r for q, r in getattr(self.st, "constrained", ()) if q == p), None)  # type: ignore[attr-defined]

    def simplex_information(self) -> SimplexInformation | None:
        """The information on free coordinates, if that is what the pipeline derived."""
        blocks = getattr(self.info, "blocks", None)  # type: ignore[attr-defined]
        return blocks if isinstance(blocks, SimplexInformation) else None

    def _ones(self, p: sp.Basic) -> str:
        return rf"\mathbf{{1}}^{{\top}} {self.tex(p)}"  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ the Lagrangian
    def lagrange_steps(self, p: sp.Basic, record: LagrangeDerivation) -> list[Step]:
        """The stages of the Lagrangian maximisation of ``ell`` over the simplex, as far as they went."""
        tex, show = self.tex, self.shown  # type: ignore[attr-defined]
        dp, lam = tex(p), tex(record.multiplier)
        ones = self._ones(p)
        steps: list[Step] = []
        lines: list[tuple[Any, Any]] = [
            (rf"L({dp}, {lam})", rf"\ell({dp}) + {lam} \left(1 - {ones}\right)"),
        ]
        if record.lagrangian.ok:
            lines.append((None, show(None, record.lagrangian.value)))
        text = (
            f"The entries of ${dp}$ are probabilities: positive, and constrained to sum to one, "
            f"${ones} = 1$. The log-likelihood {reference('log_likelihood')} is maximised on that set, "
            "not over all vectors, so its gradient need not vanish at the maximum: only its component "
            "along the constraint must. A Lagrange multiplier "
            f"${lam}$ expresses this: at the maximum, the Lagrangian"
        )
        after = (
            f"is stationary in both ${dp}$ and ${lam}$ (${RULES['lagrangian']}$). "
            f"Its derivative in ${lam}$ is the constraint itself."
        )
        steps.append(
            Step(
                f"Lagrangian of {p.name}",
                text,
                tuple(lines),
                after=after,
                kind="derivative",
                parameter=p.name,
                section=MAXIMISING,
                label=label_for("lagrangian", p.name),
            )
        )
        if not record.gradient.ok:
            return steps + [self._refused(p, record)]
        grad = record.gradient.value
        zero = sp.ZeroMatrix(*grad.shape) if isinstance(grad, MatrixExpr) else sp.S.Zero
        used = [f"${RULES[r]}$" for r in _GRADIENT_RULES if r in record.gradient.rules]
        lines = [(rf"\partial L / \partial {dp}", show(None, grad))]
        if not record.parameter_in_multiplier.ok:
            return steps + [self._stationary_step(p, lines, used, [], zero), self._refused(p, record)]
        solved = [(p, show(None, record.parameter_in_multiplier.value))]
        steps.append(self._stationary_step(p, lines, used, solved, zero))
        steps += self._multiplier_step(p, record)
        return steps

    def _stationary_step(self, p: sp.Basic, lines: list, used: list, solved: list, zero: sp.Basic) -> Step:
        dp = self.tex(p)  # type: ignore[attr-defined]
        text = (
            f"Differentiate the Lagrangian {reference('lagrangian', p.name)} with respect to ${dp}$"
            + (f", by {self.listing(used)}" if used else "")  # type: ignore[attr-defined]
            + ", and set the gradient to zero:"
        )
        relations = ["="] * len(lines)
        all_lines = [(line[0], line[1]) for line in lines]
        all_lines.append((None, zero))
        relations.append("=")
        after = ""
        if solved:
            how = "entry by entry" if "entrywise_solve" in self._rules(p) else ""
            after = (
                f"Each entry of the gradient involves only its own entry of ${dp}$, so the equation is "
                f"solved {how} for ${dp}$ in terms of the multiplier:".replace("  ", " ")
                if how
                else f"Solved for ${dp}$ in terms of the multiplier:"
            )
            after += f" ${dp} = {self.tex(solved[0][1])}$."  # type: ignore[attr-defined]
        return Step(
            f"Stationarity in {p.name}",
            text,
            tuple(all_lines),
            after=after,
            kind="derivative",
            parameter=p.name,
            section=MAXIMISING,
            relations=tuple(relations),
            label=label_for("derivative", p.name),
        )

    def _rules(self, p: sp.Basic) -> tuple[str, ...]:
        record = self.lagrange_record(p)
        return record.rules if record is not None else ()

    def _multiplier_step(self, p: sp.Basic, record: LagrangeDerivation) -> list[Step]:
        tex, show = self.tex, self.shown  # type: ignore[attr-defined]
        dp, lam = tex(p), tex(record.multiplier)
        if not record.multiplier_equation.ok:
            return [self._refused(p, record)]
        lines: list[tuple[Any, Any]] = [
            (rf"\partial L / \partial {lam}", rf"1 - {self._ones(p)}"),
            (None, show(None, record.multiplier_equation.value)),
            (None, sp.S.Zero),
        ]
        relations = ["=", "=", "="]
        if not record.multiplier_solution.ok:
            return [
                Step(
                    f"Multiplier of {p.name}",
                    f"The constraint at this ${dp}$ is an equation for ${lam}$:",
                    tuple(lines),
                    kind="stationary",
                    parameter=p.name,
                    section=MAXIMISING,
                    relations=tuple(relations),
                ),
                self._refused(p, record),
            ]
        lines.append((record.multiplier, show(None, record.multiplier_solution.value)))
        relations.append("=")
        identities = []
        if record.multiplier_hat.ok and record.identities:
            lines.append((None, show(None, record.multiplier_hat.value)))
            relations.append("=")
            for lhs, rhs in record.identities:
                identities.append(f"${tex(show(None, lhs))} = {tex(rhs)}$")
        text = (
            f"The multiplier follows from the constraint: its derivative in ${lam}$, at ${dp}$ in terms "
            f"of ${lam}$ from {reference('derivative', p.name)}, must vanish, which gives"
        )
        after = ""
        if identities:
            after = (
                "The last step uses "
                + self.listing(identities)  # type: ignore[attr-defined]
                + ", which holds for every sample of the model's support (each row of one-hot data sums "
                "to one, so the entries of the sum of the rows add up to the number of rows)."
                if any("N" in i for i in identities)
                else "The last step uses " + self.listing(identities) + ", an identity of the statistics "  # type: ignore[attr-defined]
                "that holds on the model's support."
            )
        steps = [
            Step(
                f"Multiplier of {p.name}",
                text,
                tuple(lines),
                after=after,
                kind="stationary",
                parameter=p.name,
                section=MAXIMISING,
                relations=tuple(relations),
                label=label_for("multiplier", p.name),
            )
        ]
        if not record.estimate.ok:
            return steps + [self._refused(p, record)]
        estimate = record.estimate.value
        hat = self.hats[p]  # type: ignore[attr-defined]
        lines = [(hat, show(None, estimate))]
        e = self.st.estimators.get(p.name)  # type: ignore[attr-defined]
        agreed = e is not None and e.kind == "closed_form" and self.check.equal(estimate, e.expr)  # type: ignore[attr-defined]
        after = ""
        if record.multiplier_hat.ok and not record.identities:
            after = (
                f"Here ${tex(show(None, record.multiplier_hat.value))}$ is the total of all the counts, "
                "so each probability is estimated by its share of that total."
            )
        steps.append(
            Step(
                f"Estimate of {p.name}",
                f"Putting ${lam} = {tex(show(None, record.multiplier_hat.value))}$ into "
                f"{reference('derivative', p.name)} gives the estimate, which is in the interior of the "
                "simplex (positive entries summing to one) whenever every category is observed:",
                tuple(lines),
                after=after if agreed else (after + " It differs from the estimator reported below.").strip(),
                kind="stationary",
                parameter=p.name,
                section=MAXIMISING,
                label=label_for("stationary", p.name),
            )
        )
        return steps

    def _refused(self, p: sp.Basic, record: LagrangeDerivation) -> Step:
        note = (record.reason or "a stage was refused").replace("$", chr(92) + "$")
        return Step(
            f"Constraint on {p.name}",
            f"symmle did not complete the Lagrangian derivation of ${self.tex(p)}$: {note}. "  # type: ignore[attr-defined]
            "No estimator is shown from it.",
            (),
            kind="reduced",
            parameter=p.name,
            section=MAXIMISING,
        )

    def simplex_second_order(self, p: sp.Basic) -> str:
        """The sentence of what the entrywise check of a simplex parameter's maximum verified."""
        dp, lam = self.tex(p), r"\lambda"  # type: ignore[attr-defined]
        return (
            f"for ${dp}$, that the derivatives of the Lagrangian {reference('lagrangian', p.name)} in each "
            f"entry of ${dp}$ and in ${lam}$ vanish at the estimate (which lies inside the simplex), and "
            f"that the Hessian of the log-likelihood restricted to the directions along the simplex "
            rf"($\mathbf{{v}}$ with $\mathbf{{1}}^{{\top}} \mathbf{{v}} = 0$) is negative definite there"
        )

    # ------------------------------------------------------------------ the information
    def _free_point(self, si: SimplexInformation, point: dict) -> dict:
        """``point`` with the free coordinates and the last entry taken from its value of ``p``."""
        pv = point[si.parameter]
        k = pv.rows
        out = dict(point)
        out[si.free] = pv[: k - 1, :]
        out[si.last] = pv[k - 1, 0]
        return out

    def free_equal(self, si: SimplexInformation, a: sp.Basic, b: sp.Basic) -> bool:
        """``a == b`` at ``K = 2, 3``, exactly, the free coordinates from the same point of the simplex."""

        def run() -> bool:
            check = self.check  # type: ignore[attr-defined]
            for point in check.points(si.parameter, a, b):
                point = self._free_point(si, point)
                va, vb = check.value(a, point), check.value(b, point)
                diff = sp.Matrix(va - vb) if isinstance(va, sp.MatrixBase) else sp.Matrix([[va - vb]])
                if any(sp.nsimplify(x) != 0 for x in diff):
                    return False
            return True

        return bool(quick("a form in the free coordinates", run))

    def _free_shown(self, si: SimplexInformation, derived: sp.Basic) -> sp.Basic:
        tidied = self.show.tidy(derived)  # type: ignore[attr-defined]
        return tidied if self.free_equal(si, tidied, derived) else derived

    def simplex_information_steps(self, si: SimplexInformation) -> list[Step]:
        """The second differential, the expectation, the information on the free coordinates, the bound."""
        tex = self.tex  # type: ignore[attr-defined]
        p, q, last = si.parameter, si.free, si.last
        dp, dq = tex(p), tex(q)
        k = tex(p.shape[0])
        one_hot = bool(si.identities)
        unit = "observation" if one_hot else "count"
        verified = all(all(row) for row in getattr(self.info, "verified", ((False,),)))  # type: ignore[attr-defined]
        steps: list[Step] = []
        # the second differential and its expectation, in the directions d(p), d(p)'
        lines: list[tuple[Any, Any]] = [(r"\mathrm{d}^{2} \ell", self.shown(None, si.second_differential))]  # type: ignore[attr-defined]
        lines.append((r"-\mathrm{E}\left[\mathrm{d}^{2} \ell\right]", self.shown(None, si.form)))  # type: ignore[attr-defined]
        ds = sorted(si.form.atoms(MatrixDifferential), key=str)
        if len(ds) == 2:
            bilinear = sp.Trace(sp.MatMul(ds[0].T, si.coordinate_matrix, ds[1]))
            if self.check.equal(bilinear, si.form):  # type: ignore[attr-defined]
                lines.append((None, bilinear))
        used = []
        for t, v in si.expectations.items():
            used.append(f"$\\mathrm{{E}}[{tex(t)}] = {tex(self.shown(None, v))}$")  # type: ignore[attr-defined]
        text = (
            f"The Fisher information of ${dp}$ is minus the expected second differential of the "
            f"log-likelihood {reference('log_likelihood')}, a bilinear form in two directions "
            f"$\\mathrm{{d}}{dp}$, $\\mathrm{{d}}{dp}'$:"
        )
        after = (
            "The expectation follows from the score identity of the Lagrangian: along every direction of "
            f"the simplex the score has mean zero, so $\\mathrm{{E}}[\\partial \\ell / \\partial {dp}]$ is a "
            f"multiple of $\\mathbf{{1}}$, fixed by the total "
            + self.listing([f"$\\mathbf{{1}}^{{\\top}} {tex(t)}$" for t in si.expectations])  # type: ignore[attr-defined]
            + ", which the design fixes"
            + (f" (${tex(si.total)}$)" if si.identities else "")
            + ": "
            + self.listing(used)  # type: ignore[attr-defined]
            + "."
        )
        steps.append(
            Step(
                "Second differentials",
                text,
                tuple(lines),
                after=after,
                kind="fisher",
                section=INFORMATION,
                label=label_for("fisher", "forms"),
            )
        )
        # the free coordinates
        per = self._free_shown(si, si.per_count)
        sample = self._free_shown(si, si.matrix)
        total = self.shown(None, si.total)  # type: ignore[attr-defined]
        info_lhs = f"I({dq})"
        lines = [(info_lhs, per)]
        sample_lhs = rf"{tex(total)} \, I({dq})" if not one_hot else rf"N I({dq})"
        lines.append((sample_lhs, sample))
        text = (
            f"The entries of ${dp}$ are not free: only ${dq}$, the first ${k} - 1$, are, and "
            f"${tex(last)} = 1 - \\mathbf{{1}}^{{\\top}} {dq}$. "
            f"The information is therefore taken on ${dq}$: "
            f"a direction of the simplex is $\\mathrm{{d}}{dp} = \\mathbf{{P}} \\, \\mathrm{{d}}{dq}$ with "
            r"$\mathbf{P} = \begin{pmatrix} \mathbf{I} \\ -\mathbf{1}^{\top} \end{pmatrix}$, and "
            f"${RULES['tangent']}$ turns the form of {reference('fisher', 'forms')} into the information "
            f"of one {unit} and of the sample:"
        )
        after = (
            "The second term couples every pair of free coordinates, through the last entry they determine."
        )
        if not one_hot:
            after += (
                f" A row of counts carries its count times the information of one count, and the counts "
                f"vary by row: the sample's information is the total count ${tex(total)}$ times "
                f"${info_lhs}$."
            )
        if verified:
            after += (
                f" It was checked at ${k} = 2$ and ${k} = 3$ against minus the expected Hessian of the "
                f"log-likelihood written out in ${dq}$ entry by entry, the expectation taken exactly."
            )
        steps.append(
            Step(
                "Fisher information",
                text,
                tuple(lines),
                after=after,
                kind="fisher",
                section=INFORMATION,
                label=label_for("fisher"),
            )
        )
        bound = self._simplex_bound(si, sample_lhs)
        if bound is not None:
            steps.append(bound)
        return steps

    def _simplex_bound(self, si: SimplexInformation, sample_lhs: str) -> Step | None:
        """``Cov(q~) >= (M I(q))^-1 = (diag(q) - q q^T)/M``, each form checked exactly at K = 2, 3."""
        crlb = getattr(self.info, "crlb", None)  # type: ignore[attr-defined]
        if crlb is None:
            return None
        tex = self.tex  # type: ignore[attr-defined]
        q = si.free
        total = si.total
        lines: list[tuple[Any, Any]] = [
            (
                rf"\operatorname{{Cov}}\left(\tilde{{{tex(si.parameter)}}}_{{1:{tex(q.shape[0])}}}\right)",
                rf"\left({sample_lhs}\right)^{{-1}}",
            )
        ]
        relations = [r"\succeq"]
        notes = []
        closed = sp.MatMul(1 / total, sp.MatAdd(sp.DiagMatrix(q), -sp.MatMul(q, q.T)))
        if self.free_equal(si, closed, crlb):
            lines.append((None, closed))
            relations.append("=")
            notes.append(
                r"The inverse of $\operatorname{diag}(\mathbf{a}) + c \mathbf{1}\mathbf{1}^{\top}$ "
                "follows from the Sherman–Morrison formula; it was checked equal to the inverse of "
                f"{reference('fisher')}, exactly, at {self.at_dims()}."  # type: ignore[attr-defined]
            )
            # its diagonal: the variance of each free entry, p_k (1 - p_k) / M (checked entry by entry)
            entry = sp.Symbol(f"{si.parameter.name}_k", positive=True)
            lhs = rf"\operatorname{{Var}}\left(\tilde{{{tex(sp.Symbol(si.parameter.name))}}}_{{k}}\right)"
            diagonal = sp.DiagMatrix(sp.MatMul(sp.DiagMatrix(q), sp.OneMatrix(*q.shape) - q)) / total
            if self.free_equal(si, diagonal, sp.DiagMatrix(sp.DiagonalOf(closed))):
                lines.append((lhs, entry * (1 - entry) / total))
                relations.append(r"\ge")
                notes.append(
                    f"Its diagonal bounds the variance of each entry, $k = 1, \\dots, {tex(q.shape[0])}$ "
                    "(and, as any entry could be the last, of every entry)."
                )
        else:
            lines.append((None, self.shown(None, crlb)))  # type: ignore[attr-defined]
            relations.append("=")
        text = (
            "By the Cramér–Rao inequality, any unbiased estimator (written with a tilde) of the free "
            "coordinates has covariance at least the inverse of the information of the sample "
            r"($A \succeq B$: $A - B$ is positive semidefinite):"
        )
        notes.append(
            "Under the usual regularity conditions the maximum-likelihood estimator attains this bound as "
            "the sample grows; it gives the standard errors of the entries."
        )
        return Step(
            "Cramér–Rao bound",
            text,
            tuple(lines),
            after=" ".join(notes),
            kind="crlb",
            section=INFORMATION,
            relations=tuple(relations),
            label=label_for("crlb"),
        )
