"""The feature cache: atomic entries, checksums, corruption recovery, prune and clear."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from tlreg.advisor.cache import CacheCorruptWarning, FeatureCache, cache_key


def put(cache: FeatureCache, key: str, n: int = 5, dim: int = 3, classes: int | None = 2):
    writer = cache.writer(key, n=n, dim=dim, classes=classes, meta={"ref": "timm:x", "fingerprint": "f"})
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n, dim)).astype(np.float32)
    probs = rng.dirichlet(np.ones(classes), size=n).astype(np.float32) if classes else None
    writer.write(feats[:2], None if probs is None else probs[:2])
    writer.write(feats[2:], None if probs is None else probs[2:])
    return writer.commit(), feats, probs


def test_key_depends_on_every_part() -> None:
    base = {
        "ref": "timm:a",
        "revision": "r",
        "preprocessing": {"size": 1},
        "fingerprint": "f",
        "init": "pretrained",
    }
    keys = {cache_key(**base)} | {cache_key(**{**base, k: "other"}) for k in base}
    assert len(keys) == len(base) + 1


def test_round_trip_with_checksums(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    _, feats, probs = put(cache, "k1")
    loaded = cache.load("k1")
    np.testing.assert_array_equal(loaded.features, feats)
    np.testing.assert_array_equal(loaded.probs, probs)
    assert set(loaded.meta["sha256"]) == {"features", "probs"}
    assert [e.key for e in cache.entries()] == ["k1"]
    assert not list((tmp_path / "features").glob(".tmp-*"))


def test_a_corrupt_entry_is_reported_removed_and_missing(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    put(cache, "k2")
    data = cache.path("k2") / "features.npy"
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.warns(CacheCorruptWarning, match="corrupt"):
        assert cache.load("k2") is None
    assert not cache.path("k2").exists()


def test_an_aborted_write_leaves_nothing(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    writer = cache.writer("k3", n=4, dim=2, classes=None, meta={})
    writer.write(np.zeros((2, 2), np.float32), None)
    with pytest.raises(RuntimeError, match="2 of 4 rows"):
        writer.commit()
    writer.abort()
    assert cache.load("k3") is None and list(cache.entries()) == []
    assert not list((tmp_path / "features").glob(".tmp-*"))


def test_two_writers_of_one_key_both_succeed(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    first = cache.writer("k4", n=1, dim=1, classes=None, meta={})
    second = cache.writer("k4", n=1, dim=1, classes=None, meta={})
    first.write(np.ones((1, 1), np.float32), None)
    second.write(np.ones((1, 1), np.float32), None)
    assert first.commit().features[0, 0] == second.commit().features[0, 0] == 1
    assert len(list(cache.entries())) == 1


def test_prune_by_age_and_size_and_clear(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    for key in ("old", "mid", "new"):
        put(cache, key)
    for key, age_days in (("old", 30), ("mid", 10)):
        meta = json.loads((cache.path(key) / "meta.json").read_text())
        meta["created"] = time.time() - age_days * 86400
        (cache.path(key) / "meta.json").write_text(json.dumps(meta))
    stale = tmp_path / "features" / ".tmp-stale"
    stale.mkdir()
    os.utime(stale, (time.time() - 86400, time.time() - 86400))
    assert [e.key for e in cache.prune(older_than_days=20)] == ["old"]
    assert not stale.exists()
    newest = next(e for e in cache.entries() if e.key == "new").size
    assert [e.key for e in cache.prune(max_bytes=newest)] == ["mid"]
    assert cache.clear() == 1 and list(cache.entries()) == []
