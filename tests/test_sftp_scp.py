"""OpenSSH's scp, which speaks SFTP since OpenSSH 9: a file it sends is acknowledged and scp exits 0, so a script
that retries on failure does not send it again."""

from __future__ import annotations

import shutil
import subprocess

import paramiko
import pytest

from tests.harness import SAMPLES, ack_for_name, renumber, wait_for

SCP = shutil.which("scp")
INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()


def _scp(site, *args: str) -> subprocess.CompletedProcess:
    """scp in SFTP mode (-s) with acme's key, the server's host key pinned, no user configuration read."""
    if SCP is None:
        pytest.skip("OpenSSH's scp is not installed (apt-get install openssh-client)")
    argv = [SCP, "-s", "-F", "/dev/null", "-P", str(site.port), "-i", str(site.key),
            "-o", f"UserKnownHostsFile={site.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_scp_upload_exits_0_and_is_acknowledged(sftp_site, tmp_path):
    site = sftp_site()
    sent = tmp_path / "scp-facture.xml"
    sent.write_bytes(renumber(INVOICE, "SCP-1"))
    result = _scp(site, str(sent), "acme@127.0.0.1:/in/")
    assert result.returncode == 0, result.stderr
    ack = wait_for(lambda: ack_for_name(site.root, "acme", sent.name), what="the acknowledgement of the scp upload")
    assert ack is not None
    assert [flow.channel for flow in site.flows()] == ["sftp"]

    # the acknowledgement fetched back with scp: a download session ends with 0 too
    [flow] = site.flows()
    result = _scp(site, f"acme@127.0.0.1:/out/{flow.id}.ack.xml", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / f"{flow.id}.ack.xml").read_bytes() == (site.zone() / "out" / f"{flow.id}.ack.xml").read_bytes()


def test_a_refused_upload_still_fails(sftp_site, tmp_path):
    """The exit status says success only for a clean session: an upload the server refuses fails scp."""
    site = sftp_site()
    sent = tmp_path / "scp-refused.xml"
    sent.write_bytes(renumber(INVOICE, "SCP-2"))
    result = _scp(site, str(sent), "acme@127.0.0.1:/elsewhere/")
    assert result.returncode != 0
    assert site.flows() == []


def test_a_session_cut_short_gets_no_success(sftp_site):
    """A client that ends its session with an upload still open (cut short, deleted) is told 1, not 0."""
    site = sftp_site()
    with site.client() as client:
        channel = client.get_transport().open_session()
        channel.invoke_subsystem("sftp")
        sftp = paramiko.SFTPClient(channel)
        handle = sftp.open("/in/cut.xml", "w")
        handle.write(INVOICE[:100])
        handle.flush()
        channel.shutdown_write()  # EOF: the session ends with the file open
        assert channel.recv_exit_status() == 1
    assert site.flows() == []
