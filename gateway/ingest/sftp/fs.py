"""Zone confinement: what an account sees over SFTP is `/in` (upload, list) and `/out` (download, delete).

Every path a client sends is clamped into that virtual tree before anything else: `..` stops at
`/`, absolute paths are read inside it, and anything deeper than `/in/<name>` or `/out/<name>` does
not exist. The two real folders are opened once per session, refusing symlinks (O_NOFOLLOW), and
every operation is made relative to those descriptors on a single name, again without following
symlinks: nothing planted in a zone can lead out of it. A client may upload under a temporary
dot-name (`.NAME.part`, as many clients and other gateways do) and rename it; the gateway's own
temporary files (every dot-name in out/, `.sftp-upload-*` in in/) do not exist for it. Listings
show no dot-name. Every name uploaded follows the one rule of gateway.ingest.names (a temporary one without its
leading dot). Errors are SFTP status codes, which carry no path; those of a rule or a limit (a name, open files,
the in/ quota, the flow size) carry a message naming it, also written to the session's standard error, which
OpenSSH's `sftp` shows (it prints only the code's stock text of a status).
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paramiko
from paramiko.message import Message
from paramiko.sftp import (
    CMD_INIT,
    CMD_OPEN,
    CMD_OPENDIR,
    CMD_VERSION,
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
    SFTPError,
)

from gateway.app import App
from gateway.ingest.names import name_refusal, told
from gateway.ingest.sftp.limits import HandleCaps, InboxQuota, Refusal, Refused
from gateway.ingest.sftp.uploads import Finisher, Upload
from gateway.ops.log import log
from gateway.zones import UPLOAD_PREFIX, is_final_name

if TYPE_CHECKING:
    from gateway.ingest.sftp.connection import Connection

INBOX, OUTBOX = "in", "out"
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a planted FIFO never blocks
_REMEMBERED = 256  # files sent in a session that still answer stat once intake has taken them


@dataclass(frozen=True)
class Target:
    """A clamped path: the root (folder None), a folder (name None), or a file in a folder."""

    folder: str | None
    name: str | None = None


def clamp(path: str) -> list[str]:
    """The components of path read from the virtual root, `..` never climbing above it."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return parts


def resolve(path: str) -> Target | None:
    """The target path names, or None if it names nothing an account may see."""
    parts = clamp(path)
    if not parts:
        return Target(None)
    if parts[0] not in (INBOX, OUTBOX) or len(parts) > 2 or (len(parts) == 2 and _gateways_own(*parts)):
        return None
    return Target(parts[0], parts[1] if len(parts) == 2 else None)


def _gateways_own(folder: str, name: str) -> bool:
    """The gateway's temporary files: its uploads being written in in/, its files being written in out/."""
    return name.startswith(UPLOAD_PREFIX if folder == INBOX else ".")


def _os_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Answer an OSError with its SFTP status code, which says what went wrong but not where."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    return wrapper


def _regular(st: os.stat_result) -> os.stat_result:
    """Links, FIFOs and devices are treated as absent: never followed, never served."""
    if not stat.S_ISREG(st.st_mode):
        raise FileNotFoundError
    return st


class ZoneSession(paramiko.SFTPServerInterface):
    """One SFTP session of an authenticated account, confined to its zone."""

    def __init__(self, server: Connection, app: App, handoff: Finisher, handles: HandleCaps,
                 quota: InboxQuota) -> None:
        super().__init__(server)
        self.connection = server
        assert server.account is not None, "paramiko opens the SFTP subsystem only after authentication"
        self.account: str = server.account
        self.app, self.handoff = app, handoff
        self.handles, self.quota = handles, quota
        self.max_flow_bytes = app.settings.ingest.max_flow_bytes
        self.ended = False
        self._dirs: dict[str, int] = {}
        self._name_max = 255  # bytes a name may have in in/, read from its file system once the session starts
        self._sent: OrderedDict[str, paramiko.SFTPAttributes] = OrderedDict()

    def session_started(self) -> None:
        self.app.zones.ensure(self.account)
        root = os.open(self.app.zones.zone(self.account), _DIRECTORY)
        try:
            for folder in (INBOX, OUTBOX):  # one by one: session_ended() closes those opened if one fails
                self._dirs[folder] = os.open(folder, _DIRECTORY, dir_fd=root)
        finally:
            os.close(root)
        self._name_max = os.fpathconf(self._dirs[INBOX], "PC_NAME_MAX")
        log.info("sftp_login", account=self.account, ip=self.connection.ip, method=self.connection.method)

    def session_ended(self) -> None:
        """Called before paramiko closes the handles left open: those uploads are cut short."""
        self.ended = True
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs = {}
        log.info("sftp_logout", account=self.account, ip=self.connection.ip)

    def canonicalize(self, path: str) -> str:
        return "/" + "/".join(clamp(path))

    @_os_errors
    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        target = resolve(path)
        if target is None or target.name is not None:
            return SFTP_NO_SUCH_FILE
        if target.folder is None:
            return [self._folder_attributes(folder) for folder in (INBOX, OUTBOX)]
        return list(self._entries(target.folder))

    @_os_errors
    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        target = resolve(path)
        if target is None:
            return SFTP_NO_SUCH_FILE
        if target.folder is None or target.name is None:
            return self._folder_attributes(target.folder or "/")
        try:
            return paramiko.SFTPAttributes.from_stat(self._file_stat(target.folder, target.name), target.name)
        except FileNotFoundError:
            if target.folder == INBOX and target.name in self._sent:
                return self._sent[target.name]
            raise

    def uploaded(self, name: str, attributes: paramiko.SFTPAttributes) -> None:
        """Remember a file this session sent: intake takes it from in/ at once, but clients check
        it after closing it (paramiko's put stats it, WinSCP sets its time) and would fail."""
        self._sent[name] = attributes
        self._sent.move_to_end(name)
        if len(self._sent) > _REMEMBERED:
            self._sent.popitem(last=False)

    lstat = stat  # symlinks are never seen, so there is nothing for lstat to tell apart

    @_os_errors
    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        target = resolve(path)
        if target is None or target.name is None:
            return SFTP_NO_SUCH_FILE if target is None else SFTP_PERMISSION_DENIED
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
        if target.folder == OUTBOX:
            return SFTP_PERMISSION_DENIED if writing else self._download(target.name)
        if not writing:
            return SFTP_PERMISSION_DENIED  # in/ is for sending: what was sent is taken away at once
        return self._upload(target.name, resume=not flags & os.O_TRUNC)

    @_os_errors
    def remove(self, path: str) -> int:
        target = resolve(path)
        if target is None or target.folder is None or target.name is None:
            return SFTP_NO_SUCH_FILE if target is None else SFTP_PERMISSION_DENIED
        if target.folder == INBOX and is_final_name(target.name):
            return SFTP_PERMISSION_DENIED  # already handed to the gateway
        self._file_stat(target.folder, target.name)
        os.unlink(target.name, dir_fd=self._dirs[target.folder])
        log.info("sftp_remove", account=self.account, folder=target.folder, name=target.name)
        return SFTP_OK

    def rename(self, oldpath: str, newpath: str) -> int:
        return self._rename(oldpath, newpath, replace=False)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self._rename(oldpath, newpath, replace=True)

    @_os_errors
    def _rename(self, oldpath: str, newpath: str, replace: bool) -> int:
        """Within in/, from a temporary name: into a final name hands the file to intake."""
        source, target = resolve(oldpath), resolve(newpath)
        if source is None or source.name is None:
            return SFTP_NO_SUCH_FILE
        if target is None or (source.folder, target.folder) != (INBOX, INBOX) or not target.name:
            return SFTP_PERMISSION_DENIED
        if is_final_name(source.name):
            return SFTP_PERMISSION_DENIED
        refused = self._refused_name(target.name)
        if refused is not None:
            return refused
        attributes = paramiko.SFTPAttributes.from_stat(self._file_stat(INBOX, source.name), target.name)
        inbox = self._dirs[INBOX]
        if is_final_name(target.name):
            self.handoff.finish(self.account, inbox, source.name, target.name)
            self.uploaded(target.name, attributes)
        elif replace:
            os.rename(source.name, target.name, src_dir_fd=inbox, dst_dir_fd=inbox)
        else:  # SFTP's own rename never replaces: link fails if the name is taken
            os.link(source.name, target.name, src_dir_fd=inbox, dst_dir_fd=inbox, follow_symlinks=False)
            os.unlink(source.name, dir_fd=inbox)
        return SFTP_OK

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        """Modes, owners and times are the gateway's business: accepted and ignored."""
        return SFTP_OK if isinstance(self.stat(path), paramiko.SFTPAttributes) else SFTP_NO_SUCH_FILE

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_PERMISSION_DENIED

    def rmdir(self, path: str) -> int:
        return SFTP_PERMISSION_DENIED

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def readlink(self, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def _entries(self, folder: str) -> list[paramiko.SFTPAttributes]:
        found = []
        with os.scandir(self._dirs[folder]) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                with contextlib.suppress(FileNotFoundError):  # gone meanwhile (taken by intake), or not regular
                    found.append(paramiko.SFTPAttributes.from_stat(_regular(entry.stat(follow_symlinks=False)),
                                                                   entry.name))
        return found

    def _folder_attributes(self, folder: str) -> paramiko.SFTPAttributes:
        attributes = paramiko.SFTPAttributes()
        attributes.filename = folder
        attributes.st_mode = stat.S_IFDIR | (0o755 if folder == OUTBOX else 0o733)
        attributes.st_size = 0
        return attributes

    def _file_stat(self, folder: str, name: str) -> os.stat_result:
        return _regular(os.stat(name, dir_fd=self._dirs[folder], follow_symlinks=False))

    def _download(self, name: str) -> paramiko.SFTPHandle:
        fd = os.open(name, _READ, dir_fd=self._dirs[OUTBOX])
        try:
            _regular(os.fstat(fd))
        except OSError:
            os.close(fd)
            raise
        log.info("sftp_download", account=self.account, name=name)
        return Download(fd)

    def _upload(self, name: str, resume: bool) -> paramiko.SFTPHandle | int:
        refused = self._refused_name(name)
        if refused is not None:
            return refused
        most = self.app.settings.sftp.max_files_per_session
        if self.connection.files >= most:
            log.warning("sftp_upload_refused", account=self.account, original_name=name, reason="files per session")
            return Refusal(SFTP_PERMISSION_DENIED, f"too many files: max_files_per_session ({most}) sent over this "
                                                   "connection, open another")
        self.connection.files += 1
        try:
            return Upload(self, self._dirs[INBOX], name, resume)
        except Refused as refused:
            log.warning("sftp_upload_refused", account=self.account, original_name=name, reason=str(refused))
            return Refusal(SFTP_FAILURE, str(refused))

    def _refused_name(self, name: str) -> Refusal | None:
        """The refusal of a name the rule refuses (a temporary dot-name judged without its dot), naming the rule, or
        of one longer than in/'s file system holds (255 bytes of UTF-8 on Linux: fewer than 256 characters)."""
        finding = name_refusal(name.removeprefix("."))
        size, most = len(os.fsencode(name)), self._name_max
        if finding is not None:
            message = told(finding)
        elif size > most:
            message = f"file name too long: {size} bytes of UTF-8, more than the {most} a name may have on this server"
        else:
            return None
        log.warning("sftp_upload_refused", account=self.account, original_name=name, reason="name",
                    rule=finding and finding.rule)
        return Refusal(SFTP_PERMISSION_DENIED, message)


class Download(paramiko.SFTPHandle):
    """A file of out/, read by offset from a descriptor opened without following links."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd: int | None = fd

    def read(self, offset: int, length: int) -> bytes | int:
        return os.pread(self.fd, length, offset) if self.fd is not None else SFTP_NO_SUCH_FILE

    def write(self, offset: int, data: bytes) -> int:
        return SFTP_PERMISSION_DENIED

    def stat(self) -> paramiko.SFTPAttributes | int:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd)) if self.fd is not None else SFTP_NO_SUCH_FILE

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class ZoneSFTPServer(paramiko.SFTPServer):
    """paramiko's SFTP subsystem, announcing posix-rename@openssh.com instead of check-file, telling its
    connection of each request it reads (for the idle timeout), counting the files and folders it holds open
    (HandleCaps), and answering a Refusal with its own message, also written to the session's standard error.

    Clients rename with replace semantics only when the server announces the extension, and
    paramiko has no setting for the announcement, so its version exchange is redone here.
    """

    server: ZoneSession
    # Bytes of refusals a session's standard error gets at most: a client that never reads it (paramiko's) has
    # the session's window shrunk by as much.
    _TOLD_MAX = 64 * 1024
    _told = 0

    def _read_packet(self) -> tuple[int, bytes]:
        packet = super()._read_packet()
        self.get_server().active()
        return packet

    def _open_handles(self) -> int:
        return len(self.file_table) + len(self.folder_table)

    _counted = 0  # the handles of this session counted in the account's caps

    def _process(self, t: int, request_number: int, msg: Message) -> None:
        """An open is refused past the caps; what each request opens or closes is counted."""
        account, self._counted = self.server.account, self._open_handles()
        if t in (CMD_OPEN, CMD_OPENDIR):
            try:
                self.server.handles.take(account, self._counted)
            except Refused as refused:
                log.warning("sftp_open_refused", account=account, ip=self.get_server().ip, reason=str(refused))
                self._send_status(request_number, Refusal(SFTP_FAILURE, str(refused)))
                return
            self._counted += 1  # counted already: given back if the open fails
        try:
            super()._process(t, request_number, msg)
        finally:
            self._give_back()

    def _response(self, request_number: int, t: int, *args: Any) -> None:
        """A handle closed (or an open that failed) is given back before the client is answered: its next open,
        on another connection of the account, finds its place free."""
        self._give_back()
        super()._response(request_number, t, *args)

    def _give_back(self) -> None:
        if self._counted > (now := self._open_handles()):
            self.server.handles.give_back(self.server.account, self._counted - now)
            self._counted = now

    def _send_status(self, request_number: int, code: int, desc: str | None = None) -> None:
        if isinstance(code, Refusal) and desc is None:
            desc = code.message
            self._tell(desc)
        super()._send_status(request_number, code, desc)

    def _tell(self, message: str) -> None:
        """Write a refusal's message on the session's standard error, which OpenSSH's sftp prints."""
        line = f"gateway: {message}\n".encode()
        if self.sock is not None and self._told + len(line) <= self._TOLD_MAX:
            self._told += len(line)
            self.sock.send_stderr(line)

    def finish_subsystem(self) -> None:
        self._send_exit_status()
        held = self._open_handles()
        super().finish_subsystem()  # closes them
        self.server.handles.give_back(self.server.account, held)

    def _send_exit_status(self) -> None:
        """A session its client ended (EOF) gets exit status 0, or 1 if an upload was left open (cut short): OpenSSH's
        scp reports a session that ends without one as failed. A session the server closed gets none."""
        channel = self.sock
        if channel is not None and channel.eof_received and not channel.closed:
            cut_short = any(isinstance(handle, Upload) for handle in self.file_table.values())
            channel.send_exit_status(1 if cut_short else 0)

    def _send_server_version(self) -> int:
        kind, data = self._read_packet()
        if kind != CMD_INIT:
            raise SFTPError("Incompatible sftp protocol")
        msg = Message()
        msg.add_int(3)
        msg.add_string("posix-rename@openssh.com")
        msg.add_string("1")
        self._send_packet(CMD_VERSION, msg)
        return struct.unpack(">I", data[:4])[0]
