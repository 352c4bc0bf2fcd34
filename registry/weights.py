"""Weights files: read safely, check against an architecture, and pin by content.

Safetensors first; anything else goes through ``torch.load(..., weights_only=True)``, which
refuses pickled code. Every problem is a :class:`WeightsError` naming the file, raised before
anything is written to the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from .errors import TlregError, WeightsError

if TYPE_CHECKING:  # torch loads only when weights are read: hashing and headers need none of it
    import torch

_STATE_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")


def sha256(path: str | Path) -> str:
    """The file's content hash: the revision of a local weights file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    import torch

    if isinstance(obj, Mapping):
        for key in _STATE_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        tensors = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise WeightsError(str(path), "holds no state dict of tensors.", hint="Save it with model.state_dict().")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, loaded safely on the CPU."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(str(path), "no such file.")
    try:
        with _naming(path):
            if path.suffix == ".safetensors":
                return load_file(str(path), device="cpu")
            return _unwrap(torch.load(path, map_location="cpu", weights_only=True), path)
    except WeightsError:
        raise
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            str(path),
            "holds pickled Python objects besides tensors; tlreg loads weights only (weights_only=True).",
            hint="Re-save it with safetensors (safetensors.torch.save_file(model.state_dict(), ...)).",
        ) from exc
    except (SafetensorError, RuntimeError, EOFError, ValueError, OSError) as exc:
        kind = "a safetensors" if path.suffix == ".safetensors" else "a PyTorch weights"
        raise WeightsError(
            str(path),
            f"is not {kind} file tlreg can read safely ({str(exc).splitlines()[0]}).",
            hint="Check that the file is complete; pickled code is refused (weights_only=True).",
        ) from exc


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Warnings raised while reading ``path`` are raised again with the path in front.

    torch says what is odd about a checkpoint ("Detected pickle protocol 4 in the checkpoint")
    but not which file; the filters still decide what is shown. Raised again even when the read
    fails, since the warning may explain the failure.
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield
    finally:
        for item in caught:
            try:
                warnings.warn(f"{path}: {item.message}", item.category, stacklevel=3)
            except TypeError:  # a warning class that cannot be made from a message alone
                warnings.warn(f"{path}: {item.message}", UserWarning, stacklevel=3)


@contextlib.contextmanager
def loading(path: str | Path) -> Iterator[None]:
    """Turn a library's failure to read weights (truncated safetensors, a bad zip, mismatched tensors)
    into a :class:`WeightsError` naming the file, so the model is skipped with a reason, not a crash."""
    try:
        yield
    except TlregError:
        raise
    except (SafetensorError, pickle.UnpicklingError, EOFError, RuntimeError, ValueError, OSError) as exc:
        raise WeightsError(
            str(path),
            f"cannot be loaded ({_first_line(exc)}).",
            hint="Check that the weights are complete (download them again) and fit the model's config.",
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def state_dict_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes; reads only the header of a safetensors file."""
    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        try:
            with safe_open(str(path), framework="pt") as fh:
                return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(
                str(path),
                f"is not a readable safetensors file ({str(exc).splitlines()[0]}).",
                hint="Check that the file is complete.",
            ) from exc
    return {k: tuple(v.shape) for k, v in read_state_dict(path).items()}


def count_params(shapes: Mapping[str, tuple[int, ...]]) -> int:
    total = 0
    for name, shape in shapes.items():
        if name.endswith(("running_mean", "running_var", "num_batches_tracked", "position_ids")):
            continue
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def check_fits(
    path: str | Path,
    shapes: Mapping[str, tuple[int, ...]],
    expected: Mapping[str, tuple[int, ...]],
    *,
    arch: str,
) -> None:
    """Raise a :class:`WeightsError` naming the file unless its tensors fit the architecture."""
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    wrong = [k for k in expected if k in shapes and tuple(shapes[k]) != tuple(expected[k])]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} tensors of the wrong shape (e.g. {k}: {shapes[k]} vs {expected[k]})")
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    raise WeightsError(
        str(path),
        f"does not fit architecture {arch!r}: {'; '.join(parts)}.",
        hint="Check --arch, or that the file holds that model's state dict.",
    )
