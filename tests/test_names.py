"""The one rule for file names (gateway.ingest.names): the reform's characters and length (IRR_NOM_F), the names the
gateway cannot show as sent (FLOW-NAME-INVALID), and, for a flow's name, a temporary one."""

from __future__ import annotations

import os

import pytest

from gateway.ingest.names import FORBIDDEN, MAX_LENGTH, flow_name_refusal, name_refusal, recordable


@pytest.mark.parametrize("character", list(FORBIDDEN))
def test_each_character_the_reform_forbids_is_refused_with_irr_nom_f(character: str) -> None:
    finding = name_refusal(f"facture{character}1.xml")
    assert finding is not None and finding.rule == "IRR_NOM_F" and finding.fatal
    assert f"has {character} (a file name may hold none of % $ ! & / \\ : ; « » # @)" in finding.message


def test_a_name_is_at_most_256_characters() -> None:
    assert name_refusal("é" * (MAX_LENGTH - 4) + ".xml") is None
    finding = name_refusal("é" * (MAX_LENGTH - 3) + ".xml")
    assert finding is not None and finding.rule == "IRR_NOM_F"
    assert "257 characters, more than the 256 a file name may have" in finding.message


@pytest.mark.parametrize("name,reason", [
    ("a\x01b.xml", "control characters"),
    ("new\nline.xml", "control characters"),
    ("del\x7f.xml", "control characters"),
    (recordable(os.fsdecode(b"caf\xe9.xml")), "not UTF-8"),  # Latin-1 bytes
    ("facture\u202elmx.exe", "bidirectional controls"),
])
def test_names_that_cannot_be_shown_as_sent_are_refused(name: str, reason: str) -> None:
    finding = name_refusal(name)
    assert finding is not None and finding.rule == "FLOW-NAME-INVALID" and finding.fatal
    assert reason in finding.message and "rename the file" in finding.message


def test_every_reason_is_given_and_the_reforms_rule_named() -> None:
    finding = name_refusal("a#\x01@.xml")
    assert finding.rule == "IRR_NOM_F"
    assert "has # @ (" in finding.message and "and control characters" in finding.message


@pytest.mark.parametrize("name", ["Facture (1).xml", "facture 2024 (1).xml", "Facturé-été.xml",
                                  "Reçu n°2 – copie.xml", "-rf.xml", "x" * 252 + ".xml", "a+b=c,d'e~f[1].xml"])
def test_ordinary_names_pass(name: str) -> None:
    assert name_refusal(name) is None and flow_name_refusal(name) is None and recordable(name) == name


@pytest.mark.parametrize("name", [".facture.xml", "facture.xml.part", "facture.xml.TMP", "facture.xml.filepart"])
def test_a_flow_never_takes_a_temporary_name(name: str) -> None:
    assert name_refusal(name) is None
    finding = flow_name_refusal(name)
    assert finding.rule == "FLOW-NAME-INVALID" and "marks a file still being written" in finding.message


def test_the_reforms_rule_comes_first_for_a_flow_name() -> None:
    assert flow_name_refusal("../escape.xml").rule == "IRR_NOM_F"


def test_bytes_that_are_not_utf8_are_recorded_as_replacement_characters() -> None:
    assert recordable(os.fsdecode(b"bad-\xff\xfe.xml")) == "bad-\ufffd\ufffd.xml"
