"""File names through the drop zone and in batches: a file dropped under a name the one rule refuses
(gateway.ingest.names) is still taken, and its flow refused with IRR_NOM_F in its report; a batch member's name is
judged by the same rule; ordinary names, with spaces, parentheses and accents, are integrated."""

from __future__ import annotations

import json

import pytest

from gateway.ingest.names import FORBIDDEN, MAX_LENGTH
from tests.harness import REPORT_NS, SAMPLES, cli, drop, renumber, tar_gz_of, wait_report, zip_of

SUPPLIER = "acme"
INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()


def _outcome(report) -> tuple[str, list[str], str]:
    """A report's flow state, fatal rules and messages (joined)."""
    return (report.findtext("r:flow/r:state", namespaces=REPORT_NS),
            report.xpath("//r:error[r:severity='fatal']/r:rule/text()", namespaces=REPORT_NS),
            " ".join(report.xpath("//r:error/r:message/text()", namespaces=REPORT_NS)))


def test_each_forbidden_character_refuses_a_zone_flow_and_ordinary_names_pass(config_file, running):
    """Every character of the reform's list but '/' (which no Linux name holds): taken, refused with IRR_NOM_F
    naming the character, and told as 501 IRR_NOM_F in the flow's lifecycle. (A 257-character name neither:
    Linux names are at most 255 bytes; see the batches.)"""
    root = config_file.parent
    refused = {f"zone{c}{i}.xml": c for i, c in enumerate(FORBIDDEN) if c != "/"}
    ordinary = ["Facture (1).xml", "Reçu n°2 – été (copie).xml", "-rf.xml"]
    for i, name in enumerate([*refused, *ordinary]):
        drop(root, SUPPLIER, name, renumber(INVOICE, f"ZONE-NAME-{i}"))
    for name, character in refused.items():
        report = wait_report(root, SUPPLIER, name)
        state, rules, messages = _outcome(report)
        assert (state, rules) == ("INCIDENTE", ["IRR_NOM_F"]), name
        assert f"The file name {name!r} has {character} (" in messages
        shown = json.loads(cli(config_file, "flows", "show", report.findtext("r:flow/r:flowId", namespaces=REPORT_NS),
                               "--json"))
        assert [(e["code"], e["reasons"]) for e in shown["events"] if e["kind"] == "flow_lifecycle_told"] == [
            ("501", ["IRR_NOM_F"])]
    for name in ordinary:
        assert _outcome(wait_report(root, SUPPLIER, name))[:2] == ("INTEGRE", []), name


@pytest.mark.parametrize("member,says", [
    ("dossier/facture#1.xml", "has #"),
    ("l" * (MAX_LENGTH - 3) + ".xml", f"{MAX_LENGTH + 1} characters, more than the {MAX_LENGTH}"),
    ("Factures (mars)/Reçu@été.xml", "has @"),
])
def test_a_batch_member_with_a_refused_name_refuses_the_batch(config_file, running, member, says):
    """A member whose name (or the name of a folder in its path) breaks the rule refuses the whole archive before
    anything is read, IRR_NOM_F naming the member; its good sibling is not judged."""
    root = config_file.parent
    name = f"batch-{len(member)}.tar.gz"
    drop(root, SUPPLIER, name, tar_gz_of({"ok.xml": renumber(INVOICE, "ZONE-MEMBER-1"), member: INVOICE}))
    state, rules, messages = _outcome(wait_report(root, SUPPLIER, name))
    assert (state, rules) == ("INCIDENTE", ["IRR_NOM_F"])
    assert f"Archive member {member!r}: The file name" in messages and says in messages


def test_batch_members_with_ordinary_names_in_folders_are_integrated(config_file, running):
    root = config_file.parent
    members = {"Factures (mars)/Facture (1).xml": renumber(INVOICE, "ZONE-MEMBER-2"),
               "Factures (mars)/Reçu n°2 – été.xml": renumber(INVOICE, "ZONE-MEMBER-3")}
    drop(root, SUPPLIER, "Lot (mars).zip", zip_of(members))
    report = wait_report(root, SUPPLIER, "Lot (mars).zip")
    assert _outcome(report)[:2] == ("INTEGRE", [])
    assert report.xpath("r:invoices/r:invoice/r:name/text()", namespaces=REPORT_NS) == list(members)
