"""The package's version, in a module of its own: any module may import it without importing
the root package (``tunelab/__init__`` imports the subpackages)."""

__version__ = "0.1.0"
