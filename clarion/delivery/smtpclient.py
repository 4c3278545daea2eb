"""A lean SMTP client for bulk sending: one socket, PIPELINING when offered, no body scanning.

smtplib makes four round trips a message and scans every body with a regular expression.
Here MAIL, RCPT and DATA go out in one write when the server offers PIPELINING (RFC 2920),
the body in a second, and dot-stuffing is a single byte search that rarely finds anything.
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

CRLF = b"\r\n"


@dataclass(frozen=True)
class Reply:
    """An SMTP reply: its code and text (the enhanced status code, if any, starts the text)."""

    code: int
    text: str

    @property
    def status(self) -> str:
        """The enhanced status code (RFC 3463) like "5.7.1", or ""."""
        head = self.text.split(" ", 1)[0]
        parts = head.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and head[0] in "245":
            return head
        return ""

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class SmtpConnectionError(Exception):
    """The connection failed or broke: nothing more can be sent on it."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class StreamBroken(SmtpConnectionError):
    """The connection broke during a stream: which messages may have gone, which did not."""

    def __init__(self, message: str, in_doubt: list, unsent: list) -> None:
        super().__init__(message)
        self.in_doubt = in_doubt  # body sent, no final reply: may or may not be delivered
        self.unsent = unsent  # envelope at most: certainly not delivered


class Job(Protocol):
    """One message to stream: its envelope, and its bytes built only when needed."""

    envelope_from: str
    rcpt: str
    smtputf8: bool
    eight_bit: bool  # its bytes will hold 8-bit data (BODY=8BITMIME)

    def data(self) -> bytes: ...


J = TypeVar("J", bound=Job)


@dataclass(frozen=True)
class Outcome:
    """The reply that decides one message's fate and the stage that gave it."""

    reply: Reply
    stage: str  # mail, rcpt, data, end


class SmtpClient:
    """One connection to one server, reused for many messages."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
        local_hostname: str | None = None,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.username, self.password = username, password
        self.timeout = timeout
        self.local_hostname = local_hostname or socket.getfqdn()
        self.extensions: dict[str, str] = {}
        self._sock: socket.socket | None = None
        self._buf = b""
        self._dirty = False  # a transaction is open after a refusal: RSET before the next
        self._rset = False  # an RSET went out whose reply is still to be read

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Open, read the greeting, EHLO, STARTTLS and AUTH as configured."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            # We batch our own writes; never let Nagle hold a pipelined group back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls == "ssl":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            self._sock = sock
            self._expect(self._read(), 220, "greeting")
            self._ehlo()
            if self.tls == "starttls":
                self._expect(self._command("STARTTLS"), 220, "STARTTLS")
                self._sock = ssl.create_default_context().wrap_socket(
                    self._sock, server_hostname=self.host
                )
                self._ehlo()
            if self.username:
                self._login()
        except (OSError, ssl.SSLError) as exc:
            self.abort()
            raise SmtpConnectionError(f"{self.host}:{self.port}: {exc}") from exc
        except SmtpConnectionError:
            self.abort()
            raise

    def _ehlo(self) -> None:
        reply = self._command(f"EHLO {self.local_hostname}")
        self._expect(reply, 250, "EHLO")
        self.extensions = {}
        for line in reply.text.split("\n")[1:]:
            keyword, _, params = line.strip().partition(" ")
            self.extensions[keyword.upper()] = params

    def _login(self) -> None:
        user, password = self.username or "", self.password or ""
        methods = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in methods or not methods:
            secret = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            self._expect(self._command(f"AUTH PLAIN {secret}"), 235, "AUTH")
            return
        self._expect(self._command("AUTH LOGIN"), 334, "AUTH")
        self._expect(self._command(base64.b64encode(user.encode()).decode()), 334, "AUTH")
        self._expect(self._command(base64.b64encode(password.encode()).decode()), 235, "AUTH")

    def _expect(self, reply: Reply, code: int, what: str) -> None:
        if reply.code != code:
            raise SmtpConnectionError(f"{self.host}:{self.port} {what}: {reply}", reply)

    def _write(self, data: bytes) -> None:
        if self._sock is None:
            raise SmtpConnectionError("not connected")
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self.abort()
            raise SmtpConnectionError(f"{self.host}:{self.port}: {exc}") from exc

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line, self._buf = self._buf[:end], self._buf[end + 1 :]
                return line.rstrip(b"\r")
            if self._sock is None:
                raise SmtpConnectionError(f"{self.host}:{self.port}: not connected")
            try:
                chunk = self._sock.recv(65536)
            except OSError as exc:
                self.abort()
                raise SmtpConnectionError(f"{self.host}:{self.port}: {exc}") from exc
            if not chunk:
                self.abort()
                raise SmtpConnectionError(f"{self.host}:{self.port}: connection closed")
            self._buf += chunk

    def _read(self) -> Reply:
        texts = []
        while True:
            line = self._line()
            if len(line) < 3 or not line[:3].isdigit():
                self.abort()
                raise SmtpConnectionError(f"{self.host}:{self.port}: bad reply {line[:80]!r}")
            texts.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                reply = Reply(int(line[:3]), "\n".join(texts))
                if reply.code == 421:
                    # The server is closing the channel (RFC 5321 3.8): so do we.
                    self.abort()
                return reply

    def _command(self, command: str) -> Reply:
        self._write(command.encode() + CRLF)
        return self._read()

    def carries(self, smtputf8: bool) -> bool:
        """Whether this server can take a message that needs SMTPUTF8 (or does not)."""
        return not smtputf8 or "SMTPUTF8" in self.extensions

    def _mail_params(self, smtputf8: bool, eight_bit: bool) -> str:
        """SMTPUTF8 only when asked for (and offered, see `carries`); BODY=8BITMIME whenever
        the message holds 8-bit bytes (RFC 6152), which UTF-8 headers make it too."""
        params = " SMTPUTF8" if smtputf8 else ""
        if (smtputf8 or eight_bit) and "8BITMIME" in self.extensions:
            params += " BODY=8BITMIME"
        return params

    def _envelope(self, job: Job) -> bytes:
        # The envelope goes out before the job's bytes are built: the job says what they hold.
        params = self._mail_params(job.smtputf8, job.eight_bit)
        commands = f"MAIL FROM:<{job.envelope_from}>{params}\r\n"
        commands += f"RCPT TO:<{job.rcpt}>\r\nDATA\r\n"
        if self._dirty:
            self._dirty = False
            self._rset = True
            commands = "RSET\r\n" + commands
        return commands.encode()

    def _envelope_replies(self) -> list[Reply]:
        if self._rset:
            self._rset = False
            self._read()  # RSET's 250: nothing to decide on
        replies: list[Reply] = []
        while len(replies) < 3 and self.connected:
            replies.append(self._read())
        return replies

    def stream(self, jobs: Iterator[J]) -> Iterator[tuple[J, Outcome]]:
        """Send a sequence of messages, yielding each with its outcome as it becomes known.

        With PIPELINING the body of one message goes out in the same write as the envelope
        of the next, and the next message is built while the server works: one wait per
        message, overlapped with our own work. StreamBroken says what was in flight.
        """
        if "PIPELINING" not in self.extensions:
            yield from self._stream_sequential(jobs)
            return
        in_doubt: list[J] = []
        job: J | None = None
        finished = False
        try:
            job = next(jobs, None)
            data = job.data() if job is not None else b""
            if job is not None:
                self._write(self._envelope(job))
            while job is not None:
                if in_doubt:
                    final = self._read()
                    yield in_doubt.pop(), Outcome(final, "end")
                replies = self._envelope_replies()
                if len(replies) < 3 or replies[2].code != 354:
                    outcome = self._refused(replies)
                    yield job, outcome
                    job = next(jobs, None)
                    if job is not None:
                        data = job.data()
                        self._write(self._envelope(job))
                    continue
                following = next(jobs, None)
                wire = _dot_stuff(data) + b".\r\n"
                in_doubt.append(job)
                job = following
                self._write(wire + (self._envelope(job) if job is not None else b""))
                if job is not None:
                    data = job.data()
            if in_doubt:
                final = self._read()
                yield in_doubt.pop(), Outcome(final, "end")
            finished = True
        except SmtpConnectionError as exc:
            finished = True
            unsent = [job] if job is not None else []
            raise StreamBroken(str(exc), in_doubt=in_doubt, unsent=unsent) from exc
        finally:
            if not finished:
                # The caller stopped mid-stream: the server may be waiting for a body we will
                # not send. Dropping the connection discards it (nothing unterminated is sent).
                self.abort()

    def _stream_sequential(self, jobs: Iterator[J]) -> Iterator[tuple[J, Outcome]]:
        for job in jobs:
            try:
                outcome = self.send(job.envelope_from, job.rcpt, job.data(), job.smtputf8)
            except SmtpConnectionError as exc:
                raise StreamBroken(str(exc), in_doubt=[job], unsent=[]) from exc
            yield job, outcome

    def _refused(self, replies: list[Reply]) -> Outcome:
        """The envelope was not accepted: which reply decides, and leave a clean state."""
        stages = ("mail", "rcpt", "data")
        decisive = next(
            ((stage, r) for stage, r in zip(stages, replies, strict=False) if not r.ok),
            None,
        )
        if decisive is None:
            raise SmtpConnectionError(f"{self.host}:{self.port}: DATA got no reply")
        self._finish_refused(replies)
        return Outcome(decisive[1], decisive[0])

    def send(self, envelope_from: str, rcpt: str, data: bytes, smtputf8: bool = False) -> Outcome:
        """One transaction; SmtpConnectionError when the connection fails on the way."""
        params = self._mail_params(smtputf8, not data.isascii())
        if "SIZE" in self.extensions:
            params += f" SIZE={len(data)}"
        commands = [f"MAIL FROM:<{envelope_from}>{params}", f"RCPT TO:<{rcpt}>", "DATA"]
        if self._dirty:
            commands.insert(0, "RSET")
        wire = "".join(c + "\r\n" for c in commands).encode()
        if "PIPELINING" in self.extensions:
            self._write(wire)
            replies = []
            for _ in commands:
                replies.append(self._read())
                if not self.connected:  # 421: the server hung up mid-pipeline
                    break
        else:
            replies = self._sequential(commands)
        if self._dirty:
            replies.pop(0)
            self._dirty = False
        return self._transfer(replies, data)

    def _sequential(self, commands: list[str]) -> list[Reply]:
        replies = []
        for command in commands:
            replies.append(self._command(command))
            if not replies[-1].ok or not self.connected:
                break
        return replies

    def _transfer(self, replies: list[Reply], data: bytes) -> Outcome:
        stages = ("mail", "rcpt", "data")
        for stage, reply in zip(stages, replies, strict=False):
            if reply.code == 354:
                break
            if not reply.ok or not self.connected:
                self._finish_refused(replies)
                return Outcome(reply, stage)
        if len(replies) < 3 or replies[2].code != 354:
            raise SmtpConnectionError(f"{self.host}:{self.port}: DATA got no reply")
        self._write(_dot_stuff(data) + b".\r\n")
        return Outcome(self._read(), "end")

    def _finish_refused(self, replies: list[Reply]) -> None:
        if not self.connected:
            return
        if len(replies) == 3 and replies[2].code == 354:
            # A server that took DATA despite a refused recipient gets an empty message.
            self._write(b".\r\n")
            self._read()
        elif replies[0].ok:
            self._dirty = True

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buf = b""
                self._dirty = False
                self._rset = False

    def close(self) -> None:
        """QUIT politely, then close; errors on the way out are irrelevant."""
        if self._sock is None:
            return
        try:
            self._sock.settimeout(5)
            self._write(b"QUIT\r\n")
            self._read()
        except (SmtpConnectionError, OSError):
            pass
        finally:
            self.abort()


def _dot_stuff(data: bytes) -> bytes:
    """The body with leading dots doubled (RFC 5321 4.5.2) and a final CRLF."""
    if data.startswith(b".") or b"\n." in data:  # one byte search; our bodies never match
        data = (b"." + data if data.startswith(b".") else data).replace(b"\n.", b"\n..")
    return data if data.endswith(CRLF) else data + CRLF
