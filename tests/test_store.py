"""The store's atomic writes: whole or absent, and named durably before anything refers to them.

Inside store.synced_dirs() a batch's files share their folders' fsyncs: each folder once, when the block ends
(which the pipeline and intake end before the commit that records the files), and never for a block that failed.
Intake names every spool sidecar durably before it claims a file. The fsyncs are real; the tests only record which
folders were synced, and when.
"""

from __future__ import annotations

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
