"""config.toml: read into typed settings, each checked, and a mistake named plainly (section, setting, what it must
be, what was given), by the CLI without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway import config
from tests.harness import REPO


def settings_of(tmp_path: Path, text: str) -> config.Settings:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config.load(path)


def test_the_shipped_file_loads_and_paths_are_relative_to_it(tmp_path):
    shipped = config.load(REPO / "config.toml")
    assert shipped.worker.batch >= 1 and shipped.validation.time_budget > 0
    loaded = settings_of(tmp_path, '[gateway]\ndata_dir = "data"\ndatabase_url = "sqlite:///data/g.db"\n'
                                   '[ingest]\nscan_interval = 3\n[validate]\nprocesses = 2\n')
    assert loaded.gateway.data_dir == tmp_path / "data"
    assert loaded.gateway.database_url == f"sqlite:///{tmp_path}/data/g.db"
    assert loaded.ingest.scan_interval == 3.0 and isinstance(loaded.ingest.scan_interval, float)
    assert loaded.validation.processes == 2 and loaded.worker == config.WorkerSettings()


@pytest.mark.parametrize("text, said", [
    ("[worker]\nbatch = 0\n", "[worker] batch must be at least 1, not 0"),
    ("[worker]\nbatchs = 4\n", "[worker] has no setting batchs (known: batch,"),
    ("[remote]\npush_attempts = 3\npush_wait = 0.5\n", "[remote] has no setting push_attempts, push_wait (known: "
     "pull_interval, timeout); push_attempts, push_wait withdrawn: a push is tried once per delivery attempt"),
    ("[validation]\nprocesses = 1\n", "no section [validation] in the configuration (known: delivery,"),
    ('[sftp]\nport = "2222"\n', "[sftp] port must be an integer, not '2222'"),
    ("[sftp]\nport = 70000\n", "[sftp] port must be at most 65535, not 70000"),
    ("[sftp]\nenabled = 1\n", "[sftp] enabled must be true or false, not 1"),
    ('[sftp]\nmax_startups = "5:50:2"\n', "[sftp] max_startups is start:rate:full with 1 <= start <= full"),
    ('[web]\nlisten = "8080"\n', "[web] listen '8080' does not have the expected form"),
    ("[ingest]\nscan_interval = 0\n", "[ingest] scan_interval must be greater than 0, not 0.0"),
    ("worker = 3\n", "worker must be a section [worker], not a value"),
    ("[worker\n", "not valid TOML"),
])
def test_a_mistake_is_named(tmp_path, text, said):
    with pytest.raises(config.ConfigError) as raised:
        settings_of(tmp_path, text)
    assert said in str(raised.value) and str(tmp_path / "config.toml") in str(raised.value)


def test_settings_made_in_code_are_checked_too():
    assert config.ValidateSettings(processes=1).processes == 1
    with pytest.raises(config.ConfigError, match=r"\[validate\] processes must be at least 0, not -1"):
        config.ValidateSettings(processes=-1)


def test_the_cli_names_the_mistake_without_a_traceback(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[worker]\nthreads = 0\n")
    done = subprocess.run([sys.executable, "-m", "gateway", "--config", str(path), "flows", "list"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "[worker] threads must be at least 1, not 0" in done.stderr and "Traceback" not in done.stderr
