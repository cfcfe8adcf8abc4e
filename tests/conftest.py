from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.app import App
from gateway.log import configure_logging
from gateway.runner import Gateway
from tests.harness import load_samples, write_config


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = write_config(tmp_path)
    load_samples(path)
    return path


@pytest.fixture
def app(config_file: Path) -> App:
    configure_logging("debug", None)  # JSON lines on the test's captured stderr, shown when it fails
    return App.from_settings(config_module.load(config_file))


@pytest.fixture
def running(app: App):
    """A gateway running in this process (watcher, worker, heartbeat threads) on the sample data."""
    gateway = Gateway(app)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
