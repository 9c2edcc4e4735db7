"""The progress bar of a simulation check, on standard error (:mod:`rich`), or nothing."""

from __future__ import annotations

from typing import Self

from symmle.base.terminal import printable

__all__ = ["ProgressBar"]


class ProgressBar:
    """A rich progress bar on standard error, or nothing.

    Parameters
    ----------
    enabled : bool
        Whether to show it (a terminal; never with ``--json``).
    total : int
        Steps of the whole task.
    label : str
        Its description; shown as plain, printable text.

    Examples
    --------
    >>> with ProgressBar(False, 3, "check x") as bar:
    ...     bar.advance(1)
    >>> bar.bar is None
    True
    """

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            # the label holds the model's name: plain text, never rich markup ("[/]" would raise)
            self.bar = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task(printable(label, newlines=False), total=total)

    def __enter__(self) -> Self:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, k: int) -> None:
        """Move the bar on by ``k`` steps."""
        if self.bar is not None:
            self.bar.advance(self.task, k)

    def describe(self, text: str) -> None:
        """Show ``text`` (plain, printable) as the bar's description."""
        if self.bar is not None:
            self.bar.update(self.task, description=printable(text, newlines=False))
