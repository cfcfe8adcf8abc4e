"""Who may read what the gateway keeps, on a fresh data directory made by the CLI and `gateway run` under the most
open umask (0), so that every mode comes from the gateway: the data directory, the store and the spool 0700, the
SQLite database and its -wal and -shm 0600, the zones only as open as sshd mode needs (a group, no one else). A
data directory found open is left so, and `gateway run` says it in one line."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.harness import (
    SAMPLES,
    GatewayProcess,
    cli,
    drop,
    inbox,
    load_samples,
    outbox,
    wait_for,
    wait_report,
    write_config,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_warnings(log: Path) -> list[dict]:
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("event") == "data_dir_open"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A data directory made under umask 0; the modes of the database's files seen while `gateway run` runs."""
    root = tmp_path_factory.mktemp("modes")
    config = write_config(root)
    previous = os.umask(0)
    try:
        load_samples(config)  # the CLI makes the data directory and the database
        gateway = GatewayProcess(config)
        gateway.start()
    finally:
        os.umask(previous)
    try:
        drop(root, "acme", "ok.xml", (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes())
        wait_report(root, "acme", "ok.xml", timeout=120)
        database = root / "var" / "gateway.db"
        journals = wait_for(lambda: [p for p in (Path(f"{database}-wal"), Path(f"{database}-shm")) if p.exists()]
                            or None, 30, "SQLite's -wal and -shm")
        modes = {path.name: _mode(path) for path in [database, *journals]}
    finally:
        assert gateway.stop() == 0
    return root, config, modes


def test_the_database_is_the_gateways_alone(fresh):
    _root, _config, modes = fresh
    assert modes == dict.fromkeys(["gateway.db", "gateway.db-wal", "gateway.db-shm"], 0o600)


def test_the_data_directory_store_and_spool_are_private(fresh):
    root, _config, _modes = fresh
    var = root / "var"
    assert {name: _mode(var / name) for name in ("", "store", "spool")} == dict.fromkeys(("", "store", "spool"), 0o700)
    stored = [path for path in (var / "store").rglob("*")]
    assert stored and all(_mode(path) in (0o700, 0o444) for path in stored)  # folders, and read-only copies
    assert _open_warnings(root / "gateway.log") == []


def test_zones_are_open_to_a_group_only(fresh):
    """sshd mode: the account's user (in the zones' group) goes through its zone, writes in/, reads and deletes
    out/; others get nothing."""
    root, _config, _modes = fresh
    zone = inbox(root, "acme").parent
    assert (_mode(zone.parent), _mode(zone)) == (0o750, 0o750)
    assert (_mode(inbox(root, "acme")), _mode(outbox(root, "acme"))) == (0o770, 0o770)
    published = [path for path in outbox(root, "acme").iterdir()] + list(outbox(root, "mairie-exemple").iterdir())
    assert published and {_mode(path) for path in published} == {0o640}


def test_an_open_data_directory_is_said_and_left_open(tmp_path):
    """An existing install: its data directory is not changed behind the operator's back, one line says so."""
    config = write_config(tmp_path)
    cli(config, "accounts", "list")  # makes the data directory
    var = tmp_path / "var"
    var.chmod(0o755)
    gateway = GatewayProcess(config)
    gateway.start()
    try:
        wait_for(gateway.started, 120, "the gateway's start")
    finally:
        assert gateway.stop() == 0
    (warning,) = _open_warnings(tmp_path / "gateway.log")
    assert warning["level"] == "warning" and warning["path"] == str(var) and warning["mode"] == "0755"
    assert "chmod 700" in warning["fix"]
    assert _mode(var) == 0o755
