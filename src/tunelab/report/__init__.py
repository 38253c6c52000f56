"""tunelab.report."""
