"""The start-up of the commands an operator types most stays light: what benchmarks/cli_startup.py measures
(against its target of 0.5 s) is mostly imports and set-up, which these guards keep from coming back.

Each command runs in a new interpreter, as an operator runs it, through a tiny runner that records the modules
loaded: a read (views, the queue's overview) is made in SQLAlchemy Core on gateway.data.tables, and never needs the
ORM, sqlmodel or the ORM classes of gateway.data.models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.data.tables import flow, invoice, invoice_status
from gateway.lifecycle.statuses import Status
from tests.harness import REPO

RUNNER = """
import json, sys
from gateway.cli import main
try:
    main(sys.argv[2:])
except SystemExit as exit:
    assert not exit.code, exit.code
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
"""
# What a read never needs: the ORM and its classes (and pydantic, which sqlmodel stands on), the pipeline and its
# XML stack, the web, the SFTP clients, the migrations.
HEAVY = ("sqlmodel", "pydantic", "sqlalchemy.orm", "gateway.data.models", "alembic", "lxml", "stdnum", "paramiko",
         "fastapi", "uvicorn", "jinja2", "gateway.validate", "gateway.engine.pipeline", "gateway.engine.runner",
         "gateway.route", "gateway.web", "gateway.ingest", "gateway.notify")
NUMBER = "STARTUP-0001"


def run(tmp_path: Path, config: Path, *command: str) -> tuple[list[str], str]:
    """The modules command loaded, and what it printed."""
    record = tmp_path / "loaded.json"
    done = subprocess.run([sys.executable, "-c", RUNNER, str(record), "--config", str(config), *command], check=True,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    return json.loads(record.read_text()), done.stdout


def heavy(modules: list[str]) -> list[str]:
    return [module for module in modules if module in HEAVY or module.startswith(tuple(f"{h}." for h in HEAVY))]


def test_flows_list_imports_only_what_a_read_needs(tmp_path, config_file):
    modules, _ = run(tmp_path, config_file, "flows", "list")
    assert "gateway.data.views" in modules  # the runner did run the command
    assert heavy(modules) == []


def test_queue_imports_only_what_a_read_needs(tmp_path, config_file):
    modules, shown = run(tmp_path, config_file, "queue")
    assert "gateway.engine.queue" in modules
    assert shown.splitlines()[0].split()[:2] == ["queue", "ready"] and "deliveries" in shown
    assert heavy(modules) == []


def test_invoices_show_imports_only_what_a_read_needs(tmp_path, config_file, app):
    with app.engine.begin() as connection:  # an invoice, its flow and its status, as the pipeline records them
        connection.execute(flow.insert().values(id="F1", account="acme", original_name="a.xml", size=1, sha256="0"))
        connection.execute(invoice.insert().values(id="F1-1", flow_id="F1", number=NUMBER, verdict="ACCEPTED",
                                                   status=Status.DEPOSEE.value, account="acme"))
        connection.execute(invoice_status.insert().values(invoice_id="F1-1", status=Status.DEPOSEE.value,
                                                          actor="gateway"))
    modules, shown = run(tmp_path, config_file, "invoices", "show", NUMBER)
    assert "gateway.data.views" in modules
    assert "F1-1" in shown and "DEPOSEE" in shown
    assert heavy(modules) == []
