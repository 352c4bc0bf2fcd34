"""Weights files: read safely, check against an architecture, and pin by content.

Safetensors first; anything else goes through ``torch.load(..., weights_only=True)``, which
refuses pickled code. Every problem is a :class:`WeightsError` naming the file, raised before
anything is written to the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import pickle
import re
import warnings
import zipfile
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
    raise _not_weights(path, "it holds no state dict of tensors", hint="Save it with model.state_dict().")


def _not_weights(path: Path, reason: str, *, hint: str | None = None) -> WeightsError:
    return WeightsError(str(path), f"not a weights file ({reason}).", hint=hint)


_REFUSED_GLOBAL = re.compile(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)")


def _refused_object(exc: pickle.UnpicklingError) -> str | None:
    """The Python object the weights-only unpickler refused to build, if that is why it failed."""
    refused = _REFUSED_GLOBAL.search(str(exc))
    return refused.group(1) if refused else None


def _unreadable_reason(path: Path, exc: BaseException) -> str:
    """What the bytes are, when a reader fails on them (the weights-only unpickler fails on foreign
    bytes with IndexError, KeyError, EOFError..., whose own messages say nothing useful)."""
    if path.stat().st_size == 0:
        return "the file is empty"
    if path.suffix == ".safetensors":
        return f"unreadable safetensors header: {_first_line(exc)}"
    if zipfile.is_zipfile(path):
        return f"a damaged PyTorch checkpoint: {_first_line(exc)}"
    with open(path, "rb") as fh:
        if fh.read(1) == b"\x80":  # the PROTO opcode that starts torch.save's legacy format and pickles
            return "a pickle that holds no readable state dict"
    return "neither a safetensors file nor a PyTorch checkpoint"


def read_state_dict(path: str | Path, *, mmap: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, loaded safely on the CPU.

    With ``mmap``, a PyTorch checkpoint in the zip format keeps its tensors on disk until they are
    touched: enough to check names and shapes without reading the weights into memory.
    """
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(str(path), "no such file.")
    try:
        with _naming(path):
            if path.suffix == ".safetensors":
                return load_file(str(path), device="cpu")
            mmap = mmap and zipfile.is_zipfile(path)  # the legacy format cannot be memory-mapped
            return _unwrap(torch.load(path, map_location="cpu", weights_only=True, mmap=mmap), path)
    except WeightsError:
        raise
    except pickle.UnpicklingError as exc:
        if refused := _refused_object(exc):
            reason = (
                f"it holds pickled Python objects ({refused}) besides tensors, which tlreg never unpickles"
            )
            raise _not_weights(path, reason, hint=_RESAVE) from exc
        raise _not_weights(path, _unreadable_reason(path, exc), hint=_READABLE) from exc
    except MemoryError:
        raise
    except OSError as exc:  # the file's permissions or the disk, not its bytes
        raise WeightsError(str(path), f"cannot be read ({exc.strerror or _first_line(exc)}).") from exc
    except Exception as exc:  # read with weights_only, so no code ran: any failure is the file's
        raise _not_weights(path, _unreadable_reason(path, exc), hint=_READABLE) from exc


_RESAVE = "Re-save it with safetensors (safetensors.torch.save_file(model.state_dict(), ...))."
_READABLE = (
    "tlreg reads safetensors files and PyTorch checkpoints of tensors "
    "(torch.save(model.state_dict(), ...)); check the path and that the file is complete."
)


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
    """Tensor names and shapes; reads only the header of a safetensors file, and memory-maps a
    PyTorch checkpoint instead of reading its tensors."""
    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        try:
            with safe_open(str(path), framework="pt") as fh:
                return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as exc:
            raise _not_weights(
                path, _unreadable_reason(path, exc), hint="Check that the file is complete."
            ) from exc
    return {k: tuple(v.shape) for k, v in read_state_dict(path, mmap=True).items()}


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
    partial: bool = False,
    hint: str = "Check --arch, or that the file holds that model's state dict.",
) -> None:
    """Raise a :class:`WeightsError` naming the file unless its tensors fit the architecture.

    With ``partial`` (transformers, which renames, ties and initialises some tensors as it loads),
    only tensors of the wrong shape, or a file holding under half of the architecture's parameters
    (another model's weights, a partial save), are refused.
    """
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    wrong = [k for k in expected if k in shapes and tuple(shapes[k]) != tuple(expected[k])]
    if partial and missing and not wrong:
        total = sum(math.prod(s) for s in expected.values())
        held = sum(math.prod(s) for k, s in expected.items() if k in shapes)
        if held * 2 < total:
            raise WeightsError(
                str(path),
                f"does not fit architecture {arch!r}: it holds {len(expected) - len(missing)} of its "
                f"{len(expected)} tensors, {held / total:.0%} of its parameters "
                f"(e.g. {missing[0]} is missing).",
                hint=hint,
            )
    if partial:
        missing, unexpected = [], []
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
    raise WeightsError(str(path), f"does not fit architecture {arch!r}: {'; '.join(parts)}.", hint=hint)
