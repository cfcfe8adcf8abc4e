"""`make samples` (run by `make run`): the samples and their passwords are loaded the first time only, so a
password an operator changed stays changed; the database is upgraded every time."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.data.db import make_engine
from gateway.ingest.sftp.auth import Credentials
from tests.harness import REPO, cli, write_config

MAKE = shutil.which("make")


def _make_samples(config: Path, marker: Path) -> str:
    """`make samples` on config, the virtualenv taken as installed (no pip, no rules fetch): its output."""
    if MAKE is None:
        pytest.skip("make is not installed")
    result = subprocess.run([MAKE, "-C", str(REPO), "samples", f"CONFIG={config}", f"SAMPLES_LOADED={marker}",
                             "-o", "install", "-o", ".venv/bin/gateway"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _password_works(config: Path, account: str, password: str) -> bool:
    engine = make_engine(config_module.load(config).gateway.database_url)
    try:
        return Credentials(engine).check_password(account, password)
    finally:
        engine.dispose()


@pytest.mark.slow  # `make samples` run twice, each a gateway CLI per step
def test_samples_are_loaded_once_and_a_changed_password_stays(tmp_path):
    config = write_config(tmp_path)
    marker = tmp_path / "var" / "samples-loaded"
    first = _make_samples(config, marker)
    assert "accounts import samples/accounts.csv" in first and marker.exists()
    assert _password_works(config, "acme", "acme-demo")

    cli(config, "accounts", "add", "acme", "--update", "--role", "supplier", "--password", "changed-by-ops")
    again = _make_samples(config, marker)
    assert "db upgrade" in again and "accounts import" not in again and "accounts add" not in again
    assert _password_works(config, "acme", "changed-by-ops") and not _password_works(config, "acme", "acme-demo")

    marker.unlink()  # asked for again: loaded again, the sample password with them
    assert "accounts add acme" in _make_samples(config, marker)
    assert _password_works(config, "acme", "acme-demo")
