"""Evaluation: protocols (which sessions are held out), metrics (WA, UA, per-class recall,
confusion), the paper's numbers, run results and the report.

Data flows in one way: predictions -> `compute_metrics` -> `RunResult` -> `write_report`.
"""

from emofusion.evaluation.metrics import Metrics, aggregate, compute_metrics, pool
from emofusion.evaluation.paper import PAPER_TABLE1, PAPER_TEST_SUPPORT, PUBLISHED_COMPARISONS
from emofusion.evaluation.results import RunResult

__all__ = [
    "Metrics", "aggregate", "compute_metrics", "pool",
    "PAPER_TABLE1", "PAPER_TEST_SUPPORT", "PUBLISHED_COMPARISONS",
    "RunResult", "write_report",
]


def __getattr__(name: str):
    # Lazy: the report pulls in matplotlib, which training, scoring and prediction never need.
    if name == "write_report":
        from emofusion.evaluation.report import write_report

        return write_report
    raise AttributeError(f"module 'emofusion.evaluation' has no attribute {name!r}")
