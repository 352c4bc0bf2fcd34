"""The audit trail: list, show, compare, export, verify and report recorded runs.

Names load on first use (PEP 562)::

    from tlreg.advisor.audit import list_runs, load_run, diff_runs, export_run, verify_run, write_report
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tlreg.registry.lazy import lazy_exports

if TYPE_CHECKING:
    from .compare import RunDiff, diff_runs, export_run
    from .mlflow_export import export_mlflow
    from .records import RunRecord, RunSummaries, RunSummary, list_runs, load_run
    from .report import write_report
    from .verify import VerifyResult, verify_run

_EXPORTS = {
    "RunDiff": ".compare",
    "RunRecord": ".records",
    "RunSummaries": ".records",
    "RunSummary": ".records",
    "VerifyResult": ".verify",
    "diff_runs": ".compare",
    "export_mlflow": ".mlflow_export",
    "export_run": ".compare",
    "list_runs": ".records",
    "load_run": ".records",
    "verify_run": ".verify",
    "write_report": ".report",
}
__all__ = [
    "RunDiff",
    "RunRecord",
    "RunSummaries",
    "RunSummary",
    "VerifyResult",
    "diff_runs",
    "export_mlflow",
    "export_run",
    "list_runs",
    "load_run",
    "verify_run",
    "write_report",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
