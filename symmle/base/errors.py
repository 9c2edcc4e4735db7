"""Exceptions raised by symmle.

Every error a user can cause is a :class:`SymmleError`.  Each subclass also
inherits the built-in exception it refines, so callers that catch
``ValueError`` or ``TimeoutError`` keep working.  The command line maps
these classes to a one-line message and an exit code in one place
(:data:`EXIT_CODES`).
"""

from __future__ import annotations

__all__ = [
    "SymmleError",
    "SpecError",
    "DataError",
    "DerivationError",
    "DerivationTimeout",
    "VerificationError",
    "EXIT_CODES",
    "exit_code_for",
]


class SymmleError(Exception):
    """Base class of every error symmle raises on purpose.

    Its message is one line, meant for the user.  Each subclass also
    inherits the built-in exception it refines, and carries the exit code
    of the command line in ``exit_code``:

    =====================  ====  ===================  =======================================================
    class                  code  also a               raised when
    =====================  ====  ===================  =======================================================
    ``SymmleError``        1                          other errors (a sampler that fails, matplotlib missing)
    ``SpecError``          2     ``ValueError``       a model, spec or expression is invalid
    ``DataError``          3     ``ValueError``       data cannot be used with the model
    ``DerivationError``    4     ``RuntimeError``     a derivation step fails
    ``DerivationTimeout``  5     ``TimeoutError``     a symbolic step exceeds its time budget
    ``VerificationError``  6     ``ArithmeticError``  a result fails its numerical cross-check
    =====================  ====  ===================  =======================================================

    The command line exits with 70 for an internal error (any other exception).

    Examples
    --------
    >>> from symmle.model.build import load_model
    >>> try:
    ...     load_model("no_such_family")
    ... except SymmleError as exc:
    ...     print(type(exc).__name__, exc.exit_code, isinstance(exc, ValueError))
    SpecError 2 True
    """

    exit_code: int = 1


class SpecError(SymmleError, ValueError):
    """A model (spec file, inline flags, expression text) is invalid."""

    exit_code = 2


class DataError(SymmleError, ValueError):
    """Data given to ``fit`` or ``check`` cannot be used with the model."""

    exit_code = 3


class DerivationError(SymmleError, RuntimeError):
    """A derivation step failed for a reason other than a time-out."""

    exit_code = 4


class DerivationTimeout(SymmleError, TimeoutError):
    """A symbolic step exceeded its time budget.

    Parameters
    ----------
    step : str
        Human-readable name of the step that ran out of time.
    seconds : float
        The budget that was exceeded.
    """

    exit_code = 5

    def __init__(self, step: str, seconds: float) -> None:
        self.step = step
        self.seconds = seconds
        super().__init__(f"step '{step}' exceeded its time budget of {seconds:g} s")


class VerificationError(SymmleError, ArithmeticError):
    """A symbolic result failed its numerical cross-check."""

    exit_code = 6


# The public home of these classes is the package (``symmle.SpecError``), and
# tracebacks name them so, whatever folder defines them.
for _cls in (SymmleError, SpecError, DataError, DerivationError, DerivationTimeout, VerificationError):
    _cls.__module__ = "symmle"
del _cls

EXIT_CODES: dict[type[SymmleError], int] = {
    cls: cls.exit_code
    for cls in (SymmleError, SpecError, DataError, DerivationError, DerivationTimeout, VerificationError)
}


def exit_code_for(exc: BaseException) -> int:
    """Return the exit code for an exception.

    Parameters
    ----------
    exc : BaseException
        Any exception.

    Returns
    -------
    int
        The ``exit_code`` of its class for a :class:`SymmleError` (see
        :data:`EXIT_CODES`), 1 otherwise.

    Examples
    --------
    >>> exit_code_for(DataError("row 2 of the data is nan"))
    3
    >>> exit_code_for(DerivationTimeout("solve the score equations", 2))
    5
    >>> exit_code_for(KeyError("x"))
    1
    """
    return exc.exit_code if isinstance(exc, SymmleError) else 1
