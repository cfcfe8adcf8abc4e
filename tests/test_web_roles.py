"""The web role as deployed: HTTPS with [web] certfile and keyfile, and several web processes sharing one
database behind a load balancer, beside a process doing the rest."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness import SAMPLES, GatewayProcess, renumber, wait_for
from tests.web_harness import SUPPLIER, client, start, token, web_config, web_gateway

GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_the_api_over_https(tmp_path: Path):
    cert, key = _self_signed(tmp_path)
    config = web_config(tmp_path, overrides={"web": {"certfile": str(cert), "keyfile": str(key)}})
    supplier = token(config, SUPPLIER)
    with web_gateway(config, "--role", "web") as (_process, url):
        assert url.startswith("https://")
        with client(url, supplier, verify=ssl.create_default_context(cafile=str(cert))) as api:
            assert api.get("/api/v1/flows").status_code == 200
        with client(url.replace("https://", "http://"), supplier) as plain:
            try:
                answer = plain.get("/healthz")
            except Exception:  # the TLS server drops a plain-text request
                answer = None
            assert answer is None or answer.status_code != 200


@pytest.mark.slow  # several web processes and a back process started
def test_several_web_processes_share_the_work_of_one_database(tmp_path: Path, database_url):
    config = web_config(tmp_path, database_url)
    supplier = token(config, SUPPLIER)
    back = GatewayProcess(config, "--role", "ingest,worker,deliver", log=tmp_path / "back.log")
    back.start()
    try:
        with web_gateway(config, "--role", "web") as (_one, first_url):
            second = GatewayProcess(config, "--role", "web", log=tmp_path / "web2.log")
            second_url = start(second)
            try:
                with client(first_url, supplier) as first, client(second_url, supplier) as other:
                    deposited = [first.post("/api/v1/flows", params={"name": f"lb-{n}.xml"},
                                            content=renumber(GOOD, f"LB-{n}")).json()["flow_id"] for n in range(2)]
                    deposited.append(other.post("/api/v1/flows", params={"name": "lb-2.xml"},
                                                content=renumber(GOOD, "LB-2")).json()["flow_id"])
                    for flow_id in deposited:  # each deposit is read back, processed, through the other front
                        reader = other if flow_id != deposited[-1] else first
                        flow = wait_for(lambda: (f := reader.get(f"/api/v1/flows/{flow_id}").json())["finished_at"]
                                        and f, 60, f"flow {flow_id} processed")
                        assert flow["state"] == "INTEGRE" and flow["channel"] == "api"
            finally:
                second.stop()
    finally:
        back.stop()
