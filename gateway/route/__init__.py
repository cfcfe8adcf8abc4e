"""Out: the deliveries of invoices and status-returns to recipients (the queue's retry layer, the channels), and the
directory of public structures that the routing decision (gateway.judge.routing) reads."""

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

__all__ = [
    "DirectoryImportError",
    "Imported",
    "import_accounts",
    "import_directory",
    "import_services",
    "import_structures",
    "parse_bool",
]
