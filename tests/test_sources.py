"""Every model source, through the real loading code, with tiny models saved as their sources save them.

Hub models are laid out in a Hugging Face cache (blobs, refs/main, snapshot symlinks) and
loaded with HF_HUB_OFFLINE=1; features are compared with the same model run directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from helpers import put_in_hf_cache, rgb_images, save_tiny_bert, save_tiny_timm, save_tiny_vit
from safetensors.torch import load_file, save_file
from tlreg.registry import Registry
from tlreg.registry.errors import (
    BadInputError,
    InvalidRefError,
    OfflineError,
    RemoteCodeError,
    UnknownModelError,
    UnsupportedModalityError,
    WeightsError,
)
from tlreg.registry.weights import sha256


def timm_features(
    model: torch.nn.Module, images: list, cfg_model: torch.nn.Module | None = None
) -> np.ndarray:
    """Penultimate features of a timm model, computed directly with timm's own transform."""
    data_cfg = timm.data.resolve_model_data_config(cfg_model or model)
    transform = timm.data.create_transform(**data_cfg)
    x = torch.stack([transform(im) for im in images])
    with torch.no_grad():
        return model.eval().forward_head(model.forward_features(x), pre_logits=True).numpy()


# --- timm -------------------------------------------------------------------------------------


def test_timm_model_from_the_hf_cache_is_pinned_and_loads_offline(
    registry: Registry, hf_cache: Path, tmp_path: Path
) -> None:
    folder = save_tiny_timm(tmp_path / "w", arch="test_resnet", num_classes=1000)
    sha = put_in_hf_cache(hf_cache, "timm/test_resnet.r160_in1k", folder)
    record, status = registry.add_ref("timm:test_resnet.r160_in1k")
    assert status == "added"
    assert (record.revision, record.source, record.feature_dim, record.num_classes) == (sha, "timm", 96, 1000)
    assert record.params == sum(p.numel() for p in timm.create_model("test_resnet").parameters())
    assert record.preprocessing["input_size"] == [3, 160, 160]

    extractor = registry.load(record.ref)
    images = rgb_images(3)
    feats, probs = extractor.embed(images)
    reference = timm.create_model(
        "test_resnet.r160_in1k",
        pretrained=True,
        pretrained_cfg_overlay={"file": str(folder / "model.safetensors")},
    )
    np.testing.assert_allclose(feats, timm_features(reference, images), rtol=1e-5, atol=1e-5)
    assert probs.shape == (3, 1000)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_timm_model_not_cached_registers_unpinned_and_fails_fast_offline(registry: Registry) -> None:
    record, _ = registry.add_ref("timm:test_vit.r160_in1k")
    assert record.revision is None and record.feature_dim == 64
    with pytest.raises(OfflineError) as info:
        registry.load(record.ref)
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and "timm/test_vit.r160_in1k" in message and "cache" in message


def test_timm_import_with_a_filter_and_limit(registry: Registry) -> None:
    report = registry.import_from("timm", filters=["test_*"], limit=3)
    assert len(report.added) == 3 and all(r.ref.startswith("timm:test_") for r in report.added)
    assert registry.import_from("timm", filters=["test_*"], limit=3).unchanged


def test_unknown_timm_name_suggests(registry: Registry) -> None:
    with pytest.raises(UnknownModelError, match="Did you mean"):
        registry.add_ref("timm:test_resnett.r160_in1k")


# --- Hugging Face Hub -------------------------------------------------------------------------


def test_hf_timm_repo_resolves_main_to_its_sha(
    registry: Registry, hf_cache: Path, tiny_timm_dir: Path
) -> None:
    sha = put_in_hf_cache(hf_cache, "tlreg-test/tiny-timm", tiny_timm_dir)
    record, _ = registry.add_ref("hf:tlreg-test/tiny-timm@main")
    assert (record.ref, record.revision, record.extra["library"]) == ("hf:tlreg-test/tiny-timm", sha, "timm")
    assert record.num_classes == 4
    feats, probs = registry.load(record.ref).embed(rgb_images(2))
    reference = timm.create_model(f"local-dir:{tiny_timm_dir}", pretrained=True)
    np.testing.assert_allclose(feats, timm_features(reference, rgb_images(2)), rtol=1e-5, atol=1e-5)
    assert probs.shape == (2, 4)


def test_hf_transformers_vit_features_are_the_classifier_input(
    registry: Registry, hf_cache: Path, tiny_vit_dir: Path
) -> None:
    from transformers import ViTForImageClassification, ViTImageProcessor

    put_in_hf_cache(hf_cache, "tlreg-test/tiny-vit", tiny_vit_dir)
    record, _ = registry.add_ref("hf:tlreg-test/tiny-vit")
    assert (record.modality, record.task, record.num_classes, record.feature_dim) == (
        "image",
        "image-classification",
        3,
        32,
    )
    images = rgb_images(4)
    extractor = registry.load(record.ref)
    assert extractor.module.use_kernels is False  # transformers 5.25 would fetch kernels from the Hub
    feats, probs = extractor.embed(images)
    model = ViTForImageClassification.from_pretrained(tiny_vit_dir).eval()
    pixels = ViTImageProcessor.from_pretrained(tiny_vit_dir)(images=images, return_tensors="pt")[
        "pixel_values"
    ]
    with torch.no_grad():
        cls = model.vit(pixel_values=pixels).last_hidden_state[:, 0]
        logits = model.classifier(cls)
    np.testing.assert_allclose(feats, cls.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probs, logits.softmax(-1).numpy(), rtol=1e-4, atol=1e-6)


def test_hf_text_encoder_uses_mean_pooling(registry: Registry, hf_cache: Path, tiny_bert_dir: Path) -> None:
    from transformers import AutoTokenizer, BertModel

    put_in_hf_cache(hf_cache, "tlreg-test/tiny-bert", tiny_bert_dir)
    record, _ = registry.add_ref("hf:tlreg-test/tiny-bert")
    assert record.modality == "text" and record.preprocessing["pooling"] == "mean"
    texts = ["the cat sat on the mat", "stock market fell", "team won"]
    feats, probs = registry.load(record.ref).embed(texts)
    assert probs is None
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = BertModel.from_pretrained(tiny_bert_dir).eval()(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    np.testing.assert_allclose(feats, ((hidden * mask).sum(1) / mask.sum(1)).numpy(), rtol=1e-4, atol=1e-5)


def test_hf_explicit_sha_and_unknown_revision(
    registry: Registry, hf_cache: Path, tiny_timm_dir: Path
) -> None:
    sha = put_in_hf_cache(hf_cache, "tlreg-test/tiny-timm", tiny_timm_dir)
    assert registry.add_ref(f"hf:tlreg-test/tiny-timm@{sha}")[0].revision == sha
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE"):
        registry.add_ref("hf:tlreg-test/tiny-timm@v9")


def test_hf_model_missing_offline_names_the_cache_and_the_variable(
    registry: Registry, hf_cache: Path
) -> None:
    with pytest.raises(OfflineError) as info:
        registry.add_ref("hf:someorg/not-cached")
    assert "HF_HUB_OFFLINE" in str(info.value) and str(hf_cache) in str(info.value)
    assert registry.list() == []


def test_hf_import_offline_registers_the_cache_and_reports_skips(
    registry: Registry, hf_cache: Path, tiny_timm_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    put_in_hf_cache(hf_cache, "tlreg-test/tiny-timm", tiny_timm_dir)
    put_in_hf_cache(hf_cache, "tlreg-test/tiny-bert", tiny_bert_dir)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "README.md").write_text("no config here")
    put_in_hf_cache(hf_cache, "tlreg-test/broken", broken)
    report = registry.import_from("hf", filters=["timm"])
    assert [r.ref for r in report.added] == ["hf:tlreg-test/tiny-timm"]
    assert [s.name for s in report.skipped] == ["hf:tlreg-test/broken"]
    assert "config.json" in report.skipped[0].reason
    assert {r.ref for r in registry.import_from("hf").added} == {"hf:tlreg-test/tiny-bert"}


def test_remote_code_is_refused_unless_trusted(
    registry: Registry, hf_cache: Path, tiny_bert_dir: Path
) -> None:
    cfg = json.loads((tiny_bert_dir / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (tiny_bert_dir / "config.json").write_text(json.dumps(cfg))
    put_in_hf_cache(hf_cache, "tlreg-test/custom", tiny_bert_dir)
    record, _ = registry.add_ref("hf:tlreg-test/custom")
    with pytest.raises(RemoteCodeError, match="--trust-remote-code"):
        registry.load(record.ref)


def test_unsupported_modality_is_refused_by_name(registry: Registry, tiny_bert_dir: Path) -> None:
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        (tiny_bert_dir / name).unlink(missing_ok=True)
    (tiny_bert_dir / "special_tokens_map.json").unlink(missing_ok=True)
    (tiny_bert_dir / "preprocessor_config.json").write_text(
        json.dumps({"sampling_rate": 16000, "feature_extractor_type": "Wav2Vec2"})
    )
    with pytest.raises(UnsupportedModalityError, match="audio"):
        registry.add_ref(str(tiny_bert_dir))


# --- local files ------------------------------------------------------------------------------


@pytest.fixture
def resnet_file(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(1)
    model = timm.create_model("test_resnet", num_classes=5)
    path = tmp_path / "w.safetensors"
    save_file(model.state_dict(), str(path))
    return path, model


def test_local_safetensors_with_arch(registry: Registry, resnet_file: tuple[Path, torch.nn.Module]) -> None:
    path, model = resnet_file
    record, _ = registry.add_ref(str(path), arch="test_resnet")
    assert record.ref == f"file:{path}#arch=test_resnet"
    assert (record.revision, record.num_classes, record.source) == (sha256(path), 5, "local")
    feats, probs = registry.load(record.ref).embed(rgb_images(2))
    np.testing.assert_allclose(feats, timm_features(model, rgb_images(2)), rtol=1e-5, atol=1e-5)
    assert probs.shape == (2, 5)


def test_images_embed_in_the_channels_last_layout_and_the_weights_keep_theirs(
    registry: Registry, resnet_file: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    """The faster layout for CPU convolutions: every convolution sees a channels-last batch, the
    features are timm's own within float rounding, and the weights stay contiguous (a fine-tune or an
    export saves them with safetensors, which refuses other layouts)."""
    path, model = resnet_file
    extractor = registry.load(registry.add_ref(str(path), arch="test_resnet")[0].ref)
    seen: list[bool] = []
    for conv in (m for m in extractor.module.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_pre_hook(
            lambda _m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
        )
    feats, _ = extractor.embed(rgb_images(3))
    assert seen and all(seen)
    np.testing.assert_allclose(feats, timm_features(model, rgb_images(3)), rtol=1e-5, atol=1e-5)
    assert all(p.is_contiguous() for p in extractor.module.parameters())
    save_file(extractor.module.state_dict(), str(tmp_path / "again.safetensors"))

    # the fine-tune's path (features with autograd) too, and its step leaves the layout as it was
    seen.clear()
    pre = extractor.preprocessor
    batch = pre.collate([pre(im) for im in rgb_images(3)])
    extractor.module.train()
    optimiser = torch.optim.SGD(extractor.module.parameters(), lr=0.1)
    extractor.features(batch).square().sum().backward()
    assert seen and all(seen)
    assert all(p.grad is not None for p in extractor.module.parameters() if p.dim() == 4)
    optimiser.step()
    assert all(p.is_contiguous() for p in extractor.module.parameters())
    save_file(extractor.module.state_dict(), str(tmp_path / "trained.safetensors"))


def test_local_pth_loads_with_weights_only(
    registry: Registry, resnet_file: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    _, model = resnet_file
    path = tmp_path / "w.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    record, _ = registry.add_ref(str(path), arch="test_resnet")
    feats, _ = registry.load(record.ref).embed(rgb_images(2))
    np.testing.assert_allclose(feats, timm_features(model, rgb_images(2)), rtol=1e-5, atol=1e-5)


class Payload:
    """A pickled object: weights_only loading must refuse it."""


def test_pickled_code_is_refused(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": Payload()}, path)
    with pytest.raises(WeightsError, match=str(path)):
        registry.add_ref(str(path), arch="test_resnet")


def test_mismatched_and_corrupt_weights_name_the_file(
    registry: Registry, resnet_file: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    path, _ = resnet_file
    with pytest.raises(WeightsError, match=rf"{path}.*does not fit architecture 'test_vit'"):
        registry.add_ref(str(path), arch="test_vit")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match=str(truncated)):
        registry.add_ref(str(truncated), arch="test_resnet")
    with pytest.raises(InvalidRefError, match="--arch"):
        registry.add_ref(str(path))
    with pytest.raises(BadInputError, match="not a timm architecture"):
        registry.add_ref(str(path), arch="no_such_arch")
    assert registry.list() == [] and registry.events() == []


NOT_WEIGHTS = {
    "passwd": b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
    "empty.pt": b"",
    "notes.pt": b"hello world\n",
    "noise.pth": np.random.default_rng(0).bytes(4096),
    "noise.safetensors": np.random.default_rng(1).bytes(4096),
    "empty.safetensors": b"",
}


@pytest.mark.parametrize("name", sorted(NOT_WEIGHTS))
def test_a_file_that_is_not_weights_is_refused_naming_it(
    registry: Registry, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(NOT_WEIGHTS[name])
    with pytest.raises(WeightsError, match=rf"^{re.escape(str(path))}: not a weights file \(.+\)") as info:
        registry.add_ref(str(path), arch="test_resnet")
    assert "\n" not in str(info.value)
    assert registry.list() == [] and registry.events() == []


class MakeFolder:
    """Unpickling this creates a folder: a weights check must refuse it, never run it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.path,))


def _bad_weights(folder: Path, fault: str, marker: Path) -> Path:
    """Replace a saved folder's weights with a file that is not weights."""
    (folder / "model.safetensors").unlink()
    if fault == "pickled code in pytorch_model.bin":
        bad = folder / "pytorch_model.bin"
        torch.save({"conv1.weight": torch.zeros(2), "hook": MakeFolder(marker)}, bad)
    elif fault == "random bytes in model.safetensors":
        bad = folder / "model.safetensors"
        bad.write_bytes(np.random.default_rng(0).bytes(8192))
    else:
        bad = folder / "model.safetensors"
        bad.write_bytes(b"")
    return bad


@pytest.mark.parametrize(
    "fault",
    ["pickled code in pytorch_model.bin", "random bytes in model.safetensors", "empty model.safetensors"],
)
@pytest.mark.parametrize("library", ["timm", "transformers"])
def test_a_model_folder_with_bad_weights_is_refused_at_add(
    registry: Registry, tmp_path: Path, library: str, fault: str
) -> None:
    save = save_tiny_timm if library == "timm" else save_tiny_vit
    folder = save(tmp_path / "model")
    marker = tmp_path / "unpickled"
    bad = _bad_weights(folder, fault, marker)
    with pytest.raises(WeightsError, match=rf"^{re.escape(str(bad))}: not a weights file \(.+\)"):
        registry.add_ref(str(folder))
    assert not marker.exists(), "the pickle was executed"
    assert registry.list() == [] and registry.events() == []


def test_a_model_folder_whose_weights_do_not_fit_its_config_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    timm_dir = save_tiny_timm(tmp_path / "timm", num_classes=4)
    save_file(
        timm.create_model("test_resnet", num_classes=7).state_dict(), str(timm_dir / "model.safetensors")
    )
    weights = re.escape(str(timm_dir / "model.safetensors"))
    with pytest.raises(
        WeightsError, match=rf"^{weights}: does not fit architecture 'test_resnet'.*fc.weight"
    ):
        registry.add_ref(str(timm_dir))
    vit_dir = save_tiny_vit(tmp_path / "vit", num_labels=3)
    shutil.copyfile(
        save_tiny_vit(tmp_path / "vit5", num_labels=5) / "model.safetensors", vit_dir / "model.safetensors"
    )
    weights = re.escape(str(vit_dir / "model.safetensors"))
    with pytest.raises(
        WeightsError, match=rf"^{weights}: does not fit architecture 'ViTForImageClassification'"
    ):
        registry.add_ref(str(vit_dir))
    shutil.copyfile(save_tiny_bert(tmp_path / "bert") / "model.safetensors", vit_dir / "model.safetensors")
    with pytest.raises(
        WeightsError, match=rf"^{weights}: does not fit architecture 'ViTForImageClassification'"
    ):
        registry.add_ref(str(vit_dir))
    assert registry.list() == [] and registry.events() == []


def test_a_timm_folder_is_checked_on_the_file_timm_loads(registry: Registry, tiny_timm_dir: Path) -> None:
    """timm's hub folders of CLIP models also hold open_clip's weights, which timm does not load."""
    other = timm.create_model("test_vit", num_classes=0).state_dict()
    save_file(other, str(tiny_timm_dir / "open_clip_model.safetensors"))
    record, status = registry.add_ref(str(tiny_timm_dir))
    assert status == "added" and registry.load(record.ref).embed(rgb_images(1))[0].shape == (1, 96)


HIDE_ACCELERATE = """
import importlib.util, sys
real_find_spec = importlib.util.find_spec
def find_spec(name, *args, **kwargs):
    return None if name.startswith("accelerate") else real_find_spec(name, *args, **kwargs)
importlib.util.find_spec = find_spec
sys.modules["accelerate"] = None  # as if it were not installed: `import accelerate` fails
"""

ADD_FOLDERS = """
import sys, transformers
from tlreg.registry import Registry
from tlreg.registry.errors import WeightsError
assert not transformers.utils.is_accelerate_available()
registry = Registry()
print(registry.add_ref(sys.argv[1])[1])
try:
    registry.add_ref(sys.argv[2])
except WeightsError as exc:
    print(exc)
"""


@pytest.mark.parametrize("accelerate", ["installed", "missing"])
def test_a_partly_saved_transformers_folder_is_refused(
    registry: Registry, tmp_path: Path, accelerate: str
) -> None:
    """transformers maps a file's names onto the model only with accelerate; without it, sizes decide."""
    good = save_tiny_vit(tmp_path / "vit")
    partial = save_tiny_vit(tmp_path / "vit-partial")
    tensors = load_file(str(partial / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if ".layer." not in k}, str(partial / "model.safetensors"))
    if accelerate == "installed":
        pytest.importorskip("accelerate")
        assert registry.add_ref(str(good))[1] == "added"
        with pytest.raises(
            WeightsError, match="does not fit architecture 'ViTForImageClassification'"
        ) as info:
            registry.add_ref(str(partial))
        message = str(info.value)
    else:
        done = subprocess.run(
            [sys.executable, "-c", HIDE_ACCELERATE + ADD_FOLDERS, str(good), str(partial)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        status, message = done.stdout.strip().splitlines()
        assert status == "added"
    assert message.startswith(
        f"{partial / 'model.safetensors'}: does not fit architecture 'ViTForImageClassification'"
    )
    assert [r.ref for r in registry.list()] == [f"local-dir:{good}"]


def test_local_dirs_from_timm_and_transformers(
    registry: Registry, tiny_timm_dir: Path, tiny_vit_dir: Path
) -> None:
    timm_rec, _ = registry.add_ref(str(tiny_timm_dir))
    vit_rec, _ = registry.add_ref(f"local-dir:{tiny_vit_dir}")
    assert timm_rec.ref == f"local-dir:{tiny_timm_dir}" and timm_rec.extra["library"] == "timm"
    assert vit_rec.extra["library"] == "transformers" and vit_rec.num_classes == 3
    assert registry.load(timm_rec.ref).embed(rgb_images(1))[0].shape == (1, 96)
    assert registry.load(vit_rec.ref).embed(rgb_images(1))[0].shape == (1, 32)


def test_a_changed_local_file_is_a_new_revision(
    registry: Registry, resnet_file: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    path, model = resnet_file
    record, _ = registry.add_ref(str(path), arch="test_resnet")
    state = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_file(state, str(path))
    registry.load(record.ref)
    assert registry.get(record.ref).revision == sha256(path) != record.revision
    assert registry.events()[-1].action == "revision"


def test_random_init_baseline_has_the_same_architecture(
    registry: Registry, resnet_file: tuple[Path, torch.nn.Module]
) -> None:
    path, _ = resnet_file
    record, _ = registry.add_ref(str(path), arch="test_resnet")
    trained = registry.load(record.ref)
    baseline = registry.load(record.ref, pretrained=False)
    assert trained.feature_dim == baseline.feature_dim and baseline.revision is None
    assert not np.allclose(trained.embed(rgb_images(1))[0], baseline.embed(rgb_images(1))[0])


# --- catalog ----------------------------------------------------------------------------------


def test_catalog_imports_offline(registry: Registry) -> None:
    report = registry.import_from("catalog")
    assert not report.skipped
    records = {r.ref: r for r in report.added}
    assert records["timm:resnet50.a1_in1k"].imagenet_top1 == pytest.approx(80.38)
    assert records["timm:resnet50.a1_in1k"].origin == "catalog"
    vit = records["hf:google/vit-base-patch16-224"]
    assert (vit.source, vit.revision, vit.feature_dim, vit.modality) == ("hf", None, 768, "image")
    assert records["hf:sentence-transformers/all-MiniLM-L6-v2"].modality == "text"
    assert len(registry.import_from("catalog", filters=["convnext"]).unchanged) >= 2


def test_move_a_cached_model_folder_keeps_its_pinned_revision(
    registry: Registry, hf_cache: Path, tiny_timm_dir: Path, tmp_path: Path
) -> None:
    sha = put_in_hf_cache(hf_cache, "tlreg-test/tiny-timm", tiny_timm_dir)
    registry.add_ref("hf:tlreg-test/tiny-timm")
    newer = tmp_path / "newer"
    shutil.copytree(tiny_timm_dir, newer)
    (newer / "README.md").write_text("---\nlicense: mit\n---\nupdated")
    new_sha = put_in_hf_cache(hf_cache, "tlreg-test/tiny-timm", newer)
    # offline, the cache's `main` is only what was last downloaded: re-adding changes nothing ...
    record, status = registry.add_ref("hf:tlreg-test/tiny-timm")
    assert status == "unchanged" and record.revision == sha
    # ... and a commit asked for by its sha is taken
    record, status = registry.add_ref(f"hf:tlreg-test/tiny-timm@{new_sha}")
    assert status == "updated" and record.revision == new_sha != sha and record.license == "mit"


def test_a_corrupt_weights_file_in_a_model_folder_is_a_weights_error(
    registry: Registry, tiny_timm_dir: Path, tiny_vit_dir: Path
) -> None:
    for folder in (tiny_timm_dir, tiny_vit_dir):
        record, _ = registry.add_ref(str(folder))
        weights_file = folder / "model.safetensors"
        weights_file.write_bytes(weights_file.read_bytes()[:2000])
        with pytest.raises(WeightsError, match=str(folder)):
            registry.load(record.ref)
