"""A full disk: intake refuses files without acknowledging them and takes them once space is freed; work
in hand waits for room. Nothing acknowledged is lost, and nothing fails, or counts as failed, for want of room.

Each test mounts a small tmpfs of its own as the volume (mounting needs root: skipped with the reason
otherwise), puts on it the data directory (store, spool, SQLite's database), the zones or both, fills it
with a filler file, then deletes the filler.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path

import paramiko
import pytest
from lxml import etree
from structlog.testing import capture_logs

from gateway import config as config_module
from gateway.app import App
from gateway.data.models import Delivery, DeliveryState, Flow, FlowState
from gateway.engine.worker import Worker
from gateway.ingest.intake import Arrival, intake
from gateway.ops.diskfull import DiskFull
from gateway.ops.log import configure_logging
from tests.harness import (
    ACK_NS,
    SAMPLES,
    GatewayProcess,
    ack_for_name,
    cli,
    drop,
    files,
    inbox,
    load_samples,
    outbox,
    renumber,
    rows,
    wait_for,
    wait_report,
    write_config,
)
from tests.sftp_harness import OpenSSH, known_hosts, need_openssh_client

pytestmark = pytest.mark.slow  # a real full volume, and processes waiting for room

SUPPLIER, RECIPIENT = "acme", "mairie-exemple"
INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
PASSWORD = "acme-disk-full-1"


class Volume:
    """A mounted tmpfs of a few MiB, and a filler file that takes every page left on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def fill(self) -> None:
        """Write the filler on until the volume is full (again, if the gateway freed a page meanwhile)."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        chunk = bytes(1 << 16)
        try:
            while True:
                os.write(fd, chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def volume(tmp_path):
    root = tmp_path / "volume"
    root.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: a small tmpfs to fill up cannot be mounted")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(root)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"a small tmpfs to fill up cannot be mounted (root needed): {mounted.stderr.strip()}")
    try:
        yield Volume(root)
    finally:
        unmounted = subprocess.run(["umount", str(root)], capture_output=True, text=True)
        if unmounted.returncode:  # a file left open: detach the volume anyway, and say so
            subprocess.run(["umount", "--lazy", str(root)], check=True)
            pytest.fail(f"the volume was still in use: {unmounted.stderr.strip()}")


def _configure(tmp_path: Path, volume: Volume, database_url: str | None, on_volume: set[str],
               **sections: dict) -> tuple[Path, Path]:
    """A configuration with the data directory, the zones and SQLite's database on the volume or not, as
    on_volume says ("data", "zones", "database"); returns it and the root of the zones, as the harness takes it."""
    data, zones, database = (volume.root if part in on_volume else tmp_path for part in ("data", "zones", "database"))
    paths = {"data_dir": str(data / "var"), "zones_dir": str(zones / "var" / "zones")}
    if database_url is None:
        paths["database_url"] = f"sqlite:///{database / 'gateway.db'}"
    config = write_config(tmp_path, {"gateway": paths, **sections}, database_url)
    load_samples(config)
    return config, zones


def _invoices(prefix: str, count: int) -> dict[str, bytes]:
    return {f"{prefix}-{i}.xml": renumber(INVOICE, f"{prefix.upper()}-{i}") for i in range(count)}


def _log(path: Path) -> list[dict]:
    """The gateway's JSON log lines so far (a line still being written is left for the next reading)."""
    lines = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            lines.append(json.loads(line))
    return lines


def _refused(log: Path, names: set[str], times: int) -> bool:
    """Whether intake refused each of names for want of room at least times times."""
    counts = Counter(e.get("original_name") for e in _log(log) if e["event"] == "intake_refused")
    return all(counts[name] >= times for name in names)


def _sftp(config: Path, log: Path) -> paramiko.SSHClient:
    """paramiko's client, logged in as the supplier to the running gateway's SFTP server, host key pinned."""
    port = wait_for(lambda: next((e["port"] for e in _log(log) if e["event"] == "sftp_started"), None), 60,
                    "the SFTP server")
    key = paramiko.Ed25519Key(filename=str(config_module.load(config).sftp_host_key))
    client = paramiko.SSHClient()
    client.get_host_keys().add(f"[127.0.0.1]:{port}", key.get_name(), key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", port, username=SUPPLIER, password=PASSWORD, look_for_keys=False, allow_agent=False)
    return client


def _openssh(config: Path, log: Path, workdir: Path) -> OpenSSH:
    """OpenSSH's sftp client as the supplier, with its password, the server's host key pinned."""
    port = next(e["port"] for e in _log(log) if e["event"] == "sftp_started")
    key = paramiko.Ed25519Key(filename=str(config_module.load(config).sftp_host_key))
    return OpenSSH(port, SUPPLIER, known_hosts(workdir / "known_hosts", port, key), password=PASSWORD)


def _put(client: paramiko.SSHClient, name: str, content: bytes) -> bool:
    """Upload name into /in; whether the server took it (False: it answered a failure)."""
    try:
        with client.open_sftp() as sftp:
            sftp.putfo(io.BytesIO(content), f"/in/{name}")
    except OSError:
        return False
    return True


@pytest.mark.parametrize("on_volume", [{"data", "zones", "database"}, {"data", "database"}],
                         ids=["all-on-volume", "zones-elsewhere"])
def test_full_volume_refuses_files_unacknowledged_then_takes_them(tmp_path, volume, database_url, on_volume):
    """Files dropped, and uploaded, while the volume is full get no acknowledgement and stay in in/ (an upload
    is refused where in/ itself has no room); once the filler is gone each gets one acknowledgement and one
    report, and the flows acknowledged before are all processed. One error line a process says the disk is full."""
    if "zones" not in on_volume:
        need_openssh_client()
    config, zones = _configure(tmp_path, volume, database_url, on_volume, sftp={"enabled": True, "port": 0},
                               log={"level": "debug"}, validate={"processes": 1}, delivery={"retry_base": 0.5})
    cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--password", PASSWORD)
    before, during, uploaded = _invoices("before", 6), _invoices("during", 4), _invoices("uploaded", 1)
    staging = zones / "staging"  # beside the zones: a rename drops a file into in/ without needing room
    staging.mkdir()
    for name, content in during.items():
        (staging / name).write_bytes(content)
    gateway = GatewayProcess(config)
    gateway.start()
    client = None
    try:
        client = _sftp(config, gateway.log)
        for name, content in before.items():
            drop(zones, SUPPLIER, name, content)
        for name in before:  # all written: work still writing as the volume fills would free pages when it fails
            wait_report(zones, SUPPLIER, name, timeout=60)

        volume.fill()
        for name in during:
            os.rename(staging / name, inbox(zones, SUPPLIER) / name)
        [(upload_name, upload)] = uploaded.items()
        taken_over_sftp = _put(client, upload_name, upload)
        assert taken_over_sftp == ("zones" not in on_volume), "an upload fails only where in/ has no room"
        waiting = set(during) | ({upload_name} if taken_over_sftp else set())
        wait_for(lambda: _refused(gateway.log, waiting, times=2), 60, "each waiting file refused at two scans")
        assert gateway.proc.poll() is None
        assert [n for n in waiting | set(uploaded) if ack_for_name(zones, SUPPLIER, n) is not None] == []
        if taken_over_sftp:  # the same name again, while the first waits: refused at close (which paramiko's
            (tmp_path / upload_name).write_bytes(upload)  # client ignores, OpenSSH's does not), nothing kept
            again = _openssh(config, gateway.log, tmp_path).run(tmp_path, [f"put {upload_name} /in/{upload_name}"])
            assert again.returncode != 0 and "failure" in again.stderr.lower(), again.stderr
        assert sorted(os.listdir(inbox(zones, SUPPLIER))) == sorted(waiting), "files wait in in/, nothing else"

        volume.free()
        if not taken_over_sftp:
            assert _put(client, upload_name, upload)
        everything = {**before, **during, **uploaded}
        for name in everything:
            wait_report(zones, SUPPLIER, name, timeout=60)
        wait_for(lambda: len(files(outbox(zones, RECIPIENT), ".xml")) >= len(everything), 60, "every delivery")
    finally:
        if client is not None:
            client.close()
        assert gateway.stop() == 0

    acks = files(outbox(zones, SUPPLIER), ".ack.xml")
    names = Counter(etree.parse(str(p)).getroot().findtext("a:originalName", namespaces=ACK_NS) for p in acks)
    assert names == Counter(everything.keys()), "one acknowledgement for each file"
    assert ({p.name.removesuffix(".ack.xml") for p in acks}
            == {p.name.removesuffix(".report.xml") for p in files(outbox(zones, SUPPLIER), ".report.xml")})
    delivered = Counter(p.read_bytes() for p in files(outbox(zones, RECIPIENT), ".xml"))
    assert delivered == Counter(everything.values()), "each invoice delivered once"
    assert os.listdir(inbox(zones, SUPPLIER)) == []
    flows = rows(config, Flow)
    assert len(flows) == len(everything) and {f.state for f in flows} == {FlowState.INTEGRE}

    lines = _log(gateway.log)
    errors = [e for e in lines if e.get("level") in ("error", "critical")]
    # one line from each process that met it: the gateway, and its SFTP server's process when that refused the
    # second upload of a name at its close (taken at once, gateway.ingest.sftp.uploads.name_final)
    assert [e["event"] for e in errors] == ["disk_full"] * (1 + taken_over_sftp), "no flood, no failure"
    for error in errors:
        assert error["refusals"] == 1
        assert "no space left" in error["error"].lower() or "disk is full" in error["error"]
    assert [e["event"] for e in lines if e["event"] == "disk_space_recovered"] == ["disk_space_recovered"]


@pytest.mark.parametrize("on_volume", [{"data", "database"}, {"zones"}],
                         ids=["judgement-finds-no-room", "deliveries-and-report-find-no-room"])
def test_work_finding_no_room_waits_for_it_and_is_not_counted_as_failed(tmp_path, volume, database_url, on_volume,
                                                                        rules_stage):
    """A flow acknowledged before the volume filled is held by its worker, which tries again until there is
    room: with a single attempt allowed (flows and deliveries), it still ends INTEGRE, delivered once."""
    config, zones = _configure(tmp_path, volume, database_url, on_volume, worker={"max_attempts": 1},
                               delivery={"max_attempts": 1, "retry_base": 0.2})
    configure_logging("debug", None)
    app = App.from_settings(config_module.load(config))
    app.rules = rules_stage
    flow = intake(app, drop(zones, SUPPLIER, "late.xml", INVOICE), Arrival(SUPPLIER, "late.xml", "zone"))
    assert ack_for_name(zones, SUPPLIER, "late.xml") is not None
    report = outbox(zones, SUPPLIER) / f"{flow.id}.report.xml"
    stop = threading.Event()
    worker = threading.Thread(target=Worker(app, "disk-full-test:1:0").run, args=(stop,))
    volume.fill()
    try:
        with capture_logs() as logs:
            worker.start()
            wait_for(lambda: sum(e["event"] == "work_waits_for_room" for e in logs) >= 2, 30,
                     "the worker to find no room twice")
            assert not report.exists()
            volume.free()
            wait_for(report.exists, 30, "the report once there is room")
            wait_for(lambda: all(d.state is DeliveryState.DELIVERED for d in rows(config, Delivery)), 30,
                     "the deliveries, retried after the report", interval=0.2)
    finally:
        stop.set()
        worker.join()
        app.engine.dispose()

    assert [e for e in logs if e["event"] == "work_failed"] == []
    decisions = Counter(e["event"] for e in logs if e.get("flow_id") == flow.id and "by" in e)
    assert decisions["invoice_accepted"] == decisions["report_written"] == 1, "logged once, when it stands"
    [stored] = rows(config, Flow)
    assert (stored.state, stored.attempts) == (FlowState.INTEGRE, 1)
    deliveries = rows(config, Delivery)
    assert deliveries and {(d.state, d.attempts) for d in deliveries} == {(DeliveryState.DELIVERED, 1)}
    assert [p.read_bytes() for p in files(outbox(zones, RECIPIENT), ".xml")] == [INVOICE]


@pytest.mark.parametrize("on_volume", [{"data", "zones", "database"}, {"database"}],
                         ids=["no-room-to-spool", "no-room-to-commit"])
def test_intake_without_room_leaves_the_file_where_it_was(tmp_path, volume, on_volume):
    """Intake on a full volume raises DiskFull and leaves the file in in/, whole, the spool empty, no flow
    recorded: also when the file was claimed already and only the database found no room (claim undone)."""
    config, zones = _configure(tmp_path, volume, None, on_volume)
    app = App.from_settings(config_module.load(config))
    path = drop(zones, SUPPLIER, "refused.xml", INVOICE)
    volume.fill()
    try:
        with pytest.raises(DiskFull):
            intake(app, path, Arrival(SUPPLIER, "refused.xml", "zone"))
    finally:
        app.engine.dispose()
    assert path.read_bytes() == INVOICE
    assert os.listdir(app.settings.spool_dir) == []
    assert files(outbox(zones, SUPPLIER), ".ack.xml") == [] and rows(config, Flow) == []
