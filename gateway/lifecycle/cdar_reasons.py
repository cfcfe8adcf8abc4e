"""The reason codes a CDAR may carry with each status code (BR-FR-CDV-CL-09), and how the gateway tells a
reason outside them.

BR-FR-CDV (FNFE-MPE, 1.4.0.01) requires a reason code (MDT-113) with 206, 207, 208, 210, 213 and 501, each
from a list of its own, and any reason code to be one of the reform's. The gateway records what the
recipient gave (any code, or a text alone); its CDAR carries a code the list allows: the recipient's own
where it is in it, else the status's stand-in, the recipient's code kept readable at the head of the reason
text (as the Peppol response keeps it). The gateway's choices of stand-in: a refusal for wrong addressing
(DEST_INC, CODE_ROUTAGE_ERR, SIRET_ERR are not 210 reasons) is DEST_ERR, any other refusal NON_CONFORME; a
suspension JUSTIF_ABS (documents missing, what SUSPENDUE means); a platform rejection REJ_SEMAN; an
irrecevable flow IRR_SYNTAX. A status without a list of its own and without a stand-in simply leaves out a
code the reform does not know.
"""

from __future__ import annotations

from gateway.lifecycle.statuses import ADDRESSING_REASONS

# Every reason code of the reform (BR-FR-CDV-CL-09_MDT-113).
REFORM_REASONS = frozenset([
    "RETRAIT_MAN_SERV", "ST_CT_NON_DECLAR", "SUPPR_COMP_AVOIR", "TRANSF_PMNT_REGIE", "CONTACT_ACHTR", "NON_TRANSMISE",
    "JUSTIF_ABS", "ROUTAGE_ERR", "AUTRE", "COORD_BANC_ERR", "TX_TVA_ERR", "MONTANTTOTAL_ERR", "CALCUL_ERR",
    "NON_CONFORME", "DOUBLON", "DEST_INC", "DEST_ERR", "TRANSAC_INC", "EMMET_INC", "CONTRAT_TERM", "DOUBLE_FACT",
    "CMD_ERR", "ADR_ERR", "SIRET_ERR", "CODE_ROUTAGE_ERR", "REF_CT_ABSENT", "REF_ERR", "PU_ERR", "REM_ERR",
    "QTE_ERR", "ART_ERR", "MODPAI_ERR", "QUALITE_ERR", "LIVR_INCOMP", "REJ_SEMAN", "REJ_UNI", "REJ_COH", "REJ_ADR",
    "REJ_CONT_B2G", "REJ_REF_PJ", "REJ_ASS_PJ", "IRR_VIDE_F", "IRR_TYPE_F", "IRR_SYNTAX", "IRR_TAILLE_PJ",
    "IRR_NOM_PJ", "IRR_VID_PJ", "IRR_EXT_DOC", "IRR_TAILLE_F", "IRR_ANTIVIRUS", "IRR_NOM_F"])

# The codes each status the gateway sends allows (BR-FR-CDV-CL-09_MDT-113_<code>); for 210 those of any
# platform, which the list for Chorus Pro (a sender registered 9999, B2G) holds too, whichever it is.
BY_STATUS = {
    "200": frozenset({"NON_TRANSMISE"}),
    "208": frozenset({"JUSTIF_ABS", "COORD_BANC_ERR", "CMD_ERR", "SIRET_ERR", "CODE_ROUTAGE_ERR", "REF_CT_ABSENT",
                      "REF_ERR"}),
    "210": frozenset({"TX_TVA_ERR", "MONTANTTOTAL_ERR", "CALCUL_ERR", "NON_CONFORME", "DOUBLON", "DEST_ERR",
                      "TRANSAC_INC", "EMMET_INC", "CONTRAT_TERM", "DOUBLE_FACT", "CMD_ERR", "ADR_ERR",
                      "REF_CT_ABSENT"}),
    "213": frozenset({"MONTANTTOTAL_ERR", "CALCUL_ERR", "DOUBLON", "DEST_INC", "ADR_ERR", "REJ_SEMAN", "REJ_UNI",
                      "REJ_COH", "REJ_ADR", "REJ_CONT_B2G", "REJ_REF_PJ", "REJ_ASS_PJ"}),
    "501": frozenset({"IRR_VIDE_F", "IRR_TYPE_F", "IRR_SYNTAX", "IRR_TAILLE_PJ", "IRR_NOM_PJ", "IRR_VID_PJ",
                      "IRR_EXT_DOC", "IRR_TAILLE_F", "IRR_ANTIVIRUS", "IRR_NOM_F"}),
}
STAND_INS = {"208": "JUSTIF_ABS", "210": "NON_CONFORME", "213": "REJ_SEMAN", "501": "IRR_SYNTAX"}
WRONG_ADDRESSING = "DEST_ERR"


def told_reason(cdar_code: str, reason_code: str | None, reason: str | None) -> tuple[str | None, str | None]:
    """The reason code and text a CDAR of cdar_code carries for the reason the gateway recorded."""
    if reason_code in BY_STATUS.get(cdar_code, REFORM_REASONS):
        return reason_code, reason
    text = ": ".join(part for part in (reason_code, reason) if part) or None
    if cdar_code == "210" and (reason_code or "").strip().upper() in ADDRESSING_REASONS:
        return WRONG_ADDRESSING, text
    return STAND_INS.get(cdar_code), text
