"""Evaluation: metrics (WA, UA, per-class recall, confusion), the paper's numbers, the report.

Data flows in one way: predictions -> `compute_metrics` -> `RunResult` -> `write_report`.
"""

from emofusion.evaluation.metrics import Metrics, aggregate, compute_metrics, pool
from emofusion.evaluation.paper import MODEL_ORDER, PAPER_TABLE1, PAPER_TEST_SUPPORT, PUBLISHED_COMPARISONS
from emofusion.evaluation.report import RunResult, write_report

__all__ = [
    "Metrics", "aggregate", "compute_metrics", "pool",
    "MODEL_ORDER", "PAPER_TABLE1", "PAPER_TEST_SUPPORT", "PUBLISHED_COMPARISONS",
    "RunResult", "write_report",
]
