"""The HTTP API against a real `gateway run` (web role included), over HTTP with httpx: deposits, flows,
invoices, statuses, the directory."""

from __future__ import annotations

import uuid
from pathlib import Path

import paramiko
import pytest
from lxml import etree

from tests.harness import REPORT_NS, SAMPLES, cli, readdress, renumber, wait_for, zip_of
from tests.web_harness import RECIPIENT, SUPPLIER, client, log_lines, operator_token, token, web_config, web_gateway

GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
PASSWORD = "acme-api-1"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One gateway for the module's tests (SQLite), with its SFTP server, and tokens for acme, the mairie and
    an operator."""
    root = tmp_path_factory.mktemp("api")
    config = web_config(root, overrides={"sftp": {"enabled": True, "port": 0, "auth_delay": 0.05}})
    cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--password", PASSWORD)
    tokens = {SUPPLIER: token(config, SUPPLIER), RECIPIENT: token(config, RECIPIENT), "ops": operator_token(config)}
    with web_gateway(config) as (process, url):
        yield {"config": config, "url": url, "tokens": tokens, "process": process}


def _api(site, who: str = SUPPLIER):
    return client(site["url"], site["tokens"][who])


def _finished(api, flow_id: str, timeout: float = 30) -> dict:
    def done():
        flow = api.get(f"/api/v1/flows/{flow_id}").json()
        return flow if flow["finished_at"] else None
    return wait_for(done, timeout, f"flow {flow_id} finished", 0.05)


def _deposit(api, name: str, content: bytes, **headers) -> dict:
    answer = api.post("/api/v1/flows", params={"name": name}, content=content, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()


def _verdicts(report: bytes) -> tuple:
    """What a report says, without ids, names, sizes and times: state, counts, each invoice's verdict and rules."""
    root = etree.fromstring(report)
    invoices = tuple((i.findtext("r:verdict", namespaces=REPORT_NS),
                      tuple(sorted(e.findtext("r:rule", namespaces=REPORT_NS)
                                   for e in i.iterfind(".//r:error", REPORT_NS))))
                     for i in root.iterfind("r:invoices/r:invoice", REPORT_NS))
    counts = tuple(c.text for c in root.find("r:counts", REPORT_NS))
    return root.findtext("r:flow/r:state", namespaces=REPORT_NS), counts, invoices


def _sftp_port(site) -> int:
    return next(line["port"] for line in log_lines(site["process"].log) if line["event"] == "sftp_started")


def test_deposit_over_the_api_and_over_sftp_give_the_same_report(site):
    cases = {"ok.xml": GOOD, "xsd.xml": (SAMPLES / "flows" / "reject-xsd.xml").read_bytes(),
             "service.xml": (SAMPLES / "flows" / "reject-service-required.xml").read_bytes(),
             "cii.xml": (SAMPLES / "flows" / "cii-invoice-ok.xml").read_bytes()}
    with _api(site) as api, paramiko.SSHClient() as ssh:
        ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a fresh test server: nothing to pin yet
        ssh.connect("127.0.0.1", _sftp_port(site), username=SUPPLIER, password=PASSWORD, look_for_keys=False,
                    allow_agent=False, timeout=10)
        sftp = ssh.open_sftp()
        for name in [*cases, "batch.zip"]:
            # distinct bytes per channel (the same bytes twice are a duplicate flow), the same verdicts expected
            via_api, via_sftp = (_copy(cases, name, channel) for channel in ("API", "SFTP"))
            deposit = _deposit(api, name, via_api)
            assert deposit["state"] == "RECU" and deposit["acknowledgement"].endswith("/ack")
            with sftp.open(f"/in/sftp-{name}", "wb") as fh:
                fh.write(via_sftp)
            flow = _finished(api, deposit["flow_id"])
            assert flow["channel"] == "api" and flow["original_name"] == name
            from_sftp = wait_for(lambda: next((f for f in api.get("/api/v1/flows", params={"limit": 50}).json()["items"]
                                               if f["original_name"] == f"sftp-{name}" and f["finished_at"]), None),
                                 30, f"the SFTP flow sftp-{name}")
            assert from_sftp["channel"] == "sftp"
            reports = [api.get(f"/api/v1/flows/{f['id']}/report") for f in (flow, from_sftp)]
            assert all(r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
                       for r in reports)
            assert _verdicts(reports[0].content) == _verdicts(reports[1].content), name
            assert _verdicts(reports[0].content)[0] == flow["state"]
            # the same report the supplier found in its zone
            zone_copy = site["config"].parent / "var" / "zones" / SUPPLIER / "out" / f"{flow['id']}.report.xml"
            assert zone_copy.read_bytes() == reports[0].content
            ack = api.get(f"/api/v1/flows/{flow['id']}/ack")
            assert ack.status_code == 200 and flow["id"].encode() in ack.content


def _copy(cases: dict[str, bytes], name: str, channel: str) -> bytes:
    """The case under an invoice number of the channel's; the batch: an accepted and a rejected invoice."""
    if name == "batch.zip":
        return zip_of({"a.xml": renumber(GOOD, f"{channel}-BATCH"), "b.xml": _copy(cases, "xsd.xml", channel)})
    return renumber(cases[name], f"{channel}-{name}")


def test_a_retried_deposit_with_the_same_idempotency_key_makes_one_flow(site):
    key = str(uuid.uuid4())
    content = renumber(GOOD, "IDEM-1")
    with _api(site) as api:
        first = _deposit(api, "idem.xml", content, **{"Idempotency-Key": key})
        again = api.post("/api/v1/flows", params={"name": "idem.xml"}, content=content,
                         headers={"Idempotency-Key": key})
        assert again.status_code == 200 and again.json()["flow_id"] == first["flow_id"]
        assert again.json()["replayed"] is True and first["replayed"] is False
        other = api.post("/api/v1/flows", params={"name": "idem.xml"}, content=renumber(GOOD, "IDEM-2"),
                         headers={"Idempotency-Key": key})
        assert other.status_code == 422 and other.json()["type"] == "urn:gateway:problem:idempotency-key-reused"
        named = [f for f in api.get("/api/v1/flows", params={"limit": 1000}).json()["items"]
                 if f["original_name"] == "idem.xml"]
        assert [f["id"] for f in named] == [first["flow_id"]]
        # without a key, the same bytes again are a new flow, refused as a duplicate
        duplicate = _finished(api, _deposit(api, "idem.xml", content)["flow_id"])
        assert duplicate["state"] == "REJETE" and duplicate["errors"][0]["rule"] == "FLOW-DUPLICATE"


def test_a_multipart_form_deposits_its_file_part(site):
    content = renumber(GOOD, "FORM-1")
    with _api(site) as api:
        answer = api.post("/api/v1/flows", files={"file": ("form.xml", content, "application/xml")},
                          data={"comment": "ignored"})
        assert answer.status_code == 202, answer.text
        flow = _finished(api, answer.json()["flow_id"])
        assert flow["original_name"] == "form.xml" and flow["size"] == len(content) and flow["state"] == "INTEGRE"
        invoice = flow["invoices"][0]
        assert api.get(f"/api/v1/invoices/{invoice['id']}/document").content == content
        missing = api.post("/api/v1/flows", files={"other": ("x.xml", content, "application/xml")})
        assert missing.status_code == 400 and missing.json()["type"] == "urn:gateway:problem:form-invalid"


def test_search_invoices_by_number_status_counterparty_and_dates_with_pagination(site):
    with _api(site) as api, _api(site, RECIPIENT) as mairie:
        ids = []
        for n in range(5):
            document = renumber(GOOD, f"SEARCH-{n}")
            if n == 4:  # one for another buyer: the hospital
                document = readdress(document, "26370999000018", "SERV-FACT", note="search 4")
            ids.append(_finished(api, _deposit(api, f"search-{n}.xml", document)["flow_id"])["invoices"][0]["id"])
        by_number = api.get("/api/v1/invoices", params={"number": "SEARCH-3"}).json()
        assert [i["id"] for i in by_number["items"]] == [ids[3]] and by_number["next_cursor"] is None
        assert by_number["items"][0]["status_name"] == "MISE_A_DISPOSITION"
        # pages of two, newest first, following the cursor to the end
        seen, cursor = [], None
        while True:
            page = api.get("/api/v1/invoices", params={"limit": 2, "counterparty": "mairie-exemple",
                                                       **({"cursor": cursor} if cursor else {})}).json()
            seen += [i["id"] for i in page["items"] if i["number"].startswith("SEARCH-")]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ids[3::-1]
        hospital = api.get("/api/v1/invoices", params={"counterparty": "26370999000018"}).json()["items"]
        assert [i["id"] for i in hospital if i["number"].startswith("SEARCH-")] == [ids[4]]
        # the mairie sees the invoices it received, and finds them by supplier
        received = mairie.get("/api/v1/invoices", params={"counterparty": SUPPLIER, "number": "SEARCH-2"}).json()
        assert [i["id"] for i in received["items"]] == [ids[2]]
        assert mairie.get("/api/v1/invoices", params={"number": "SEARCH-4"}).json()["items"] == []
        # status, by name and by code, and dates
        answer = mairie.post(f"/api/v1/invoices/{ids[1]}/status", json={"status": "SERVICE_FAIT"})
        assert answer.status_code == 200, answer.text
        for status in ("SERVICE_FAIT", "07"):
            found = api.get("/api/v1/invoices", params={"status": status, "counterparty": "mairie-exemple"}).json()
            assert [i["id"] for i in found["items"]] == [ids[1]]
        issued = api.get(f"/api/v1/invoices/{ids[0]}").json()["issue_date"]
        assert ids[0] in [i["id"] for i in api.get("/api/v1/invoices", params={
            "issued_from": issued, "issued_to": issued, "limit": 1000}).json()["items"]]
        assert api.get("/api/v1/invoices", params={"issued_to": "2000-01-01"}).json()["items"] == []
        bad = api.get("/api/v1/invoices", params={"status": "PAYEE"})
        assert bad.status_code == 422 and bad.json()["type"] == "urn:gateway:problem:status-unknown"
        assert api.get("/api/v1/invoices", params={"cursor": "%%%"}).status_code == 400


def test_a_recipient_follows_the_lifecycle_and_illegal_moves_are_409(site):
    with _api(site) as api, _api(site, RECIPIENT) as mairie:
        invoice_id = _finished(api, _deposit(api, "life.xml", renumber(GOOD, "LIFE-1"))["flow_id"])["invoices"][0]["id"]
        suspended = mairie.post(f"/api/v1/invoices/{invoice_id}/status",
                                json={"status": "SUSPENDUE", "reason": "PJ_ABS", "comment": "bon de commande manquant"})
        assert suspended.status_code == 200 and suspended.json()["status_name"] == "SUSPENDUE"
        illegal = mairie.post(f"/api/v1/invoices/{invoice_id}/status", json={"status": "MISE_EN_PAIEMENT"})
        assert illegal.status_code == 409
        assert illegal.json()["type"] == "urn:gateway:problem:status-refused"
        assert "SUSPENDUE" in illegal.json()["detail"] and "COMPLETEE" in illegal.json()["detail"]
        no_reason = mairie.post(f"/api/v1/invoices/{invoice_id}/status", json={"status": "REJETEE"})
        assert no_reason.status_code == 409 and "reason" in no_reason.json()["detail"]
        history = api.get(f"/api/v1/invoices/{invoice_id}").json()
        assert [(s["name"], s["actor"]) for s in history["statuses"]] == [
            ("DEPOSEE", "gateway"), ("MISE_A_DISPOSITION", "gateway"), ("SUSPENDUE", RECIPIENT)]
        assert history["statuses"][-1]["reason_code"] == "PJ_ABS"
        assert history["statuses"][-1]["reason"] == "bon de commande manquant"
        # the supplier sees its invoice but does not set its statuses
        assert api.post(f"/api/v1/invoices/{invoice_id}/status", json={"status": "SERVICE_FAIT"}).status_code == 403
        extra = mairie.post(f"/api/v1/invoices/{invoice_id}/status", json={"status": "REJETEE", "x": 1})
        assert extra.status_code == 422 and extra.json()["type"] == "urn:gateway:problem:invalid-request"


def test_directory_and_the_operator_view(site):
    with _api(site) as api, _api(site, "ops") as ops:
        structure = api.get("/api/v1/directory/26370999000018").json()
        assert structure["name"] == "CENTRE HOSPITALIER D'EXEMPLE" and structure["services"]
        assert "accounts" not in structure
        assert ops.get("/api/v1/directory/26370999000018").json()["accounts"] == ["hopital-exemple"]
        missing = api.get("/api/v1/directory/99999999999999")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        flow_id = _deposit(api, "ops.xml", renumber(GOOD, "OPS-1"))["flow_id"]
        assert ops.get(f"/api/v1/flows/{flow_id}").status_code == 200
        assert any(f["id"] == flow_id for f in ops.get("/api/v1/flows", params={"limit": 1000}).json()["items"])
        refused = ops.post("/api/v1/flows", params={"name": "ops.xml"}, content=GOOD)
        assert refused.status_code == 403 and refused.json()["type"] == "urn:gateway:problem:account-required"
        assert ops.get("/api/v1/flows", params={"state": "REJETE", "limit": 1000}).status_code == 200
        assert ops.get("/api/v1/flows", params={"state": "NOPE"}).status_code == 422


def test_openapi_document_and_its_page(site):
    with client(site["url"]) as anonymous:
        document = anonymous.get("/api/openapi.json").json()
        assert {"/api/v1/flows", "/api/v1/flows/{flow_id}/report", "/api/v1/invoices/{invoice_id}/status",
                "/api/v1/directory/{siret}"} <= set(document["paths"])
        assert "multipart/form-data" in document["paths"]["/api/v1/flows"]["post"]["requestBody"]["content"]
        assert "swagger" in anonymous.get("/api/docs").text.lower()
        assert anonymous.get("/healthz").json() == {"status": "ok"}


def test_the_api_on_postgresql_deposits_and_searches(tmp_path: Path, database_url):
    config = web_config(tmp_path, database_url)
    supplier = token(config, SUPPLIER)
    with web_gateway(config) as (_process, url), client(url, supplier) as api:
        flow = _finished(api, _deposit(api, "pg.xml", renumber(GOOD, "PG-1"))["flow_id"])
        assert flow["state"] == "INTEGRE" and flow["counts"] == {"invoices": 1, "accepted": 1, "rejected": 0}
        found = api.get("/api/v1/invoices", params={"number": "PG-1"}).json()["items"]
        assert [i["flow_id"] for i in found] == [flow["id"]]
        key = {"Idempotency-Key": "pg-retry"}
        first = _deposit(api, "pg2.xml", renumber(GOOD, "PG-2"), **key)
        assert api.post("/api/v1/flows", params={"name": "pg2.xml"}, content=renumber(GOOD, "PG-2"),
                        headers=key).json()["flow_id"] == first["flow_id"]
