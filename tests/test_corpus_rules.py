"""The real corpus through `gateway validate --json`: XSD verdicts, then EN 16931 verdicts and rule ids.

For each row of the manifest: expect_xsd for the stages up to the XSD and, for XSD-valid files,
expect_rules for the EN 16931 stage (invalid = at least one fatal finding), with every rule of fired_rules
among the reported rule ids. `gateway validate` applies the plain EN 16931 profile, as the official runs did.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.validate.rules import VALIDATOR_ERROR, inventory, packs_dir
from tests.harness import write_config
from tests.test_corpus_xsd import CORPUS, manifest_rows

PACKS = {"ubl-invoice": "cen-en16931-ubl", "ubl-creditnote": "cen-en16931-ubl", "cii": "cen-en16931-cii"}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """One `gateway validate --json` over the whole corpus, by file name."""
    names = [param.values[0]["file"] for param in manifest_rows()]
    config = write_config(tmp_path_factory.mktemp("corpus"))
    result = CliRunner().invoke(main, ["--config", str(config), "validate", "--json",
                                       *(str(CORPUS / name) for name in names)], catch_exceptions=False)
    assert result.exit_code == 1, result.output  # the corpus holds invalid files
    return {Path(verdict["file"]).name: verdict for verdict in json.loads(result.stdout)}


def _verdict(errors: list[dict], stages: set[str]) -> str:
    return "invalid" if any(e["severity"] == "fatal" and e["stage"] in stages for e in errors) else "valid"


@pytest.mark.parametrize("row", manifest_rows())
def test_verdicts_agree_with_the_manifest(verdicts: dict[str, dict], row: dict[str, str]) -> None:
    """Same XSD verdict, same EN 16931 verdict, every expected rule id reported."""
    verdict = verdicts[row["file"]]
    assert _verdict(verdict["errors"], {"admissibility", "xsd"}) == row["expect_xsd"], verdict["errors"][:3]
    if row["expect_xsd"] != "valid":
        assert verdict["rules"] is None
        return
    pack = PACKS[row["syntax"]]
    if pack not in inventory(packs_dir()).packs:
        pytest.skip(f"rule pack {pack} is not installed (`make install` runs `gateway rules fetch`)")
    rules = [e for e in verdict["errors"] if e["stage"] == "rules"]
    assert _verdict(rules, {"rules"}) == row["expect_rules"], rules[:3]
    expected = {rule for rule in row["fired_rules"].split(";") if rule}
    assert expected <= {e["rule"] for e in rules}
    assert [p["name"] for p in verdict["rules"]["packs"]] == [pack] and verdict["rules"]["profile"] == "en16931"
    assert all(e["line"] and e["path"] for e in rules if e["rule"] != VALIDATOR_ERROR), "every assert located"

