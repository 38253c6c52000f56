"""Reports: compute plain results from run and study folders, then render them."""

from tunelab.report._compare import Comparison, MetricComparison, compare_runs

__all__ = ["Comparison", "MetricComparison", "compare_runs"]
