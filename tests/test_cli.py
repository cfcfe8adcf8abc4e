"""The `gateway` command line, run in-process on a temporary configuration."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from gateway import queue
from gateway.cli import main
from gateway.ingest.intake import Arrival, intake
from gateway.models import Flow
from gateway.runner import Gateway
from tests.harness import CORPUS, REPORT_NS, SAMPLES, cli, drop, renumber, wait_finished, wait_report


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_validate_exit_codes_and_json():
    ok, bad = SAMPLES / "flows" / "ubl-invoice-ok.xml", SAMPLES / "flows" / "reject-xsd.xml"
    assert _invoke("validate", str(ok)).exit_code == 0
    result = _invoke("validate", "--json", str(ok), str(bad))
    assert result.exit_code == 1
    verdicts = json.loads(result.stdout)
    assert [v["verdict"] for v in verdicts] == ["valid", "invalid"]
    rules = verdicts[0].pop("rules")
    assert verdicts[0] == {"file": str(ok), "syntax": "ubl-invoice", "verdict": "valid", "errors": []}
    assert rules["profile"] == "en16931" and [p["name"] for p in rules["packs"]] == ["cen-en16931-ubl"]
    assert verdicts[1]["rules"] is None  # an XSD-invalid document does not reach the rules
    error = verdicts[1]["errors"][0]
    assert set(error) == {"stage", "rule", "severity", "message", "line", "path"}
    assert error["stage"] == "xsd" and error["line"] > 0
    assert _invoke("validate", "no-such-file.xml").exit_code == 2
    assert _invoke("validate").exit_code == 2


def test_validate_agrees_with_the_corpus_xsd_verdicts():
    manifest = CORPUS / "manifest.csv"
    if not manifest.exists():
        pytest.skip(f"corpus not found at {CORPUS}")
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    result = _invoke("validate", "--json", *(str(CORPUS / r["file"]) for r in rows))
    verdicts = {v["file"]: _xsd_verdict(v["errors"]) for v in json.loads(result.stdout)}
    disagreements = [r["file"] for r in rows if verdicts[str(CORPUS / r["file"])] != r["expect_xsd"]]
    assert disagreements == []
    assert result.exit_code == 1  # the corpus holds invalid files


def _xsd_verdict(errors: list[dict]) -> str:
    """The verdict of the stages up to the XSD, leaving out the business rules."""
    stopped = any(e["severity"] == "fatal" and e["stage"] in ("admissibility", "xsd") for e in errors)
    return "invalid" if stopped else "valid"


def test_directory_show_restores_leading_zeros(config_file):
    shown = json.loads(cli(config_file, "directory", "show", "01370999300011", "--json"))
    assert shown["siret"] == "01370999300011"
    assert [s["code"] for s in shown["services"]] == ["DECHETS"]
    assert shown["accounts"] == ["cc-pays-exemple"]
    assert "service_required" in cli(config_file, "directory", "show", "26370999000018")
    result = CliRunner().invoke(main, ["--config", str(config_file), "directory", "show", "99999999999999"])
    assert result.exit_code == 1 and "no structure" in result.output


def test_accounts_add_and_list(config_file):
    cli(config_file, "accounts", "add", "newco", "--role", "supplier", "--siret", "81234567600017")
    assert (config_file.parent / "var" / "zones" / "newco" / "in").is_dir()
    listing = cli(config_file, "accounts", "list")
    assert any(line.split()[:3] == ["newco", "supplier", "81234567600017"] for line in listing.splitlines())
    bad = CliRunner().invoke(main, ["--config", str(config_file), "accounts", "add", "../evil", "--role", "supplier"])
    assert bad.exit_code == 2
    bad = CliRunner().invoke(main, ["--config", str(config_file), "accounts", "add", "x", "--role", "supplier",
                                    "--siret", "81234567600018"])
    assert bad.exit_code == 2 and "not a valid SIRET" in bad.output


def test_import_errors_are_reported_without_traceback(config_file, tmp_path):
    broken = tmp_path / "accounts.csv"
    broken.write_text("name;role;sirets\n../evil;supplier;81234567600017\n")
    result = CliRunner().invoke(main, ["--config", str(config_file), "accounts", "import", str(broken)])
    assert result.exit_code == 1 and "not an account name" in result.output and "Traceback" not in result.output


def test_flows_list_and_show(config_file, running):
    root = config_file.parent
    drop(root, "acme", "shown.xml", (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes())
    report = wait_report(root, "acme", "shown.xml")
    wait_finished(config_file, report.findtext("r:flow/r:flowId", namespaces=REPORT_NS))
    flows = json.loads(cli(config_file, "flows", "list", "--json"))
    assert [f["original_name"] for f in flows] == ["shown.xml"] and flows[0]["state"] == "INTEGRE"
    assert "shown.xml" in cli(config_file, "flows", "list", "--state", "INTEGRE")
    assert "shown.xml" not in cli(config_file, "flows", "list", "--state", "REJETE")
    shown = json.loads(cli(config_file, "flows", "show", flows[0]["id"], "--json"))
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds[0] == "received" and kinds.index("report_written") < kinds.index("flow_finished")
    assert {"acknowledged", "syntax_detected", "xsd_checked", "routed", "invoice_accepted", "delivered",
            "status_changed"} <= set(kinds)
    assert shown["invoices"][0]["recipient"] == "mairie-exemple"
    assert "timeline" in cli(config_file, "flows", "show", flows[0]["id"])


def test_queue_shows_what_waits_what_is_held_and_who_works(config_file, app, rules_stage):
    """Flows taken in with no worker running wait (ready, with the age of the oldest); one claimed is held;
    one given back with a delay is due later; a running gateway empties the queue and is listed alive."""
    root = config_file.parent
    invoice = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
    for n in range(3):
        intake(app, drop(root, "acme", f"q{n}.xml", renumber(invoice, f"Q-{n}")), Arrival("acme", f"q{n}.xml", "zone"))
    shown = json.loads(cli(config_file, "queue", "--json"))
    assert (shown["flows"]["ready"], shown["flows"]["leased"], shown["flows"]["later"]) == (3, 0, 0)
    assert shown["flows"]["waited"] >= 0 and shown["processes"] == []
    held, _ = queue.claim(app.engine, "elsewhere:1:0", 60.0, Flow)
    later, _ = queue.claim(app.engine, "elsewhere:1:0", 60.0, Flow)
    queue.release(app.engine, later, "elsewhere:1:0", delay=0.5)
    shown = json.loads(cli(config_file, "queue", "--json"))
    assert (shown["flows"]["ready"], shown["flows"]["leased"], shown["flows"]["later"]) == (1, 1, 1)
    queue.release(app.engine, held, "elsewhere:1:0")
    assert "flows" in cli(config_file, "queue") and "deliveries" in cli(config_file, "queue")

    app.rules = rules_stage
    gateway = Gateway(app)
    gateway.start()
    try:
        for n in range(3):
            report = wait_report(root, "acme", f"q{n}.xml")
            wait_finished(config_file, report.findtext("r:flow/r:flowId", namespaces=REPORT_NS))
        shown = json.loads(cli(config_file, "queue", "--json"))
        assert shown["flows"] == {"ready": 0, "leased": 0, "later": 0, "dead": 0, "waited": None}
        [process] = shown["processes"]
        assert process["id"] == gateway.owner and process["alive"] and process["heartbeat_age"] >= 0
        assert f"{gateway.owner}" in cli(config_file, "queue") and "alive" in cli(config_file, "queue")
    finally:
        gateway.stop()
