"""Business rules: the EN 16931 and French Schematron rule packs, run by a pool of validator processes.

    with RulesStage.from_settings(settings.validation) as stage:    # compiles the packs in each process
        verdict = stage.check(content, "ubl-invoice")              # any thread, any number at once
        checked, verdict = stage.judge(member, limits)             # a document whole: its XSD too
        verdict.valid, verdict.findings, verdict.packs, verdict.fired

Packs are data (gateway/schemas/rulepacks.toml, plus those installed with `gateway rules install`); which of them
judge a document depends on the profile and the specification identifier the document declares. A
recipient's CDAR is judged by the reform's XSD and BR-FR-CDV where installed (stage.check_cdar, cdar.py).
"""

from __future__ import annotations

from gateway.validate.rules.install import InstallError, fetch, install
from gateway.validate.rules.packs import Inventory, Pack, PackRef, inventory, packs_dir
from gateway.validate.rules.pool import PoolError, ValidatorPool, try_pack
from gateway.validate.rules.selection import AUTO, profiles
from gateway.validate.rules.stage import Guards, RulesStage, unjudged
from gateway.validate.rules.verdict import VALIDATOR_ERROR, RulesVerdict

__all__ = [
    "AUTO",
    "VALIDATOR_ERROR",
    "Guards",
    "InstallError",
    "Inventory",
    "Pack",
    "PackRef",
    "PoolError",
    "RulesStage",
    "RulesVerdict",
    "ValidatorPool",
    "fetch",
    "install",
    "inventory",
    "packs_dir",
    "profiles",
    "try_pack",
    "unjudged",
]
