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
    """Base class of every error symmle raises on purpose."""

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


EXIT_CODES: dict[type[SymmleError], int] = {
    cls: cls.exit_code
    for cls in (SymmleError, SpecError, DataError, DerivationError, DerivationTimeout, VerificationError)
}


def exit_code_for(exc: BaseException) -> int:
    """Exit code for *exc*: its class's code for symmle errors, 1 otherwise."""
    return exc.exit_code if isinstance(exc, SymmleError) else 1
