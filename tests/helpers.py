"""Helpers the tests share: tiny models saved the way their real sources save them, a Hugging Face
cache laid out by hand, and tiny datasets. Fixtures that use them are in ``conftest.py``.

Everything is built locally, never downloaded: timm and transformers models from small configs,
saved with their libraries' own ``save_for_hf`` / ``save_pretrained``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch


def put_in_hf_cache(cache: Path, repo_id: str, folder: Path, *, ref: str = "main") -> str:
    """Lay ``folder``'s files out as huggingface_hub's cache does (blobs, refs, snapshot symlinks).

    Returns the fake commit sha, derived from the files so that different content gives a new sha.
    """
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha1()
    for f in files:
        digest.update(f.relative_to(folder).as_posix().encode() + hashlib.sha256(f.read_bytes()).digest())
    sha = digest.hexdigest()
    for f in files:
        blob_id = hashlib.sha256(f.read_bytes()).hexdigest()
        blob = repo_dir / "blobs" / blob_id
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, blob)
        link = repo_dir / "snapshots" / sha / f.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / ref).write_text(sha)
    return sha


def save_tiny_timm(folder: Path, *, arch: str = "test_resnet", num_classes: int = 4, seed: int = 0) -> Path:
    """A small timm model saved by timm's own ``save_for_hf`` (config.json + model.safetensors)."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(arch, num_classes=num_classes)
    timm.models.save_for_hf(model, str(folder), safe_serialization=True)
    return folder


def save_tiny_vit(folder: Path, *, num_labels: int = 3, seed: int = 0) -> Path:
    """A small transformers ViT classifier and its image processor, saved with save_pretrained."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
        num_labels=num_labels,
        id2label={i: f"class{i}" for i in range(num_labels)},
        label2id={f"class{i}": i for i in range(num_labels)},
    )
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "rug",
    "stock",
    "market",
    "fell",
    "rose",
    "rain",
    "sun",
    "ball",
    "goal",
    "team",
    "won",
    "lost",
    "bread",
    "oven",
    "bake",
    "cpu",
    "chip",
    "code",
]


def save_tiny_bert(folder: Path, *, seed: int = 0, normalize: bool = False) -> Path:
    """A small BERT encoder with a WordPiece tokenizer, in sentence-transformers' folder layout."""
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # transformers 5: BertTokenizerFast(vocab_file=...) ignores the file (every word becomes [UNK]);
    # BertTokenizer(vocab=...) reads it and saves a fast tokenizer.json.
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"))
    assert tokenizer("cat sat")["input_ids"][1:3] != [tokenizer.unk_token_id] * 2
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
    (folder / "modules.json").write_text(json.dumps(modules))
    return folder


def rgb_images(n: int, *, size: int = 40, seed: int = 0) -> list:
    """Small random RGB PIL images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def write_image_folder(
    root: Path, *, classes: int = 3, per_class: int = 6, size: int = 24, seed: int = 0
) -> Path:
    """An image-folder dataset whose classes differ in colour, so features can separate them."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size, size, 3))
            pixels[..., c % 3] += 150
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def bench_report(script: str, *args: str) -> str:
    """``python bench/SCRIPT --report`` run as a user runs it (its own process, from the bench
    folder), from the committed results; its stdout. Fails the test with the script's stderr."""
    bench = Path(__file__).resolve().parents[1] / "bench"
    done = subprocess.run(
        [sys.executable, str(bench / script), "--report", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=bench,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
