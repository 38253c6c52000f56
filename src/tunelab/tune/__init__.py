"""tunelab.tune."""
