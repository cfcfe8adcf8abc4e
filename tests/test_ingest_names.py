"""File names as received: recorded as text whatever their bytes, refused when they cannot be shown as sent."""

from __future__ import annotations

import os

import pytest

from gateway.ingest.names import name_refusal, recordable


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
    assert reason in finding.message


@pytest.mark.parametrize("name", ["facture 2024 (1).xml", "Facturé-été.xml", "-rf.xml", "x" * 250 + ".xml"])
def test_ordinary_names_pass(name: str) -> None:
    assert name_refusal(name) is None and recordable(name) == name


def test_bytes_that_are_not_utf8_are_recorded_as_replacement_characters() -> None:
    assert recordable(os.fsdecode(b"bad-\xff\xfe.xml")) == "bad-\ufffd\ufffd.xml"
