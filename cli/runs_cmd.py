"""``tlreg runs`` (list, show, diff, export, verify) and ``tlreg report``: the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from tlreg.advisor import defaults as d

from .output import emit_json, note, percent, plain, stdout, table, when
from .state import State, pass_state

if TYPE_CHECKING:  # the audit modules load when a command runs: `tlreg --help` stays light
    from tlreg.advisor.audit.records import RunRecord
    from tlreg.advisor.audit.verify import VerifyResult


@click.group()
def runs() -> None:
    """The audit trail: every recommendation, listed, shown, compared, exported and verified."""


@runs.command("list")
@click.option(
    "--since", metavar="DATE", help="Only runs since DATE (2026-11-01, 2026-11-01T14:00; UTC) or an age (7d)."
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many runs (the newest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def list_cmd(state: State, since: str | None, limit: int | None, as_json: bool) -> None:
    """Runs, newest first: id, when, who, data, samples, pick, status."""
    from tlreg.advisor.audit.records import list_runs, read_runs

    summaries = state.read(
        lambda fast: read_runs(fast, since=since, limit=limit),
        lambda registry: list_runs(since=since, limit=limit, registry=registry),
    )
    if as_json:
        emit_json([s.to_dict() for s in summaries])
        return
    rows = []
    for s in summaries:
        status = s.status + (f" ({s.failure})" if s.failure and s.status == "failed" else "")
        rows.append([s.id, when(s.created_at), s.user, s.data_path, s.samples, s.pick, status])
    stdout().print(table(None, ["run", "when (UTC)", "user", "data", "samples", "pick", "status"], rows))


def _show(record: RunRecord) -> None:
    from tlreg.advisor.audit.records import shown

    run, result, console = record.run, record.result, stdout()
    console.print(f"Run {run.id}: {run.status}" + (f" ({run.failure})" if run.failure else ""))
    console.print(f"  when     {shown(run.created_at)} -> {shown(run.finished_at)}")
    console.print(f"  who      {run.user} on {run.host} (pid {run.pid})")
    console.print(f"  command  {run.command}")
    console.print(f"  data     {run.data_path}: {run.n_samples} {run.modality} samples, {run.task}")
    console.print(f"  sample   fingerprint {run.fingerprint}, classes {plain(run.classes) or '-'}")
    console.print("  versions " + ", ".join(f"{k} {plain(v)}" for k, v in run.environment.items()))
    console.print(
        "  options  " + ", ".join(f"{k}={plain(v)}" for k, v in run.options.items() if v not in (None, []))
    )
    if record.aliases:
        console.print(
            "  aliases  "
            + ", ".join(
                f"@{n} -> {a['ref']} @ {(a['revision'] or 'unpinned')[:12]}"
                for n, a in record.aliases.items()
            )
            + " (when the run started)"
        )
    ests = record.estimators
    if result:
        rows = []
        tried = any(r.get("trial") for r in record.ranking())  # --trials: their validation accuracy
        for r in record.ranking():
            interval = "{}-{}".format(*r["rank_interval"]) if r.get("rank_interval") else None
            flag = {True: "yes", False: "no"}.get(r.get("negative_transfer"))
            rank = f"{r['rank']}=" if r.get("tied") else r["rank"]
            scores = [r["scores"].get(e) for e in ests]
            rev = (r.get("revision") or "unpinned")[:12]
            trial = [(r.get("trial") or {}).get("val_acc")] if tried else []
            conf = [r.get("combined"), *trial, percent(r.get("p_best")), interval, flag]
            rows.append([rank, r["ref"], rev, *scores, *conf])
        head = ["rank", "model", "revision", *ests, "combined", *(["trial"] if tried else [])]
        head += ["est. P(best)" if tried else "P(best)", "rank 5-95%", "neg. transfer"]
        console.print(table("Ranking", head, rows))
        base = [[b["ref"], *(b["scores"].get(e) for e in ests)] for b in record.ranking(baselines=True)]
        if base:
            console.print(table("Baselines", ["baseline", *ests], base))
    cands = []
    for c in record.candidates:
        cost = [c.seconds, c.samples_per_s, "yes" if c.from_cache else "no"]
        cands.append([c.ref, (c.revision or "-")[:12], (c.cache_key or "-")[:12], *cost, c.status, c.reason])
    console.print(
        table(
            "Candidates",
            ["model", "revision", "cache key", "seconds", "samples/s", "cached", "status", "reason"],
            cands,
        )
    )
    if result:
        console.print(f"Pick: {result.best_ref}")
        flags, ties = record.verdicts()
        for line in flags + ties:
            console.print(f"  {line}")
        console.print(f"Why: {result.reason}")
        for w in result.warnings:
            console.print(f"Warning: {w}")
    if record.finetunes:
        rows = [[when(o.created_at), o.ref, o.mode, o.val_accuracy, o.user] for o in record.finetunes]
        console.print(table("Fine-tunes", ["when (UTC)", "model", "mode", "val accuracy", "by"], rows))


@runs.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole record as JSON.")
@pass_state
def show(state: State, run_id: str, as_json: bool) -> None:
    """Everything recorded about a run (RUN_ID or a unique prefix), and the fine-tunes that followed."""
    from tlreg.advisor.audit.records import load_run, read_run

    record = state.read(
        lambda fast: read_run(fast, run_id), lambda registry: load_run(run_id, registry=registry)
    )
    if as_json:
        emit_json(record.to_dict())
    else:
        _show(record)


@runs.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@pass_state
def diff(state: State, a: str, b: str, as_json: bool) -> None:
    """What changed from run A to run B: data, candidates, revisions, estimators and aggregation,
    scores (B - A), pick."""
    from tlreg.advisor.audit.compare import diff_runs

    d = diff_runs(a, b, registry=state.registry)
    if as_json:
        emit_json(d.to_dict())
        return
    console, data = stdout(), d.data
    console.print(
        f"Run {d.a} -> run {d.b}: " + ("changed" if d.changed else "the same decision on the same inputs")
    )
    fp = data["fingerprint"]
    change = "the same" if fp["same"] else f"{fp['a'][:12]} -> {fp['b'][:12]}"
    console.print(f"  data        {change} (fingerprint)")
    ids = data["sample_ids"]
    if ids["n_added"] or ids["n_removed"]:
        console.print(f"  sample      {ids['n_added']} items added, {ids['n_removed']} removed")
    if not data["path"]["same"]:
        console.print(f"  path        {data['path']['a']} -> {data['path']['b']}")
    for ref in d.added:
        console.print(f"  candidate + {ref}")
    for ref in d.removed:
        console.print(f"  candidate - {ref}")
    for r in d.revisions:
        console.print(
            f"  revision    {r['ref']}: {(r['a'] or 'unpinned')[:12]} -> {(r['b'] or 'unpinned')[:12]}"
        )
    for key, v in {**d.options, **{f"env {k}": v for k, v in d.environment.items()}}.items():
        console.print(f"  {key:<11} {plain(v['a']) or '(not set)'} -> {plain(v['b']) or '(not set)'}")
    for key, v in d.combination.items():
        a, b = (", ".join(v[s]) if key == "estimators" else v[s] for s in ("a", "b"))
        console.print(f"  {key:<11} {a} -> {b}")
    pick = f"{d.pick['a']} -> {d.pick['b']}" if d.pick["changed"] else f"{d.pick['a']} (the same)"
    console.print(f"  pick        {pick}")
    for p in d.plans:
        console.print(f"  plan        {p['ref']}: {p['a'] or '(none)'} -> {p['b'] or '(none)'}")
    for line in d.notes:
        note(f"note: {line}")
    rows = [[s["ref"], s["estimator"], s["a"], s["b"], s["delta"]] for s in d.scores]
    if rows:
        console.print(table("Scores", ["model", "estimator", "A", "B", "B - A"], rows))
    ranks = [[r["ref"], r["a"], r["b"]] for r in d.ranks if r["a"] != r["b"]]
    if ranks:
        console.print(table("Rank changes", ["model", "A", "B"], ranks))


@runs.command()
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(d.EXPORT_FORMATS), default="json", show_default=True)
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Write to this file (atomically) instead of stdout."
)
@click.option("--mlflow", is_flag=True, help="Log the run to MLflow instead (needs tlreg[mlflow]).")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: MLflow's).")
@click.option("--experiment", default="tlreg", show_default=True, help="MLflow experiment name.")
@click.option(
    "--artifact-location",
    metavar="URI",
    help="Where a new MLflow experiment keeps artifacts (default: next to a SQLite store's file).",
)
@click.option(
    "--register-model",
    metavar="NAME",
    help="Also register the pick's fine-tuned model as a version of this MLflow registered model.",
)
@click.option(
    "--alias",
    default=d.MLFLOW_ALIAS,
    show_default=True,
    help="The alias the registered version gets (--register-model).",
)
@click.option("--json", "as_json", is_flag=True, help="With --mlflow: print where everything went, as JSON.")
@pass_state
def export(
    state: State,
    run_id: str,
    fmt: str,
    out: str | None,
    mlflow: bool,
    as_json: bool,
    **mlflow_options: str | None,
) -> None:
    """A run as JSON (the whole record), CSV (one row per candidate) or Markdown; or logged to MLflow."""
    from tlreg.advisor.audit.compare import export_mlflow, export_run

    if not mlflow:
        given = ("artifact_location", "register_model")
        used = [f"--{k.replace('_', '-')}" for k in given if mlflow_options[k] is not None]
        if used or as_json:
            raise click.UsageError(f"{', '.join(used) or '--json'} only goes with --mlflow.")
        text = export_run(run_id, fmt, out=out, registry=state.registry)
        if out:
            note(f"wrote {out}", quiet=state.quiet)
        else:
            click.echo(text, nl=False)
        return
    done = export_mlflow(run_id, registry=state.registry, **mlflow_options)
    how = "logged" if done.created else "already in MLflow (exported before)"
    where = done.artifact_location or "the server"
    note(
        f"{how}: experiment {mlflow_options['experiment']}, run {done.run_id}, {len(done.children)} "
        f"candidate runs, {len(done.finetunes)} fine-tune runs, artifacts at {where}"
        + (f"; {done.registered_model} version {done.model_version} is @{done.alias}" if done.alias else ""),
        quiet=state.quiet,
    )
    if as_json:
        emit_json(done.to_dict())
    else:
        click.echo(done.run_id)


def _verdict(v: VerifyResult) -> None:
    console = stdout()
    if v.reproduced:
        console.print(
            f"Run {v.run_id} reproduces: same data fingerprint, {len(v.scores)} scores within "
            f"rtol={v.rtol:g} atol={v.atol:g}, same ranking, same pick ({v.pick['now']})"
            + (" - every forward pass recomputed." if v.recompute else " - features from the cache.")
        )
    else:
        console.print(f"Run {v.run_id} does NOT reproduce:")
        for reason in v.reasons:
            console.print(f"  - {reason}")
        rows = [[s["ref"], s["estimator"], s["recorded"], s["now"], s["delta"]] for s in v.mismatched_scores]
        if rows:
            console.print(
                table("Scores that differ", ["model", "estimator", "recorded", "now", "delta"], rows)
            )
    for line in v.notes:
        note(f"note: {line}")


@runs.command()
@click.argument("run_id")
@click.option(
    "--recompute", is_flag=True, help="Run every forward pass again (a fresh temporary feature cache)."
)
@click.option(
    "--data", type=click.Path(), help="The run's data, if it has moved since (the fingerprint must match)."
)
@click.option("--device", help="Embed on this device instead of the run's (auto, cpu, cuda, ...).")
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader workers instead of the run's.")
@click.option(
    "--rtol", type=float, default=d.VERIFY_RTOL, show_default=True, help="Relative tolerance, scores."
)
@click.option(
    "--atol", type=float, default=d.VERIFY_ATOL, show_default=True, help="Absolute tolerance, scores."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def verify(ctx: click.Context, run_id: str, as_json: bool, **options: object) -> None:
    """Recompute a run and check that data, scores, ranking and pick reproduce (exit 4 if not)."""
    from tlreg.advisor.audit.verify import verify_run

    state = ctx.ensure_object(State)
    result = verify_run(run_id, registry=state.registry, **options)
    if as_json:
        emit_json(result.to_dict())
    else:
        _verdict(result)
    if not result.reproduced:
        ctx.exit(d.NOT_REPRODUCED)


@click.command()
@click.argument("run_id")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The HTML file to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the run id and the file written, as JSON.")
@pass_state
def report(state: State, run_id: str, out: str, as_json: bool) -> None:
    """Write one self-contained HTML page about a run: ranking, charts, audit details."""
    from tlreg.advisor.audit.records import load_run
    from tlreg.advisor.audit.report import write_report

    path = write_report(run_id, out, registry=state.registry)
    if as_json:
        emit_json({"run_id": load_run(run_id, registry=state.registry).id, "path": str(path.resolve())})
        return
    note(f"wrote {path}", quiet=state.quiet)
    click.echo(str(path))
