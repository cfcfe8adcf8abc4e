"""File names over SFTP: the one rule of every channel (gateway.ingest.names) refuses a name at its upload or rename,
with a message naming the rule that paramiko shows and OpenSSH's `sftp` prints (the session's standard error);
ordinary names, with spaces, parentheses and accents, are taken."""

from __future__ import annotations

import io

import pytest
from structlog.testing import capture_logs

from gateway.ingest.names import FORBIDDEN, MAX_LENGTH
from tests.harness import REPORT_NS, SAMPLES, renumber, wait_report
from tests.test_sftp_uploads import _settled

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
# '/' is the separator of SFTP paths: a name cannot hold it (below, a folder in /in does not exist)
REFUSED = [f"facture{c}1.xml" for c in FORBIDDEN if c != "/"] + ["l" * 253 + ".xml"]


def _quoted(name: str) -> str:
    """name as an argument of an OpenSSH sftp batch command (a backslash escapes within quotes)."""
    return '"' + name.replace("\\", "\\\\") + '"'


def test_each_forbidden_character_and_a_257_character_name_are_refused_with_the_rule_over_paramiko(sftp_site):
    """Each is refused at its open (a final or a temporary name) or its rename, the message naming IRR_NOM_F and
    saying what is wrong; nothing is taken; the refusal is logged with its rule."""
    assert len(REFUSED[-1]) == 257
    site = sftp_site()
    with capture_logs() as logged, site.client() as client, client.open_sftp() as sftp:
        for name in REFUSED:
            for path in (f"/in/{name}", f"/in/.{name}.part"):
                with pytest.raises(PermissionError) as refused:
                    sftp.putfo(io.BytesIO(INVOICE), path)
                reason = f"characters, more than the {MAX_LENGTH}" if len(name) > MAX_LENGTH else f"has {name[7]} ("
                assert "IRR_NOM_F: The file name" in str(refused.value) and reason in str(refused.value)
        sftp.putfo(io.BytesIO(INVOICE), "/in/facture.xml.part")
        with pytest.raises(PermissionError, match=r"IRR_NOM_F: The file name 'facture#1\.xml' has #"):
            sftp.posix_rename("/in/facture.xml.part", "/in/facture#1.xml")
        with pytest.raises(FileNotFoundError):  # no folders in /in: a '/' in a name is one
            sftp.putfo(io.BytesIO(INVOICE), "/in/facture/1.xml")
        sftp.remove("/in/facture.xml.part")
    _settled(site, "after-names")
    assert [flow.original_name for flow in site.flows()] == ["after-names.xml"]
    refusals = {(line["original_name"], line["rule"]) for line in logged if line["event"] == "sftp_upload_refused"}
    assert refusals >= {(name, "IRR_NOM_F") for name in REFUSED}


def test_a_name_longer_than_the_file_system_holds_is_refused_saying_so(sftp_site):
    """Within the rule (256 characters) but not within Linux's 255 bytes: refused at the open, naming that limit,
    rather than failing once the file is sent."""
    site = sftp_site()
    name = "é" * 130 + ".xml"  # 134 characters, 264 bytes
    with site.client() as client, client.open_sftp() as sftp, \
            pytest.raises(PermissionError, match="file name too long: 264 bytes of UTF-8, more than the 255"):
        sftp.putfo(io.BytesIO(INVOICE), f"/in/{name}")
    _settled(site, "after-long")
    assert [flow.original_name for flow in site.flows()] == ["after-long.xml"]


def test_openssh_sftp_prints_the_rule_and_takes_ordinary_names(sftp_site, tmp_path):
    """OpenSSH's sftp: each refused put fails and prints the gateway's line naming IRR_NOM_F; `Facture (1).xml`
    and a name with accents are taken, integrated under the name they were sent as."""
    site = sftp_site()
    (tmp_path / "bad.xml").write_bytes(INVOICE)
    (tmp_path / "one.xml").write_bytes(renumber(INVOICE, "NAMES-1"))
    (tmp_path / "two.xml").write_bytes(renumber(INVOICE, "NAMES-2"))
    ordinary = ["Facture (1).xml", "Reçu n°2 – été (copie).xml"]
    commands = [f"-put bad.xml {_quoted('/in/' + name)}" for name in REFUSED]
    commands += [f"put one.xml {_quoted('/in/' + ordinary[0])}", f"put two.xml {_quoted('/in/' + ordinary[1])}"]
    result = site.openssh().run(tmp_path, commands)
    assert result.returncode == 0, result.stderr
    for name in REFUSED:
        assert f"gateway: IRR_NOM_F: The file name {name!r} has" in result.stderr, name
    assert result.stderr.count("Permission denied") == len(REFUSED)
    for name in ordinary:
        assert wait_report(site.root, "acme", name).findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"
    taken = sorted((flow.original_name, flow.channel) for flow in site.flows())
    assert taken == [(name, "sftp") for name in sorted(ordinary)]
