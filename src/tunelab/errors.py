"""The one root error and its few subclasses.

Every message says what was expected, what was given and how to fix it. The CLI prints the
message (no traceback unless ``--debug``) and exits 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "TunelabError",
    "SpecError",
    "DataError",
    "RunError",
    "StudyFailed",
    "Interrupted",
    "raise_on_sigterm",
    "closest",
    "did_you_mean",
]


class TunelabError(Exception):
    """Root of every error tunelab raises on purpose; its message is meant for a person.

    ``exit_code`` is what the CLI exits with: 2 for usage errors (the default), 1 for work
    that ran and failed (e.g. every trial of a study failed).
    """

    exit_code = 2


class SpecError(TunelabError):
    """The spec (YAML, Python tree or ``--set`` override) is invalid."""


class DataError(TunelabError):
    """Data could not be found, read or split as the spec asks."""


class RunError(TunelabError):
    """A run or study directory is missing, incomplete or inconsistent."""


class StudyFailed(TunelabError):
    """A study ran but no trial completed."""

    exit_code = 1


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM, raised where the work is so that it can be recorded;
    ``exit_code`` is the shell's: 128 + the signal's number (130, 143)."""

    def __init__(self, signum: int = 2):
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum, self.exit_code = signum, 128 + signum


def raise_on_sigterm() -> None:
    """From now on SIGTERM raises :class:`Interrupted` in the main thread, as Ctrl-C raises
    KeyboardInterrupt: the work in progress gets to record that it was stopped."""
    import signal

    def handler(signum, frame):
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, handler)


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option most similar to ``word``, or None when nothing is close."""
    matches = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean `x`?)`` or an empty string."""
    match = closest(word, options)
    return f" (did you mean `{match}`?)" if match else ""
