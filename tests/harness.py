"""Helpers shared by the tests: a gateway on a temporary configuration, and waiting with a deadline."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from click.testing import CliRunner
from lxml import etree
from sqlmodel import Session, select

from gateway import config as config_module
from gateway.cli import main
from gateway.data.db import make_engine

if TYPE_CHECKING:
    from gateway.app import App
    from gateway.engine.runner import Gateway
    from gateway.validate.rules import RulesStage

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
CORPUS = REPO.parent / "shared" / "corpus"
ACK_NS = {"a": "urn:gateway:ack:1"}
REPORT_NS = {"r": "urn:gateway:report:1"}

T = TypeVar("T")

FAST = {
    "ingest": {"scan_interval": 0.5, "stable_interval": 0.05, "empty_grace": 0.5},
    "worker": {"poll_interval": 0.05, "lease_seconds": 3.0},
    "web": {"listen": "127.0.0.1:0"},  # any free port, as the web_started log line says
}


def write_config(root: Path, overrides: dict | None = None, database_url: str | None = None) -> Path:
    """A config.toml under root with fast intervals and relative paths inside root; SQLite unless a
    database_url is given (the `database_url` fixture gives one per database the suite runs on)."""
    sections = {k: dict(v) for k, v in FAST.items()}
    if database_url:
        sections["gateway"] = {"database_url": database_url}
    for section, values in (overrides or {}).items():
        sections.setdefault(section, {}).update(values)
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value!r}" if not isinstance(value, bool) else f"{key} = {str(value).lower()}"
                  for key, value in values.items()]
    path = root / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(config: Path, *args: str) -> str:
    """Run a `gateway` command in-process and return its standard output; fail the test on a non-zero exit.

    Log lines go to standard error (and a running gateway's threads may log meanwhile): they are not output.
    """
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def rows(config: Path, model) -> list:
    """Every row of model in the database of the gateway that config configures, in id order."""
    engine = make_engine(config_module.load(config).gateway.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(model).order_by(model.id)).all())
    finally:
        engine.dispose()


def load_samples(config: Path) -> None:
    cli(config, "directory", "import", str(SAMPLES / "directory.csv"), "--services", str(SAMPLES / "services.csv"))
    cli(config, "accounts", "import", str(SAMPLES / "accounts.csv"))


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, what: str = "condition",
             interval: float = 0.02) -> T:
    """Poll predicate every interval until it returns something other than None or False, or fail at the
    deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def outbox(root: Path, account: str) -> Path:
    return root / "var" / "zones" / account / "out"


def inbox(root: Path, account: str) -> Path:
    return root / "var" / "zones" / account / "in"


def drop(root: Path, account: str, name: str, content: bytes) -> Path:
    """Drop a file the way a careful client does: write under a temporary name, then rename."""
    target = inbox(root, account) / name
    tmp = target.with_name(name + ".part")
    tmp.write_bytes(content)
    os.rename(tmp, target)
    return target


def files(directory: Path, suffix: str) -> list[Path]:
    return sorted(p for p in directory.glob(f"*{suffix}") if not p.name.startswith("."))


def report_for(root: Path, account: str, flow_id: str) -> etree._Element:
    return etree.parse(str(outbox(root, account) / f"{flow_id}.report.xml")).getroot()


def ack_for_name(root: Path, account: str, name: str) -> etree._Element | None:
    """The acknowledgement of the flow received under original name, if written yet."""
    for path in files(outbox(root, account), ".ack.xml"):
        ack = etree.parse(str(path)).getroot()
        if ack.findtext("a:originalName", namespaces=ACK_NS) == name:
            return ack
    return None


def wait_report(root: Path, account: str, name: str, timeout: float = 15.0) -> etree._Element:
    """Wait for the acknowledgement of the file dropped as name, then for its report."""
    ack = wait_for(lambda: ack_for_name(root, account, name), timeout, f"acknowledgement of {name}")
    flow_id = ack.findtext("a:flowId", namespaces=ACK_NS)
    path = outbox(root, account) / f"{flow_id}.report.xml"
    wait_for(path.exists, timeout, f"report of {name}")
    return report_for(root, account, flow_id)


def wait_finished(config: Path, flow_id: str, timeout: float = 15.0) -> dict:
    """The flow as `gateway flows show --json` gives it, once its final state is recorded: a worker writes
    the report just before it records that state, so a test that saw the report may be a moment early."""
    def finished() -> dict | None:
        shown = json.loads(cli(config, "flows", "show", flow_id, "--json"))
        return shown if shown["finished_at"] else None
    return wait_for(finished, timeout, f"the final state of flow {flow_id}")


class GatewayProcess:
    """`gateway run` as a child process, to be stopped gracefully or killed; run_args go to `run`, its
    output to log (gateway.log beside the configuration by default)."""

    def __init__(self, config: Path, *run_args: str, log: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.config = config
        self.run_args = run_args
        self.log = log or config.parent / "gateway.log"
        self.env = env  # added to the environment, as GATEWAY_CRASH_AT (gateway.engine.faults)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(self.config), "run",
                                          *self.run_args], stdout=log, stderr=log, cwd=REPO,
                                         env={**os.environ, **self.env} if self.env else None)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def started(self) -> bool:
        """Whether this process logged gateway_started: its SIGTERM handler is in place from then on."""
        mark = f":{self.proc.pid}:".encode()
        with open(self.log, "rb") as log:
            return any(b'"gateway_started"' in line and mark in line for line in log)

    def stop(self) -> int:
        """SIGTERM once it has started (before, SIGTERM's default action kills it), and the exit code; a
        child that ignores it is killed so no test leaves one behind."""
        wait_for(lambda: self.proc.poll() is not None or self.started(), 60, "the gateway's start")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


_NUMBER_PATHS = (
    "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}ID",
    "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}ExchangedDocument"
    "/{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}ID",
)


def renumber(content: bytes, number: str) -> bytes:
    """The same invoice under another invoice number (so each copy is a distinct flow)."""
    root = etree.fromstring(content)
    for path in _NUMBER_PATHS:
        element = root.find(path)
        if element is not None:
            element.text = number
            return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    raise ValueError("no invoice number element found")


_UBL = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
        "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}


def readdress(content: bytes, buyer_siret: str, service_code: str | None, note: str | None = None) -> bytes:
    """A UBL invoice sent to another buyer SIRET and service code (None: no service), with an optional
    note so the bytes differ from every earlier copy."""
    root = etree.fromstring(content)
    for element in root.xpath("cac:AccountingCustomerParty//cbc:*[@schemeID='0009']", namespaces=_UBL):
        element.text = buyer_siret
    reference = root.find("cbc:BuyerReference", _UBL)
    if service_code is None:
        root.remove(reference)
    else:
        reference.text = service_code
    if note:
        root.find("cbc:Note", _UBL).text = note
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A .zip batch of members (name: content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def tar_gz_of(members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    """A .tar.gz batch of members (name: content), then the bare entries of extra (links, devices)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        for info in extra:
            archive.addfile(info)
    return buffer.getvalue()


@contextmanager
def running_with(app: App, stage: RulesStage) -> Iterator[Gateway]:
    """A gateway running in this process (watcher, worker, heartbeat threads), judging with stage."""
    from gateway.engine.runner import Gateway

    app.rules = stage
    gateway = Gateway(app)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
