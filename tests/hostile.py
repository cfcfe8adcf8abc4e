"""Builders of hostile files, shared by the unit tests (admissibility, batches) and the end-to-end hostile test.

Each returns the bytes an attacker would send; none needs the gateway.
"""

from __future__ import annotations

import io
import random
import stat
import struct
import tarfile
import zipfile
import zlib

from pypdf import PdfWriter
from pypdf.generic import NameObject

from tests.harness import tar_gz_of, zip_of

UBL_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_ROOT = f'<Invoice xmlns="{UBL_NS}">'


def with_doctype(doctype: str, body: str = "&x;") -> bytes:
    """A minimal UBL root behind doctype, with body (by default a reference to the entity x) inside."""
    return f'<?xml version="1.0"?>\n{doctype}\n{UBL_ROOT}{body}</Invoice>'.encode()


def billion_laughs(encoding: str = "utf-8") -> bytes:
    """Ten levels of ten references: 10^9 'ha' once expanded."""
    entities = ['<!ENTITY x0 "ha">'] + [f'<!ENTITY x{n} "{f"&x{n - 1};" * 10}">' for n in range(1, 10)]
    return with_doctype(f"<!DOCTYPE Invoice [{''.join(entities)}]>", body="&x9;").decode().encode(encoding)


def quadratic_blowup(size: int = 100_000, references: int = 10_000) -> bytes:
    """One large entity referenced many times: no nesting for a depth limit to catch, size x references."""
    return with_doctype(f'<!DOCTYPE Invoice [<!ENTITY x "{"a" * size}">]>', body="&x;" * references)


def deep_nesting(depth: int = 10_000) -> bytes:
    return f"{UBL_ROOT}{'<a>' * depth}{'</a>' * depth}</Invoice>".encode()


def zip_with(info: zipfile.ZipInfo, content: bytes) -> bytes:
    """A zip of one member described by info (name, Unix mode, flags as the attacker sets them)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(info, content)
    return buffer.getvalue()


def symlink_zip(target: str = "/etc/passwd") -> bytes:
    info = zipfile.ZipInfo("link.xml")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_with(info, target.encode())


def zip_declaring(count: int, size: int) -> bytes:
    """A zip of count members whose central directory claims each is size bytes, packed and unpacked alike:
    the ratio looks innocent, only the declared sizes give it away."""
    data = bytearray(zip_of({f"huge{n}.xml": b"<x/>" for n in range(count)}))
    central = data.find(b"PK\x01\x02")
    for _ in range(count):
        data[central + 20:central + 28] = struct.pack("<II", size, size)  # compressed, uncompressed sizes
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def diluted_zip(count: int, size: int) -> bytes:
    """count members of size bytes (a multiple of 1 MiB) that deflate about 135 times, under every ratio
    limit, yet count x size bytes once read; streamed, never held whole."""
    rng, buffer = random.Random(7), io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(count):
            with archive.open(f"m{n}.xml", "w", force_zip64=True) as member:
                for _ in range(size >> 20):
                    member.write(rng.randbytes(6000) + bytes((1 << 20) - 6000))
    return buffer.getvalue()


def encrypted_zip() -> bytes:
    """A zip whose member says it is encrypted: the flag zipfile's writer clears, set in both its headers."""
    data = bytearray(zip_of({"secret.xml": b"<x/>"}))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.find(signature) + flags_at] |= 0x1
    return bytes(data)


def tar_with(kind: bytes, name: str, members: dict[str, bytes], linkname: str = "/etc/passwd") -> bytes:
    """members, then one member of the tarfile type kind (SYMTYPE, LNKTYPE, CHRTYPE, FIFOTYPE...)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return tar_gz_of(members, [info])


def pdf_with(attachments: dict[str, bytes], deflated: bool = False) -> bytes:
    """A one-page PDF embedding attachments (a Factur-X carries factur-x.xml). With deflated, their
    contents are given already deflated and declared /FlateDecode (pypdf stores attachments as given)."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    for name, content in attachments.items():
        stream = writer.add_attachment(name, content).pdf_object["/EF"]["/F"].get_object()
        if deflated:
            stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def deflated_run(size: int, byte: bytes = b" ") -> bytes:
    """size (a multiple of 1 MiB) bytes of byte as one zlib stream, never holding them all: a bomb's payload."""
    compressor = zlib.compressobj(9)
    chunk = byte * (1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(size >> 20)) + compressor.flush()
