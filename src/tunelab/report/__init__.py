"""Reports: compute plain results from run and study folders, then render them.

Each name is imported when first used (optuna and matplotlib load then). Also importable, as
plumbing outside ``__all__``: ``dashboard_app`` (the WSGI app ``dashboard`` serves),
``DashboardMissing``, ``load_study``, and the row types inside ``RunInfo`` / ``StudyInfo``
(``Part``, ``MetricRow``, ``ClassRow``, ``Curve``, ``Confused``, ``TrialRow``), and
``most_confused`` / ``excerpt`` (the most confident mistakes of a part, a text's excerpt).
"""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "write_report": "_html",
    "render_run": "_html",
    "render_study": "_html",
    "run_info": "_run_info",
    "RunInfo": "_run_info",
    "study_info": "_study_info",
    "StudyInfo": "_study_info",
    "compare_runs": "_compare",
    "Comparison": "_compare",
    "MetricComparison": "_compare",
    "dashboard": "_dashboard",
}
_PLUMBING = {
    "dashboard_app": "_dashboard",
    "DashboardMissing": "_dashboard",
    "load_study": "_study_info",
    "Part": "_run_info",
    "MetricRow": "_run_info",
    "ClassRow": "_run_info",
    "Curve": "_run_info",
    "TrialRow": "_study_info",
    "Confused": "_confused",
    "most_confused": "_confused",
    "excerpt": "_confused",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS | _PLUMBING)
