"""Where the forward passes run: the device, and how many DataLoader workers feed it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a device is resolved, that is when a model is about to run
    import torch


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` (or None): CUDA, then MPS, then CPU; otherwise the named device."""
    import torch

    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def default_workers(modality: str) -> int:
    """Image decoding is worth worker processes; tokenising a batch is cheap enough in-process."""
    if modality != "image":
        return 0
    return max(1, min(4, (os.cpu_count() or 1) - 1)) if (os.cpu_count() or 1) > 1 else 0
