"""A third-party model source, installed as a real distribution, plugs in: its scheme is a ref the
registry accepts, ``registry add / import / list`` and ``recommend`` work with it, and a broken
plugin next to it is reported and skipped without breaking any command.

The distribution is real: a ``*.dist-info`` folder (``METADATA``, ``entry_points.txt``) and a module on
a folder put on ``sys.path``, found through ``importlib.metadata`` as pip's would be. The plugin does
not subclass ``Source``: it gets the protocol's defaults (how a ref is read, its current revision).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import save_tiny_timm, write_image_folder
from tlreg.cli.main import cli
from tlreg.registry import Registry
from tlreg.registry.sources import SourcePluginWarning, parse_ref, sources

PLUGIN = '''
"""A model source serving the timm folders under $TLREG_FAKE_MODELS as fake:NAME."""

import os
from pathlib import Path

from tlreg.registry.model_folders import folder_extractor, folder_fields
from tlreg.registry.models import ModelSpec
from tlreg.registry.refs import Ref
from tlreg.registry.sources import Skip
from tlreg.registry.weights import sha256


def _folder(name):
    return Path(os.environ["TLREG_FAKE_MODELS"]) / name


class FakeSource:
    name = "fake"
    schemes = ("fake",)

    def list(self, *, filters=(), limit=None, sort=None):
        for folder in sorted(Path(os.environ["TLREG_FAKE_MODELS"]).iterdir()):
            yield self.describe(Ref("fake", folder.name))
        yield Skip("fake:nothing", "not a model")

    def describe(self, ref, **options):
        folder = _folder(ref.name)
        fields = folder_fields(folder)
        return ModelSpec(
            ref=f"fake:{ref.name}",
            source=self.name,
            revision=sha256(folder / "model.safetensors"),
            **fields,
            tags=["fake"],
        )

    def load(self, entry, *, pretrained=True, trust_remote_code=False):
        folder = _folder(entry.ref.removeprefix("fake:"))
        revision = sha256(folder / "model.safetensors") if pretrained else None
        return folder_extractor(folder, modality=entry.modality, pretrained=pretrained, revision=revision)
'''
ENTRY_POINTS = """[tlreg.sources]
fake = tlreg_fake_source:FakeSource
broken = tlreg_fake_source_missing:Nothing
"""


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin's distribution installed on a folder on ``sys.path``; the models it serves."""
    site = tmp_path / "site-packages"
    info = site / "tlreg_fake_source-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tlreg-fake-source\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "tlreg_fake_source.py").write_text(PLUGIN)
    models = tmp_path / "fake-models"
    save_tiny_timm(models / "tiny", arch="test_resnet", num_classes=5)
    monkeypatch.setenv("TLREG_FAKE_MODELS", str(models))
    monkeypatch.syspath_prepend(str(site))
    sources.cache_clear()  # the installed sources are read once per process
    yield models
    sources.cache_clear()


def test_a_plugin_scheme_is_a_ref_and_a_broken_plugin_is_skipped(plugin: Path) -> None:
    with pytest.warns(SourcePluginWarning, match=r"'broken' \(tlreg_fake_source_missing:Nothing\) failed"):
        found = sources()
    assert "fake" in found and "broken" not in found and {"timm", "hf", "local"} <= set(found)
    ref = parse_ref("fake:tiny#x=1")
    assert (ref.scheme, ref.name, ref.options) == ("fake", "tiny", {"x": "1"})
    with pytest.raises(ValueError, match="no model name after 'fake:'"):  # the protocol's default
        parse_ref("fake:")


def test_registry_add_import_list_and_recommend_with_a_plugin_source(plugin: Path, tmp_path: Path) -> None:
    added = run("registry", "add", "fake:tiny", "--json")
    assert added.exit_code == 0, added.output
    assert "warning: Model source plugin 'broken'" in added.stderr and "skipped" in added.stderr
    assert json.loads(added.stdout)["model"]["source"] == "fake"

    imported = run("registry", "import", "fake", "--json")  # the choice of sources includes plugins
    assert imported.exit_code == 0, imported.output
    doc = json.loads(imported.stdout)
    assert doc["unchanged"] == ["fake:tiny"] and doc["skipped"] == [
        {"ref": "fake:nothing", "reason": "not a model"}
    ]
    listed = json.loads(run("registry", "list", "--source", "fake", "--json").stdout)
    assert [(m["ref"], m["tags"]) for m in listed] == [("fake:tiny", ["fake"])]

    data = write_image_folder(tmp_path / "images")
    result = run("recommend", str(data), "--json", "--bootstrap", "5", "--workers", "0", "--no-history")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["best"]["ref"] == "fake:tiny" and doc["skipped"] == []
    assert {b["ref"] for b in doc["baselines"]} == {"fake:tiny (random init)", "raw pixels (16x16)"}

    # a second run reads the features from the cache: the plugin's current revision is the
    # protocol's default (describe the model again), and it names the same entry
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SourcePluginWarning)
        again = run("recommend", str(data), "--json", "--bootstrap", "5", "--workers", "0", "--no-history")
    assert json.loads(again.stdout)["best"]["from_cache"] is True
    assert Registry().get("fake:tiny").revision == doc["best"]["revision"]
