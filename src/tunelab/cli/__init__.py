"""The `tunelab` command: a thin Typer app over the public library API.

Usage errors and :class:`TunelabError` print one message and exit 2; a traceback appears only
with ``--debug`` (accepted anywhere on the command line).
"""

from __future__ import annotations

import sys
import warnings

from tunelab.cli import _commands, _compress, _curves, _listing, _track, _worker, _writing  # noqa: F401, I001  (they register)

# the apps first, then the modules whose commands register on them, in --help order
from tunelab.cli._app import app, curve_app, data_app, whole_descriptions
from tunelab.errors import TunelabError

__all__ = ["app", "curve_app", "data_app", "main"]

whole_descriptions(app, data_app, curve_app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m tunelab``."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        with warnings.catch_warnings():  # a warning is one line, `warning: ...`
            warnings.showwarning = _one_line
            # standalone mode: typer prints usage errors itself and exits 2
            app(args=args, prog_name="tunelab")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except TunelabError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug, or the user's own code: one line unless --debug
        if debug:
            raise
        from tunelab.tune import disk_trouble

        why = disk_trouble(exc)
        if why is not None:  # a disk that filled (or turned read-only) during the work
            print(
                f"error: {why}. What was written before is kept; free some space (or make the "
                "folder writable) and run again (`--resume` continues a run or a study)",
                file=sys.stderr,
            )
            sys.exit(2)
        print(
            f"error: {type(exc).__name__}: {exc}\n"
            "(unexpected; rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)


def _one_line(message, category, filename, lineno, file=None, line=None) -> None:
    kind = "" if category is UserWarning else f"{category.__name__}: "
    print(f"warning: {kind}{message}", file=sys.stderr)
