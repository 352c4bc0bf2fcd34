"""``tlreg finetune [RUN_ID]``: fine-tune the recommended model, or export scripts for your own trainer."""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from tlreg.advisor import defaults as d

if TYPE_CHECKING:  # imported when the command runs: `tlreg --help` does not pay for torch
    from tlreg.advisor.handoff.result import FinetuneResult
    from tlreg.advisor.handoff.train import EpochStats

from .output import emit_json, fmt_number, note, stderr, stdout, table
from .progress import RichReporter
from .state import State, pass_state


class FinetuneReporter(RichReporter):
    """Embedding bars as ``recommend`` draws them (linear mode's features), then one bar per epoch
    with the running loss and accuracy; without a terminal (or with --quiet), one line per epoch."""

    def __init__(self, *, quiet: bool) -> None:
        super().__init__(quiet=quiet)
        self.epoch_bar: Progress | None = None
        self.epoch_task: TaskID | None = None

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        if not self.bars:
            return
        self.epoch_bar = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}"),
            TimeElapsedColumn(),
            console=stderr(),
            transient=True,
        )
        self.epoch_bar.start()
        self.epoch_task = self.epoch_bar.add_task(
            "", total=batches, epoch=f"{epoch}/{epochs}", loss="-", acc="-"
        )

    def batch_end(self, loss: float, accuracy: float) -> None:
        if self.epoch_bar is not None and self.epoch_task is not None:
            self.epoch_bar.update(self.epoch_task, advance=1, loss=f"{loss:.4f}", acc=f"{accuracy:.3f}")

    def epoch_end(self, stats: EpochStats) -> None:
        if self.epoch_bar is not None:
            self.epoch_bar.stop()
            self.epoch_bar = None
        note(
            f"epoch {stats.epoch}: train loss {stats.train_loss:.4f} acc {stats.train_acc:.3f}, "
            f"val loss {stats.val_loss:.4f} acc {stats.val_acc:.3f} ({stats.seconds:.1f}s)",
            quiet=self.quiet,
        )


#: How each format of OUT/model reloads, as the README's "tlreg finetune" section gives it.
RELOAD = {
    "timm": 'timm.create_model("local-dir:{model_dir}", pretrained=True)',
    "transformers": 'AutoModelForImageClassification.from_pretrained("{model_dir}")',
}
RELOAD_ANY = 'tlreg.advisor.handoff.load_finetuned("{out}")'


def _by_mode(name: str) -> str:
    """A default that depends on the mode, as a help text says it: ``linear 50, partial 10, full 10``."""
    return ", ".join(f"{mode} {values[name]:g}" for mode, values in d.MODE_DEFAULTS.items())


def render(result: FinetuneResult) -> None:
    console = stdout()
    if result.exported:
        console.print(f"Exported {result.ref} for your own trainer:")
        for path in result.exported:
            console.print(f"  {path}")
        return
    keys = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    rows = [[h[k] for k in keys] for h in result.history]
    title = f"{result.ref} ({result.mode}) on {result.data['path']}"
    console.print(
        table(title, ["epoch", "train loss", "train acc", "val loss", "val acc", "lr", "seconds"], rows)
    )
    stop = " (stopped early)" if result.stopped_early else ""
    console.print(
        f"Best validation accuracy: {fmt_number(result.best_val_acc)} at epoch {result.best_epoch}{stop}"
    )
    how = RELOAD.get(result.model_format or "", RELOAD_ANY).format(model_dir=result.model_dir, out=result.out)
    console.print(f"Model: {result.model_dir} (reload: {how})")
    console.print(f"Metrics: {result.out}/metrics.json; command: {result.out}/command.txt")
    if result.registered:
        console.print(f"Registered: {result.registered} (parent {result.ref})")


@click.command()
@click.argument("run_id", required=False)
@click.option("--model", metavar="REF", help="Fine-tune this registered model instead of the run's best.")
@click.option("--data", type=click.Path(), help="Training data (default: the run's data).")
@click.option(
    "--out", required=True, type=click.Path(), help="Folder for the model, metrics.json, command.txt."
)
@click.option(
    "--mode",
    type=click.Choice(d.FINETUNE_MODES),
    help=f"linear: a new head on cached features; partial: also the last N blocks; full: all "
    f"[default: {d.FINETUNE_MODE}].",
)
@click.option(
    "--unfreeze",
    type=click.IntRange(min=1),
    help=f"Blocks trained by --mode partial [default: {d.UNFREEZE}].",
)
@click.option("--epochs", type=click.IntRange(min=1), help=f"[default: {_by_mode('epochs')}]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help=f"[default: {_by_mode('lr')}]")
@click.option("--batch-size", type=click.IntRange(min=1), help=f"[default: {d.FINETUNE_BATCH_SIZE}]")
@click.option(
    "--val-split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help=f"Validation share [default: {d.VAL_SPLIT}].",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    help=f"Seed of the split, the head and the shuffling [default: {d.SEED}].",
)
@click.option("--device", help=f"auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps [default: {d.DEVICE}].")
@click.option(
    "--label-smoothing", type=click.FloatRange(0, 1, max_open=True), help=f"[default: {d.LABEL_SMOOTHING:g}]"
)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    help=f"Epochs without improvement before stopping; 0: never [default: {d.PATIENCE}].",
)
@click.option(
    "--weight-decay", type=click.FloatRange(min=0), help=f"AdamW weight decay [default: {d.WEIGHT_DECAY}]."
)
@click.option(
    "--workers", type=click.IntRange(min=0), help="DataLoader worker processes (default: by modality)."
)
@click.option("--text-col", help="Table column holding the text (default: the run's, or guessed).")
@click.option("--image-col", help="Table column holding image paths.")
@click.option("--label-col", help="Table column holding the label.")
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted fine-tune in --out from its last checkpoint."
)
@click.option(
    "--full-data",
    is_flag=True,
    help="Train on every item of the run's data, not the run's sample (when recommend capped it).",
)
@click.option(
    "--export",
    type=click.Choice(d.EXPORTS),
    help="Do not train: write a PyTorch script, timm train.py arguments and script, or a HF Trainer script.",
)
@click.option(
    "--register",
    is_flag=True,
    help="Add the fine-tuned model to the registry as a candidate, with its parent, run and outcome.",
)
@click.option("--trust-remote-code", is_flag=True, help="Allow Hub models that ship their own Python code.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (metrics.json) instead.")
@pass_state
def finetune(state: State, run_id: str | None, as_json: bool, **options: Any) -> None:
    """Fine-tune the model RUN_ID recommended (or --model REF) and record how it did."""
    from tlreg.advisor.handoff import finetune as run_finetune

    result = run_finetune(
        run_id,
        registry=state.registry,
        reporter=FinetuneReporter(quiet=state.quiet),
        command=shlex.join(["tlreg", *sys.argv[1:]]),
        **options,
    )
    if as_json:
        emit_json(result.to_dict())
    else:
        render(result)
