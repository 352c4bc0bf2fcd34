"""``tlreg history``: the fine-tune outcomes and dataset signatures the ranking learns from."""

from __future__ import annotations

import click

from .output import emit_json, note, stdout, table, when
from .state import State, pass_state


@click.group()
def history() -> None:
    """Past fine-tune outcomes: the history that similar new datasets learn from."""


@history.command(name="import")
@click.argument("csv_path", metavar="OUTCOMES.csv", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@pass_state
def import_(state: State, csv_path: str, as_json: bool) -> None:
    """Record fine-tune outcomes from a CSV: data (or fingerprint), model, accuracy[, mode, dataset]."""
    from tlreg.advisor.history import import_outcomes

    summary = import_outcomes(csv_path, registry=state.registry)
    if as_json:
        emit_json(
            {"outcomes": summary.outcomes, "datasets": summary.datasets, "unregistered": summary.unregistered}
        )
        return
    for ref in summary.unregistered:
        note(f"note: {ref} is not registered; its outcomes count once it is.", quiet=state.quiet)
    stdout().print(f"{summary.outcomes} outcomes recorded for {len(summary.datasets)} new datasets.")


@history.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_(state: State, as_json: bool) -> None:
    """Every recorded outcome (model, dataset, mode, accuracy) with where it came from."""
    from tlreg.registry import OutcomeStore

    store = OutcomeStore(state.registry.engine)
    outcomes = store.outcomes()
    signatures = {s.fingerprint: s for s in store.signatures()}
    if as_json:
        emit_json(
            {
                "outcomes": outcomes,
                "signatures": [
                    {k: v for k, v in s.model_dump(mode="json").items() if k != "vector"}
                    for s in signatures.values()
                ],
            }
        )
        return

    def where(fp: str, name: str | None) -> str | None:
        return name or (signatures[fp].data_path if fp in signatures else None)

    rows = [
        [
            o.id,
            when(o.created_at),
            o.ref,
            where(o.fingerprint, o.dataset),
            o.fingerprint[:12],
            o.mode,
            o.val_accuracy,
            o.source,
            o.run_id,
        ]
        for o in outcomes
    ]
    head = ["id", "when (UTC)", "model", "dataset", "data", "mode", "accuracy", "from", "run"]
    stdout().print(table(None, head, rows))
    note(f"{len(outcomes)} outcomes; {len(signatures)} dataset signatures", quiet=state.quiet)


@history.command()
@click.argument("outcome_ids", nargs=-1, type=click.IntRange(min=1), metavar="[OUTCOME_ID]...")
@click.option(
    "--dataset",
    metavar="FINGERPRINT",
    help="Also every outcome and the signature of this dataset (its fingerprint, or 8+ first characters).",
)
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
@pass_state
def remove(state: State, outcome_ids: tuple[int, ...], dataset: str | None, yes: bool, as_json: bool) -> None:
    """Forget fine-tune outcomes (ids from `history list`) or a whole dataset; each removal is an event."""
    from tlreg.registry import OutcomeStore

    if not outcome_ids and not dataset:
        raise click.UsageError("Give outcome ids (tlreg history list shows them) or --dataset FINGERPRINT.")
    store = OutcomeStore(state.registry.engine)
    fingerprint = store.resolve_fingerprint(dataset) if dataset else None
    if not yes:
        parts = [f"outcomes {', '.join(map(str, outcome_ids))}"] if outcome_ids else []
        parts += [f"every outcome and the signature of dataset {fingerprint[:12]}"] if fingerprint else []
        click.confirm(f"Forget {' and '.join(parts)}?", err=True, abort=True)
    outcomes, signatures = store.remove(ids=outcome_ids, fingerprint=fingerprint)
    if as_json:
        emit_json(
            {
                "removed_outcomes": [o.id for o in outcomes],
                "removed_signatures": [s.fingerprint for s in signatures],
            }
        )
        return
    note(
        f"removed {len(outcomes)} outcomes and {len(signatures)} dataset signatures "
        "(tlreg registry history shows them as forget events)",
        quiet=state.quiet,
    )
