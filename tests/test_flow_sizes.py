"""Sizes, the reform's (a flow at most 1 GB, each file in it at most 100 MB, an API deposit at most 30 MB) scaled
down by configuration, through a running gateway: each refusal names its setting and value. The SFTP server's
refusal past [ingest] max_flow_bytes is in test_sftp_uploads."""

from __future__ import annotations

import base64
import os
import zipfile

import pytest

from tests.harness import REPORT_NS, SAMPLES, drop, renumber, wait_report, zip_of
from tests.web_harness import SUPPLIER, client, token, web_config, web_gateway

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
KB = 1024
FILE, FLOW, DEPOSIT = 64 * KB, 256 * KB, 128 * KB


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("sizes")
    config = web_config(root, overrides={"ingest": {"max_file_bytes": FILE, "max_flow_bytes": FLOW},
                                         "web": {"max_deposit_bytes": DEPOSIT}})
    bearer = token(config, SUPPLIER)
    with web_gateway(config) as (_process, url):
        yield {"root": root, "url": url, "token": bearer}


def _invoice(number: str, size: int) -> bytes:
    """A valid invoice under number, made size bytes long by a comment of random text (which no compression
    shrinks, so a batch of them is not taken for a bomb)."""
    invoice = renumber(INVOICE, number) + b"\n<!---->"
    padding = base64.b64encode(os.urandom(size))[: size - len(invoice)]
    return invoice[:-3] + padding + b"-->"


def _stored_zip(members: dict[str, bytes]) -> bytes:
    return zip_of(members, zipfile.ZIP_STORED)


def _refused(site, name: str, content: bytes) -> str:
    """Drop content as name in the zone; the messages of its report, once it says IRR_TAILLE_F refused the flow."""
    drop(site["root"], SUPPLIER, name, content)
    report = wait_report(site["root"], SUPPLIER, name, timeout=30)
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INCIDENTE"
    assert report.xpath("//r:error[r:severity='fatal']/r:rule/text()", namespaces=REPORT_NS) == ["IRR_TAILLE_F"]
    return " ".join(report.xpath("//r:error/r:message/text()", namespaces=REPORT_NS))


def test_a_lone_document_over_max_file_bytes_is_refused_naming_it(site):
    content = _invoice("SIZE-1", FILE + 1)
    says = _refused(site, "lone.xml", content)
    assert f"Document too large: {FILE + 1} bytes, more than [ingest] max_file_bytes ({FILE} bytes)" in says


def test_a_batch_over_max_flow_bytes_is_refused_naming_it(site):
    content = _stored_zip({f"m{i}.xml": _invoice(f"SIZE-2{i}", FILE - KB) for i in range(5)})
    assert len(content) > FLOW
    says = _refused(site, "heavy.zip", content)
    assert f"Flow too large: {len(content)} bytes, more than [ingest] max_flow_bytes ({FLOW} bytes)" in says


def test_a_batch_member_over_max_file_bytes_is_refused_naming_it(site):
    says = _refused(site, "fat-member.zip", _stored_zip({"fat.xml": _invoice("SIZE-3", FILE + 1)}))
    assert f"Archive member 'fat.xml' is {FILE + 1} bytes; one document may be at most {FILE} bytes " \
           "([ingest] max_file_bytes)" in says


def test_a_batch_larger_than_a_file_may_be_but_within_a_flow_is_integrated(site):
    """The file limit is each document's, not the batch's: three documents just under it make one flow over it."""
    content = _stored_zip({f"m{i}.xml": _invoice(f"SIZE-4{i}", FILE - KB) for i in range(3)})
    assert FILE < len(content) < FLOW
    drop(site["root"], SUPPLIER, "three.zip", content)
    report = wait_report(site["root"], SUPPLIER, "three.zip", timeout=30)
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"


def test_an_api_deposit_over_max_deposit_bytes_is_refused_naming_it(site):
    """Declared (Content-Length) or not (chunked), a deposit past [web] max_deposit_bytes is 413 naming it; the
    same flow is taken by the zone, whose limit is the flow's."""
    content = _stored_zip({f"m{i}.xml": _invoice(f"SIZE-5{i}", FILE - KB) for i in range(3)})
    assert DEPOSIT < len(content) < FLOW
    with client(site["url"], site["token"]) as api:
        for body in (content, iter([content[:KB], content[KB:]])):
            answer = api.post("/api/v1/flows", params={"name": "three.zip"}, content=body)
            assert answer.status_code == 413
            problem = answer.json()
            assert problem["type"] == "urn:gateway:problem:flow-too-large"
            assert problem["detail"] == (f"A flow deposited over HTTP may not exceed {DEPOSIT} bytes "
                                         "([web] max_deposit_bytes).")
            assert (problem["limit"], problem["setting"]) == (DEPOSIT, "[web] max_deposit_bytes")
    drop(site["root"], SUPPLIER, "three-by-zone.zip", content)
    report = wait_report(site["root"], SUPPLIER, "three-by-zone.zip", timeout=30)
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"
