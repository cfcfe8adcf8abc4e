"""sshd mode: OpenSSH's sshd (internal-sftp) serves a zone, and the zone watcher takes what it receives.

The embedded server is off in this mode; these tests check that the watcher path gives the same
result for the ways SFTP clients finish an upload: a temporary name then a rename (posix-rename,
or a plain SFTP rename, which sshd makes a link then an unlink), or straight to the final name.
"""

from __future__ import annotations

import os

import paramiko
import pytest
from sqlmodel import select

from gateway.data.db import session_scope
from gateway.data.models import Flow
from tests.harness import REPORT_NS, SAMPLES, inbox, renumber, wait_for, wait_report
from tests.sftp_harness import SFTP, SSHD, OpenSSH, Sshd, current_user, known_hosts, listening, make_key

pytestmark = [
    pytest.mark.skipif(not SSHD.exists() or SFTP is None,
                       reason="OpenSSH's sshd or sftp is not installed (apt-get install openssh-server)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd needs root here (privilege separation directory /run/sshd)"),
    pytest.mark.slow,  # OpenSSH's sshd started for each test
]


@pytest.fixture
def sshd(config_file, tmp_path):
    """sshd serving acme's in/ to a key of the test's, while the gateway runs with its watcher."""
    key = make_key(tmp_path / "client_key")
    server = Sshd(tmp_path, inbox(config_file.parent, "acme"), key)
    server.start()
    try:
        wait_for(lambda: listening(server.port), what="sshd listening")
        server.client = OpenSSH(server.port, current_user(),
                                known_hosts(tmp_path / "known_hosts", server.port, server.host_public_key()), key=key)
        yield server
    finally:
        server.stop()


def _invoice(number: str) -> bytes:
    return renumber((SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes(), number)


def test_renamed_and_direct_uploads_become_one_flow_each(config_file, running, sshd, tmp_path):
    root = config_file.parent
    (tmp_path / "x.xml").write_bytes(_invoice("SSHD-X"))
    (tmp_path / "y.xml").write_bytes(_invoice("SSHD-Y"))
    (tmp_path / "z.xml").write_bytes(_invoice("SSHD-Z"))
    result = sshd.client.run(tmp_path, ["put x.xml x.xml.part", "rename x.xml.part x.xml", "put y.xml y.xml",
                                        "put z.xml z.xml.part"])
    assert result.returncode == 0, result.stderr
    with paramiko.SSHClient() as client:
        client.load_host_keys(str(sshd.client.known_hosts))
        client.connect("127.0.0.1", sshd.port, username=current_user(), key_filename=str(sshd.client.key),
                       look_for_keys=False, allow_agent=False)
        client.open_sftp().rename("z.xml.part", "z.xml")  # SSH_FXP_RENAME: a link, then an unlink
    for name in ("x.xml", "y.xml", "z.xml"):
        report = wait_report(root, "acme", name)
        assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"
    with session_scope(running.app.engine) as session:
        flows = sorted((f.original_name, f.channel) for f in session.exec(select(Flow)))
    assert flows == [("x.xml", "zone"), ("y.xml", "zone"), ("z.xml", "zone")]
    assert not list(inbox(root, "acme").iterdir())


def test_names_follow_the_rule_of_every_channel(config_file, running, sshd, tmp_path):
    """sshd takes any name Linux does: `Facture (1).xml` is integrated, a name with a character the reform forbids
    is taken all the same and its flow refused with IRR_NOM_F."""
    root = config_file.parent
    (tmp_path / "one.xml").write_bytes(_invoice("SSHD-NAME-1"))
    (tmp_path / "two.xml").write_bytes(_invoice("SSHD-NAME-2"))
    result = sshd.client.run(tmp_path, ['put one.xml "Facture (1).xml"', 'put two.xml "Facture;2.xml"'])
    assert result.returncode == 0, result.stderr
    integrated = wait_report(root, "acme", "Facture (1).xml")
    assert integrated.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"
    refused = wait_report(root, "acme", "Facture;2.xml")
    assert refused.xpath("//r:error[r:severity='fatal']/r:rule/text()", namespaces=REPORT_NS) == ["IRR_NOM_F"]
