"""Which packs judge a document: by profile, syntax and the specification identifier it declares."""

from __future__ import annotations

import pytest

from gateway.config import ValidateSettings
from gateway.validate.rules import RulesStage
from gateway.validate.rules.selection import choose, roles
from tests.harness import CORPUS
from tests.rules_harness import CII_OK, UBL_OK, installed, with_spec_id

EN16931 = "urn:cen.eu:en16931:2017"
MINIMUM = "urn:factur-x.eu:1p0:minimum"
BASIC_WL = "urn:factur-x.eu:1p0:basicwl"
EXTENDED_CTC_FR = "urn:cen.eu:en16931:2017#conformant#urn.cpro.gouv.fr:1p0:extended-ctc-fr"
PEPPOL_FRANCE = "urn:cen.eu:en16931:2017#compliant#urn:peppol:france:billing:cius:1.0"
XRECHNUNG = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"


@pytest.mark.parametrize(("spec_id", "profile", "chosen_roles"), [
    (EN16931, "en16931", ("en16931",)),
    (XRECHNUNG, "en16931", ("en16931",)),
    (None, "en16931", ("en16931",)),  # BR-01 will say what is missing
    (PEPPOL_FRANCE, "fr-ctc", ("en16931", "br-fr")),
    (EXTENDED_CTC_FR, "extended-ctc-fr", ("extended-ctc-fr", "br-fr")),
    ("  " + EXTENDED_CTC_FR + "\n", "extended-ctc-fr", ("extended-ctc-fr", "br-fr")),
])
def test_auto_chooses_by_the_declared_specification(spec_id, profile, chosen_roles):
    """Every EN 16931 invoice gets EN 16931; French CTC profiles add BR-FR; EXTENDED-CTC-FR replaces EN 16931."""
    choice = choose("auto", spec_id)
    assert (choice.profile, choice.roles, choice.refusal) == (profile, chosen_roles, None)


@pytest.mark.parametrize("spec_id", [MINIMUM, BASIC_WL])
def test_auto_refuses_factur_x_profiles_that_are_not_en16931(spec_id):
    """MINIMUM and BASIC WL are refused with their own rule id, before any pack runs."""
    refusal = choose("auto", spec_id).refusal
    assert refusal is not None and refusal.rule == "PROFILE-NOT-EN16931" and refusal.fatal
    assert spec_id in refusal.message


def test_a_fixed_profile_ignores_the_declaration():
    """`gateway validate` applies plain EN 16931 to whatever the document says, like the official validators."""
    assert choose("en16931", MINIMUM).roles == ("en16931",)
    assert choose("fr-ctc", EN16931).roles == ("en16931", "br-fr")
    assert roles("auto") == {"en16931", "br-fr", "extended-ctc-fr"} and roles("en16931") == {"en16931"}


@pytest.fixture(scope="module")
def auto_stage():
    """The gateway's own policy over every usable pack, in one validator process."""
    with RulesStage.from_settings(ValidateSettings(), "auto", processes=1) as stage:
        yield stage


@pytest.mark.parametrize("spec_id", [MINIMUM, BASIC_WL])
def test_minimum_and_basic_wl_are_rejected_as_not_en16931(auto_stage, spec_id):
    """A Factur-X MINIMUM / BASIC WL XML is rejected as such, not by a list of missing EN 16931 elements."""
    verdict = auto_stage.check(with_spec_id(CII_OK.read_bytes(), spec_id), "cii")
    assert verdict.fired == ["PROFILE-NOT-EN16931"] and not verdict.valid and verdict.packs == ()
    assert verdict.spec_id == spec_id


def test_a_french_ctc_invoice_gets_the_french_rules(auto_stage):
    """Declaring a French CTC profile adds BR-FR-Flux2 to EN 16931; the sample lacks the French mentions."""
    installed("cen-en16931-ubl", "br-fr-ubl")
    verdict = auto_stage.check(with_spec_id(UBL_OK.read_bytes(), PEPPOL_FRANCE), "ubl-invoice")
    assert [p.name for p in verdict.packs] == ["cen-en16931-ubl", "br-fr-ubl"] and verdict.profile == "fr-ctc"
    assert "BR-FR-05_BT-22-1" in verdict.fired and not verdict.valid
    plain = auto_stage.check(UBL_OK.read_bytes(), "ubl-invoice")
    assert [p.name for p in plain.packs] == ["cen-en16931-ubl"] and plain.valid


@pytest.mark.parametrize(("sample", "syntax", "packs"), [
    (UBL_OK, "ubl-invoice", ["extended-ctc-fr-ubl", "br-fr-ubl"]),
    (CII_OK, "cii", ["extended-ctc-fr-cii", "br-fr-cii"]),
])
def test_extended_ctc_fr_is_judged_by_its_own_packs(auto_stage, sample, syntax, packs):
    """EXTENDED-CTC-FR declared: its stylesheet and BR-FR judge, for UBL and CII alike."""
    installed(*packs)
    verdict = auto_stage.check(with_spec_id(sample.read_bytes(), EXTENDED_CTC_FR), syntax)
    assert [p.name for p in verdict.packs] == packs and verdict.profile == "extended-ctc-fr"


def test_a_real_extended_ctc_fr_invoice_passes_its_profile(auto_stage):
    """factur-x's own EXTENDED-CTC-FR UBL example passes its packs without a finding."""
    document = CORPUS / "fx__xml__ubl-21-extended-ctc-fr.xml"
    if not document.is_file():
        pytest.skip(f"corpus file not found: {document}")
    verdict = auto_stage.check(document.read_bytes(), "ubl-invoice")
    assert verdict.profile == "extended-ctc-fr" and verdict.findings == ()
