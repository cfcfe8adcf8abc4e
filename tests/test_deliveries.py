"""Deliveries that fail: retried with backoff, dead-lettered after the limit, requeued by an operator."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from gateway import config as config_module
from gateway.app import App
from gateway.cli import main
from gateway.engine.runner import Gateway
from tests.harness import SAMPLES, cli, drop, files, load_samples, outbox, wait_for, wait_report, write_config

RECIPIENT = "mairie-exemple"


@pytest.fixture
def setup(tmp_path, database_url):
    config = write_config(tmp_path, {"delivery": {"max_attempts": 3, "retry_base": 0.05, "retry_max": 0.1}},
                          database_url)
    load_samples(config)
    gateway = Gateway(App.from_settings(config_module.load(config)))
    gateway.start()
    yield tmp_path, config
    gateway.stop()


def _deliveries(config, *args):
    return json.loads(cli(config, "deliveries", "list", "--json", *args))


def test_failing_delivery_is_retried_then_dead_then_requeued(setup):
    root, config = setup
    out = outbox(root, RECIPIENT)
    shutil.rmtree(out)
    out.write_text("not a folder: every delivery into this zone fails")
    content = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
    drop(root, "acme", "inv.xml", content)
    report = wait_report(root, "acme", "inv.xml")
    assert report.findtext("{urn:gateway:report:1}flow/{urn:gateway:report:1}state") == "INTEGRE"

    dead = wait_for(lambda: _deliveries(config, "--state", "dead") or None, 20, "a dead delivery")
    assert dead[0]["attempts"] == 3 and "cannot write into zone" in dead[0]["last_error"]
    flow = json.loads(cli(config, "flows", "show", dead[0]["flow_id"], "--json"))
    kinds = [e["kind"] for e in flow["events"]]
    assert kinds.count("delivery_failed") == 2 and kinds.count("delivery_dead") == 1
    assert [d["state"] for d in flow["deliveries"] if d["kind"] == "invoice"] == ["dead"]
    assert json.loads(cli(config, "queue", "--json"))["deliveries"]["dead"] == 1

    out.unlink()
    out.mkdir()
    cli(config, "deliveries", "retry", str(dead[0]["id"]))
    wait_for(lambda: files(out, ".xml") or None, 20, "the requeued delivery")
    assert [p.read_bytes() for p in files(out, ".xml")] == [content]
    wait_for(lambda: dead[0]["id"] in [d["id"] for d in _deliveries(config, "--state", "delivered")], 20,
             "the requeued delivery recorded")  # its file is written before its outcome is


def test_retry_of_unknown_or_delivered_delivery_is_refused(setup):
    root, config = setup
    drop(root, "acme", "inv.xml", (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes())
    wait_report(root, "acme", "inv.xml")
    delivered = next(d for d in _deliveries(config, "--state", "delivered") if d["kind"] == "invoice")
    for delivery_id, message in ((delivered["id"], "already delivered"), (9999, "no delivery")):
        result = CliRunner().invoke(main, ["--config", str(config), "deliveries", "retry", str(delivery_id)])
        assert result.exit_code == 1 and message in result.output
