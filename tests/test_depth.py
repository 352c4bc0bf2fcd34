"""The depth profile: pooled block features of the model's block sequence, scored block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from helpers import save_tiny_timm
from tlreg.advisor.data import load_dataset, sample
from tlreg.advisor.depth import PRE_LOGITS, DepthProfile, block_features, depth_profile
from tlreg.registry import Registry
from tlreg.registry.feature_extractor import FeatureExtractor, ImageTransform


def test_block_features_follow_the_block_sequence(
    registry: Registry, image_folder: Path, tmp_path: Path
) -> None:
    ref = registry.add_ref(str(save_tiny_timm(tmp_path / "m", arch="test_resnet", num_classes=3)))[0].ref
    extractor = registry.load(ref)
    ds = sample(load_dataset(image_folder))
    names, feats = block_features(extractor, ds.items, batch_size=5)
    assert names == ["layer1", "layer2", "layer3", "layer4"]
    assert all(f.shape[0] == len(ds) and f.ndim == 2 for f in feats)
    # the pooled output of the last block is what the model's own pooling sees
    direct = extractor.embed(ds.items)[0]
    assert feats[-1].shape[1] == direct.shape[1] and np.allclose(feats[-1], direct, atol=1e-4)
    profile = depth_profile([*names, PRE_LOGITS], [*feats, direct], ds.labels, ds.task)
    assert len(profile.scores) == len(names) + 1 and profile.n_blocks == len(names)
    assert 0 <= profile.after_peak <= len(names) - 1


def test_a_model_without_a_block_sequence_has_no_profile() -> None:
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    extractor = FeatureExtractor(
        module,
        ImageTransform(lambda img: torch.zeros(3, 8, 8)),
        modality="image",
        feature_dim=4,
        num_classes=None,
    )
    assert block_features(extractor, ["x"]) is None


def test_the_peak_and_the_blocks_after_it() -> None:
    scores = [{"logme": v} for v in (0.1, 0.5, 0.3, 0.2)]
    profile = DepthProfile(["b0", "b1", "b2", PRE_LOGITS], scores)
    assert profile.peak == 1 and profile.after_peak == 1 and profile.n_blocks == 3  # b2 only
    last = DepthProfile(["b0", "b1", PRE_LOGITS], [{"logme": 0.1}, {"logme": 0.2}, {"logme": 0.9}])
    assert last.peak == 2 and last.after_peak == 0
    assert last.to_dict()["peak_block"] == PRE_LOGITS
