"""Who may see what over the HTTP API, and what the API refuses: another account's objects are not found on
every route, tokens are checked and throttled and never logged, oversized bodies and bad names are refused."""

from __future__ import annotations

import re
import select
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.ingest.names import FORBIDDEN, MAX_LENGTH
from tests.harness import SAMPLES, cli, renumber, wait_for
from tests.web_harness import RECIPIENT, SUPPLIER, client, token, web_config, web_gateway

GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
OTHER, STRANGER = "globex", "hopital-exemple"  # another supplier; a recipient the invoice is not addressed to
OTHER_SIRET = "73000000700015"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("security")
    config = web_config(root, overrides={"web": {"auth_delay": 0.01, "auth_delay_max": 0.02, "ban_after": 1000}})
    cli(config, "accounts", "add", OTHER, "--role", "supplier", "--siret", OTHER_SIRET)
    tokens = {name: token(config, name) for name in (SUPPLIER, RECIPIENT, OTHER, STRANGER)}
    with web_gateway(config) as (process, url):
        with client(url, tokens[SUPPLIER]) as api:
            answer = api.post("/api/v1/flows", params={"name": "mine.xml"}, content=renumber(GOOD, "SEC-1"))
            flow_id = answer.json()["flow_id"]
            flow = wait_for(lambda: (f := api.get(f"/api/v1/flows/{flow_id}").json())["finished_at"] and f,
                            30, "the flow processed")
        yield {"config": config, "url": url, "tokens": tokens, "process": process, "flow": flow_id,
               "invoice": flow["invoices"][0]["id"]}


# every route that names an object: (method, path template, body)
OBJECT_ROUTES = [
    ("GET", "/api/v1/flows/{flow}", None),
    ("GET", "/api/v1/flows/{flow}/report", None),
    ("GET", "/api/v1/flows/{flow}/ack", None),
    ("GET", "/api/v1/invoices/{invoice}", None),
    ("GET", "/api/v1/invoices/{invoice}/document", None),
    ("POST", "/api/v1/invoices/{invoice}/status", {"status": "SERVICE_FAIT"}),
]


@pytest.mark.parametrize("method, path, body", OBJECT_ROUTES, ids=[f"{m} {p}" for m, p, _ in OBJECT_ROUTES])
@pytest.mark.parametrize("intruder", [OTHER, STRANGER])
def test_another_accounts_objects_are_not_found_on_every_route(site, intruder, method, path, body):
    url = path.format(flow=site["flow"], invoice=site["invoice"])
    with client(site["url"], site["tokens"][intruder]) as api:
        answer = api.request(method, url, json=body)
        assert answer.status_code == 404, answer.text
        assert answer.json()["type"] == "urn:gateway:problem:not-found"
        # exactly what an object that does not exist gets
        missing = api.request(method, path.format(flow="20200101000000000000-000000",
                                                  invoice="20200101000000000000-000000-001"), json=body)
        assert (missing.status_code, missing.json()["type"]) == (404, answer.json()["type"])
    if method == "GET":  # and their owner does see them
        with client(site["url"], site["tokens"][SUPPLIER]) as owner:
            assert owner.get(url).status_code == 200


def test_lists_and_searches_show_only_the_callers_objects(site):
    with client(site["url"], site["tokens"][OTHER]) as other, client(site["url"], site["tokens"][STRANGER]) as hopital:
        assert site["flow"] not in [f["id"] for f in other.get("/api/v1/flows").json()["items"]]
        for api in (other, hopital):
            assert api.get("/api/v1/invoices", params={"number": "SEC-1"}).json()["items"] == []
    with client(site["url"], site["tokens"][RECIPIENT]) as mairie:
        assert [i["id"] for i in mairie.get("/api/v1/invoices", params={"number": "SEC-1"}).json()["items"]] == [
            site["invoice"]]
        assert mairie.get(f"/api/v1/flows/{site['flow']}").status_code == 404  # the flow is the supplier's


def test_tokens_unknown_malformed_revoked_or_missing_get_401(site):
    config = site["config"]
    with client(site["url"]) as anonymous:
        answer = anonymous.get("/api/v1/flows")
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.headers["content-type"] == "application/problem+json"
        for bad in ("gwt_000000000000_nope", "nonsense", site["tokens"][SUPPLIER] + "x", "Basic abc"):
            assert anonymous.get("/api/v1/flows", headers={"Authorization": f"Bearer {bad}"}).status_code == 401
    fresh = token(config, OTHER)
    token_id = fresh[len("gwt_"):len("gwt_") + 12]
    with client(site["url"], fresh) as api:
        assert api.get("/api/v1/flows").status_code == 200
        listed = cli(config, "accounts", "token", OTHER, "--list")
        assert token_id in listed and fresh not in listed
        cli(config, "accounts", "token", OTHER, "--revoke", token_id)
        assert api.get("/api/v1/flows").status_code == 401
        assert cli(config, "accounts", "token", OTHER, "--list").count("20") >= 3  # created, used, revoked dates


@pytest.mark.parametrize("name,rule", [
    *((f"facture{c}1.xml", "IRR_NOM_F") for c in FORBIDDEN), ("../escape.xml", "IRR_NOM_F"),
    ("x" * (MAX_LENGTH - 3) + ".xml", "IRR_NOM_F"), ("bad\x01name.xml", "FLOW-NAME-INVALID"),
    ("facture\u202elmx.exe", "FLOW-NAME-INVALID"), (".hidden.xml", "FLOW-NAME-INVALID"),
    ("facture.xml.part", "FLOW-NAME-INVALID")])
def test_file_names_refused_as_over_sftp(site, name, rule):
    """The one rule of every channel: each character the reform forbids, a 257-character name, names that cannot be
    shown as sent or that mark a file still being written; 400 naming the rule, nothing kept."""
    with client(site["url"], site["tokens"][SUPPLIER]) as api:
        answer = api.post("/api/v1/flows", params={"name": name}, content=GOOD)
        problem = answer.json()
        assert answer.status_code == 400 and problem["type"] == "urn:gateway:problem:file-name-invalid"
        assert problem["rule"] == rule and problem["detail"].startswith(f"{rule}: The file name {name!r}")
        form = api.post("/api/v1/flows", files={"file": (name, GOOD, "application/xml")})
        assert form.status_code == 400 and form.json()["type"] == "urn:gateway:problem:file-name-invalid"
    assert not list((site["config"].parent / "var" / "spool").glob(".api-*"))


def test_ordinary_names_are_taken(site):
    """Spaces, parentheses and accents, as SFTP and the zone take them."""
    with client(site["url"], site["tokens"][SUPPLIER]) as api:
        for i, name in enumerate(["Facture (1).xml", "Reçu n°2 – été (copie).xml"]):
            answer = api.post("/api/v1/flows", params={"name": name}, content=renumber(GOOD, f"SEC-NAME-{i}"))
            assert answer.status_code == 202 and answer.json()["original_name"] == name


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _request_head(site, extra: str) -> bytes:
    address = urlsplit(site["url"])
    return (f"POST /api/v1/flows?name=big.xml HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Authorization: Bearer {site['tokens'][SUPPLIER]}\r\n{extra}\r\n").encode()


def _answer(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _length(answer: bytes) -> int:
    """The Content-Length of an answer whose head is read."""
    found = re.search(rb"(?im)^content-length:\s*(\d+)", answer.partition(b"\r\n\r\n")[0])
    return int(found.group(1)) if found else 0


def test_a_2gb_body_is_refused_with_413_while_read_and_memory_stays_low(site):
    address = urlsplit(site["url"])
    pid = site["process"].proc.pid
    limit = 30 * 1024 * 1024  # [web] max_deposit_bytes, left at its default (the reform's)
    # declared: refused before a byte of the body is sent
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(_request_head(site, "Content-Length: 2147483648\r\nExpect: 100-continue\r\n"))
        assert _answer(sock).startswith(b"HTTP/1.1 413")
    # undeclared (chunked): refused while it is read, long before 2 GB
    block = b"<x>" + b"0" * (1024 * 1024 - 3)
    sent, peak, answer = 0, 0.0, b""
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(_request_head(site, "Transfer-Encoding: chunked\r\n"))
        try:
            while sent < 2 * 1024 ** 3:
                sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                sent += len(block)
                if sent % (16 * len(block)) == 0:
                    peak = max(peak, _rss_mb(pid))
                if select.select([sock], [], [], 0)[0]:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"flow-too-large" in answer and f"{limit} bytes ([web] max_deposit_bytes)".encode() in answer
    assert limit <= sent < limit + 64 * 1024 * 1024
    assert max(peak, _rss_mb(pid)) < 300
    wait_for(lambda: not list((site["config"].parent / "var" / "spool").glob(".api-*")), 10, "the upload removed")


def test_tokens_never_reach_the_logs(site):
    with client(site["url"], site["tokens"][SUPPLIER]) as api:
        api.get("/api/v1/flows")
        api.get("/api/v1/flows", headers={"Authorization": "Bearer gwt_000000000000_wrongwrongwrong"})
    log = site["process"].log.read_text()
    assert '"http_request"' in log and '"api_auth_failed"' in log
    for value in [*site["tokens"].values(), "wrongwrongwrong"]:
        secret = value.split("_", 2)[-1]
        assert secret not in log


def test_failed_tokens_are_throttled_then_banned_per_address(tmp_path):
    config = web_config(tmp_path, overrides={"web": {"auth_delay": 0.2,
                                                     "auth_delay_max": 0.4, "ban_after": 3, "ban_seconds": 60}})
    good = token(config, SUPPLIER)
    with web_gateway(config) as (_process, url), client(url) as api:
        waits = []
        for _ in range(3):
            started = time.monotonic()
            assert api.get("/api/v1/flows", headers={"Authorization": "Bearer gwt_000000000000_x"}).status_code == 401
            waits.append(time.monotonic() - started)
        assert waits[0] >= 0.2 and waits[1] >= 0.4  # the delay the throttle decided, doubled, capped
        banned = api.get("/api/v1/flows", headers={"Authorization": f"Bearer {good}"})
        assert banned.status_code == 429 and banned.json()["type"] == "urn:gateway:problem:too-many-failures"
