"""Intake takes regular files only, even when one is swapped for a link or a fifo after the channel's check."""

from __future__ import annotations

import os

import pytest
from sqlmodel import Session, select

from gateway.data.models import Flow
from gateway.ingest.intake import Arrival, intake


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_link_or_fifo_is_removed_unread_and_makes_no_flow(app, tmp_path, kind: str) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes(b"<secret/>")
    app.zones.ensure("acme")
    path = app.zones.inbox("acme") / "swapped.xml"
    if kind == "symlink":
        path.symlink_to(secret)
    else:
        os.mkfifo(path)  # opening it would block intake forever

    assert intake(app, path, Arrival("acme", path.name, "zone")) is None

    assert not os.path.lexists(path) and secret.read_bytes() == b"<secret/>"
    assert list(app.settings.spool_dir.iterdir()) == []
    with Session(app.engine) as session:
        assert session.exec(select(Flow)).all() == []
    assert list(app.zones.outbox("acme").iterdir()) == []
