"""tunelab.train."""
