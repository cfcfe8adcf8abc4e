"""The SFTP server's parts on their own: password hashes, key lines, throttle, caps, penalties, path
clamping."""

from __future__ import annotations

import time

import paramiko
import pytest
from click.testing import CliRunner
from sqlmodel import select

from gateway import config as config_module
from gateway.access.throttle import FailureThrottle
from gateway.app import App
from gateway.cli import main
from gateway.config import SftpSettings
from gateway.data.db import make_engine, session_scope
from gateway.data.models import AccountKey, AccountPassword
from gateway.ingest.sftp.auth import hash_password, verify_password
from gateway.ingest.sftp.fs import Target, clamp, resolve
from gateway.ingest.sftp.limits import ConnectionCaps, Refused
from gateway.ssh import DISABLED_ALGORITHMS, KeyLineError, key_text, parse_key_line
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


def _throttle(tmp_path, now: list[float], **settings) -> FailureThrottle:
    """A throttle on a database of its own, its clock now[0]."""
    engine = make_engine(f"sqlite:///{tmp_path / 'throttle.db'}")
    return FailureThrottle(engine, **{"delay": 1.0, "max_delay": 3.0, "ban_after": 4, "ban_accounts": 3,
                                      "ban_seconds": 60.0, **settings}, clock=lambda: now[0])


def test_throttle_gives_concurrent_guesses_turns_then_locks_the_name_only(tmp_path):
    """Guesses of one name from one address are checked in turn, each waiting for the delay the failures before
    it make (doubling, capped), however many are made at once; the ban_after-th failure locks that name from
    that address, not other names nor other addresses; a turn past the caller's deadline is refused."""
    now = [1000.0]
    throttle = _throttle(tmp_path, now)
    turns = [throttle.turn("1.2.3.4", "acme", within=100) for _ in range(3)]  # three connections at once
    assert [t.wait for t in turns] == [0.0, 1.0, 3.0] and not any(t.refused for t in turns)
    assert [throttle.failed(t) for t in turns] == [1.0, 2.0, 3.0]
    assert throttle.turn("1.2.3.4", "acme", within=5.0).refused == "busy"  # its turn would be at 6 s
    fourth = throttle.turn("1.2.3.4", "acme", within=100)
    assert fourth.wait == 6.0 and throttle.failed(fourth) == 3.0
    assert throttle.locked("1.2.3.4", "acme") and throttle.turn("1.2.3.4", "acme", within=100).refused == "locked"
    assert not throttle.banned("1.2.3.4")
    assert throttle.turn("1.2.3.4", "mairie", within=100).wait == 0.0  # another name from the same address
    assert throttle.turn("5.6.7.8", "acme", within=100).wait == 0.0  # the same name from another address
    now[0] += 6.0 + 60.0  # ban_seconds after the last failure (checked at 1006 s): the lock ends
    assert not throttle.locked("1.2.3.4", "acme")
    assert throttle.turn("1.2.3.4", "acme", within=100).refused is None


def test_throttle_right_password_forgets_the_failures(tmp_path):
    now = [1000.0]
    throttle = _throttle(tmp_path, now)
    throttle.failed(throttle.turn("1.2.3.4", "acme", within=100))
    right = throttle.turn("1.2.3.4", "acme", within=100)
    assert right.wait == 1.0
    now[0] += 1.0
    throttle.succeeded(right)
    assert throttle.turn("1.2.3.4", "acme", within=100).wait == 0.0


def test_throttle_bans_an_address_failing_for_many_names_and_remembers_across_restarts(tmp_path):
    """ban_accounts names failing from one address ban it, existing accounts or not; API tokens (no name)
    count as one name; a new throttle on the same database (a restart) knows the ban and the locks."""
    now = [1000.0]
    throttle = _throttle(tmp_path, now, ban_after=2)
    for name in ("nobody", "root"):
        throttle.failed(throttle.turn("1.2.3.4", name, within=100))
    throttle.fail("9.9.9.9")  # a wrong API token elsewhere
    throttle.fail("9.9.9.9")
    assert not throttle.banned("1.2.3.4") and throttle.locked("9.9.9.9", None) and not throttle.banned("9.9.9.9")
    throttle.fail("1.2.3.4")  # the third name: none
    assert throttle.banned("1.2.3.4") and throttle.turn("1.2.3.4", "acme", within=100).refused == "banned"
    restarted = _throttle(tmp_path, now, ban_after=2)
    assert restarted.banned("1.2.3.4") and restarted.locked("9.9.9.9", None) and not restarted.banned("9.9.9.9")
    now[0] += 61.0
    assert not restarted.banned("1.2.3.4") and not restarted.locked("9.9.9.9", None)


def _caps(now: list[float], chance: list[float], **settings) -> ConnectionCaps:
    sftp = SftpSettings(**{"max_startups": "2:50:4", "max_startups_per_ip": 2, "max_connections": 3,
                           "max_connections_per_ip": 2, "penalty_seconds": 10.0, "penalty_max": 25.0, **settings})
    return ConnectionCaps(sftp, clock=lambda: now[0], chance=lambda: chance[0])


def _refused(caps: ConnectionCaps, ip: str) -> str | None:
    try:
        caps.admit(ip, lambda: None)
    except Refused as refused:
        return str(refused)
    return None


def test_startups_drop_early_evict_the_busiest_and_spare_sessions():
    """Startups per address are capped; past `start`, an address already holding one is refused at random
    (rate rising to 100% at `full`), one holding none never is: at `full`, the oldest startup of the busiest
    address is closed for it. Logged-in sessions leave the startups and have caps of their own."""
    now, chance = [0.0], [0.99]
    caps = _caps(now, chance)
    closed = []
    first, _ = caps.admit("a", lambda: closed.append("a1"))
    caps.admit("a", lambda: closed.append("a2"))
    assert _refused(caps, "a") == "too many startups from address"
    caps.admit("b", lambda: None)  # 2 open, start reached, but b holds none: no drop
    chance[0] = 0.74  # b holds one: 3 open, a chance of 50 + 50 * (3 - 2) / (4 - 2) = 75% to be refused
    assert _refused(caps, "b") == "startups"
    chance[0] = 0.76
    caps.admit("b", lambda: None)  # 4 open: full
    _, evicted = caps.admit("c", lambda: None)  # holds none: a's oldest is closed for it
    assert evicted is first and closed == ["a1"]
    chance[0] = 0.0
    assert _refused(caps, "c") == "startups"  # full, and c holds one
    caps.release(evicted)  # its thread ends later: counted once
    assert caps.counts() == (4, 0)
    caps = _caps(now, chance)
    sessions = []
    for _ in range(2):
        slot, _ = caps.admit("d", lambda: None)
        assert caps.logged_in(slot)
        sessions.append(slot)
    assert not caps.room("d") and caps.room("e") and caps.counts() == (0, 2)
    late, _ = caps.admit("d", lambda: None)  # d's sessions never count as its startups
    assert not caps.logged_in(late)  # per_ip sessions reached: it stays a startup
    caps.release(sessions[0])
    assert caps.logged_in(late)


def test_penalties_add_up_to_their_maximum_then_end():
    now, chance = [0.0], [0.99]
    caps = _caps(now, chance)
    assert [caps.penalise("a") for _ in range(3)] == [10.0, 20.0, 25.0]
    assert _refused(caps, "a") == "penalty" and _refused(caps, "b") is None
    now[0] = 25.0
    assert _refused(caps, "a") is None


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
    return CliRunner().invoke(main, ["--config", str(config_file), "accounts", "add", "acme", "--update", "--role",
                                     "supplier", *args], input=stdin)


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
