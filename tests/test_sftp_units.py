"""The SFTP server's parts on their own: password hashes, key lines, throttle, caps, path clamping."""

from __future__ import annotations

import time

import paramiko
import pytest
from click.testing import CliRunner
from sqlmodel import select

from gateway import config as config_module
from gateway.app import App
from gateway.cli import main
from gateway.db import session_scope
from gateway.ingest.sftp.auth import KeyLineError, hash_password, key_text, parse_key_line, verify_password
from gateway.ingest.sftp.connection import DISABLED_ALGORITHMS
from gateway.ingest.sftp.fs import Target, clamp, resolve
from gateway.ingest.sftp.limits import ConnectionCaps
from gateway.throttle import FailureThrottle
from gateway.models import AccountKey, AccountPassword
from tests.sftp_harness import make_key, public


def test_password_hash_is_salted_and_verifies():
    """The same password hashes differently each time, and only it verifies."""
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$")
    assert "correct horse" not in first
    assert verify_password("correct horse", first) and verify_password(b"correct horse", second)
    assert not verify_password("correct hors", first)


def test_unknown_account_costs_a_hash_too():
    """No stored hash: refused, after about as long as a real check (no timing oracle)."""
    stored = hash_password("x")
    verify_password("warm-up", None)
    started = time.perf_counter()
    verify_password("y", stored)
    known = time.perf_counter() - started
    started = time.perf_counter()
    assert not verify_password("y", None)
    unknown = time.perf_counter() - started
    assert unknown > known / 3


def test_key_line_parsed_and_options_refused(tmp_path):
    """An authorized_keys line gives the key as compared at login; options or junk are refused."""
    line = public(make_key(tmp_path / "k")).read_text()
    key, comment = parse_key_line(line)
    assert key == key_text(paramiko.Ed25519Key(filename=str(tmp_path / "k")))
    assert comment == "k"
    for bad in (f'from="10.0.0.1" {line}', "ssh-ed25519 not-base64!", "ssh-ed25519", "ssh-dss AAAAB3NzaC1kc3M="):
        with pytest.raises(KeyLineError):
            parse_key_line(bad)


def test_throttle_delays_grow_then_ban_expires():
    """Each failure waits twice as long, up to the cap; the ban_after-th bans until ban_seconds pass."""
    now = [0.0]
    throttle = FailureThrottle(delay=1.0, max_delay=3.0, ban_after=4, ban_seconds=60, clock=lambda: now[0])
    assert [throttle.failed("1.2.3.4") for _ in range(3)] == [1.0, 2.0, 3.0]
    assert not throttle.banned("1.2.3.4")
    throttle.failed("1.2.3.4")
    assert throttle.banned("1.2.3.4") and not throttle.banned("5.6.7.8")
    now[0] = 61.0
    assert not throttle.banned("1.2.3.4")
    assert throttle.failed("1.2.3.4") == 1.0  # older failures are forgotten


def test_connection_caps_total_and_per_ip():
    caps = ConnectionCaps(total=3, per_ip=2)
    assert caps.acquire("a") and caps.acquire("a")
    assert not caps.acquire("a")
    assert caps.acquire("b")
    assert not caps.acquire("c")
    caps.release("a")
    assert caps.acquire("c")


@pytest.mark.parametrize("path, expected", [
    ("/", Target(None)), ("", Target(None)), ("..", Target(None)), ("/../..", Target(None)),
    ("/in", Target("in")), ("in/", Target("in")), ("/out/../in/./", Target("in")),
    ("/in/a.xml", Target("in", "a.xml")), ("/../../in/a.xml", Target("in", "a.xml")),
    ("//out//r.xml", Target("out", "r.xml")), ("/in/x/../b.xml", Target("in", "b.xml")),
    ("/in/.a.xml.part", Target("in", ".a.xml.part")),
    ("/etc/passwd", None), ("/in/sub/a.xml", None), ("/in/.sftp-upload-0a1b", None), ("/../acme/in", None),
    ("/out/..hidden", None), ("/out/.r.xml.0a1b.tmp", None),
])
def test_paths_are_clamped_into_the_zone(path, expected):
    assert resolve(path) == expected


def test_clamp_never_climbs_above_root():
    assert clamp("/../../../etc/passwd") == ["etc", "passwd"]
    assert clamp("in/../../..") == []


def test_weak_algorithms_are_disabled():
    """Whatever paramiko offers, nothing CBC, SHA-1 or MD5 is left."""
    disabled = {name for names in DISABLED_ALGORITHMS.values() for name in names}
    for kind in ("ciphers", "macs", "keys", "pubkeys", "kex"):
        left = set(getattr(paramiko.Transport, f"_preferred_{kind}")) - disabled
        assert left and not any(weak in name for name in left for weak in ("cbc", "sha1", "md5"))
        assert "ssh-rsa" not in left


def _accounts_add(config_file, *args: str, stdin: str = ""):
    return CliRunner().invoke(main, ["--config", str(config_file), "accounts", "add", "acme", "--role", "supplier",
                                     *args], input=stdin)


def test_accounts_add_sets_password_and_keys(config_file, tmp_path):
    """--password-stdin and --key store a hash and the keys; a bad key file is refused whole."""
    key_file = public(make_key(tmp_path / "k"))
    key_file.write_text("# a comment\n\n" + key_file.read_text())
    assert _accounts_add(config_file, "--password-stdin", "--key", str(key_file), stdin="pa ss\n").exit_code == 0
    app = App.from_settings(config_module.load(config_file))
    with session_scope(app.engine) as session:
        stored = session.get(AccountPassword, "acme").hash
        keys = session.exec(select(AccountKey).where(AccountKey.account == "acme")).all()
    assert verify_password("pa ss", stored)
    assert [k.comment for k in keys] == ["k"]
    bad = tmp_path / "bad.pub"
    bad.write_text('command="sh" ' + key_file.read_text().splitlines()[-1])
    result = _accounts_add(config_file, "--key", str(bad))
    assert result.exit_code == 2 and "bad.pub:1" in result.output
    assert _accounts_add(config_file, "--password", "x", "--password-stdin", stdin="y\n").exit_code == 2
