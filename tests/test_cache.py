"""The feature cache: atomic entries, checksums, corruption recovery, prune and clear, a full disk,
writers killed mid-way, and a cache shared by several users."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tlreg.advisor.cache import CacheCorruptWarning, FeatureCache, cache_key
from tlreg.advisor.data import Dataset
from tlreg.advisor.embed.cached import cache_parts, entry_key
from tlreg.advisor.embed.request import EmbedRequest, EmbedSettings, Job
from tlreg.registry import ModelRecord


def put(cache: FeatureCache, key: str, n: int = 5, dim: int = 3, classes: int | None = 2):
    writer = cache.writer(key, n=n, dim=dim, classes=classes, meta={"ref": "timm:x", "fingerprint": "f"})
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n, dim)).astype(np.float32)
    probs = rng.dirichlet(np.ones(classes), size=n).astype(np.float32) if classes else None
    writer.write(feats[:2], None if probs is None else probs[:2])
    writer.write(feats[2:], None if probs is None else probs[2:])
    return writer.commit(), feats, probs


def test_key_depends_on_every_part(tmp_path: Path) -> None:
    """The key a job's features are cached under (:func:`cache_parts` and the revision) changes with
    each thing the features depend on: the model, its preprocessing and revision, the data, the
    sample's size, pretrained or random init and that init's seed; and with nothing else."""
    record = ModelRecord(
        id=1,
        added_at=datetime.now(UTC),
        added_by="test",
        ref="timm:a",
        source="timm",
        architecture="a",
        modality="text",
        preprocessing={"size": 1},
    )

    def key(*, record=record, n=4, fingerprint="f", pretrained=True, seed=0, revision="r") -> str:
        texts = [f"text {i}" for i in range(n)]
        sample = Dataset(tmp_path, "text-lines", "text", "unlabelled", texts, [f"line:{i}" for i in range(n)])
        request = EmbedRequest(
            None, sample, fingerprint, cache=FeatureCache(tmp_path), settings=EmbedSettings(seed=seed)
        )
        job = Job(record, pretrained)
        parts = cache_parts(request, job)
        assert entry_key(request, job, revision) == cache_key(**parts, revision=revision)
        return cache_key(**parts, revision=revision)

    base = key()
    changed = [
        key(record=record.model_copy(update={"ref": "timm:b"})),
        key(record=record.model_copy(update={"preprocessing": {"size": 2}})),
        key(revision="s"),
        key(fingerprint="g"),
        key(n=5),
        key(pretrained=False),
        key(pretrained=False, seed=1),
    ]
    assert len({base, *changed}) == len(changed) + 1
    assert key(seed=1) == base  # the seed is a random init's; pretrained features do not depend on it
    assert key(record=record.model_copy(update={"params": 7, "tags": ["x"]})) == base  # nor on metadata


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


# --- a full disk, killed writers, permissions -------------------------------------------------------

FILL_AND_RUN = r"""
cache="$1"; listing="$2"; shift 2
mount -t tmpfs -o size=1m tmpfs "$cache" || exit 97
# leave three pages: enough to create the entry's two files, far from enough to fill them
head -c $(( 1024 * 1024 - 3 * $(getconf PAGESIZE) )) /dev/zero > "$cache/filler"
"$@"
rc=$?
find "$cache" -mindepth 1 -not -name filler | sort > "$listing"
exit $rc
"""


def private_tmpfs_command() -> list[str]:
    """``unshare`` into a mount namespace of our own (as root, or as a user with user namespaces),
    where a tiny tmpfs can be mounted without touching the machine; skips the test where it cannot."""
    exe = shutil.which("unshare")
    if sys.platform != "linux" or exe is None:
        pytest.skip("needs Linux and util-linux's unshare to mount a small tmpfs")
    command = [exe, "--user", "--map-root-user", "--mount", "sh", "-c"]
    with tempfile.TemporaryDirectory() as probe:
        done = subprocess.run(
            [*command, 'mount -t tmpfs -o size=64k tmpfs "$1"', "sh", probe],
            capture_output=True,
            text=True,
            timeout=60,
        )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {done.stderr.strip()[:200]}")
    return command


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (left-over DataLoader workers, say)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
    return found


@pytest.mark.slow
def test_a_full_cache_disk_stops_recommend_with_one_line_and_leaves_nothing_behind(
    registry, tiny_image_models: list[str], tmp_path: Path
) -> None:
    """A real full disk: the cache on a 1 MiB tmpfs with three pages free (memory-mapped writes died
    of SIGBUS there, silently, leaving the run 'running' and a half-written entry)."""
    from helpers import write_image_folder
    from tlreg.registry import RunStore

    command = private_tmpfs_command()
    data = write_image_folder(tmp_path / "data", classes=3, per_class=20)  # 60 x 96 floats: 6 pages
    cache, listing = tmp_path / "cache", tmp_path / "listing"
    cache.mkdir()
    marker = f"TLREG_TEST_MARK={uuid.uuid4().hex}"
    tlreg = [shutil.which("tlreg"), "recommend", str(data), "--models", tiny_image_models[0]]
    done = subprocess.run(
        [*command, FILL_AND_RUN, "sh", str(cache), str(listing), *tlreg, "--workers", "1", "--no-baselines"],
        capture_output=True,
        text=True,
        env={**os.environ, "TLREG_CACHE": str(cache), "NO_COLOR": "1", marker.split("=")[0]: marker},
        timeout=600,
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: No space left on device") and "tlreg cache prune" in error, error
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert ".tmp-" not in listing.read_text()  # the partial entry was removed
    [run] = RunStore(registry.engine).list()
    assert run.status == "failed" and "No space left on device" in run.failure
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(marker) == []  # no DataLoader worker outlives the command


WRITE_PAST_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
import numpy as np
from tlreg.advisor.cache import FeatureCache

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    writer = FeatureCache(sys.argv[1]).writer("k", n=64, dim=64, classes=None, meta={})
    writer.write(np.ones((64, 64), np.float32), None)
    writer.commit()
except Exception as exc:
    print(type(exc).__name__)
    print(exc)
"""


def test_a_write_the_file_system_refuses_removes_the_entry_and_names_the_cache(tmp_path: Path) -> None:
    """Runs everywhere (POSIX): the kernel refuses the writes past RLIMIT_FSIZE, as a full disk would."""
    pytest.importorskip("resource")
    done = subprocess.run(
        [sys.executable, "-c", WRITE_PAST_A_FILE_SIZE_LIMIT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    kind, message = done.stdout.splitlines()[:2]
    assert kind == "StorageError" and str(tmp_path) in message and "File too large" in message
    assert list((tmp_path / "features").iterdir()) == []


HOLD_A_WRITER = """
import sys, time
import numpy as np
from tlreg.advisor.cache import FeatureCache

writer = FeatureCache(sys.argv[1]).writer(sys.argv[2], n=4, dim=2, classes=None, meta={})
writer.write(np.ones((2, 2), np.float32), None)
print(writer.tmp, flush=True)
time.sleep(600)
"""


def test_a_killed_writers_entry_is_listed_and_removed_by_the_next_writer_a_live_one_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tlreg.cli.main import cli

    monkeypatch.setenv("TLREG_CACHE", str(tmp_path))
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", HOLD_A_WRITER, str(tmp_path), name], stdout=subprocess.PIPE, text=True
        )
        for name in ("live", "killed")
    }
    try:
        tmp = {name: Path(p.stdout.readline().strip()) for name, p in procs.items()}
        assert all(t.is_dir() and t.name.startswith(".tmp-") for t in tmp.values()), tmp
        procs["killed"].kill()
        procs["killed"].wait()

        assert json.loads(CliRunner().invoke(cli, ["cache", "list", "--json"]).stdout) == []
        shown = CliRunner().invoke(cli, ["cache", "list", "--all", "--json"])
        assert shown.exit_code == 0, shown.output
        states = {Path(e["path"]): e["state"] for e in json.loads(shown.stdout)}
        assert states == {tmp["live"]: "being written", tmp["killed"]: "left by an interrupted run"}
        table = CliRunner().invoke(cli, ["cache", "list", "--all"])
        assert tmp["killed"].name[:16] in table.stdout and "interrupted" in table.stdout

        FeatureCache(tmp_path).writer("next", n=1, dim=1, classes=None, meta={}).abort()
        assert not tmp["killed"].exists() and tmp["live"].is_dir()
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
            p.stdout.close()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_entries_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        put(FeatureCache(tmp_path), "k5")
    finally:
        os.umask(old)
    entry = FeatureCache(tmp_path).path("k5")
    for folder in (entry, entry.parent, entry.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask, folder
    for file in entry.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~umask, file


READ_AS_ANOTHER_USER = """
import sys
from tlreg.advisor.cache import FeatureCache

try:
    FeatureCache(sys.argv[1]).load(sys.argv[2])
    print("read")
except Exception as exc:
    print(type(exc).__name__)
    print(exc)
"""


def load_as_another_user(cache: FeatureCache, key: str) -> tuple[str, str]:
    """Load an entry that another user wrote with mode 0700: (the error's class name, its message).

    As root (who reads everything), the entry is given to 'nobody' and read by a subprocess without
    root's override of file permissions; as any other user, the entry is made unreadable."""
    entry = cache.path(key)
    if os.geteuid() != 0:
        entry.chmod(0o000)
        try:
            cache.load(key)
            return "read", ""
        except Exception as exc:
            return type(exc).__name__, str(exc)
        finally:
            entry.chmod(0o755)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("as root, needs util-linux's setpriv to read without root's file-permission override")
    for path in (entry, *entry.iterdir()):
        os.chown(path, 65534, 65534)
    entry.chmod(0o700)
    unprivileged = [setpriv, "--bounding-set=-dac_override,-dac_read_search", sys.executable]
    try:
        done = subprocess.run(
            [*unprivileged, "-c", READ_AS_ANOTHER_USER, str(cache.root), key],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        entry.chmod(0o755)
    assert done.returncode == 0, done.stderr[-2000:]
    kind, message = [*done.stdout.splitlines(), ""][:2]
    return kind, message


def test_an_entry_another_user_cannot_read_is_reported_as_such_not_as_corrupt(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    put(cache, "k6")
    kind, message = load_as_another_user(cache, "k6")
    assert kind == "CacheAccessError", (kind, message)
    assert str(cache.path("k6")) in message and "Permission denied" in message
    assert "corrupt" not in message and "TLREG_CACHE" in message
    assert cache.load("k6") is not None  # kept: it is not corrupt


def test_cache_list_gives_sizes_in_byte_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``tlreg cache list`` printed a 3.2 GB entry as "3.2BB": a count formatter used for bytes."""
    from tlreg.advisor.result import human_bytes
    from tlreg.cli.main import cli

    monkeypatch.setenv("TLREG_CACHE", str(tmp_path))
    cache = FeatureCache(tmp_path)
    put(cache, "big")
    with open(cache.path("big") / "sparse.bin", "wb") as f:  # 3.2 GB on paper, no disk space
        f.truncate(3_200_000_000)
    table = CliRunner().invoke(cli, ["cache", "list"])
    assert table.exit_code == 0, table.output
    assert "3.2 GB" in table.stdout and "BB" not in table.stdout
    assert [human_bytes(n) for n in (None, 950, 12_300, 4_700_000, 2_000_000_000_000)] == [
        "-",
        "950 B",
        "12.3 kB",
        "4.7 MB",
        "2.0 TB",
    ]
