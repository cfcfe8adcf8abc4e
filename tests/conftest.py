from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.app import App
from gateway.config import ValidateSettings
from gateway.ops.log import configure_logging
from gateway.validate.rules import RulesStage
from tests.harness import load_samples, running_with, write_config
from tests.postgres import PostgresServer, binaries

# One headless Chromium for the whole session, whichever modules use it (a fixture imported into two modules
# would start two Playwright drivers on one thread, which Playwright refuses); `sftp_site` for every module
# without importing it (an imported fixture reads, to linters, as an unused name redefined by the argument).
pytest_plugins = ["tests.browser_harness", "tests.sftp_harness"]


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the whole session; skipped (failed in CI) where its binaries are missing."""
    bindir = binaries()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries not found: CI must run the PostgreSQL tests")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: PostgreSQL runs skipped")
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str | None:
    """Each test using the database runs on SQLite (None: the default URL) and on PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    server = request.getfixturevalue("postgres")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def config_file(tmp_path: Path, database_url: str | None) -> Path:
    path = write_config(tmp_path, database_url=database_url)
    load_samples(path)
    return path


@pytest.fixture
def app(config_file: Path):
    configure_logging("debug", None)  # JSON lines on the test's captured stderr, shown when it fails
    app = App.from_settings(config_module.load(config_file))
    yield app
    app.engine.dispose()


@pytest.fixture(scope="session")
def rules_stage():
    """One pool of validator processes for every in-process gateway of the session (starting one costs
    seconds): the default packs and profile, as the tests' configurations leave [validate] alone."""
    with RulesStage.from_settings(ValidateSettings(processes=1)) as stage:
        yield stage


@pytest.fixture
def running(app: App, rules_stage: RulesStage):
    """A gateway running in this process on the sample data."""
    with running_with(app, rules_stage) as gateway:
        yield gateway
