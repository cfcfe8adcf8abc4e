"""The store's atomic writes: whole or absent, and named durably before anything refers to them.

Inside store.synced_dirs() a batch's files are fsynced together and named when the block ends (which the pipeline and
intake end before the commit that records the files), then share their folders' fsyncs, each folder once; a block
that failed names and syncs nothing, and leaves nothing behind.
Intake names every spool sidecar durably before it claims a file. The fsyncs are real; the tests only record which
folders were synced, and when.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from gateway.data import store
from gateway.ingest import intake as intake_module
from gateway.ingest.intake import Arrival, Handed, intake_all


@pytest.fixture
def synced(monkeypatch) -> list[str]:
    """The folders fsynced, in order, as their names (the real fsync still runs)."""
    done: list[str] = []
    real = store.fsync_dir

    def recording(directory):
        real(directory)
        done.append(directory.name)
    monkeypatch.setattr(store, "fsync_dir", recording)
    return done


def test_a_lone_write_syncs_its_folder_at_once(tmp_path, synced):
    store.write_atomic(tmp_path / "a" / "one.xml", b"1")
    assert synced == ["a"] and (tmp_path / "a" / "one.xml").read_bytes() == b"1"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_block_names_its_files_and_syncs_each_folder_once_at_its_end(tmp_path, synced):
    with store.synced_dirs():
        for name in ("one", "two", "three"):
            store.write_atomic(tmp_path / "out" / f"{name}.xml", name.encode())
        store.write_atomic(tmp_path / "store" / "x", b"x")
        with store.synced_dirs():  # nested: the outer block settles
            store.write_atomic(tmp_path / "out" / "four.xml", b"4")
        assert synced == []
        assert all(name.startswith(".") and name.endswith(".tmp") for name in _names(tmp_path / "out")), \
            "written under temporary names, not yet named"
    assert synced == ["out", "store"]
    assert _names(tmp_path / "out") == ["four.xml", "one.xml", "three.xml", "two.xml"]
    assert (tmp_path / "out" / "two.xml").read_bytes() == b"two"
    store.write_atomic(tmp_path / "out" / "five.xml", b"5")
    assert synced == ["out", "store", "out"]  # after the block, each write is named and synced at once
    assert "five.xml" in _names(tmp_path / "out")


def test_a_block_that_fails_names_and_syncs_nothing_and_leaves_nothing(tmp_path, synced):
    with pytest.raises(RuntimeError), store.synced_dirs():
        store.write_atomic(tmp_path / "out" / "one.xml", b"1")
        raise RuntimeError("the batch failed: nothing refers to its files")
    assert synced == [] and _names(tmp_path / "out") == []
    store.write_atomic(tmp_path / "out" / "two.xml", b"2")
    assert synced == ["out"] and _names(tmp_path / "out") == ["two.xml"]


def test_a_block_fsyncs_every_file_before_naming_it_several_at_once(tmp_path, monkeypatch):
    fsynced: dict[int, str] = {}  # inode: the thread that fsynced it
    named: list[bool] = []  # for each file named, whether it had been fsynced
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        real_fsync(fd)
        fsynced[os.fstat(fd).st_ino] = threading.current_thread().name

    def replace(source, target):
        named.append(os.stat(source).st_ino in fsynced)
        real_replace(source, target)
    monkeypatch.setattr(store.os, "fsync", fsync)
    monkeypatch.setattr(store.os, "replace", replace)
    with store.synced_dirs():
        for n in range(20):
            store.write_atomic(tmp_path / "out" / f"{n}.xml", str(n).encode())
        assert named == []
    assert named == [True] * 20
    assert len({name for name in fsynced.values() if name.startswith("fsync")}) > 1, "fsynced by several threads"
    assert _names(tmp_path / "out") == sorted(f"{n}.xml" for n in range(20))


def test_a_block_names_what_it_holds_once_it_holds_many(tmp_path, synced, monkeypatch):
    """Past MOST_FILES files waiting (each an open file), those are fsynced and named at once; their folders are
    still synced at the block's end."""
    monkeypatch.setattr(store._Owed, "MOST_FILES", 3)
    with store.synced_dirs():
        for n in range(4):
            store.write_atomic(tmp_path / "out" / f"{n}.xml", b"n")
        assert [name for name in _names(tmp_path / "out") if not name.startswith(".")] == ["0.xml", "1.xml", "2.xml"]
        assert synced == []
    assert _names(tmp_path / "out") == ["0.xml", "1.xml", "2.xml", "3.xml"] and synced == ["out"]


def test_content_already_stored_has_its_folder_synced_again(tmp_path, synced):
    """Its writer (another thread, a process that died) may not have synced its name yet: whoever refers to it
    syncs it, at once or at its block's end."""
    content = store.ContentStore(tmp_path / "store")
    source = tmp_path / "source.xml"
    source.write_bytes(b"<same/>")
    digest, _ = content.put_file(source)
    assert content.put(b"<same/>") == digest
    folder = content.path(digest).parent.name
    assert synced == [folder, folder]
    with store.synced_dirs():
        content.put_file(source)
        assert synced == [folder, folder]
    assert synced == [folder, folder, folder]


def test_intake_names_every_sidecar_before_it_claims_and_every_stored_copy_before_the_commit(app, monkeypatch):
    """A batch: the spool synced once, before the first claim (a claimed file is never in the spool without its
    sidecar); each stored copy's folder once, after the last copy and before the commit; then the flows."""
    done: list = []
    sync, claim, commit = store.fsync_dir, intake_module._claim, intake_module._commit_all
    monkeypatch.setattr(store, "fsync_dir", lambda directory: (sync(directory), done.append(directory)))
    monkeypatch.setattr(intake_module, "_claim", lambda path, data: (claim(path, data), done.append("claim")))
    monkeypatch.setattr(intake_module, "_commit_all",
                        lambda app_, entries: (done.append("commit"), commit(app_, entries))[1])
    app.zones.ensure("acme")
    handed = []
    for n in range(5):
        path = app.zones.inbox("acme") / f"batch-{n}.xml"
        path.write_bytes(f"<flow n='{n}'/>".encode())
        handed.append(Handed(path, Arrival("acme", path.name, "zone")))
    flows = intake_all(app, handed)

    assert all(flow is not None and flow.acknowledged for flow in flows)
    folders = sorted({app.store.path(flow.sha256).parent for flow in flows})
    expected = [app.settings.spool_dir, *["claim"] * 5, *folders, "commit"]
    assert done[:len(expected)] == expected
    assert done.count(app.settings.spool_dir) == 1 and list(app.settings.spool_dir.iterdir()) == []
