"""The CLI's progress reporter: a rich progress bar per model on stderr, or plain notes."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from .output import note, progress_enabled, stderr, warn


class RichReporter:
    """Draws a bar per model (samples done, samples/s) when stderr is a terminal and not --quiet."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.bars = progress_enabled(quiet)
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def start(self, label: str, total: int) -> None:
        if not self.bars:
            return
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=stderr(),
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(label, total=total, rate="")

    def advance(self, n: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, n)
            speed = self.progress.tasks[0].speed
            self.progress.update(self.task, rate=f"{speed:6.1f} samples/s" if speed else "")

    def done(self, label: str, *, seconds: float, samples_per_s: float | None) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        rate = f", {samples_per_s:.1f} samples/s" if samples_per_s else ""
        note(f"embedded {label} in {seconds:.1f}s{rate}", quiet=self.quiet)

    def note(self, message: str) -> None:
        """A note (hidden by --quiet), or a warning when the advisor says ``warning: ...`` (always shown)."""
        if message.startswith("warning: "):
            warn(message)
        else:
            note(message, quiet=self.quiet)
