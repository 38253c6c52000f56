"""Reports: compute plain results from run and study folders, then render them."""

from tunelab.report._compare import Comparison, MetricComparison, compare_runs
from tunelab.report._dashboard import DashboardMissing, dashboard, dashboard_app
from tunelab.report._html import render_run, render_study, write_report
from tunelab.report._run_info import ClassRow, Curve, MetricRow, Part, RunInfo, run_info
from tunelab.report._study_info import StudyInfo, TrialRow, load_study, study_info

__all__ = [
    "Comparison",
    "MetricComparison",
    "compare_runs",
    "dashboard",
    "dashboard_app",
    "DashboardMissing",
    "write_report",
    "render_run",
    "render_study",
    "RunInfo",
    "Part",
    "MetricRow",
    "ClassRow",
    "Curve",
    "run_info",
    "StudyInfo",
    "TrialRow",
    "study_info",
    "load_study",
]
