"""Training loops of the transfer-quality benchmark: pretraining the zoo, fine-tuning, linear probes.

One protocol for every model, so that accuracy differences come from the starting weights and not
from per-model tuning: AdamW, a linear warm-up then cosine decay, a fixed number of steps of a fixed
batch size, no augmentation, fixed seeds. Inputs are the model's own tlreg preprocessing (the
extractor's ``preprocessor``), so fine-tuning sees exactly the pixels the estimators saw.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jsonio
import numpy as np
import timm
import torch
from PIL import Image
from torch import nn

#: The zoo's architectures: short name -> (timm architecture, keyword arguments), all at 32x32.
ARCHS: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet": ("test_resnet", {}),
    "mobilenetv3": ("mobilenetv3_small_050", {}),
    "vit": ("test_vit", {"img_size": 32, "patch_size": 4}),
    "convnext": ("test_convnext", {}),
}
#: TF's normalisation, used for every zoo model (the bundled EfficientNet-Lites expect it too).
MEAN = STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Budget:
    """A training budget: ``steps`` optimiser steps on batches of ``batch_size``."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def set_threads() -> int:
    """Torch threads: the cores this process may use (2 here); recorded with the results."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> normalised float ``[N, 3, H, W]`` (the zoo's preprocessing at 32 px)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - 0.5) / 0.5


def preprocess(preprocessor: Any, images: np.ndarray) -> torch.Tensor:
    """The images through a tlreg extractor's preprocessor (resize, crop, normalise), as one tensor."""
    return preprocessor.collate([preprocessor(Image.fromarray(img)) for img in images])


def _schedule(budget: Budget) -> Any:
    def factor(step: int) -> float:
        if step < budget.warmup:
            return (step + 1) / budget.warmup
        progress = (step - budget.warmup) / max(1, budget.steps - budget.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _batch(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A batch of images in the channels-last memory layout (``channels_last``), else as it is.

    oneDNN's CPU convolutions prefer it, and a convolution given a channels-last input runs in that
    layout, forward and backward: the benchmarks' nets train about 1.7x faster (``python
    bench/layout.py`` measures it side by side), the same arithmetic up to float rounding. The
    weights keep their layout (safetensors, in ``save_for_hf``, saves only contiguous tensors)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    budget: Budget,
    *,
    seed: int,
    keep_eval: Sequence[nn.Module] = (),
    channels_last: bool = True,
) -> float:
    """Train ``model`` in place for the budget (batches drawn epoch by epoch from a seeded permutation).

    Only parameters that require gradients are optimised; ``keep_eval`` (the normalisation layers of
    frozen blocks) stay in eval mode, so their running statistics stay the pretrained ones.
    ``channels_last``: the batches' faster layout (:func:`_batch`); off only to measure it.
    Returns the mean loss of the last 10 % of steps (recorded, to spot a diverged run).
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=budget.lr, weight_decay=budget.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _schedule(budget))
    model.train()
    for module in keep_eval:
        module.eval()
    order, cursor, tail = torch.randperm(len(x), generator=generator), 0, []
    for step in range(budget.steps):
        if cursor + budget.batch_size > len(order):
            order, cursor = torch.randperm(len(x), generator=generator), 0
        idx = order[cursor : cursor + budget.batch_size]
        cursor += budget.batch_size
        loss = nn.functional.cross_entropy(model(_batch(x[idx], channels_last)), y[idx])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        scheduler.step()
        if step >= budget.steps * 0.9:
            tail.append(loss.item())
    model.eval()
    return float(np.mean(tail)) if tail else math.nan


@torch.inference_mode()
def predict(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 256, channels_last: bool = True
) -> torch.Tensor:
    """The predicted class of each input, in eval mode, batch by batch (layout: :func:`_batch`)."""
    model.eval()
    batches = (_batch(x[s : s + batch_size], channels_last) for s in range(0, len(x), batch_size))
    return torch.cat([model(b).argmax(1) for b in batches])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256) -> float:
    if len(x) == 0:
        return 0.0
    return int((predict(model, x, batch_size=batch_size) == y).sum()) / len(x)


def create(arch: str, *, num_classes: int, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    """A freshly initialised zoo architecture (seeded) and the timm model arguments to rebuild it."""
    name, kwargs = ARCHS[arch]
    torch.manual_seed(seed)
    return timm.create_model(name, num_classes=num_classes, **kwargs), dict(kwargs)


def save_model(
    model: nn.Module, folder: Path, *, input_px: int, model_args: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Save ``model`` with timm's ``save_for_hf`` (what ``tlreg registry add FOLDER`` reads), atomically.

    The saved preprocessing is the benchmark's: ``input_px`` square, no crop, bilinear, mean = std = 0.5.
    ``meta.json`` (how the model was made) is written last, inside the temporary folder, so a folder
    that exists is complete.
    """
    model.pretrained_cfg = {
        **dict(model.pretrained_cfg or {}),
        "input_size": (3, input_px, input_px),
        "test_input_size": (3, input_px, input_px),
        "crop_pct": 1.0,
        "test_crop_pct": 1.0,
        "crop_mode": "center",
        "interpolation": "bilinear",
        "mean": MEAN,
        "std": STD,
        "hf_hub_id": None,
        "url": None,
    }
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    timm.models.save_for_hf(model, str(tmp), model_args=model_args or None, safe_serialization=True)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def finetune(
    module: nn.Module,
    num_classes: int,
    train_x: torch.Tensor,
    train_y: np.ndarray,
    test_x: torch.Tensor,
    test_y: np.ndarray,
    budget: Budget,
    *,
    seed: int,
) -> dict[str, float]:
    """Full fine-tune: a new head for the target classes, every weight trained; test accuracy."""
    torch.manual_seed(seed)
    module.reset_classifier(num_classes)
    start = time.perf_counter()
    cpu = time.process_time()
    final_loss = train(module, train_x, torch.as_tensor(train_y), budget, seed=seed)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    acc = accuracy(module, test_x, torch.as_tensor(test_y))
    return {"accuracy": acc, "final_loss": final_loss, "seconds": seconds, "cpu_seconds": cpu_seconds}


def linear_probe(
    train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, test_y: np.ndarray, *, seed: int
) -> dict[str, float]:
    """Logistic regression on frozen, standardised features (L2, C = 1): test accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=seed))
    probe.fit(np.asarray(train_f, np.float64), train_y)
    acc = float((probe.predict(np.asarray(test_f, np.float64)) == test_y).mean())
    return {"accuracy": acc, "seconds": time.perf_counter() - start}


def stable_seed(*parts: str | int) -> int:
    """A seed derived from names (crc32), the same on every machine and Python run."""
    import zlib

    return zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


def write_json(path: Path, data: Any) -> None:
    """The builds' caches and results: :func:`jsonio.write_json` (atomic) with sorted keys."""
    jsonio.write_json(path, data, sort_keys=True)


def n_params(module: nn.Module, *, exclude: Sequence[str] = ()) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if not any(n.startswith(e) for e in exclude))
