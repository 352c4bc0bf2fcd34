"""``tlreg runs export --mlflow``: read back through MLflow's own client from a SQLite store.

A run becomes a parent MLflow run, one child per candidate and baseline, one run per fine-tune,
a dataset input and, with ``--register-model``, a registered model version with an alias. A store
that cannot be reached, or that fails half-way, leaves nothing logged.
"""

from __future__ import annotations

import math
import socket
import time
from pathlib import Path

import pytest
from test_runs import invoke
from tlreg.advisor import finetune, recommend
from tlreg.advisor.audit.mlflow_content import digest, plain
from tlreg.advisor.audit.mlflow_export import export_mlflow
from tlreg.advisor.audit.records import load_run
from tlreg.advisor.errors import TrackingError
from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError

pytest.importorskip("mlflow", reason="the MLflow export needs tlreg[mlflow] (mlflow-skinny)")
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient


def every_run(client: MlflowClient, view: int = ViewType.ACTIVE_ONLY) -> list:
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids, run_view_type=view)) if ids else []


@pytest.fixture
def tuned_run(registry: Registry, image_folder: Path, tiny_image_models: list[str], tmp_path: Path) -> str:
    """A run with resampling confidence and baselines, and a linear fine-tune of its pick."""
    run_id = recommend(image_folder, registry=registry, workers=0, bootstrap=10).run_id
    finetune(run_id, out=tmp_path / "ft", registry=registry, mode="linear", epochs=3, workers=0, batch_size=8)
    return run_id


def test_a_run_reads_back_as_parent_children_dataset_fine_tune_and_model_version(
    registry: Registry, tuned_run: str, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = invoke(
        "runs", "export", tuned_run, "--mlflow", "--tracking-uri", uri,
        "--register-model", "pets", "--alias", "champion",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    parent_id = out.stdout.strip()
    record = load_run(tuned_run, registry=registry)
    client = MlflowClient(tracking_uri=uri)

    parent = client.get_run(parent_id)
    tags, params, metrics = parent.data.tags, parent.data.params, parent.data.metrics
    assert parent.info.status == "FINISHED" and parent.info.run_name == tuned_run
    assert tags["tlreg.run_id"] == tuned_run and tags["tlreg.pick"] == record.pick
    assert tags["tlreg.why"] == record.result.reason and record.result.reason in tags["mlflow.note.content"]
    assert tags["tlreg.export"] == "complete" and tags["mlflow.user"] == record.run.user
    pick_row = record.ranking()[0]
    assert tags["tlreg.pick.negative_transfer"] == plain(pick_row["negative_transfer"])
    # params are what a person would type, not JSON
    assert params["option.bootstrap"] == "10" and params["data_fingerprint"] == record.run.fingerprint
    assert params["estimators"] == ", ".join(record.estimators) and params["option.baselines"] == "true"
    assert not any(v.startswith(("[", "{", '"')) for v in params.values()), params
    conf = record.result.detail["confidence"]
    assert metrics["confidence.rounds"] == 10 and metrics["confidence.beats_runner_up"] == pytest.approx(
        conf["beats_runner_up"]
    )
    assert metrics["pick.p_best"] == pytest.approx(pick_row["p_best"])
    (data,) = parent.inputs.dataset_inputs
    assert data.dataset.digest == digest(record.run.fingerprint) == record.run.fingerprint[:36]
    assert {t.key: t.value for t in data.tags}["tlreg.fingerprint"] == record.run.fingerprint
    assert f'"num_rows": {record.run.n_samples}' in data.dataset.profile
    artifacts = {a.path for a in client.list_artifacts(parent_id)}
    assert artifacts == {"report.html", "run.json"}
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()  # next to the store
    assert (tmp_path / "mlartifacts").is_dir()

    kids = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    candidates = [k for k in kids if k.data.tags["tlreg.kind"] in ("candidate", "baseline")]
    assert sorted(k.data.tags["tlreg.ref"] for k in candidates) == sorted(c.ref for c in record.candidates)
    scores = {(s.ref, s.estimator): s.value for s in record.scores}
    ranked = [k for k in candidates if k.data.tags["tlreg.kind"] == "candidate"]
    for kid in candidates:
        ref = kid.data.tags["tlreg.ref"]
        for est in record.estimators:  # the raw inputs have no source head: no NCE, no metric
            value = scores.get((ref, est))
            if value is None or not math.isfinite(value):
                assert f"score.{est}" not in kid.data.metrics
            else:
                assert kid.data.metrics[f"score.{est}"] == pytest.approx(value)
    # the same keys in every candidate: MLflow's parallel-coordinates view lines them up
    keys = {frozenset(k.data.metrics) for k in ranked}
    assert len(keys) == 1 and {"combined", "p_best", "rank", "rank_low", "rank_high"} <= next(iter(keys))
    (picked,) = [
        k for k in kids if k.data.tags["tlreg.kind"] == "candidate" and k.data.tags["tlreg.pick"] == "true"
    ]
    assert picked.data.tags["tlreg.ref"] == record.pick and picked.data.metrics["rank"] == 1.0

    (tuned,) = [k for k in kids if k.data.tags["tlreg.kind"] == "finetune"]
    (outcome,) = record.finetunes
    assert tuned.data.tags["tlreg.outcome_id"] == str(outcome.id) and tuned.data.params["mode"] == "linear"
    assert tuned.data.metrics["val_accuracy"] == pytest.approx(outcome.val_accuracy)
    curve = client.get_metric_history(tuned.info.run_id, "val_acc")
    assert [m.step for m in curve] == [1, 2, 3] and [m.value for m in curve] == pytest.approx(
        outcome.metrics["val_acc"]
    )

    version = client.get_model_version_by_alias("pets", "champion")
    assert version.run_id == tuned.info.run_id and version.tags["tlreg.outcome_id"] == str(outcome.id)
    stored = {a.path for a in client.list_artifacts(tuned.info.run_id, "model")}
    assert {f"model/{p.name}" for p in (Path(outcome.output_dir) / "model").iterdir()} == stored

    before = len(every_run(client))
    again = export_mlflow(
        tuned_run, tracking_uri=uri, register_model="pets", alias="champion", registry=registry
    )
    assert again.run_id == parent_id and not again.created  # the first export, not a duplicate
    assert len(every_run(client)) == before and again.model_version == str(version.version)
    assert len(client.search_model_versions("name = 'pets'")) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_store_is_one_line_and_logs_nothing(
    registry: Registry,
    image_folder: Path,
    tiny_image_models: list[str],
    tmp_path: Path,
) -> None:
    run_id = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0).run_id
    start = time.monotonic()
    out = invoke("runs", "export", run_id, "--mlflow", "--tracking-uri", f"http://127.0.0.1:{_closed_port()}")
    assert out.exit_code == 1 and time.monotonic() - start < 30  # not MLflow's minutes of retries
    assert (
        out.stderr.count("\n") == 1
        and "cannot be reached" in out.stderr
        and "nothing was logged" in out.stderr
    )
    assert "Traceback" not in out.output and out.stdout == ""

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    out = invoke("runs", "export", run_id, "--mlflow", "--tracking-uri", f"sqlite:///{blocked}/mlflow.db")
    assert out.exit_code == 1 and out.stderr.startswith("Error: MLflow at sqlite:///") and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.output


def test_a_store_failing_half_way_keeps_nothing_and_a_retry_succeeds(
    registry: Registry,
    image_folder: Path,
    tiny_image_models: list[str],
    tmp_path: Path,
) -> None:
    run_id = recommend(image_folder, registry=registry, workers=0, bootstrap=0).run_id
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    blocked = tmp_path / "a-file"
    blocked.write_text("artifacts cannot go under a file")
    with pytest.raises(TrackingError, match="what had been logged was removed"):
        where = blocked.as_uri() + "/art"
        export_mlflow(
            run_id, tracking_uri=uri, experiment="broken", artifact_location=where, registry=registry
        )
    client = MlflowClient(tracking_uri=uri)
    assert (
        every_run(client) == [] and len(every_run(client, ViewType.DELETED_ONLY)) > 1
    )  # created, then removed
    done = export_mlflow(run_id, tracking_uri=uri, registry=registry)
    assert done.created and client.get_run(done.run_id).data.tags["tlreg.export"] == "complete"


def test_registering_without_a_fine_tune_is_refused_before_anything_is_logged(
    registry: Registry,
    image_folder: Path,
    tiny_image_models: list[str],
    tmp_path: Path,
) -> None:
    run_id = recommend(image_folder, registry=registry, workers=0, baselines=False, bootstrap=0).run_id
    store = tmp_path / "mlflow.db"
    out = invoke(
        "runs", "export", run_id, "--mlflow", "--tracking-uri", f"sqlite:///{store}", "--register-model", "m"
    )
    assert out.exit_code == 2 and "has no fine-tuned model to register" in out.stderr
    assert f"tlreg finetune {run_id} --out DIR" in out.stderr and not store.exists()
    with pytest.raises(BadInputError, match="reserved by MLflow"):
        export_mlflow(
            run_id, tracking_uri=f"sqlite:///{store}", register_model="m", alias="v3", registry=registry
        )
    used = invoke("runs", "export", run_id, "--register-model", "m")
    assert used.exit_code == 2 and "--register-model only goes with --mlflow" in used.stderr
