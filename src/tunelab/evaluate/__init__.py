"""tunelab.evaluate."""
