"""Zone confinement: an account sees /in and /out of its own zone, and no path or link leads elsewhere."""

from __future__ import annotations

import io
import os
import stat

import paramiko
import pytest

from tests.harness import SAMPLES, files, outbox, wait_report
from tests.sftp_harness import PASSWORDS

SECRET = b"outside the zone"


@pytest.fixture
def outside(tmp_path):
    """A file outside every zone, which no SFTP client may read or write."""
    path = tmp_path / "outside.xml"
    path.write_bytes(SECRET)
    return path


def test_root_shows_in_and_out_only(sftp_site):
    site = sftp_site()
    with site.client() as client, client.open_sftp() as sftp:
        assert sorted(sftp.listdir("/")) == ["in", "out"]
        for path in ("..", "/..", "/../..", "../../..", "/in/../.."):
            assert sorted(sftp.listdir(path)) == ["in", "out"]
            assert sftp.normalize(path) == "/"
        sftp.chdir("/in")
        assert sftp.normalize("../../../etc") == "/etc"  # clamped to the virtual root, then nothing there
        with pytest.raises(FileNotFoundError):
            sftp.listdir("/etc")


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../etc/passwd", "/in/../../../etc/passwd",
                                  "/out/../../mairie-exemple/out/x.xml", "/../acme/out", "/proc/self/environ"])
def test_paths_outside_the_zone_do_not_exist(sftp_site, path):
    site = sftp_site()
    with site.client() as client, client.open_sftp() as sftp:
        for attempt in (sftp.stat, sftp.lstat, lambda p: sftp.open(p).read(), sftp.listdir, sftp.remove):
            with pytest.raises(OSError) as raised:
                attempt(path)
            assert str(site.root) not in str(raised.value)


def test_escapes_with_the_openssh_client(sftp_site, tmp_path):
    """cd/get/put with '..' and absolute paths: every one fails, and nothing is written outside."""
    site = sftp_site()
    (tmp_path / "x.xml").write_bytes(b"<x/>")
    attempts = ["cd ..", "pwd", "get /etc/passwd", "get ../../../../etc/passwd", "cd /etc",
                "put x.xml /etc/x.xml", "put x.xml ../../x.xml", "put x.xml /in/../../x.xml",
                "put x.xml /out/x.xml", "mkdir /in/sub", "ln -s /etc/passwd /in/link", "symlink /etc /in/etc",
                "get /in/x.xml", "rm /in/x.xml"]
    result = site.openssh().run(tmp_path, ["-" + command for command in attempts])
    assert result.returncode == 0, result.stderr
    assert "Remote working directory: /\n" in result.stdout
    assert not (tmp_path / "passwd").exists()
    for line in ('File "/etc/passwd" not found', 'File "/../../../../etc/passwd" not found',
                 "stat remote: No such file", 'dest open "/etc/x.xml": No such file',
                 'dest open "/../../x.xml": No such file', 'dest open "/in/../../x.xml": No such file',
                 'dest open "/out/x.xml": Permission denied', 'remote mkdir "/in/sub": Permission denied',
                 'remote symlink file "/etc/passwd" to "/in/link": Operation unsupported',
                 'remote symlink file "/etc" to "/in/etc": Operation unsupported'):
        assert line in result.stderr
    assert str(site.root) not in result.stderr + result.stdout
    assert not list(site.root.glob("**/x.xml"))


def test_planted_symlinks_are_never_followed(sftp_site, outside):
    """Links planted in a zone on disk, to a file or a folder outside: invisible, unreadable, unwritable."""
    site = sftp_site()
    zone = site.zone()
    os.symlink(outside, zone / "out" / "leak.xml")
    os.symlink(outside.parent, zone / "out" / "tree")
    os.symlink(outside, zone / "in" / "trap.part")
    with site.client() as client, client.open_sftp() as sftp:
        assert "leak.xml" not in sftp.listdir("/out") and "tree" not in sftp.listdir("/out")
        for path in ("/out/leak.xml", "/out/tree/outside.xml"):
            with pytest.raises(OSError):
                sftp.open(path).read()
        with pytest.raises(OSError):
            sftp.listdir("/out/tree")
        with sftp.open("/in/trap.part", "a") as handle:  # resume without truncation must not write through
            handle.write(b"written")
        with pytest.raises(OSError):
            sftp.remove("/out/leak.xml")
    assert outside.read_bytes() == SECRET
    assert (zone / "out" / "leak.xml").is_symlink()


def test_zone_folder_replaced_by_a_link_refuses_the_session(sftp_site, tmp_path):
    site = sftp_site()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.xml").write_bytes(SECRET)
    outbox_dir = site.zone() / "out"
    for entry in outbox_dir.iterdir():
        entry.unlink()
    outbox_dir.rmdir()
    os.symlink(elsewhere, outbox_dir)
    # the server drops the session: while the client opens SFTP (SSHException), or before (socket closed)
    with site.client() as client, pytest.raises((paramiko.SSHException, OSError)):
        client.open_sftp().listdir("/out")


def test_links_cannot_be_made_or_read(sftp_site):
    site = sftp_site()
    with site.client() as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(b"<x/>"), "/in/a.part")
        for attempt in (lambda: sftp.symlink("/etc/passwd", "/in/l.part"), lambda: sftp.readlink("/in/a.part"),
                        lambda: sftp.mkdir("/in/d"), lambda: sftp.rmdir("/in")):
            with pytest.raises(OSError):
                attempt()
    assert [p.name for p in (site.zone() / "in").iterdir()] == ["a.part"]


def test_in_is_write_only_and_out_read_delete(sftp_site, tmp_path):
    """Reading in/ or writing out/ is refused; out/ files are read and deleted; renames stay in in/."""
    site = sftp_site()
    (outbox(site.root, "acme") / "r.xml").write_bytes(b"<r/>")
    with site.client() as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(b"<x/>"), "/in/a.part")
        with pytest.raises(PermissionError):
            sftp.open("/in/a.part").read()
        with pytest.raises(PermissionError):
            sftp.putfo(io.BytesIO(b"<x/>"), "/out/w.xml")
        with pytest.raises(PermissionError):
            sftp.rename("/in/a.part", "/out/a.xml")
        with pytest.raises(PermissionError):
            sftp.rename("/out/r.xml", "/in/r.xml")
        assert sftp.open("/out/r.xml").read() == b"<r/>"
        assert stat.S_ISDIR(sftp.stat("/out").st_mode)
        sftp.remove("/out/r.xml")
        sftp.remove("/in/a.part")  # a temporary upload of one's own may be withdrawn
    assert not (outbox(site.root, "acme") / "r.xml").exists()


def test_other_accounts_are_unreachable(sftp_site, tmp_path):
    """acme cannot reach mairie-exemple's zone by any path; each sees only its own out/."""
    site = sftp_site()
    sample = SAMPLES / "flows" / "ubl-invoice-ok.xml"
    assert site.openssh().run(tmp_path, [f"put {sample} /in/"]).returncode == 0
    wait_report(site.root, "acme", sample.name)
    [delivered] = files(outbox(site.root, "mairie-exemple"), ".xml")
    with site.client() as client, client.open_sftp() as sftp:
        for path in (f"/../mairie-exemple/out/{delivered.name}", f"../../../mairie-exemple/out/{delivered.name}",
                     f"{site.root}/var/zones/mairie-exemple/out/{delivered.name}"):
            with pytest.raises(OSError):
                sftp.open(path).read()
        assert delivered.name not in sftp.listdir("/out")
    with site.client("mairie-exemple") as client, client.open_sftp() as sftp:
        assert sftp.listdir("/out") == [delivered.name]
        assert sftp.open(f"/out/{delivered.name}").read() == sample.read_bytes()
    with pytest.raises(paramiko.AuthenticationException):
        site.client("acme", password=PASSWORDS["mairie-exemple"])
