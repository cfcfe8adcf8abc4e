"""Endpoints of accounts' own SFTP servers: addresses, what follows a collection, and the CLI that sets them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.remote.endpoints import Address, EndpointError, parse_address, parse_after
from tests.harness import cli
from tests.remote_harness import set_remote
from tests.sftp_harness import make_key, public


def test_addresses():
    assert parse_address("sftp://edi@partner.example:2222/in") == Address("edi", "partner.example", 2222, "/in")
    assert parse_address("sftp://edi@partner.example") == Address("edi", "partner.example", 22, "/")
    assert parse_address("sftp://edi@10.0.0.1/a/../b/") == Address("edi", "10.0.0.1", 22, "/b")
    for wrong in ("sftp://partner.example/in", "ftp://edi@partner.example/in", "sftp://edi:pw@partner.example/in",
                  "sftp://edi@partner.example:70000/in", "sftp://edi@partner.example/in?x=1"):
        with pytest.raises(EndpointError):
            parse_address(wrong)


def test_after_a_collection():
    assert parse_after("delete", "/out") == "delete"
    assert parse_after("move:done", "/out") == "move:/out/done"
    assert parse_after("move:/archive/", "/out") == "move:/archive"
    for wrong in ("keep", "move:", "move:.", "move:/out"):
        with pytest.raises(EndpointError):
            parse_after(wrong, "/out")


def _invoke(config, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), "accounts", "remote", *args])


def test_set_list_and_remove(config_file, tmp_path):
    key, host = make_key(tmp_path / "gateway_key"), make_key(tmp_path / "host_key")
    host_key = public(host).read_text()
    set_remote(config_file, "mairie-exemple", "push", "sftp://edi@127.0.0.1:2200/in", key, host_key)
    set_remote(config_file, "acme", "pull", "sftp://acme@127.0.0.1/out", key, host_key, "--interval", "30",
               "--after", "move:done")
    listing = cli(config_file, "accounts", "list")
    assert "push sftp://edi@127.0.0.1:2200/in" in listing and "pull sftp://acme@127.0.0.1:22/out" in listing
    cli(config_file, "accounts", "remote", "acme", "--remove", "pull")
    assert "pull sftp" not in cli(config_file, "accounts", "list")
    result = _invoke(config_file, "acme", "--remove", "pull")
    assert result.exit_code == 1 and "no pull endpoint" in result.output


def test_wrong_settings_are_refused(config_file, tmp_path):
    key = make_key(tmp_path / "gateway_key")
    host_key = public(make_key(tmp_path / "host_key")).read_text()
    url = "sftp://edi@127.0.0.1/in"
    cases = [
        (("acme", "--push", url, "--key", str(key), "--host-key", "ssh-ed25519 AAAAnotakey"), 2, "host-key"),
        (("acme", "--push", url, "--key", str(public(key)), "--host-key", host_key), 2, "private key"),
        (("acme", "--push", url, "--key", str(key), "--host-key", host_key, "--after", "delete"), 2, "pull endpoint"),
        (("acme", "--push", url, "--pull", url, "--key", str(key), "--host-key", host_key), 2, "one of"),
        (("acme", "--pull", url, "--host-key", host_key), 2, "--key and --host-key"),
        (("nobody", "--pull", url, "--key", str(key), "--host-key", host_key), 1, "no account"),
    ]
    for args, code, message in cases:
        result = _invoke(config_file, *args)
        assert (result.exit_code, message in result.output) == (code, True), (args, result.output)
