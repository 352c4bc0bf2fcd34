"""The fine-tuning loop: AdamW, linear warm-up then cosine, label smoothing, AMP on CUDA, early stopping.

AdamW: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (no decay on biases
and norm scales); label smoothing: Szegedy et al., "Rethinking the Inception Architecture", CVPR
2016; the schedule: see :class:`WarmupCosine`.

One loop serves every mode: ``model(inputs) -> logits`` is a bare ``nn.Linear`` on cached features
(linear) or a backbone plus a new head (partial, full); only the data source differs.

Reproducible and resumable by construction: epoch ``e`` shuffles with a generator seeded from
``(seed, e)`` (which also seeds DataLoader workers), and the checkpoint written after every epoch
holds the model, optimizer, scheduler, grad scaler, early-stopping state and the global RNG states
(torch, CUDA, Python, NumPy; dropout draws from them). Resuming from epoch ``k`` therefore replays
what an uninterrupted run does from epoch ``k`` on: exactly on a CPU; on a GPU up to the
non-determinism of some CUDA kernels (atomics in backward passes), as any two CUDA runs differ.

Out of memory: a batch that does not fit is split into micro-batches of half the size whose
gradients are accumulated, so every optimiser step still sees the same samples and the learning
rate schedule is unchanged (BatchNorm layers that train do see the smaller batches); the new size
is kept for the rest of the run, and in the checkpoint.
"""

from __future__ import annotations

import gc
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..errors import TrainingOutOfMemoryError
from ..files import is_disk_full
from ..progress import Silent
from .checkpoint import disk_full, torch_bytes, write_file

Batch = Any  # a tensor, or a dict of tensors (tokenised text)


@dataclass
class TrainConfig:
    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    patience: int = 5
    warmup: float = 0.1
    seed: int = 0


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    micro_batch: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainState:
    """Everything besides tensors that a resumed run needs to carry on exactly."""

    epoch: int = 0  # epochs completed
    best_acc: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0
    micro_batch: int | None = None  # set once a batch ran out of memory
    stopped_early: bool = False
    done: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


class TrainReporter(Protocol):
    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None: ...
    def batch_end(self, loss: float, accuracy: float) -> None: ...
    def epoch_end(self, stats: EpochStats) -> None: ...
    def note(self, message: str) -> None: ...


class SilentTraining(Silent):
    """The Python API's default: no output (the CLI passes a reporter that draws progress)."""

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        pass

    def batch_end(self, loss: float, accuracy: float) -> None:
        pass

    def epoch_end(self, stats: EpochStats) -> None:
        pass


# --- data --------------------------------------------------------------------------------------


class Batches(Protocol):
    def __len__(self) -> int: ...
    def loader(
        self, batch_size: int, *, generator: torch.Generator | None
    ) -> Iterable[tuple[Batch, Any]]: ...


# --- schedule, RNG, helpers ---------------------------------------------------------------------


class WarmupCosine:
    """Learning-rate factor per optimiser step: linear warm-up to 1, then cosine to 0 (Loshchilov &
    Hutter, "SGDR", ICLR 2017; warm-up as in Goyal et al., "Accurate, Large Minibatch SGD", 2017)."""

    def __init__(self, total_steps: int, warmup_steps: int) -> None:
        self.total_steps, self.warmup_steps = max(1, total_steps), max(0, warmup_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - self.warmup_steps) / span)))


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))


def is_oom(exc: BaseException) -> bool:
    """CUDA and CPU allocators say it differently; MPS raises a plain RuntimeError."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, dict):
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    return batch.to(device, non_blocking=True)


def _slices(batch: Batch, labels: torch.Tensor, size: int) -> Iterator[tuple[Batch, torch.Tensor]]:
    for start in range(0, len(labels), size):
        part = slice(start, start + size)
        yield (
            ({k: v[part] for k, v in batch.items()} if isinstance(batch, dict) else batch[part]),
            labels[part],
        )


# --- the loop ------------------------------------------------------------------------------------


class Trainer:
    """Trains ``model`` on ``train``, validates on ``val`` after every epoch, checkpoints as it goes.

    ``save_best(epoch, val_acc, state)`` is called whenever validation accuracy improves (it writes
    the model the user gets; ``state`` still names the previous best); ``checkpoint`` is the resume
    file written after every epoch, with ``extra`` (the fine-tune's options) beside the tensors.
    """

    def __init__(
        self,
        model: nn.Module,
        param_groups: list[dict[str, Any]],
        train: Batches,
        val: Batches,
        cfg: TrainConfig,
        *,
        device: torch.device,
        checkpoint: Path,
        save_best: Callable[[int, float, TrainState], None],
        reporter: TrainReporter | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.model, self.train_data, self.val_data, self.cfg = model, train, val, cfg
        self.device, self.checkpoint, self.save_best = device, checkpoint, save_best
        self.reporter = reporter or SilentTraining()
        self.extra = extra or {}
        self.optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.batches = max(1, math.ceil(len(train) / cfg.batch_size))
        total = cfg.epochs * self.batches
        warmup = max(1, round(cfg.warmup * total)) if cfg.warmup > 0 else 0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, WarmupCosine(total, warmup))
        amp = device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.state = TrainState()

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return nullcontext()

    # -- checkpoints --

    def resume(self, payload: dict[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint`."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["scaler"])
        self.state = TrainState(**payload["state"])
        set_rng_state(payload["rng"])

    def save_checkpoint(self) -> None:
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": asdict(self.state),
            "rng": rng_state(),
            "extra": self.extra,
        }
        try:
            write_file(self.checkpoint, torch_bytes(payload))
        except Exception as exc:
            if is_disk_full(exc):
                done = self.state.epoch - 1
                kept = (
                    f"the checkpoint of epoch {done} is still in {self.checkpoint}"
                    if done
                    else "no checkpoint had been written yet"
                )
                raise disk_full(self.checkpoint, exc, kept, checkpoint=self.checkpoint) from exc
            raise

    # -- steps --

    def _halve(self, size: int, exc: BaseException) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if size <= 1:
            raise TrainingOutOfMemoryError(
                f"Out of memory on {self.device} even with one sample per batch ({exc}).",
                hint="Use --mode linear or partial, a smaller model, or --device cpu.",
            ) from exc
        self.state.micro_batch = (size + 1) // 2
        self.reporter.note(
            f"out of memory on {self.device} with batches of {size}: halving the batch size to "
            f"{self.state.micro_batch} (gradients are accumulated, so each step still sees "
            f"{self.cfg.batch_size} samples)"
        )

    def _size(self, n: int) -> int:
        return min(self.state.micro_batch or n, n)

    def _train_batch(self, x: Batch, y: torch.Tensor) -> tuple[float, int]:
        n = len(y)
        while True:
            size = self._size(n)
            try:
                self.optimizer.zero_grad(set_to_none=True)
                loss_sum, correct = 0.0, 0
                for xs, ys in _slices(x, y, size):
                    with self._autocast():
                        logits = self.model(xs)
                    loss = self.criterion(logits.float(), ys)
                    self.scaler.scale(loss * (len(ys) / n)).backward()
                    loss_sum += loss.item() * len(ys)
                    correct += int((logits.argmax(-1) == ys).sum())
                self.scaler.step(self.optimizer)
                self.scaler.update()
                return loss_sum, correct
            except Exception as exc:
                if not is_oom(exc):
                    raise
                self._halve(size, exc)

    @torch.no_grad()
    def evaluate(self, data: Batches) -> tuple[float, float]:
        """(mean cross-entropy without smoothing, accuracy) of the model on ``data``."""
        self.model.eval()
        loss_sum, correct = 0.0, 0
        for x, y in data.loader(self.cfg.batch_size, generator=None):
            x, y = to_device(x, self.device), y.to(self.device)
            while True:
                size = self._size(len(y))
                try:
                    batch_loss, batch_correct = 0.0, 0
                    for xs, ys in _slices(x, y, size):
                        with self._autocast():
                            logits = self.model(xs).float()
                        batch_loss += float(nn.functional.cross_entropy(logits, ys, reduction="sum"))
                        batch_correct += int((logits.argmax(-1) == ys).sum())
                    break
                except Exception as exc:
                    if not is_oom(exc):
                        raise
                    self._halve(size, exc)
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
        n = max(1, len(data))
        return loss_sum / n, correct / n

    def fit(self) -> TrainState:
        """Train from the current state to the last epoch (or early stopping)."""
        cfg, state = self.cfg, self.state
        self.model.to(self.device)
        for epoch in range(state.epoch, cfg.epochs):
            if state.done:
                break
            start = time.perf_counter()
            self.reporter.epoch_start(epoch + 1, cfg.epochs, self.batches)
            self.model.train()
            generator = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
            seen, loss_sum, correct = 0, 0.0, 0
            lr = self.optimizer.param_groups[0]["lr"]
            for x, y in self.train_data.loader(cfg.batch_size, generator=generator):
                x, y = to_device(x, self.device), y.to(self.device)
                lr = self.optimizer.param_groups[0]["lr"]
                batch_loss, batch_correct = self._train_batch(x, y)
                self.scheduler.step()
                seen, loss_sum, correct = seen + len(y), loss_sum + batch_loss, correct + batch_correct
                self.reporter.batch_end(loss_sum / seen, correct / seen)
            val_loss, val_acc = self.evaluate(self.val_data)
            stats = EpochStats(
                epoch=epoch + 1,
                train_loss=loss_sum / max(1, seen),
                train_acc=correct / max(1, seen),
                val_loss=val_loss,
                val_acc=val_acc,
                lr=lr,
                seconds=round(time.perf_counter() - start, 3),
                micro_batch=self._size(cfg.batch_size),
            )
            state.epoch = epoch + 1
            state.history.append(stats.to_dict())
            if val_acc > state.best_acc:
                self.save_best(epoch + 1, val_acc, state)  # state still names the previous best
                state.best_acc, state.best_epoch, state.bad_epochs = val_acc, epoch + 1, 0
            else:
                state.bad_epochs += 1
            stop = cfg.patience > 0 and state.bad_epochs >= cfg.patience
            state.stopped_early = stop and state.epoch < cfg.epochs
            state.done = stop or state.epoch >= cfg.epochs
            self.save_checkpoint()
            self.reporter.epoch_end(stats)
        return state
