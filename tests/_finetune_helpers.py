"""Small models and data for the fine-tuning tests: fast enough to train for a few epochs on a CPU.

The tiny timm models of helpers.py expect 160 px inputs (a forward and backward pass of a batch
takes about a second here); the ones below are the same timm test architectures saved for 32 px
inputs by ``save_for_hf`` itself, so training stays a fraction of a second per epoch.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import timm
import torch
from helpers import save_tiny_bert

TOPICS = {
    "pets": ["cat", "dog", "sat", "mat", "rug"],
    "money": ["stock", "market", "fell", "rose", "chip"],
    "sport": ["ball", "goal", "team", "won", "lost"],
}


def save_small_timm(folder: Path, *, arch: str = "test_resnet", seed: int = 0, num_classes: int = 5) -> Path:
    torch.manual_seed(seed)
    kwargs = {"img_size": 32} if "vit" in arch else {}
    model = timm.create_model(arch, num_classes=num_classes, **kwargs)
    timm.models.save_for_hf(
        model, str(folder), safe_serialization=True, data_config={"input_size": (3, 32, 32)}
    )
    return folder


def save_text_model(folder: Path, *, seed: int = 0) -> Path:
    """helpers.py's tiny BERT (its tokenizer knows the words of :data:`TOPICS`)."""
    return save_tiny_bert(folder, seed=seed)


def write_topics(path: Path, *, per_class: int = 10, seed: int = 0) -> Path:
    """A CSV of short texts whose words give away their topic."""
    rng = np.random.default_rng(seed)
    rows = [
        {"text": " ".join(["the", *rng.choice(words, 4)]), "label": label}
        for label, words in TOPICS.items()
        for _ in range(per_class)
    ]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return path


class Recorder:
    """A training reporter that keeps what it is told, and can act at the end of an epoch."""

    def __init__(self, on_epoch_end=None) -> None:
        self.notes: list[str] = []
        self.epochs: list[int] = []
        self.batches = 0
        self.on_epoch_end = on_epoch_end

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def done(self, label: str, *, seconds: float, samples_per_s: float | None) -> None:
        pass

    def note(self, message: str) -> None:
        self.notes.append(message)

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        pass

    def batch_end(self, loss: float, accuracy: float) -> None:
        self.batches += 1

    def epoch_end(self, stats) -> None:
        self.epochs.append(stats.epoch)
        if self.on_epoch_end:
            self.on_epoch_end(stats)


def val_items(result, root: Path) -> tuple[list[Path], list[str]]:
    """The validation images of an image-folder fine-tune and their classes (ids are ``class/file``)."""
    ids = result.data["val_ids"]
    return [root / i for i in ids], [i.split("/")[0] for i in ids]
