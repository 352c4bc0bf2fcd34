"""A run logged to MLflow, for teams whose experiment tracking lives there (``tlreg[mlflow]``).

One tlreg run becomes one MLflow run in an experiment (default ``tlreg``): the run's options, data
and environment as params, every score (and the combined score, P(best) and rank) as metrics, the
HTML report and the JSON record as artifacts, and the tlreg run id, user, host and pick as tags.
Exporting the same run again returns the MLflow run made the first time rather than a duplicate.
Only the lightweight client (``mlflow-skinny``) is needed.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError, TlregError

from .records import RunRecord, load_run
from .report import write_report

EXPERIMENT = "tlreg"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_STATUS = {"done": "FINISHED", "failed": "FAILED", "running": "RUNNING"}


def metric_key(*parts: str) -> str:
    """An MLflow-safe key (letters, digits, ``_ . -``): refs hold ``:`` ``/`` ``@`` and spaces."""
    return ".".join(_UNSAFE.sub("_", p).strip("_") for p in parts)[:250]


def _ms(when: Any) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _params(record: RunRecord) -> dict[str, str]:
    run = record.run
    params = {f"option.{k}": json.dumps(v) for k, v in run.options.items()}
    params.update({f"env.{k}": str(v) for k, v in run.environment.items()})
    params.update(
        data_path=run.data_path,
        data_fingerprint=run.fingerprint,
        modality=run.modality,
        task=run.task,
        n_samples=str(run.n_samples),
        candidates=json.dumps(record.models()),
        estimators=json.dumps(record.estimators),
    )
    return {k: v[:6000] for k, v in params.items()}  # MLflow's limit on a param value


def _metrics(record: RunRecord) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for ref, values in record.score_table().items():
        for est, value in values.items():
            if value is not None:
                metrics[metric_key("score", est, ref)] = float(value)
    for row in record.ranking():
        for name in ("combined", "p_best", "rank"):
            if row.get(name) is not None:
                metrics[metric_key(name, row["ref"])] = float(row[name])
    return metrics


def export_mlflow(
    run_id: str,
    *,
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    registry: Registry | None = None,
) -> str:
    """Log run ``run_id`` to MLflow (``tlreg runs export ID --mlflow``); returns the MLflow run id."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise BadInputError(
            "MLflow export needs the mlflow client, which is not installed.",
            hint='Install it: pip install "tlreg[mlflow]" (or mlflow-skinny).',
        ) from None
    registry = registry or Registry()
    record = load_run(run_id, registry=registry)
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        done = client.search_runs([experiment_id], f"tags.`tlreg.run_id` = '{record.id}'", max_results=1)
        if done:
            return done[0].info.run_id
        tags = {"tlreg.run_id": record.id, "tlreg.user": record.run.user, "tlreg.host": record.run.host}
        tags.update({"tlreg.status": record.run.status, "tlreg.pick": record.pick or ""})
        mlrun = client.create_run(
            experiment_id, start_time=_ms(record.run.created_at), tags=tags, run_name=record.id
        )
        at = _ms(record.run.finished_at or record.run.created_at)
        client.log_batch(
            mlrun.info.run_id,
            metrics=[Metric(k, v, at, 0) for k, v in _metrics(record).items()],
            params=[Param(k, v) for k, v in _params(record).items()],
            tags=[RunTag("mlflow.source.name", record.run.command or "tlreg")],
        )
        with tempfile.TemporaryDirectory(prefix="tlreg-mlflow-") as tmp:
            write_report(record.id, Path(tmp) / "report.html", registry=registry)
            (Path(tmp) / "run.json").write_text(json.dumps(record.to_dict(), indent=2, default=str))
            client.log_artifact(mlrun.info.run_id, str(Path(tmp) / "report.html"))
            client.log_artifact(mlrun.info.run_id, str(Path(tmp) / "run.json"))
        status = _STATUS.get(record.run.status, "FINISHED")
        if status != "RUNNING":
            client.set_terminated(mlrun.info.run_id, status, end_time=_ms(record.run.finished_at))
        return mlrun.info.run_id
    except MlflowException as exc:
        where = tracking_uri or "the default tracking URI (MLFLOW_TRACKING_URI)"
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TlregError(f"MLflow at {where} refused the export: {message}") from exc
