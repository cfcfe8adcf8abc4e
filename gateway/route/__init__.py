"""Routing: the directory of public structures and the rules that address an invoice to a recipient."""

from __future__ import annotations

from gateway.route.directory import (
    DirectoryImportError,
    Imported,
    import_accounts,
    import_directory,
    import_services,
    import_structures,
    parse_bool,
)
from gateway.route.router import RULES, Route, Rule, route

__all__ = [
    "RULES",
    "DirectoryImportError",
    "Imported",
    "Route",
    "Rule",
    "import_accounts",
    "import_directory",
    "import_services",
    "import_structures",
    "parse_bool",
    "route",
]
