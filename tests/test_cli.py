"""The `gateway` command line, run in-process on a temporary configuration."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.data.models import Flow
from gateway.engine import queue
from gateway.engine.runner import Gateway
from gateway.ingest.intake import Arrival, intake
from tests.harness import (
    CORPUS,
    REPORT_NS,
    SAMPLES,
    GatewayProcess,
    cli,
    drop,
    renumber,
    tar_gz_of,
    wait_finished,
    wait_for,
    wait_report,
    write_config,
    zip_of,
)


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


def _refused(config_file, *args: str):
    """A command that must fail as the user's mistake (exit 1 or 2), without a traceback; its result."""
    result = CliRunner().invoke(main, ["--config", str(config_file), *args])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output, result.output
    return result


def test_accounts_add_and_list(config_file):
    cli(config_file, "accounts", "add", "newco", "--role", "supplier", "--siret", "35600000000048")
    assert (config_file.parent / "var" / "zones" / "newco" / "in").is_dir()
    listing = cli(config_file, "accounts", "list")
    assert any(line.split()[:3] == ["newco", "supplier", "35600000000048"] for line in listing.splitlines())
    bad = CliRunner().invoke(main, ["--config", str(config_file), "accounts", "add", "../evil", "--role", "supplier"])
    assert bad.exit_code == 2
    bad = CliRunner().invoke(main, ["--config", str(config_file), "accounts", "add", "x", "--role", "supplier",
                                    "--siret", "81234567600018"])
    assert bad.exit_code == 2 and "not a valid SIRET" in bad.output


def test_accounts_add_refuses_an_existing_name_unless_update(config_file):
    """acme exists (the samples): adding it again changes nothing, even its role, until --update says so."""
    refused = _refused(config_file, "accounts", "add", "acme", "--role", "recipient")
    assert refused.exit_code == 2 and "account acme exists already (supplier): --update changes it" in refused.output
    assert _roles(config_file)["acme"] == "supplier"
    cli(config_file, "accounts", "add", "acme", "--update", "--role", "recipient")
    assert _roles(config_file)["acme"] == "recipient"
    cli(config_file, "accounts", "add", "brand-new", "--update", "--role", "supplier")  # --update also creates
    assert _roles(config_file)["brand-new"] == "supplier"


def _roles(config_file) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in cli(config_file, "accounts", "list").splitlines()[2:]}


def test_accounts_add_refuses_a_siret_another_account_holds_unless_shared(config_file):
    """81234567600017 is acme's: another account gets it only with --shared, and the listing says who shares it."""
    refused = _refused(config_file, "accounts", "add", "acme-bis", "--role", "supplier", "--siret", "81234567600017")
    assert refused.exit_code == 2 and "SIRET 81234567600017 is held by account acme already" in refused.output
    assert "--shared" in refused.output and "acme-bis" not in _roles(config_file)  # nothing was written
    update = _refused(config_file, "accounts", "add", "mairie-exemple", "--update", "--role", "recipient",
                      "--siret", "81234567600017")
    assert "held by account acme" in update.output
    cli(config_file, "accounts", "add", "acme-bis", "--role", "supplier", "--siret", "81234567600017", "--shared")
    lines = {line.split()[0]: line for line in cli(config_file, "accounts", "list").splitlines()[2:]}
    assert "81234567600017 (shared with acme-bis)" in lines["acme"]
    assert "81234567600017 (shared with acme)" in lines["acme-bis"]
    assert "shared" not in lines["mairie-exemple"]
    cli(config_file, "accounts", "add", "acme-bis", "--update", "--role", "supplier", "--siret", "81234567600017")


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
    [(held, _), (later, _)] = queue.claim(app.engine, "elsewhere:1:0", 60.0, Flow, limit=2)
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


HOSTILE = "evil\x1b]0;pwned\x07\n2099 fake-row INTEGRE\u202elmx.xml"  # retitles, forges a row, reverses


def _unescaped(text: str) -> list[str]:
    """What a terminal would obey in text: escapes, bells, line separators, bidirectional controls."""
    return [c for c in text if c in "\x1b\x07\x85\u2028\u202e"]


def test_text_output_escapes_what_a_terminal_would_obey(config_file, running):
    """A file name and an invoice number carrying an escape sequence, a newline and a bidirectional override are
    shown escaped by flows list, flows show and invoices show, each record on its own lines; --json keeps them
    exact."""
    root = config_file.parent
    inbox = root / "var" / "zones" / "acme" / "in"
    (inbox / ".hostile.part").write_bytes((SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes())
    (inbox / ".hostile.part").rename(inbox / HOSTILE)
    number = "ESC-\u202e1\n2099"
    drop(root, "acme", "number.xml", renumber((SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes(), number))
    flows = wait_for(lambda: _finished(config_file, 2), 30, "both flows' final state")
    assert {f["original_name"] for f in flows} == {HOSTILE, "number.xml"}  # exact
    listing = cli(config_file, "flows", "list")
    assert _unescaped(listing) == [] and len(listing.splitlines()) == 2 + 2  # header, rule, one line a flow
    assert "evil\\x1b]0;pwned\\x07\\n2099 fake-row INTEGRE\\u202elmx.xml" in listing
    hostile = next(f for f in flows if f["original_name"] == HOSTILE)
    shown = cli(config_file, "flows", "show", hostile["id"])
    assert _unescaped(shown) == [] and "evil\\x1b" in shown and "IRR_NOM_F" in shown  # its ";", and more
    assert not any(line.startswith("2099") for line in shown.splitlines())

    invoice = json.loads(cli(config_file, "invoices", "show", number, "--json"))
    assert invoice["number"] == number
    text = cli(config_file, "invoices", "show", invoice["id"])
    assert _unescaped(text) == [] and "ESC-\\u202e1\\n2099" in text
    assert not any(line.startswith("2099") for line in text.splitlines())


def _finished(config_file, count: int) -> list[dict] | None:
    """The flows as `flows list --json` gives them, once count of them have their final state."""
    flows = json.loads(cli(config_file, "flows", "list", "--json"))
    return flows if sum(bool(f["finished_at"]) for f in flows) >= count else None


def test_flows_list_says_when_it_stops_at_its_limit(config_file, app):
    """Three flows: --limit 2 shows two and says more exist (on standard error: the output stays a table or
    JSON); --all and a limit the flows fit in show them all and say nothing."""
    root = config_file.parent
    invoice = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
    for n in range(3):
        intake(app, drop(root, "acme", f"l{n}.xml", renumber(invoice, f"L-{n}")), Arrival("acme", f"l{n}.xml", "zone"))
    runner = CliRunner()
    cut = runner.invoke(main, ["--config", str(config_file), "flows", "list", "--limit", "2"])
    assert cut.exit_code == 0 and len(cut.stdout.splitlines()) == 2 + 2
    assert "only the 2 most recent flows are shown, there are more: --limit N or --all" in cut.stderr
    cut = runner.invoke(main, ["--config", str(config_file), "flows", "list", "--limit", "2", "--json"])
    assert [f["original_name"] for f in json.loads(cut.stdout)] == ["l2.xml", "l1.xml"] and "--all" in cut.stderr
    for args in (["--all"], ["--limit", "3"], ["--all", "--json"]):
        whole = runner.invoke(main, ["--config", str(config_file), "flows", "list", *args])
        assert whole.exit_code == 0 and whole.stderr == "", (args, whole.stderr)
        assert all(f"l{n}.xml" in whole.stdout for n in range(3))
    assert _refused(config_file, "flows", "list", "--limit", "0").exit_code == 2


def test_validate_takes_what_the_pipeline_takes(tmp_path):
    """A Factur-X PDF is judged on its embedded CII, a batch member by member, as the pipeline judges them."""
    flows = SAMPLES / "flows"
    pdf = json.loads(_invoke("validate", "--json", str(flows / "facturx-ok.pdf")).stdout)
    assert [(v["verdict"], v["syntax"], v["errors"]) for v in pdf] == [("valid", "cii", [])]
    assert _invoke("validate", str(flows / "facturx-ok.pdf")).exit_code == 0
    batch = tmp_path / "batch.zip"
    batch.write_bytes(zip_of({"ok.xml": (flows / "ubl-invoice-ok.xml").read_bytes(),
                              "bad.xml": (flows / "reject-xsd.xml").read_bytes(),
                              "f.pdf": (flows / "facturx-ok.pdf").read_bytes()}))
    tarball = tmp_path / "batch.tar.gz"
    tarball.write_bytes(tar_gz_of({"ok.xml": (flows / "cii-invoice-ok.xml").read_bytes()}))
    result = _invoke("validate", "--json", str(batch), str(tarball), str(flows / "reject-facturx-no-xml.pdf"))
    assert result.exit_code == 1
    zipped, tarred, no_xml = json.loads(result.stdout)
    assert (zipped["verdict"], zipped["syntax"], zipped["errors"]) == ("invalid", "zip", [])
    assert [(d["name"], d["verdict"], d["syntax"]) for d in zipped["documents"]] == [
        ("ok.xml", "valid", "ubl-invoice"), ("bad.xml", "invalid", "ubl-invoice"), ("f.pdf", "valid", "cii")]
    assert zipped["documents"][1]["errors"][0]["stage"] == "xsd"
    assert (tarred["verdict"], [d["verdict"] for d in tarred["documents"]]) == ("valid", ["valid"])
    assert [e["rule"] for e in no_xml["errors"]] == ["FX-NO-XML"]
    text = _invoke("validate", str(batch)).stdout
    assert f"{batch}: invalid (zip)" in text and "  bad.xml: invalid (ubl-invoice)" in text

    odd = tmp_path / "invoice.txt"
    odd.write_bytes((flows / "ubl-invoice-ok.xml").read_bytes())
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    refused = json.loads(_invoke("validate", "--json", str(odd), str(broken)).stdout)
    assert [[e["rule"] for e in r["errors"]] for r in refused] == [["IRR_TYPE_F"], ["IRR_SYNTAX"]]


def test_run_prints_where_it_serves(tmp_path):
    """After its start, `gateway run` prints one plain line: the SFTP address and host key fingerprint (those its
    log lines give), the zones folder and the web address."""
    config = write_config(tmp_path, {"sftp": {"enabled": True, "port": 0}, "validate": {"processes": 1}})
    process = GatewayProcess(config)
    process.start()
    try:
        line = wait_for(lambda: next((text for text in process.log.read_text().splitlines()
                                      if text.startswith("gateway running")), None), 120, "the line")
    finally:
        assert process.stop() == 0
    logged = {entry["event"]: entry for entry in map(json.loads, (text for text in process.log.read_text().splitlines()
                                                                  if text.startswith("{")))}
    sftp, web = logged["sftp_started"], logged["web_started"]
    assert line == (f"gateway running (deliver, ingest, sftp, web, worker): SFTP 127.0.0.1:{sftp['port']} (host key "
                    f"{sftp['host_key']}), zones {tmp_path / 'var' / 'zones'}, web http://127.0.0.1:{web['port']}/")
