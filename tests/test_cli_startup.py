"""The start-up of the commands an operator types most stays light: what benchmarks/cli_startup.py measures
(against its target of 0.5 s) is mostly imports and set-up, which these guards keep from coming back.

Each command runs in a new interpreter, as an operator runs it, through a tiny runner that records the modules
loaded and whether the ORM set up its mappers (which a read through views, in SQLAlchemy Core, never needs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness import REPO

RUNNER = """
import json, sys
from gateway.cli import main
from gateway.models import Flow
try:
    main(sys.argv[2:])
except SystemExit as exit:
    assert not exit.code, exit.code
with open(sys.argv[1], "w") as out:
    json.dump({"modules": sorted(sys.modules), "mappers_set_up": Flow.__mapper__.configured}, out)
"""
# What a read never needs: the pipeline and its XML stack, the web, the SFTP clients, the migrations.
HEAVY = ("alembic", "lxml", "stdnum", "paramiko", "fastapi", "uvicorn", "jinja2", "gateway.validate",
         "gateway.pipeline", "gateway.runner", "gateway.route", "gateway.web", "gateway.ingest", "gateway.notify")


def loaded(tmp_path: Path, config: Path, *command: str) -> dict:
    record = tmp_path / "loaded.json"
    subprocess.run([sys.executable, "-c", RUNNER, str(record), "--config", str(config), *command], check=True,
                   cwd=REPO, capture_output=True, timeout=120)
    return json.loads(record.read_text())


def test_flows_list_imports_only_what_a_read_needs(tmp_path, config_file):
    found = loaded(tmp_path, config_file, "flows", "list")
    assert "gateway.views" in found["modules"]  # the runner did run the command
    assert [module for module in found["modules"]
            if module in HEAVY or module.startswith(tuple(f"{heavy}." for heavy in HEAVY))] == []
    assert not found["mappers_set_up"], "flows list read through the ORM: views read in SQLAlchemy Core"
