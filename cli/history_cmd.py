"""``tlreg history``: the fine-tune outcomes and dataset signatures the ranking learns from."""

from __future__ import annotations

import click

from .output import emit_json, note, stdout, table
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
            o.created_at.strftime("%Y-%m-%d"),
            o.ref,
            where(o.fingerprint, o.dataset),
            o.fingerprint[:12],
            o.mode,
            None if o.val_accuracy is None else f"{o.val_accuracy:.3f}",
            o.source,
            o.run_id,
        ]
        for o in outcomes
    ]
    stdout().print(table(None, ["when", "model", "dataset", "data", "mode", "accuracy", "from", "run"], rows))
    note(f"{len(outcomes)} outcomes; {len(signatures)} dataset signatures", quiet=state.quiet)
