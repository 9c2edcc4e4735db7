"""The ``symmle`` command line: parses, calls one library function, prints.

SymPy is imported only by the commands that need it, so ``symmle --help``
and ``symmle list`` start fast.  Errors become one line on stderr and a
non-zero exit code, in one place (:class:`_Group`).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

import click

from symmle.base.errors import DerivationError, SpecError, SymmleError, exit_code_for
from symmle.base.terminal import printable

__all__ = ["main"]

INTERNAL_ERROR = 70

#: click >= 8.2 raises this for a bare ``symmle`` (older versions print the help themselves)
_NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())


class _Group(click.Group):
    """Maps every exception to a one-line message and an exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # click's own usage errors (a bad option value, an unknown command)
        # become one line too, with exit code 2
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            if isinstance(exc, _NO_ARGS) and exc.ctx is not None:
                click.echo(exc.ctx.get_help())  # `symmle` alone: the help
                sys.exit(2)
            hint = (
                f" (see 'symmle {exc.ctx.info_name} --help')"
                if exc.ctx is not None and exc.ctx.parent is not None
                else " (see 'symmle --help')"
            )
            _fail(exc.format_message() + hint, 2)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.exceptions.Abort:
            _fail("interrupted", 130)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        # Library warnings (NumPy's floating-point RuntimeWarnings, SymPy's) are not
        # messages for the user: every result that matters is checked and reported
        # by symmle itself.  A caveat of the runtime that no result carried is shown
        # as one line.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return self._invoke(ctx)
            finally:
                _show_caveats(caught)

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except SymmleError as exc:
            _fail(str(exc), exit_code_for(exc))
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:
            # the reader went away (`symmle list | head`): nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except RecursionError:
            # the parser and the spec reader bound nesting; this is SymPy recursing on a model
            _fail("a symbolic step recursed too deeply on this model", DerivationError.exit_code)
        except MemoryError:
            _fail("out of memory", INTERNAL_ERROR)
        except Exception as exc:  # never show a traceback
            _fail(f"internal error ({type(exc).__name__}): {_one_line(str(exc))}", INTERNAL_ERROR)


def _show_caveats(caught: list[warnings.WarningMessage]) -> None:
    shown = set()
    for w in caught:
        if w.category.__name__ == "EstimateWarning" and str(w.message) not in shown:
            shown.add(str(w.message))
            click.echo(f"symmle: warning: {_one_line(str(w.message))}", err=True)


def _one_line(text: str) -> str:
    text = " ".join(printable(text, newlines=False).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _fail(message: str, code: int) -> None:
    click.echo(f"symmle: error: {_one_line(message)}", err=True)
    sys.exit(code)


def _echo(text: str, **kwargs: Any) -> None:
    """Every line the commands print: names and titles are untrusted, so no control characters.

    Output that cannot be written is an error (exit 2), never silently lost: standard output
    closed (``>&-``: Python then has no ``sys.stdout``, and click would print nothing) or failing
    (``>/dev/full``).  A reader that went away is a broken pipe, handled in :class:`_Group`.
    """
    if sys.stdout is None:
        raise SpecError("cannot write the output: standard output is closed")
    try:
        click.echo(printable(text), **kwargs)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise SpecError(f"cannot write to standard output: {exc.strerror or exc}") from None


def _refuse_overwriting(output: str | None, model: str | None) -> None:
    """An output file must not be the spec file read (``-o model.toml`` would destroy it)."""
    if output and model:
        from symmle.base.files import refuse_input
        from symmle.model.catalogue import family_path

        refuse_input(output, [family_path(model) or model])


class _Seconds(click.ParamType):
    """A time budget: a positive, finite number of seconds, at most ``MAX_TIMEOUT``."""

    name = "seconds"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        from symmle.base.budget import check_timeout

        try:
            return check_timeout(value)
        except SpecError as exc:
            self.fail(str(exc), param, ctx)


_TIMEOUT_HELP = "Budget in seconds of each symbolic step [default: 20]."


def _no_cache(ctx: click.Context, param: Any, value: bool) -> bool:
    """``--no-cache``: the command's derivations neither read nor write the cache."""
    if value:
        from symmle.symbolic.cache import caching

        ctx.with_resource(caching(False))
    return value


_cache_option = click.option(
    "--no-cache",
    is_flag=True,
    expose_value=False,
    callback=_no_cache,
    help="Derive afresh: neither read nor write the cache of derivations.",
)


def _remember_dim(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    ctx.meta["symmle.dim"] = value
    return value


def _inline_options(fn):
    opts = [
        click.option("--pdf", help="Inline density or mass function, e.g. 'lam*exp(-lam*x)'."),
        click.option("--var", default="x", show_default=True, help="Variable of the inline model."),
        click.option("--discrete", is_flag=True, help="The inline model is a probability mass function."),
        click.option("--support", help="Support of the inline model as LO,HI, e.g. 0,oo."),
        click.option(
            "--param",
            "params",
            multiple=True,
            metavar="NAME:DOMAIN",
            help="Parameter to estimate (repeatable).",
        ),
        click.option(
            "--const",
            "consts",
            multiple=True,
            metavar="NAME[:DOMAIN][=VALUE]",
            help="Constant: declare it (NAME:DOMAIN), give its value (NAME=VALUE), or both.",
        ),
        click.option(
            "--dim",
            metavar="NAME",
            expose_value=False,
            callback=_remember_dim,
            help="The inline model's variable is a vector of dimension NAME (e.g. D).",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _remember_prior(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    ctx.meta[f"symmle.{param.name}"] = value
    return value


def _prior_options(fn):
    """``--prior PARAM~FAMILY(args)`` and ``--prior-pdf EXPR``: MAP estimation (read by ``_with_prior``)."""
    fn = click.option(
        "--prior-pdf",
        "prior_pdf",
        multiple=True,
        expose_value=False,
        callback=_remember_prior,
        metavar="EXPR",
        help="MAP: an inline prior density in the parameter names (repeatable).",
    )(fn)
    return click.option(
        "--prior",
        "prior",
        multiple=True,
        expose_value=False,
        callback=_remember_prior,
        metavar='"PARAM ~ FAMILY(NAME=VALUE,...)"',
        help='MAP: a catalogue family as the prior of PARAM, e.g. "p ~ beta(a=2, b=2)" (repeatable).',
    )(fn)


def _with_prior(m):
    """``m`` with the priors of ``--prior``/``--prior-pdf``, if any were given."""
    meta = click.get_current_context().meta
    priors, pdfs = meta.get("symmle.prior", ()), meta.get("symmle.prior_pdf", ())
    return m.with_prior(list(priors), list(pdfs)) if priors or pdfs else m


def _links(items: tuple[str, ...]) -> dict[str, str] | None:
    """``--link PARAM=LINK`` items as ``{PARAM: LINK}`` (``None`` if there are none)."""
    from symmle.model.link import parse_links

    return parse_links(items, "--link") if items else None


def _split_consts(consts: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """``NAME:DOMAIN[=VALUE]`` -> declarations; ``NAME=VALUE`` -> values."""
    declarations, values = [], {}
    for item in consts:
        head, eq, value = item.partition("=")
        name, colon, domain = head.partition(":")
        name = name.strip()
        if not name or (eq and not value.strip()) or (not eq and not colon):
            raise SpecError(f"--const must be NAME:DOMAIN, NAME=VALUE or NAME:DOMAIN=VALUE (got {item!r})")
        if colon:
            declarations.append(f"{name}:{domain.strip()}")
        if eq:
            values[name] = value.strip()
    return declarations, values


def _resolve_model(model: str | None, pdf, var, discrete, support, params, consts, title=None):
    from symmle.model.build import inline_model, load_model

    declarations, values = _split_consts(consts)
    if pdf is not None:
        if model is not None:
            raise SpecError("give either MODEL or --pdf, not both")
        dim = click.get_current_context().meta.get("symmle.dim")
        if not support and dim is None:
            raise SpecError("--pdf needs --support LO,HI")
        if not params:
            raise SpecError("--pdf needs at least one --param NAME:DOMAIN")
        named = {} if title is None else {"title": title}
        if dim is not None:
            named["dimension"] = dim
        m = inline_model(
            pdf, var, support, list(params), declarations, discrete=discrete, validate=False, **named
        )
    else:
        if title is not None:
            raise SpecError("--title goes with an inline --pdf model only (a spec file has its own title)")
        if model is None:
            raise SpecError("give a MODEL (catalogue name or spec file) or an inline --pdf")
        if params or declarations or support or discrete:
            raise SpecError("--param, --support, --discrete and --const NAME:DOMAIN go with --pdf only")
        if click.get_current_context().meta.get("symmle.dim") is not None:
            raise SpecError("--dim goes with an inline --pdf model only (a spec file has its own dimension)")
        m = load_model(model, validate=False)
    if values:
        m = m.with_constants(values)
    from symmle.model.density import check_density

    check_density(m)
    return m


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="symmle")
def cli() -> None:
    """symmle: symbolic maximum-likelihood derivations."""


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema 1).")
def list_cmd(as_json: bool) -> None:
    """List the catalogue of model families."""
    from symmle.model.catalogue import list_families

    families = list_families()
    if as_json:
        _echo(json.dumps({"schema": 1, "families": families}, indent=2))
        return
    width = max((len(f["name"]) for f in families), default=4)
    for f in families:
        params = ", ".join(f["parameters"])
        consts = ", ".join(f["constants"])
        extra = f"; known: {consts}" if consts else ""
        links = ", ".join(f"{p}={link}" for p, link in f.get("link", {}).items())
        extra += f"; link: {links}" if links else ""
        _echo(f"{f['name']:<{width}}  {f['title']}  [{params}{extra}]")


def _with_bias(d, fmt: str, standalone: bool, timeout: float) -> str:
    """The document of ``derive --bias``: the derivation with its exact-bias section or fields."""
    from symmle.report import bias as section
    from symmle.symbolic.moments import exact_bias

    moments = exact_bias(d, timeout=timeout)
    if fmt == "json":
        return json.dumps(section.add_bias_fields(d.to_dict(), moments), indent=2) + "\n"
    if fmt == "latex":
        body = section.bias_latex(d, moments)
        return section.with_bias_latex(d.to_latex(standalone=standalone), body, standalone) + "\n"
    if fmt == "markdown":
        return d.to_markdown() + "\n" + section.bias_markdown(d, moments)
    return d.to_text() + section.bias_text(d, moments)


@cli.command()
@click.argument("model", required=False)
@_inline_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "latex", "markdown", "json"]),
    default="text",
    show_default=True,
)
@click.option("--standalone", is_flag=True, help="With --format latex: a complete document.")
@click.option("--title", help="Title of the document of an inline --pdf model [default: Inline model].")
@click.option(
    "--link",
    "links",
    multiple=True,
    metavar="PARAM=LINK",
    help="Regression: PARAM = g^-1(x^T beta), LINK one of identity log logit probit cloglog inverse sqrt.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to FILE instead of stdout."
)
@click.option(
    "--derived",
    "derived",
    multiple=True,
    metavar="NAME=EXPR",
    help="A function g of the parameters, e.g. sigma=sqrt(sigma2): its MLE and delta-method variance.",
)
@click.option("--timeout", type=_Seconds(), default=None, help=_TIMEOUT_HELP)
@click.option(
    "--bias", is_flag=True, help="Add the exact finite-sample bias, variance, MSE and unbiased correction."
)
@click.option(
    "--censored",
    "censored",
    is_flag=True,
    help="Right-censored data: the likelihood with log S(t) terms, the survival function and its MLE.",
    default=False,
)
@click.option(
    "--mixture",
    metavar="K",
    help="A K-component mixture of MODEL: responsibilities, Q, the M-step and the weights of EM.",
)
@_prior_options
@_cache_option
def derive(
    model,
    pdf,
    var,
    discrete,
    support,
    params,
    consts,
    fmt,
    standalone,
    title,
    links,
    derived,
    output,
    timeout,
    bias,
    censored,
    mixture,
) -> None:
    """Derive the MLE, Fisher information and CRLB of MODEL.

    MODEL is a catalogue name (see 'symmle list'), a spec file, or omitted
    with the inline form --pdf ... --var ... --support ... --param ....
    """
    from symmle.base.budget import DEFAULT_TIMEOUT
    from symmle.symbolic.derivation import derive as run

    if title is not None and not title.strip():
        raise SpecError("--title must not be empty")
    _refuse_overwriting(output, model)
    m = _resolve_model(model, pdf, var, discrete, support, params, consts, title)
    if links:
        m = m.with_link(_links(links))
    m = _with_prior(m)
    if mixture is not None:
        m = m.with_mixture(mixture)
    if bias and m.mixture:
        raise SpecError("--bias does not combine with --mixture")
    if censored:  # see symmle.symbolic.censored
        from symmle.symbolic.censored import derive_censored

        if m.is_regression or m.prior or m.mixture or derived or bias:
            raise SpecError(
                "--censored derives a scalar model (no --link, --prior, --mixture, --derived, --bias)"
            )
        d = derive_censored(m, timeout=timeout if timeout is not None else DEFAULT_TIMEOUT)
    else:
        d = run(m, timeout=timeout if timeout is not None else DEFAULT_TIMEOUT, derived=list(derived) or None)
    if bias:
        text = _with_bias(d, fmt, standalone, timeout if timeout is not None else DEFAULT_TIMEOUT)
    elif fmt == "json":
        text = json.dumps(d.to_dict(), indent=2) + "\n"
    elif fmt == "latex":
        text = d.to_latex(standalone=standalone) + "\n"
    elif fmt == "markdown":
        text = d.to_markdown()
    else:
        text = d.to_text()
    if output:
        from symmle.base.files import write_output

        write_output(output, text)
    else:
        _echo(text, nl=False)


@cli.command()
@click.argument("args", nargs=-1, metavar="[MODEL] DATA")
@_inline_options
@click.option("--column", help="Column of DATA: a header or Parquet column name, or a 1-based index.")
@click.option(
    "--columns",
    metavar="A,B,...",
    help="Columns of DATA for a vector model, in order (names or 1-based indices); default: all.",
)
@click.option(
    "--dropna",
    is_flag=True,
    help="Drop the rows whose value is missing (an empty cell, NA, NaN) and say how many.",
)
@click.option(
    "--link",
    "links",
    multiple=True,
    metavar="PARAM=LINK",
    help="Regression: PARAM = g^-1(x^T beta), LINK one of identity log logit probit cloglog inverse sqrt.",
)
@click.option(
    "--censored",
    "status_column",
    metavar="COL",
    help="Right-censored data: COL is the status (1 = event observed at the --column time, 0 = censored).",
)
@click.option(
    "--interval",
    "interval_columns",
    metavar="LO,HI",
    help="Interval-censored data in two columns (LO empty: left-censored, HI empty: right-censored).",
)
@click.option("--formula", help='Regression design as a Wilkinson formula, e.g. "y ~ a + C(b) + np.log(c)".')
@click.option("--y", "response", metavar="COL", help="Regression: the response column (with --x).")
@click.option(
    "--x", "covariates", metavar="A,B,...", help="Regression: covariate columns (an intercept is added)."
)
@click.option(
    "--offset", metavar="COL", help="Regression: a column added to the linear predictor (e.g. log time)."
)
@click.option(
    "--derived",
    "derived",
    multiple=True,
    metavar="NAME=EXPR",
    help="A function g of the parameters, e.g. sigma=sqrt(sigma2): its MLE and delta-method variance.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.png",
    help="Diagnostic plots: histogram and density, CDF, Q-Q, P-P (needs matplotlib).",
)
@click.option(
    "--mixture", metavar="K", help="Fit a K-component mixture of MODEL by EM (K = 1: the plain fit)."
)
@click.option(
    "--components",
    metavar="LOW..HIGH",
    help="Fit mixtures of LOW..HIGH (or K1,K2,...) components and keep the one of least BIC.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the mixture's random EM starts."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema 1).")
@click.option(
    "--ci",
    type=click.Choice(["transformed", "wald", "profile"]),
    default="transformed",
    show_default=True,
    help="95% intervals: on the log/logit scale of positive/(0,1) parameters, mapped back, plain Wald, "
    "or profile likelihood.",
)
@click.option("--timeout", type=_Seconds(), default=None, help=_TIMEOUT_HELP)
@_prior_options
@_cache_option
def fit(
    args,
    pdf,
    var,
    discrete,
    support,
    params,
    consts,
    column,
    columns,
    dropna,
    links,
    status_column,
    interval_columns,
    formula,
    response,
    covariates,
    offset,
    derived,
    plot,
    mixture,
    components,
    seed,
    as_json,
    ci,
    timeout,
) -> None:
    """Fit MODEL to DATA by maximum likelihood.

    DATA is a .csv, .tsv, .txt (each optionally .gz, .bz2 or .xz), .parquet
    or .npy file, or - for standard input.  With an inline --pdf model, DATA
    is the only argument.
    """
    from symmle.base.budget import DEFAULT_TIMEOUT
    from symmle.numbers.data import load_data
    from symmle.numbers.fitting import fit as run_fit
    from symmle.numbers.missing import drop_missing, source_rows
    from symmle.symbolic.derivation import derive as run

    expected = 1 if pdf is not None else 2
    if len(args) != expected:
        raise SpecError("usage: symmle fit MODEL DATA, or symmle fit --pdf ... DATA")
    model, data_path = (None, args[0]) if pdf is not None else args
    _, values = _split_consts(consts)
    m = _resolve_model(model, pdf, var, discrete, support, params, consts)
    budget = timeout if timeout is not None else DEFAULT_TIMEOUT
    if links:
        m = m.with_link(_links(links))
    m = _with_prior(m)
    if ci == "profile":  # refused before the data are read
        from symmle.numbers.profile_ci import check_profile_supported

        check_profile_supported(m)
    if derived:  # refused before the data are read: scalar-parameter models only
        from symmle.model.derived import parse_derived

        parse_derived(list(derived), m)
    if plot:
        _plot_ready(plot, model, m)
    if mixture is not None:
        from symmle.numbers.mixture_em import check_components

        mixture = check_components(mixture)
        if mixture > 1 and (m.is_regression or (m.is_vector and m.support_set != "real")):
            raise SpecError(
                "--mixture: only scalar families and vector families on R^D can be mixed for now "
                "(no regression, count, one-hot or simplex models)"
            )
    if components is not None:
        from symmle.numbers.mixture_em import parse_components

        if mixture is not None:
            raise SpecError("give --mixture K or --components LOW..HIGH, not both")
        components = parse_components(components)
        if m.is_regression or (m.is_vector and m.support_set != "real"):
            raise SpecError(
                "--components: only scalar families and vector families on R^D can be mixed for now "
                "(no regression, count, one-hot or simplex models)"
            )
    if plot and ((mixture is not None and mixture > 1) or components is not None):
        raise SpecError("--plot draws a single-component fit: drop --plot or --mixture/--components")
    if ((mixture is not None and mixture > 1) or components is not None) and (
        m.prior or derived or ci == "profile"
    ):
        raise SpecError(
            "a mixture is fitted by maximum likelihood with Wald intervals: "
            "no --prior, --derived or --ci profile"
        )
    if status_column is not None or interval_columns is not None:  # see symmle.numbers.censored_fit
        from symmle.numbers.censored_fit import fit_censored, load_censored, load_interval

        if status_column is not None and interval_columns is not None:
            raise SpecError("give either --censored or --interval, not both")
        if (
            m.is_regression
            or m.is_vector
            or m.prior
            or m.mixture
            or derived
            or dropna
            or plot
            or columns is not None
            or mixture is not None
            or components is not None
        ):
            raise SpecError(
                "--censored and --interval fit a scalar model "
                "(no --link, --prior, --mixture, --components, --derived, --dropna, --plot)"
            )
        if interval_columns is not None:
            data = load_interval(data_path, interval_columns)
        else:
            data = load_censored(data_path, column, status_column)
        result = fit_censored(m, data, values, timeout=budget, ci=ci)
        _echo(json.dumps(result.to_dict(), indent=2) if as_json else result.to_text(), nl=not not as_json)
        return
    regression_flags = (formula, response, covariates, offset)
    if not m.is_regression and any(v is not None for v in regression_flags):
        raise SpecError("--formula, --y, --x and --offset make a regression: add --link PARAM=LINK")
    if m.is_regression:
        from symmle.numbers.design import load_design
        from symmle.numbers.regression_fit import fit_regression

        if column is not None or columns is not None:
            raise SpecError("a regression reads its columns from --formula, or from --y and --x")
        design = load_design(
            data_path,
            formula=formula,
            y=response,
            x=None if covariates is None else [c.strip() for c in covariates.split(",")],
            offset=offset,
            dropna=dropna,
        )
        result = fit_regression(run(m, timeout=budget), design, values, ci=ci, timeout=budget)
        dropped_rows = design.dropped if dropna else None
    elif m.is_vector and m.support_set == "onehot" and columns is None:
        from symmle.numbers.labels import load_labels
        from symmle.numbers.vector_fit import fit_counts

        labels = load_labels(data_path, column, dropna=dropna)
        result = fit_counts(run(m, timeout=budget), labels.categories, labels.counts, timeout=budget, ci=ci)
        dropped_rows = labels.dropped if dropna else None
    elif m.is_vector:
        from symmle.numbers.vector_data import load_matrix

        if column is not None:
            raise SpecError("a vector model reads several columns: give --columns A,B,... (or none for all)")
        chosen = [c.strip() for c in columns.split(",")] if columns else None
        table = load_matrix(data_path, chosen, dropna=dropna)
        x, dropped = table.values, table.dropped
        with source_rows(dropped):
            result = run_fit(
                run(m, timeout=budget),
                x,
                values,
                timeout=budget,
                ci=ci,
                columns=table.columns,
                mixture=mixture,
                seed=seed,
                components=components,
            )
        dropped_rows = None if dropped is None else dropped.count
    else:
        if columns is not None:
            raise SpecError(f"--columns is for vector models; '{m.name}' has one variable: use --column")
        x = load_data(data_path, column)
        dropped = drop_missing(x) if dropna else None
        if dropped is not None:
            x = dropped.values
        with source_rows(dropped):  # a bad row is named by its row in DATA
            result = run_fit(
                run(m, timeout=budget),
                x,
                values,
                timeout=budget,
                ci=ci,
                derived=list(derived) or None,
                mixture=mixture,
                seed=seed,
                components=components,
            )
        dropped_rows = None if dropped is None else dropped.count
    doc = result.to_dict()
    if dropped_rows is not None:
        doc["dropped"] = dropped_rows
        total = dropped_rows + int(result.n)
        note = f"dropped {dropped_rows:,} of {total:,} rows with a missing value (--dropna)"
        click.echo(f"symmle: {note}", err=True)
    _echo(json.dumps(doc, indent=2) if as_json else result.to_text(), nl=not not as_json)
    if plot:
        from symmle.simulate.fit_plots import plot_fit

        plot_fit(m, result.estimates, x, plot)
        if not as_json:
            _echo(f"wrote {plot}")


def _plot_ready(plot: str, model: str | None, m: Any) -> None:
    """``--plot``: matplotlib is there, the file is not an input, and the model has one scalar variable."""
    from symmle.simulate.plots import require_matplotlib

    require_matplotlib()
    _refuse_overwriting(plot, model)
    if m.is_vector or m.is_regression or m.prior:
        raise SpecError("--plot draws models of one scalar variable (no vector, link or prior)")


@cli.command()
@click.argument("model", required=False)
@_inline_options
@click.option(
    "--true",
    "true_values",
    multiple=True,
    metavar="NAME=VALUE[,...]",
    help="True value of every parameter, e.g. mu=3,sigma2=4.",
)
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=2),
    default=1000,
    show_default=True,
    help="Sample size of each replicate.",
)
@click.option(
    "--reps",
    type=click.IntRange(min=2),
    default=1000,
    show_default=True,
    help="Replicates at each sample size (100 with --mixture unless given).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Seed of the random generator [default: fresh entropy].",
)
@click.option(
    "--sizes", metavar="N1,N2,...", help="Sample sizes of the consistency check [default: n/16, n/4, n]."
)
@click.option(
    "--agree",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Replicates cross-checked with an independent optimiser.",
)
@click.option(
    "--generic-sampler",
    is_flag=True,
    help="Draw from the density by numerical inversion even if the model declares a [sampler].",
)
@click.option(
    "--link",
    "links",
    multiple=True,
    metavar="PARAM=LINK",
    help="Check the regression PARAM = g^-1(x^T beta) (give --true beta=[...], the intercept first).",
)
@click.option(
    "--design",
    default="normal",
    show_default=True,
    metavar="normal|uniform|FILE",
    help="A regression's covariates: standard normal or uniform (0,1) columns, or a file's columns (fixed).",
)
@click.option(
    "--mixture",
    metavar="K",
    help='Check the EM fit of a K-component mixture (--true "w=[...],PARAM=[...],..." with K values each).',
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.png",
    help="Histogram of the estimates and error against n (needs matplotlib).",
)
@click.option(
    "--censor-rate",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=None,
    metavar="R",
    help="Right-censor a fraction R of each replicate (exponential censoring times): bias, SE, coverage.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema 1).")
@click.option("--timeout", type=_Seconds(), default=None, help=_TIMEOUT_HELP)
@_cache_option
def check(
    model,
    pdf,
    var,
    discrete,
    support,
    params,
    consts,
    true_values,
    n,
    reps,
    seed,
    sizes,
    agree,
    generic_sampler,
    links,
    design,
    mixture,
    plot,
    censor_rate,
    as_json,
    timeout,
) -> None:
    """Check MODEL's estimators by simulation at known parameter values.

    Per parameter: bias, efficiency against the Cramér-Rao bound, coverage
    of the 95% intervals, agreement with an independent optimiser, and the
    error shrinking with n.  Exits with 6 if a check fails.
    """
    from symmle.base.budget import DEFAULT_TIMEOUT
    from symmle.base.errors import VerificationError
    from symmle.simulate.check import check as run_check
    from symmle.simulate.check import parse_assignments
    from symmle.simulate.plots import plot_check, require_matplotlib

    if not true_values:
        raise SpecError("check needs --true NAME=VALUE[,NAME=VALUE...] for every parameter")
    true = parse_assignments(true_values)
    size_list = None
    if sizes:
        try:
            size_list = [int(s) for s in sizes.split(",") if s.strip()]
        except ValueError:
            raise SpecError(f"--sizes must be integers N1,N2,... (got {sizes!r})") from None
    if mixture is not None:
        from symmle.numbers.mixture_em import check_components

        mixture = check_components(mixture)
        if mixture > 1 and plot:
            raise SpecError("--plot is not available with --mixture")
    if plot:
        require_matplotlib()
        _refuse_overwriting(plot, model)
    m = _resolve_model(model, pdf, var, discrete, support, params, consts)
    budget = timeout if timeout is not None else DEFAULT_TIMEOUT
    if censor_rate is not None:  # see symmle.simulate.censored_check
        from symmle.simulate.censored_check import check_censored

        if links or plot or sizes or generic_sampler or mixture is not None or m.mixture:
            raise SpecError(
                "--censor-rate checks a scalar model: "
                "no --link, --mixture, --plot, --sizes or --generic-sampler"
            )
        result = check_censored(m, true, censor_rate=censor_rate, n=n, reps=reps, seed=seed, timeout=budget)
        _echo(json.dumps(result.to_dict(), indent=2) if as_json else result.to_text(), nl=as_json)
        if not result.passed:
            _fail("check failed: " + "; ".join(result.failures()), VerificationError.exit_code)
        return
    if mixture is not None and mixture > 1:
        ctx = click.get_current_context()
        agree_given = ctx.get_parameter_source("agree")
        if agree_given is not None and agree_given.name != "DEFAULT":
            raise SpecError("--agree is not available with --mixture")
        if ctx.get_parameter_source("reps").name == "DEFAULT":
            reps = 100  # each replicate is an EM fit from several starts
    result = run_check(
        m,
        true,
        n=n,
        reps=reps,
        seed=seed,
        sizes=size_list,
        agree=agree,
        generic_sampler=generic_sampler,
        progress=not as_json and sys.stderr.isatty(),
        timeout=budget,
        link=_links(links),
        design=design,
        mixture=mixture,
    )
    _echo(json.dumps(result.to_dict(), indent=2) if as_json else result.to_text(), nl=as_json)
    if plot:
        plot_check(result, plot)
        if not as_json:
            _echo(f"wrote {plot}")
    if not result.passed:
        _fail("check failed: " + "; ".join(result.failures()), VerificationError.exit_code)


@cli.command("test")
@click.argument("args", nargs=-1, metavar="[MODEL] DATA")
@_inline_options
@click.option(
    "--null",
    "null_values",
    multiple=True,
    metavar="NAME=VALUE[,NAME=VALUE...]",
    help="The null hypothesis: parameters fixed at these values (repeatable).",
)
@click.option("--column", help="Column of DATA: a header or Parquet column name, or a 1-based index.")
@click.option(
    "--dropna",
    is_flag=True,
    help="Drop the rows whose value is missing (an empty cell, NA, NaN) and say how many.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema 1).")
@click.option("--timeout", type=_Seconds(), default=None, help=_TIMEOUT_HELP)
@_cache_option
def hypothesis_cmd(
    args, pdf, var, discrete, support, params, consts, null_values, column, dropna, as_json, timeout
) -> None:
    """Likelihood-ratio, Wald and score tests of H0 (--null) on DATA.

    The null model fixes the --null parameters; each statistic is referred
    to the chi-square distribution with as many degrees of freedom as
    parameters fixed.
    """
    from symmle.base.budget import DEFAULT_TIMEOUT
    from symmle.numbers.data import load_data
    from symmle.numbers.hypothesis import hypothesis_test
    from symmle.numbers.missing import drop_missing, source_rows
    from symmle.simulate.check import parse_assignments

    expected = 1 if pdf is not None else 2
    if len(args) != expected:
        raise SpecError(
            "usage: symmle test MODEL DATA --null NAME=VALUE, or symmle test --pdf ... DATA --null ..."
        )
    if not null_values:
        raise SpecError("test needs --null NAME=VALUE[,NAME=VALUE...]: the parameters H0 fixes")
    null = parse_assignments(null_values, option="--null")
    model, data_path = (None, args[0]) if pdf is not None else args
    _, values = _split_consts(consts)
    m = _resolve_model(model, pdf, var, discrete, support, params, consts)
    budget = timeout if timeout is not None else DEFAULT_TIMEOUT
    from symmle.numbers.hypothesis import null_model

    null_model(m, null)  # a bad --null is named before the data are read
    x = load_data(data_path, column)
    dropped = drop_missing(x) if dropna else None
    if dropped is not None:
        x = dropped.values
    with source_rows(dropped):
        result = hypothesis_test(m, x, null, values, timeout=budget)
    doc = result.to_dict()
    if dropped is not None:
        doc["dropped"] = dropped.count
        total = dropped.count + int(result.n)
        note = f"dropped {dropped.count:,} of {total:,} rows with a missing value (--dropna)"
        click.echo(f"symmle: {note}", err=True)
    _echo(json.dumps(doc, indent=2) if as_json else result.to_text(), nl=not not as_json)


def _bootstrap_options(replicated: str, plots: str):
    """The options ``gof`` and ``compare`` share: the data column, the bootstrap, the plot and the output."""
    options = [
        click.option("--column", help="Column of DATA: a header or Parquet column name, or a 1-based index."),
        click.option(
            "--dropna",
            is_flag=True,
            help="Drop the rows whose value is missing (an empty cell, NA, NaN) and say how many.",
        ),
        click.option(
            "--boot",
            type=click.IntRange(min=0),
            default=1000,
            show_default=True,
            help=f"Parametric-bootstrap replicates of {replicated} (0: the statistics only).",
        ),
        click.option(
            "--seed",
            type=click.IntRange(min=0),
            default=None,
            help="Seed of the bootstrap [default: fresh entropy].",
        ),
        click.option(
            "--plot",
            type=click.Path(dir_okay=False, writable=True),
            metavar="FILE.png",
            help=f"{plots} (needs matplotlib).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema 1)."),
        click.option("--timeout", type=_Seconds(), default=None, help=_TIMEOUT_HELP),
        _cache_option,
    ]

    def apply(fn):
        for option in reversed(options):  # the first listed comes first in --help
            fn = option(fn)
        return fn

    return apply


@cli.command("gof")
@click.argument("args", nargs=-1, metavar="[MODEL] DATA")
@_inline_options
@_bootstrap_options("the p-values", "Diagnostic plots: histogram and density, CDF, Q-Q, P-P")
def gof_cmd(
    args, pdf, var, discrete, support, params, consts, column, dropna, boot, seed, plot, as_json, timeout
) -> None:
    """Goodness of fit of MODEL to DATA at the maximum-likelihood estimates.

    Kolmogorov-Smirnov, Cramer-von Mises and Anderson-Darling (and chi-square
    with pooled cells for a discrete model), with p-values from a parametric
    bootstrap that refits every replicate (the estimated parameters count).
    """
    from symmle.base.budget import DEFAULT_TIMEOUT
    from symmle.simulate.bootstrap import gof as run_gof
    from symmle.symbolic.derivation import derive as run

    expected = 1 if pdf is not None else 2
    if len(args) != expected:
        raise SpecError("usage: symmle gof MODEL DATA, or symmle gof --pdf ... DATA")
    model, data_path = (None, args[0]) if pdf is not None else args
    _, values = _split_consts(consts)
    m = _resolve_model(model, pdf, var, discrete, support, params, consts)
    if plot:
        _plot_ready(plot, model, m)
    budget = timeout if timeout is not None else DEFAULT_TIMEOUT
    x = _scalar_data(data_path, column, dropna)
    result = run_gof(
        run(m, timeout=budget),
        x,
        values,
        boot=boot,
        seed=seed,
        progress=not as_json and sys.stderr.isatty(),
        timeout=budget,
    )
    _echo(result.to_json() if as_json else result.to_text(), nl=as_json)
    if plot:
        from symmle.simulate.fit_plots import plot_fit

        plot_fit(m, result.estimates, x, plot)
        if not as_json:
            _echo(f"wrote {plot}")


@cli.command("compare")
@click.argument("args", nargs=-1, metavar="DATA MODEL...")
@_bootstrap_options("each model's p-values", "The fits overlaid: histogram and densities, CDFs, Q-Q, P-P")
def compare_cmd(args, column, dropna, boot, seed, plot, as_json, timeout) -> None:
    """Fit several MODELs to DATA: one table ranked by AIC, with BIC and the GOF statistics.

    Models that cannot fit the data (support, no MLE) are listed with the reason.
    """
    from symmle.base.budget import DEFAULT_TIMEOUT
    from symmle.simulate.compare import compare as run_compare

    if len(args) < 2:
        raise SpecError("usage: symmle compare DATA MODEL [MODEL...]")
    data_path, models = args[0], list(args[1:])
    if plot:
        from symmle.simulate.plots import require_matplotlib

        require_matplotlib()
        _refuse_overwriting(plot, data_path)
    budget = timeout if timeout is not None else DEFAULT_TIMEOUT
    x = _scalar_data(data_path, column, dropna)
    result = run_compare(
        models, x, boot=boot, seed=seed, progress=not as_json and sys.stderr.isatty(), timeout=budget
    )
    _echo(result.to_json() if as_json else result.to_text(), nl=as_json)
    if not result.fits:
        from symmle.base.errors import DataError

        _fail("no model fitted the data (see Excluded)", DataError.exit_code)
    if plot:
        from symmle.simulate.fit_plots import plot_fits

        if not result.fits:
            raise SpecError("no model fitted the data: nothing to plot")
        best = result.fits[0].distribution.model.discrete
        chosen = [r for r in result.fits if r.distribution.model.discrete == best]
        kinds = {r.distribution.model.discrete for r in result.fits}
        plot_fits([(r.model, r.distribution, r.estimates) for r in chosen], x, plot, title="compare")
        if not as_json:
            _echo(f"wrote {plot}" + (" (the fits of the best model's kind)" if len(kinds) > 1 else ""))


def _scalar_data(data_path: str, column: str | None, dropna: bool) -> Any:
    """One column of DATA (rows with a missing value dropped with --dropna, and counted on stderr)."""
    from symmle.numbers.data import load_data
    from symmle.numbers.missing import drop_missing

    x = load_data(data_path, column)
    dropped = drop_missing(x) if dropna else None
    if dropped is not None:
        x = dropped.values
        total = dropped.count + int(len(x))
        click.echo(
            f"symmle: dropped {dropped.count:,} of {total:,} rows with a missing value (--dropna)", err=True
        )
    return x


@cli.command("compile")
@click.argument("model", required=False)
@_inline_options
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The module to write, e.g. gamma_mle.py.",
)
@click.option(
    "--link",
    "links",
    multiple=True,
    metavar="PARAM=LINK",
    help="Regression: PARAM = g^-1(x^T beta), LINK one of identity log logit probit cloglog inverse sqrt.",
)
@click.option(
    "--censored",
    "censored",
    is_flag=True,
    help="A module that fits right-censored data: estimate(t, status), status 1 = event, 0 = censored.",
    default=False,
)
@click.option(
    "--mixture",
    metavar="K",
    help="A module that fits K-component mixtures of MODEL by EM: fit(x, k=K, seed=0).",
)
@click.option("--timeout", type=_Seconds(), default=None, help=_TIMEOUT_HELP)
@_prior_options
@_cache_option
def compile_cmd(
    model, pdf, var, discrete, support, params, consts, output, links, censored, mixture, timeout
) -> None:
    """Write MODEL's estimators as a standalone Python module (NumPy, and SciPy where needed).

    A regression's module (a MODEL with a [link], or --link PARAM=LINK) fits it:
    estimate(y, X, offset=None).
    """
    from symmle.base.budget import DEFAULT_TIMEOUT
    from symmle.numbers.codegen import module_source
    from symmle.symbolic.derivation import derive as run

    _refuse_overwriting(output, model)
    m = _resolve_model(model, pdf, var, discrete, support, params, consts)
    if links:
        m = m.with_link(_links(links))
    m = _with_prior(m)
    budget = timeout if timeout is not None else DEFAULT_TIMEOUT
    if mixture is None and m.mixture:  # a spec's [mixture] table
        mixture = m.mixture
    if censored:  # see symmle.numbers.censored_codegen
        from symmle.numbers.censored_codegen import censored_module_source
        from symmle.symbolic.censored import derive_censored

        if m.is_regression or m.prior or mixture is not None or m.mixture:
            raise SpecError("--censored compiles a scalar model (no --link, --prior, --mixture)")
        source = censored_module_source(derive_censored(m, timeout=budget))
    elif mixture is not None:
        from symmle.numbers.mixture_codegen import mixture_module_source
        from symmle.numbers.mixture_em import check_components

        mixture = check_components(mixture)
        if m.is_vector and mixture > 1:
            raise SpecError(
                f"compile --mixture: a module for mixtures of the vector family '{m.name}' is not "
                f"generated yet; fit them with symmle fit {m.name} --mixture {mixture} DATA --columns ..."
            )
        if m.is_regression or m.is_vector or m.prior:
            raise SpecError("--mixture: only scalar families without a link or prior can be mixed for now")
        source = mixture_module_source(run(m, timeout=budget), mixture, timeout=budget)
    else:
        source = module_source(run(m, timeout=budget), timeout=budget)
    from symmle.base.files import write_output

    write_output(output, source)
    _echo(f"wrote {output}")


@cli.command("export")
@click.argument("model", required=False)
@_inline_options
@click.option(
    "--to",
    "target",
    type=click.Choice(["statsmodels"]),
    required=True,
    help="The library to write a model for.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The module to write, e.g. gamma_model.py.",
)
@click.option("--timeout", type=_Seconds(), default=None, help=_TIMEOUT_HELP)
@_cache_option
def export_cmd(model, pdf, var, discrete, support, params, consts, target, output, timeout) -> None:
    """Write MODEL as a statsmodels GenericLikelihoodModel with the derived score and Hessian."""
    from symmle.base.budget import DEFAULT_TIMEOUT
    from symmle.base.files import write_output
    from symmle.numbers.export_statsmodels import statsmodels_source
    from symmle.symbolic.derivation import derive as run

    _refuse_overwriting(output, model)
    m = _resolve_model(model, pdf, var, discrete, support, params, consts)
    write_output(
        output, statsmodels_source(run(m, timeout=timeout if timeout is not None else DEFAULT_TIMEOUT))
    )
    _echo(f"wrote {output}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="symmle")
