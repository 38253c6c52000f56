"""tunelab.models."""
