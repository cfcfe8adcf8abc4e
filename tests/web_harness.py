"""A real `gateway run` (web role included) for HTTP tests: its base URL read from the web_started log line,
and API tokens made with the CLI, as an operator would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.harness import GatewayProcess, cli, load_samples, wait_for, write_config

SUPPLIER, RECIPIENT, OTHER_SUPPLIER = "acme", "mairie-exemple", "globex"


def log_lines(path: Path, offset: int = 0) -> list[dict]:
    if not path.exists():
        return []
    with open(path, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def start(process: GatewayProcess, timeout: float = 60) -> str:
    """Start process and return the base URL of its web server, once started (its web_started line names the
    port: the tests' configurations listen on port 0)."""
    offset = process.log.stat().st_size if process.log.exists() else 0
    process.start()

    def started() -> str | None:
        for line in log_lines(process.log, offset):
            if line["event"] == "web_started":
                scheme = "https" if line["tls"] else "http"
                return f"{scheme}://{line['host']}:{line['port']}"
        if process.proc.poll() is not None:
            raise AssertionError(f"gateway exited with {process.proc.returncode}: {process.log.read_text()[-2000:]}")
        return None
    return wait_for(started, timeout, "the web server's start")


def token(config: Path, account: str) -> str:
    return cli(config, "accounts", "token", account).strip()


def operator_token(config: Path, name: str = "ops") -> str:
    cli(config, "operators", "add", name)
    return cli(config, "operators", "token", name).strip()


def client(base_url: str, bearer: str | None = None, **kwargs) -> httpx.Client:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30, **kwargs)


def web_config(root: Path, database_url: str | None = None, overrides: dict | None = None) -> Path:
    """A configuration with the sample directory and accounts loaded, one validator process."""
    config = write_config(root, {"validate": {"processes": 1}, **(overrides or {})}, database_url)
    load_samples(config)
    return config


@contextmanager
def web_gateway(config: Path, *run_args: str) -> Iterator[tuple[GatewayProcess, str]]:
    """`gateway run` on config, stopped gracefully at the end; yields it and its base URL."""
    process = GatewayProcess(config, *run_args)
    try:
        yield process, start(process)
    finally:
        if process.proc is not None and process.proc.poll() is None:
            process.stop()
