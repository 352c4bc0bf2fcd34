"""``tlreg finetune [RUN_ID]``: fine-tune the recommended model, or export scripts for your own trainer."""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:  # imported when the command runs: `tlreg --help` does not pay for torch
    from tlreg.advisor.handoff.finetune import FinetuneResult
    from tlreg.advisor.handoff.train import EpochStats

from .output import emit_json, note, stderr, stdout, table
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


RELOAD = {
    "timm": 'timm.create_model("local-dir:{dir}", pretrained=True)',
    "transformers": 'AutoModelForImageClassification.from_pretrained("{dir}")',
}


def render(result: FinetuneResult) -> None:
    console = stdout()
    if result.exported:
        console.print(f"Exported {result.ref} for your own trainer:")
        for path in result.exported:
            console.print(f"  {path}")
        return
    rows = [
        [h["epoch"], f"{h['train_loss']:.4f}", f"{h['train_acc']:.3f}", f"{h['val_loss']:.4f}",
         f"{h['val_acc']:.3f}", f"{h['lr']:.2e}", f"{h['seconds']:.1f}"]
        for h in result.history
    ]  # fmt: skip
    title = f"{result.ref} ({result.mode}) on {result.data['path']}"
    console.print(
        table(title, ["epoch", "train loss", "train acc", "val loss", "val acc", "lr", "seconds"], rows)
    )
    stop = " (stopped early)" if result.stopped_early else ""
    acc = result.best_val_acc or 0.0
    console.print(f"Best validation accuracy: {acc:.3f} at epoch {result.best_epoch}{stop}")
    how = RELOAD.get(result.model_format or "", "tlreg.advisor.handoff.finetuned.load_finetuned('{dir}')")
    console.print(f"Model: {result.model_dir} (reload: {how.format(dir=result.model_dir)})")
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
    type=click.Choice(["linear", "partial", "full"]),
    help="linear: a new head on cached features (default); partial: also the last N blocks; full: all.",
)
@click.option("--unfreeze", type=click.IntRange(min=1), help="Blocks trained by --mode partial [default: 2].")
@click.option("--epochs", type=click.IntRange(min=1), help="[default: linear 50, partial/full 10]")
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    help="[default: linear 1e-2, partial 1e-4, full 5e-5]",
)
@click.option("--batch-size", type=click.IntRange(min=1), help="[default: 32]")
@click.option(
    "--val-split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Validation share [default: 0.2].",
)
@click.option(
    "--seed", type=click.IntRange(min=0), help="Seed of the split, the head and the shuffling [default: 0]."
)
@click.option("--device", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps [default: auto].")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), help="[default: 0]")
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    help="Epochs without improvement before stopping; 0: never [default: 5].",
)
@click.option("--weight-decay", type=click.FloatRange(min=0), help="AdamW weight decay [default: 0.01].")
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
    type=click.Choice(["script", "timm", "hf"]),
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
    """Fine-tune the model RUN_ID recommended (or --model REF) and record how it did.

    \b
    Example:
      tlreg finetune 20261125-040908-11d19d --out ft --register
      tlreg finetune --model @champion --data ./data --out ft --mode partial
    """
    from tlreg.advisor.handoff.finetune import finetune as run_finetune

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
