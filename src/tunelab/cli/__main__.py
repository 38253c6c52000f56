"""``python -m tunelab.cli ...``: the same as the ``tunelab`` command."""

from __future__ import annotations

from tunelab.cli import main

if __name__ == "__main__":
    main()
