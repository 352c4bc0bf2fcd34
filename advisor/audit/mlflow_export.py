"""A run logged to MLflow, for teams whose experiment tracking lives there (``tlreg[mlflow]``).

One tlreg run becomes a parent MLflow run with one child run per candidate and baseline, one run
per recorded fine-tune, the data sample as an MLflow dataset input (digest: the data fingerprint),
and the HTML report and JSON record as artifacts (what each run holds: :mod:`.mlflow_content`).
With ``register_model`` the pick's fine-tuned model becomes a registered model version, with an alias.

An export is all or nothing: the parent is tagged ``tlreg.export=incomplete`` until every part is
logged, a failure deletes what this export created, and an incomplete parent left by a killed
export is removed by the next one. Exporting the same run again returns the MLflow run made the
first time (adding fine-tunes recorded since) rather than a duplicate. Only the lightweight client
(``mlflow-skinny``) is needed.
"""

from __future__ import annotations

import json
import socket
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError, TlregError
from tlreg.registry.outcomes import FinetuneOutcome

from .. import defaults
from ..errors import TrackingError
from . import mlflow_content as content
from .records import RunRecord, load_run
from .report import write_report

EXPERIMENT = "tlreg"
ALIAS = defaults.MLFLOW_ALIAS
_STATUS = {"done": "FINISHED", "failed": "FAILED", "running": "RUNNING"}
_BATCH = 100  # MLflow takes at most 100 params or tags per log_batch call


@dataclass
class MlflowExport:
    """Where a run went in MLflow (``tlreg runs export ID --mlflow --json``)."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    artifact_location: str | None
    created: bool
    children: dict[str, str] = field(default_factory=dict)
    finetunes: dict[int, str] = field(default_factory=dict)
    registered_model: str | None = None
    model_version: str | None = None
    alias: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(when: Any) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _import_mlflow() -> Any:
    try:
        import mlflow.data  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise BadInputError(
            "MLflow export needs the mlflow client, which is not installed.",
            hint='Install it: pip install "tlreg[mlflow]" (or mlflow-skinny).',
        ) from None
    return MlflowClient


def _check_reachable(uri: str) -> None:
    """Fail in seconds on a tracking server that is down: MLflow's client would retry for minutes."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as exc:
        raise TrackingError(
            f"The MLflow tracking server at {uri} cannot be reached ({exc.strerror or exc}): "
            "nothing was logged.",
            hint="Start it, or give the right --tracking-uri (or MLFLOW_TRACKING_URI).",
        ) from None


def _default_artifacts(uri: str) -> str | None:
    """Artifacts of a SQLite store next to its database file, not in whatever folder tlreg runs from."""
    if uri.startswith("sqlite:///") and not uri.endswith(":memory:"):
        return (Path(uri[len("sqlite:///") :]).resolve().parent / "mlartifacts").as_uri()
    return None


def _to_register(record: RunRecord, name: str, alias: str) -> FinetuneOutcome:
    """The fine-tune of the pick to register: the best validation accuracy, then the latest."""
    if alias.lower() == "latest" or (alias[:1].lower() == "v" and alias[1:].isdigit()):
        raise BadInputError(f"--alias {alias!r} is reserved by MLflow.", hint="Choose another name.")
    tuned = [o for o in record.finetunes if o.ref == record.pick and o.output_dir]
    if not tuned:
        raise BadInputError(
            f"Run {record.id}'s pick ({record.pick or 'none'}) has no fine-tuned model "
            f"to register as {name!r}.",
            hint=f"Fine-tune it first (tlreg finetune {record.id} --out DIR), then export again.",
        )
    best = max(tuned, key=lambda o: (o.val_accuracy or 0.0, o.id or 0))
    if not (Path(best.output_dir) / "model").is_dir():
        raise BadInputError(
            f"The fine-tuned model of {best.ref} is gone from {best.output_dir}/model.",
            hint="Restore the folder (or fine-tune again), then export again.",
        )
    return best


class _Export:
    """One export against one client: every run it creates is remembered so a failure removes it."""

    def __init__(self, client: Any, record: RunRecord, experiment_id: str, registry: Registry) -> None:
        self.client, self.record, self.experiment_id, self.registry = client, record, experiment_id, registry
        self.created: list[str] = []
        self.model_created: str | None = None
        self.version_created: tuple[str, str] | None = None

    def _search(self, query: str) -> list[Any]:
        return list(self.client.search_runs([self.experiment_id], query, max_results=5000))

    def existing(self) -> Any | None:
        """The complete parent of an earlier export; incomplete ones (a killed export) are removed."""
        runs = self._search(f"tags.`tlreg.run_id` = '{self.record.id}'")
        parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        done = [r for r in parents if r.data.tags.get("tlreg.export", "complete") == "complete"]
        stale = {r.info.run_id for r in parents} - {r.info.run_id for r in done}
        for r in runs:
            if r.info.run_id in stale or r.data.tags.get("mlflow.parentRunId") in stale:
                self.client.delete_run(r.info.run_id)
        return min(done, key=lambda r: r.info.start_time or 0) if done else None

    def _run(self, logged: content.Logged, *, parent: str | None, start: int | None, end: int | None) -> str:
        tags = dict(logged.tags) | ({"mlflow.parentRunId": parent} if parent else {})
        run = self.client.create_run(self.experiment_id, start_time=start, tags=tags, run_name=logged.name)
        run_id = run.info.run_id
        self.created.append(run_id)
        from mlflow.entities import Metric, Param

        at = end or start or 0
        metrics = [Metric(k, v, at, 0) for k, v in logged.metrics.items()]
        metrics += [Metric(k, v, at, step) for k, points in logged.history.items() for step, v in points]
        params = [Param(k, v) for k, v in logged.params.items()]
        for i in range(0, max(len(params), len(metrics), 1), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[i : i + _BATCH], params=params[i : i + _BATCH])
        return run_id

    def _dataset(self, run_id: str, *, path: str, fingerprint: str, ids: list[str], context: str) -> None:
        import mlflow.data
        import pandas as pd
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.entities import DatasetInput, InputTag

        with warnings.catch_warnings():  # MLflow registers its local source twice and says so
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            source = resolve_dataset_source(path)
        frame = pd.DataFrame({"sample_id": [str(i) for i in ids]})
        name = Path(path).name or path
        dataset = mlflow.data.from_pandas(frame, source=source, name=name, digest=content.digest(fingerprint))
        tags = [InputTag("mlflow.data.context", context), InputTag("tlreg.fingerprint", fingerprint)]
        self.client.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), tags)])

    def _close(self, run_id: str, *, failed: bool, end: int | None) -> None:
        self.client.set_terminated(run_id, "FAILED" if failed else "FINISHED", end_time=end)

    def new(self) -> tuple[str, dict[str, str]]:
        record, run = self.record, self.record.run
        start, end = _ms(run.created_at), _ms(run.finished_at or run.created_at)
        top = content.parent(record)
        top.tags["tlreg.export"] = "incomplete"
        parent_id = self._run(top, parent=None, start=start, end=end)
        sample = {"path": run.data_path, "fingerprint": run.fingerprint, "ids": run.sample_ids}
        self._dataset(parent_id, **sample, context="sample")
        children = {}
        for logged in content.children(record):
            child = self._run(logged, parent=parent_id, start=start, end=end)
            self._dataset(child, **sample, context="sample")
            self._close(child, failed=logged.failed, end=end)
            children[logged.tags["tlreg.ref"]] = child
        with tempfile.TemporaryDirectory(prefix="tlreg-mlflow-") as tmp:
            write_report(record.id, Path(tmp) / "report.html", registry=self.registry)
            (Path(tmp) / "run.json").write_text(json.dumps(record.to_dict(), indent=2, default=str))
            self.client.log_artifact(parent_id, str(Path(tmp) / "report.html"))
            self.client.log_artifact(parent_id, str(Path(tmp) / "run.json"))
        return parent_id, children

    def finetunes(self, parent_id: str) -> dict[int, str]:
        """A run per fine-tune outcome of the record, unless an earlier export logged it."""
        done = {
            r.data.tags.get("tlreg.outcome_id"): r.info.run_id
            for r in self._search(
                f"tags.`tlreg.run_id` = '{self.record.id}' and tags.`tlreg.kind` = 'finetune'"
            )
        }
        out = {}
        for outcome in self.record.finetunes:
            if str(outcome.id) in done:
                out[outcome.id] = done[str(outcome.id)]
                continue
            when = _ms(outcome.created_at)
            run_id = self._run(content.finetune(self.record, outcome), parent=parent_id, start=when, end=when)
            self._dataset(
                run_id,
                path=outcome.dataset or self.record.run.data_path,
                fingerprint=outcome.fingerprint,
                ids=[],
                context="train",
            )
            self._close(run_id, failed=False, end=when)
            out[outcome.id] = run_id
        return out

    def register(self, outcome: FinetuneOutcome, run_id: str, name: str, alias: str) -> str:
        """The fine-tuned model as a version of registered model ``name`` (once per outcome), aliased."""
        from mlflow.exceptions import MlflowException

        client = self.client
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name, description="Fine-tuned models picked by tlreg.")
            self.model_created = name
        found = client.search_model_versions(f"name = '{name}' and tags.`tlreg.outcome_id` = '{outcome.id}'")
        if found:
            version = str(found[0].version)
        else:
            if not client.list_artifacts(run_id, "model"):
                client.log_artifacts(run_id, str(Path(outcome.output_dir) / "model"), "model")
            acc = "-" if outcome.val_accuracy is None else f"{outcome.val_accuracy:.3f}"
            why = self.record.result.reason if self.record.result else ""
            description = (
                f"{outcome.ref} fine-tuned ({outcome.mode}, validation accuracy {acc}); "
                f"picked by tlreg run {self.record.id}: {why}"
            )
            tags = {
                "tlreg.outcome_id": str(outcome.id),
                "tlreg.run_id": self.record.id,
                "tlreg.ref": outcome.ref,
            }
            source = f"{client.get_run(run_id).info.artifact_uri}/model"
            mv = client.create_model_version(name, source, run_id=run_id, tags=tags, description=description)
            version = str(mv.version)
            self.version_created = (name, version)
        client.set_registered_model_alias(name, alias, version)
        return version

    def undo(self) -> None:
        """Delete what this export created (best effort: the store may be the thing that failed)."""
        client = self.client
        if self.version_created:
            client.delete_model_version(*self.version_created)
        if self.model_created:
            client.delete_registered_model(self.model_created)
        for run_id in reversed(self.created):
            client.delete_run(run_id)


def export_mlflow(
    run_id: str,
    *,
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    artifact_location: str | None = None,
    register_model: str | None = None,
    alias: str = ALIAS,
    registry: Registry | None = None,
) -> MlflowExport:
    """Log run ``run_id`` to MLflow (``tlreg runs export ID --mlflow``): see the module docstring."""
    client_class = _import_mlflow()
    from mlflow.exceptions import MlflowException
    from requests import RequestException
    from sqlalchemy.exc import SQLAlchemyError

    registry = registry or Registry()
    record = load_run(run_id, registry=registry)
    outcome = _to_register(record, register_model, alias) if register_model else None
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    _check_reachable(uri)
    job: _Export | None = None
    try:
        client = client_class(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        if (
            found
            and artifact_location
            and found.artifact_location.rstrip("/") != artifact_location.rstrip("/")
        ):
            raise BadInputError(
                f"MLflow experiment {experiment!r} keeps its artifacts at {found.artifact_location}, "
                f"not {artifact_location}.",
                hint="Leave out --artifact-location, or export to another --experiment.",
            )
        location = artifact_location or (found.artifact_location if found else _default_artifacts(uri))
        experiment_id = found.experiment_id if found else client.create_experiment(experiment, location)
        job = _Export(client, record, experiment_id, registry)
        earlier = job.existing()
        if earlier is None:
            parent_id, children = job.new()
        else:
            parent_id = earlier.info.run_id
            kids = job._search(f"tags.`mlflow.parentRunId` = '{parent_id}'")
            children = {r.data.tags["tlreg.ref"]: r.info.run_id for r in kids if "tlreg.ref" in r.data.tags}
        finetunes = job.finetunes(parent_id)
        export = MlflowExport(parent_id, experiment_id, uri, location, earlier is None, children, finetunes)
        if outcome is not None:
            export.model_version = job.register(outcome, finetunes[outcome.id], register_model, alias)
            export.registered_model, export.alias = register_model, alias
        if earlier is None:
            client.set_tag(parent_id, "tlreg.export", "complete")
            status = _STATUS.get(record.run.status, "FINISHED")
            if status != "RUNNING":
                client.set_terminated(parent_id, status, end_time=_ms(record.run.finished_at))
        return export
    except TlregError:
        _undo(job)
        raise
    except (MlflowException, OSError, SQLAlchemyError, RequestException) as exc:
        left = _undo(job)
        message = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise TrackingError(
            f"MLflow at {uri} refused the export ({message}); {left}",
            hint="Check --tracking-uri (or MLFLOW_TRACKING_URI), the store's disk and permissions; "
            "then export again.",
        ) from exc


def _undo(job: _Export | None) -> str:
    """Remove a failed export's runs; say what state MLflow is left in."""
    if job is None or not (job.created or job.model_created or job.version_created):
        return "nothing was logged."
    try:
        job.undo()
    except Exception:  # the store that failed may refuse the clean-up too
        return "what was logged is tagged tlreg.export=incomplete and the next export removes it."
    return "what had been logged was removed."
