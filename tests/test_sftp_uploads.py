"""Uploads over SFTP: each complete file becomes exactly one flow; nothing cut short ever does."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import struct
import time

import paramiko
import pytest

from gateway.ingest.sftp.uploads import Handoff
from tests.harness import ACK_NS, REPORT_NS, SAMPLES, ack_for_name, files, outbox, renumber, wait_for, wait_report
from tests.sftp_harness import PASSWORDS

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()


def _invoice(number: str) -> bytes:
    return renumber(INVOICE, number)


def _ack(site, name: str):
    return wait_for(lambda: ack_for_name(site.root, "acme", name), what=f"acknowledgement of {name}")


def _no_upload_left(site) -> bool:
    return not any(os.scandir(site.zone() / "in"))


def _settled(site, marker: str) -> None:
    """Upload a marker and wait for its acknowledgement: whatever came before has been handled."""
    with site.client() as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(_invoice(marker)), f"/in/{marker}.xml")
    _ack(site, f"{marker}.xml")


def test_drop_then_acknowledgement_read_over_sftp(sftp_site, tmp_path):
    """put with OpenSSH's client (key); the acknowledgement and the report are then read from /out."""
    site = sftp_site()
    sample = SAMPLES / "flows" / "ubl-invoice-ok.xml"
    result = site.openssh().run(tmp_path, [f"put {sample} /in/"])
    assert result.returncode == 0, result.stderr
    flow_id = wait_report(site.root, "acme", sample.name).findtext("r:flow/r:flowId", namespaces=REPORT_NS)
    ack, report_name = f"{flow_id}.ack.xml", f"{flow_id}.report.xml"
    result = site.openssh().run(tmp_path, ["ls /out", f"get /out/{ack}", f"get /out/{report_name}"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ack).read_bytes() == (outbox(site.root, "acme") / ack).read_bytes()
    assert (tmp_path / report_name).exists()
    [flow] = site.flows()
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    assert (flow.channel, flow.original_name, flow.sha256) == ("sftp", sample.name, digest)


def test_password_login_with_openssh_and_paramiko(sftp_site, tmp_path):
    """The OpenSSH client (SSH_ASKPASS) and paramiko both log in with a password and upload."""
    site = sftp_site()
    (tmp_path / "a.xml").write_bytes(_invoice("PW-1"))
    result = site.openssh(password=PASSWORDS["acme"]).run(tmp_path, ["put a.xml /in/a.xml"])
    assert result.returncode == 0, result.stderr
    with site.client() as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(_invoice("PW-2")), "/in/b.xml")
    _ack(site, "a.xml"), _ack(site, "b.xml")
    assert sorted(f.original_name for f in site.flows()) == ["a.xml", "b.xml"]


def test_temporary_name_then_rename_is_one_flow(sftp_site, tmp_path):
    """x.part or .x.part renamed to x.xml (OpenSSH rename, paramiko rename and posix-rename): one flow each,
    none for the temporary names; a hidden one answers stat, as a pushing gateway checks its size."""
    site = sftp_site()
    for name in ("x.xml", "w.xml"):
        (tmp_path / name).write_bytes(_invoice(name))
    result = site.openssh().run(tmp_path, ["put x.xml /in/x.xml.part", "rename /in/x.xml.part /in/x.xml",
                                           "put w.xml /in/.w.xml.part", "rename /in/.w.xml.part /in/w.xml"])
    assert result.returncode == 0, result.stderr
    with site.client() as client, client.open_sftp() as sftp:
        assert "posix-rename@openssh.com" in _extensions(sftp)
        for name, temporary, rename in (("y.xml", "y.xml.filepart", sftp.rename),
                                        ("z.xml", "z.xml.filepart", sftp.posix_rename),
                                        ("v.xml", ".v.xml.part", sftp.posix_rename)):
            sftp.putfo(io.BytesIO(_invoice(name)), f"/in/{temporary}")
            assert sftp.stat(f"/in/{temporary}").st_size == len(_invoice(name))
            assert ack_for_name(site.root, "acme", temporary) is None
            rename(f"/in/{temporary}", f"/in/{name}")
            sftp.utime(f"/in/{name}", (0, 0))  # as WinSCP does after renaming: must not fail once taken
            assert sftp.stat(f"/in/{name}").st_size == len(_invoice(name))
    names = ["v.xml", "w.xml", "x.xml", "y.xml", "z.xml"]
    for name in names:
        _ack(site, name)
    assert sorted(f.original_name for f in site.flows()) == names
    assert _no_upload_left(site)


def test_same_name_twice_in_a_row_makes_two_flows(sftp_site):
    """A second upload under a name still waiting for intake is not written over the first."""
    site = sftp_site()
    with site.client() as client, client.open_sftp() as sftp:
        for number in ("TWICE-1", "TWICE-2", "TWICE-3"):
            sftp.putfo(io.BytesIO(_invoice(number)), "/in/same.xml")
    wait_for(lambda: len(files(outbox(site.root, "acme"), ".ack.xml")) == 3, what="three acknowledgements")
    assert len({f.sha256 for f in site.flows()}) == 3


def test_connection_dropped_mid_upload_leaves_nothing(sftp_site):
    """paramiko's transport closed while a file is open for writing: no flow, no ack, no file."""
    site = sftp_site()
    client = site.client()
    sftp = client.open_sftp()
    handle = sftp.open("/in/cut.xml", "w")
    handle.write(_invoice("CUT-1")[:2000])
    handle.flush()
    wait_for(lambda: any(os.scandir(site.zone() / "in")), what="the partial upload on disk")
    client.get_transport().close()
    wait_for(lambda: _no_upload_left(site), what="the partial upload deleted")
    _settled(site, "after-cut")
    assert [f.original_name for f in site.flows()] == ["after-cut.xml"]


def test_openssh_client_killed_mid_upload_leaves_nothing(sftp_site, tmp_path):
    """The sftp process killed with SIGKILL during a large put: no flow, no ack, no partial file."""
    site = sftp_site()
    big = tmp_path / "big.xml"
    with open(big, "wb") as fh:
        fh.truncate(512 * 1024 * 1024)  # sparse: large enough to be cut off mid-way, cheap to read
    proc = site.openssh().start(tmp_path, [f"put {big} /in/big.xml"])
    inbox = site.zone() / "in"
    wait_for(lambda: any(e.stat().st_size > 1024 * 1024 for e in os.scandir(inbox)), what="upload under way")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: _no_upload_left(site), what="the partial upload deleted")
    _settled(site, "after-kill")
    assert [f.original_name for f in site.flows()] == ["after-kill.xml"]
    assert ack_for_name(site.root, "acme", "big.xml") is None


def test_oversize_upload_is_refused_and_leaves_nothing(sftp_site, tmp_path):
    """A file over [ingest] max_flow_bytes: the put fails saying the limit, the partial file is deleted, no flow."""
    site = sftp_site(ingest={"max_flow_bytes": 64 * 1024})
    (tmp_path / "huge.xml").write_bytes(_invoice("HUGE") + b"<!--" + b"x" * 200_000 + b"-->")
    result = site.openssh().run(tmp_path, ["put huge.xml /in/huge.xml"])
    assert result.returncode != 0
    assert "huge.xml" in result.stderr
    assert "gateway: file too large: [ingest] max_flow_bytes (65536 bytes)" in result.stderr
    assert _no_upload_left(site)
    _settled(site, "after-huge")
    assert [f.original_name for f in site.flows()] == ["after-huge.xml"]


def test_names_and_files_per_session_are_limited(sftp_site):
    """Names the name rule refuses (gateway.ingest.names), and uploads past max_files_per_session, are refused."""
    site = sftp_site(max_files_per_session=2)
    with site.client() as client, client.open_sftp() as sftp:
        for refused, rule in (("/in/a#b.xml", "IRR_NOM_F"), ("/in/bell\x07.xml", "FLOW-NAME-INVALID")):
            with pytest.raises(PermissionError, match=rule):
                sftp.putfo(io.BytesIO(b"<x/>"), refused)
        with pytest.raises(PermissionError, match="IRR_NOM_F"):  # a temporary name is a dot and an allowed name
            sftp.putfo(io.BytesIO(b"<x/>"), "/in/.a#b.xml")
        with pytest.raises(FileNotFoundError):  # the gateway's own uploads in progress: invisible, not refused
            sftp.putfo(io.BytesIO(b"<x/>"), "/in/.sftp-upload-0123456789abcdef")
        sftp.putfo(io.BytesIO(_invoice("LIM-1")), "/in/one.xml")
        sftp.putfo(io.BytesIO(_invoice("LIM-2")), "/in/two.xml")
        with pytest.raises(PermissionError, match=r"max_files_per_session \(2\)"):
            sftp.putfo(io.BytesIO(_invoice("LIM-3")), "/in/three.xml")
    _ack(site, "one.xml"), _ack(site, "two.xml")
    assert _no_upload_left(site)


def test_resumed_temporary_upload_keeps_its_start(sftp_site):
    """A client resuming x.part (open without truncation, write at the end) completes the same file."""
    site = sftp_site()
    content = _invoice("RESUME-1")
    with site.client() as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(content[:1000]), "/in/r.xml.part")
        with sftp.open("/in/r.xml.part", "a") as handle:
            handle.seek(1000)
            handle.write(content[1000:])
        sftp.posix_rename("/in/r.xml.part", "/in/r.xml")
    ack = _ack(site, "r.xml")
    assert ack.findtext("a:sha256", namespaces=ACK_NS) == hashlib.sha256(content).hexdigest()


def test_modes_owners_and_times_are_ignored(sftp_site):
    """chmod, chown and utime are answered OK and change nothing on disk."""
    site = sftp_site()
    with site.client() as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(b"<x/>"), "/in/p.part")
        before = os.stat(site.zone() / "in" / "p.part")
        sftp.chmod("/in/p.part", 0o777)
        sftp.chown("/in/p.part", 0, 0)
        sftp.utime("/in/p.part", (0, 0))
        after = os.stat(site.zone() / "in" / "p.part")
    assert (after.st_mode, after.st_uid, after.st_mtime) == (before.st_mode, before.st_uid, before.st_mtime)


def test_stop_cuts_uploads_short_and_restart_keeps_the_host_key(sftp_site):
    """Stopping the gateway drops an upload in progress (deleted); the host key survives a restart."""
    site = sftp_site()
    client = site.client()
    handle = client.open_sftp().open("/in/during-stop.xml", "w")
    handle.write(b"<Invoice>")
    handle.flush()
    key = site.host_key
    site.stop()
    client.close()
    assert _no_upload_left(site)
    site.start()
    assert site.host_key == key
    with site.client() as again:
        assert again.get_transport().get_remote_server_key() == key


def _extensions(sftp: paramiko.SFTPClient) -> set[str]:
    """The extensions the server announces (paramiko's client does not keep them): ask on a new channel."""
    channel = sftp.get_channel().get_transport().open_session()
    channel.invoke_subsystem("sftp")
    channel.sendall(struct.pack(">IBI", 5, 1, 3))  # SSH_FXP_INIT, version 3
    (length,) = struct.unpack(">I", _read(channel, 4))
    data, strings = _read(channel, length)[5:], []  # skip the type and the version: name, value, ...
    while data:
        (size,) = struct.unpack(">I", data[:4])
        strings.append(data[4:4 + size].decode())
        data = data[4 + size:]
    channel.close()
    return set(strings[::2])


def _read(channel: paramiko.Channel, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = channel.recv(n - len(data))
        assert chunk, "channel closed"
        data += chunk
    return data


def _handed(app, handoff, names: list[str]) -> None:
    """Close uploads of names into acme's in/ through handoff, one right after the other."""
    inbox = app.zones.inbox("acme")
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            (inbox / f".{name}.part").write_bytes(_invoice(name.removesuffix(".xml")))
            handoff.finish("acme", fd, f".{name}.part", name)
    finally:
        os.close(fd)


def _waiting(app, names: list[str]) -> list[str]:
    return [name for name in names if (app.zones.inbox("acme") / name).exists()]


def test_handoff_takes_a_burst_once_it_pauses(app, config_file):
    """Uploads closed one after the other wait in in/ while they go on (intake would slow the session down), and
    are all taken once they pause for QUIET."""
    app.zones.ensure("acme")
    handoff = Handoff(app)
    handoff.QUIET, handoff.MOST = 3.0, 600.0
    names = [f"BURST-{i}.xml" for i in range(5)]
    handoff.start()
    try:
        _handed(app, handoff, names)
        paused = time.monotonic()
        assert _waiting(app, names) == names
        wait_for(lambda: not _waiting(app, names), what="the burst taken once it paused")
        assert time.monotonic() - paused > 1.0  # not at once: after the pause
        for name in names:
            _ack_in(config_file, name)
    finally:
        handoff.stop()


def test_handoff_waits_most_then_takes_and_stop_takes_at_once(app, config_file):
    """An upload waits MOST at most however busy the sessions, and stop() hands over what waits at once."""
    app.zones.ensure("acme")
    handoff = Handoff(app)
    handoff.QUIET, handoff.MOST = 600.0, 0.5
    handoff.start()
    try:
        _handed(app, handoff, ["MOST-1.xml"])
        wait_for(lambda: not _waiting(app, ["MOST-1.xml"]), what="the upload taken after MOST")
        handoff.MOST = 600.0
        _handed(app, handoff, ["STOP-1.xml"])
    finally:
        began = time.monotonic()
        handoff.stop()
    assert time.monotonic() - began < 60 and not _waiting(app, ["STOP-1.xml"])
    for name in ("MOST-1.xml", "STOP-1.xml"):
        _ack_in(config_file, name)


def _ack_in(config_file, name: str) -> None:
    wait_for(lambda: ack_for_name(config_file.parent, "acme", name), what=f"acknowledgement of {name}")
