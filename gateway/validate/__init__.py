"""Validation of one invoice document: admissibility, XSD, routing data.

    checked = check_document(content)
    checked.valid, checked.syntax, checked.findings, checked.data
"""

from gateway.validate.document import Checked, Limits, check_document, size_refusal

__all__ = ["Checked", "Limits", "check_document", "size_refusal"]
