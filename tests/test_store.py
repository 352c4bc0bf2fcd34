"""The Registry store: idempotent adds, revisions, tags, removal, listing, and the event log."""

from __future__ import annotations

import pytest
from tlreg.registry import ModelSpec, Registry
from tlreg.registry.errors import BadInputError, UnknownModelError, UnsupportedModalityError

pytestmark = pytest.mark.databases("sqlite", "postgresql")  # the store on both: see conftest.py


def spec(ref: str = "timm:resnet18.a1_in1k", revision: str | None = "a" * 40, **kw: object) -> ModelSpec:
    fields = {
        "source": "timm",
        "architecture": "resnet18",
        "modality": "image",
        "params": 11_689_512,
        "feature_dim": 512,
        "tags": ["timm"],
        **kw,
    }
    return ModelSpec(ref=ref, revision=revision, **fields)


def test_adding_the_same_ref_twice_is_idempotent(registry: Registry) -> None:
    first, status = registry.add(spec())
    again, status2 = registry.add(spec())
    assert (status, status2) == ("added", "unchanged")
    assert first.id == again.id
    assert len(registry.list()) == 1
    assert [e.action for e in registry.events()] == ["add"]


def test_a_moved_revision_updates_the_entry_and_is_an_event(registry: Registry) -> None:
    registry.add(spec(revision="a" * 40))
    record, status = registry.add(spec(revision="b" * 40))
    assert status == "updated" and record.revision == "b" * 40
    event = registry.events()[-1]
    assert event.action == "revision" and event.detail == {"old": "a" * 40, "new": "b" * 40}


def test_pinning_an_unpinned_entry_on_first_load(registry: Registry) -> None:
    registry.add(spec(revision=None))
    registry.set_revision("timm:resnet18.a1_in1k", "c" * 40)
    assert registry.get("timm:resnet18.a1_in1k").revision == "c" * 40
    assert registry.events()[-1].detail == {"old": None, "new": "c" * 40}


def test_tags_are_added_and_removed_with_events(registry: Registry) -> None:
    registry.add(spec())
    record = registry.tag("timm:resnet18.a1_in1k", add=["prod", "small"])
    assert record.tags == ["prod", "small", "timm"]
    record = registry.tag("timm:resnet18.a1_in1k", remove=["small"])
    assert record.tags == ["prod", "timm"]
    assert [e.action for e in registry.events()] == ["add", "tag", "untag"]
    with pytest.raises(BadInputError, match="Invalid tag"):
        registry.tag("timm:resnet18.a1_in1k", add=["has space"])


def test_remove_keeps_the_history(registry: Registry) -> None:
    registry.add(spec())
    removed = registry.remove("timm:resnet18.a1_in1k")
    assert removed.ref == "timm:resnet18.a1_in1k"
    assert registry.list() == []
    history = registry.events("timm:resnet18.a1_in1k")
    assert [e.action for e in history] == ["add", "remove"]
    assert history[-1].detail["revision"] == "a" * 40
    assert all(e.user and e.host for e in history)


def test_unknown_ref_suggests_close_matches(registry: Registry) -> None:
    registry.add(spec())
    registry.add(spec("timm:resnet50.a1_in1k"))
    with pytest.raises(UnknownModelError) as info:
        registry.get("timm:resnet18.a1_in1")
    assert "timm:resnet18.a1_in1k" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_short_names_and_pinned_hf_refs_find_their_entry(registry: Registry) -> None:
    registry.add(spec())
    registry.add(spec("hf:org/model", source="hf"))
    assert registry.get("resnet18.a1_in1k").ref == "timm:resnet18.a1_in1k"
    assert registry.get("hf:org/model@" + "a" * 40).ref == "hf:org/model"


def test_list_filters(registry: Registry) -> None:
    registry.add(spec("timm:convnext_tiny.fb_in1k", params=28_000_000, tags=["timm", "in1k"]))
    registry.add(spec("timm:resnet18.a1_in1k", params=11_000_000))
    registry.add(spec("hf:org/bert", source="hf", modality="text", params=110_000_000, tags=["transformers"]))
    assert [r.ref for r in registry.list(pattern="convnext*")] == ["timm:convnext_tiny.fb_in1k"]
    assert [r.ref for r in registry.list(modality="text")] == ["hf:org/bert"]
    assert [r.ref for r in registry.list(tags=["in1k"])] == ["timm:convnext_tiny.fb_in1k"]
    assert [r.ref for r in registry.list(max_params=20_000_000)] == ["timm:resnet18.a1_in1k"]
    assert [r.ref for r in registry.list(source="hf")] == ["hf:org/bert"]


def test_unsupported_modality_is_refused_by_name(registry: Registry) -> None:
    with pytest.raises(UnsupportedModalityError, match="audio"):
        registry.add(spec(modality="audio"))
    assert registry.list() == []


def test_models_with_billions_of_parameters_fit(registry: Registry) -> None:
    record, _ = registry.add(spec("hf:org/giant", source="hf", params=70_553_706_496))
    assert registry.get("hf:org/giant").params == 70_553_706_496 == record.params
