"""The store's atomic writes: whole or absent, and named durably before anything refers to them.

Inside store.synced_dirs() a batch's files share their folders' fsyncs: each folder once, when the block ends
(which the pipeline ends before the commit that records the files), and never for a block that failed. The
fsyncs are real; the test only records which folders were synced, and when.
"""

from __future__ import annotations

import pytest

from gateway import store


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


def test_a_block_syncs_each_folder_once_at_its_end(tmp_path, synced):
    with store.synced_dirs():
        for name in ("one", "two", "three"):
            store.write_atomic(tmp_path / "out" / f"{name}.xml", name.encode())
        store.write_atomic(tmp_path / "store" / "x", b"x")
        with store.synced_dirs():  # nested: the outer block syncs
            store.write_atomic(tmp_path / "out" / "four.xml", b"4")
        assert synced == []  # the files are there and whole, their names not yet synced
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["four.xml", "one.xml", "three.xml", "two.xml"]
    assert synced == ["out", "store"]
    store.write_atomic(tmp_path / "out" / "five.xml", b"5")
    assert synced == ["out", "store", "out"]  # after the block, each write syncs again at once


def test_a_block_that_fails_syncs_nothing(tmp_path, synced):
    with pytest.raises(RuntimeError), store.synced_dirs():
        store.write_atomic(tmp_path / "out" / "one.xml", b"1")
        raise RuntimeError("the batch failed: nothing refers to its files")
    assert synced == []
    store.write_atomic(tmp_path / "out" / "two.xml", b"2")
    assert synced == ["out"]
