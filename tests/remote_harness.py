"""Helpers for the push and pull tests: endpoints set through the CLI, and a remote sshd to push to or pull from."""

from __future__ import annotations

import os
from pathlib import Path

import paramiko
import pytest

from tests.harness import cli, wait_for
from tests.sftp_harness import SFTP, SSHD, Sshd, current_user, listening, make_key

needs_sshd = pytest.mark.skipif(
    not SSHD.exists() or SFTP is None or os.geteuid() != 0,
    reason="needs OpenSSH's sshd (apt-get install openssh-server), run as root (privilege separation directory)")


def key_line(key: paramiko.PKey) -> str:
    """A public key as --host-key takes it."""
    return f"{key.get_name()} {key.get_base64()}"


def set_remote(config: Path, account: str, direction: str, url: str, key: Path, host_key: str, *extra: str) -> str:
    return cli(config, "accounts", "remote", account, f"--{direction}", url, "--key", str(key),
               "--host-key", host_key, *extra)


class RemoteSshd(Sshd):
    """sshd on a free port serving folder to a key of the test's, as the remote server of an account."""

    def __init__(self, workdir: Path, folder: Path) -> None:
        workdir.mkdir(exist_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, folder, make_key(workdir / "gateway_key"))
        self.key = workdir / "gateway_key"

    def start(self) -> RemoteSshd:
        super().start()
        wait_for(lambda: listening(self.port), what="sshd listening")
        return self

    def url(self, folder: Path) -> str:
        return f"sftp://{current_user()}@127.0.0.1:{self.port}{folder}"
