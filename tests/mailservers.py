"""Real mail servers for tests, as private instances on loopback in temporary dirs: Dovecot
(IMAP) and Postfix (a relay that writes real delivery status notifications)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import ServerProcess, free_port, wait_for_port


@contextlib.contextmanager
def _readable_files():
    """Files made here readable by the servers' own users, whatever umask Clarion set (077)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _workdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)  # the servers' unprivileged processes must reach into it
    return path


@dataclass
class DovecotServer(ServerProcess):
    """Dovecot's IMAP on loopback with one password for every user (plain IMAP, no TLS)."""

    password: str = "imap-test-password"
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: _workdir("clarion-dovecot-"))
    proc: subprocess.Popen[bytes] | None = None

    def url(self, user: str = "bounces", query: str = "") -> str:
        """The CLARION_BOUNCE_IMAP_URL of a user's INBOX."""
        suffix = f"?{query}" if query else ""
        return f"imap://{user}:{self.password}@127.0.0.1:{self.port}/INBOX{suffix}"

    def start(self) -> DovecotServer:
        with _readable_files():
            return self._start()

    def _start(self) -> DovecotServer:
        if os.geteuid() != 0:
            raise RuntimeError("the private Dovecot instance needs root (it drops privileges)")
        exe = shutil.which("dovecot") or "/usr/sbin/dovecot"
        mail = self.workdir / "mail"
        mail.mkdir()
        shutil.chown(mail, "nobody", "nogroup")
        config = self.workdir / "dovecot.conf"
        config.write_text(
            f"""
base_dir = {self.workdir}/run
state_dir = {self.workdir}/state
log_path = {self.workdir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{mail}/%u
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = static
  args = password={self.password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
        )
        self.proc = subprocess.Popen(
            [exe, "-c", str(config), "-F"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port)
        return self


MASTER_CF = """\
{smtpd_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class PostfixServer:
    """A private Postfix relay on loopback: accepts from 127.0.0.1 on `port`, relays to the
    sink at `relay_port`, sends mail for `bounce_domain` (its DSNs) to `bounce_port`, and
    retries deferred mail every second, warning of delays after `delay_warning` seconds."""

    relay_port: int
    bounce_domain: str
    bounce_port: int
    delay_warning: int = 2
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: _workdir("clarion-postfix-"))

    @property
    def config_dir(self) -> Path:
        return self.workdir / "etc"

    @property
    def log(self) -> Path:
        return self.workdir / "maillog"

    def start(self) -> PostfixServer:
        with _readable_files():
            return self._start()

    def _start(self) -> PostfixServer:
        if os.geteuid() != 0:
            raise RuntimeError("`postfix -c DIR start` needs root (Postfix drops privileges)")
        self.config_dir.mkdir()
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(smtpd_port=self.port))
        (self.config_dir / "main.cf").write_text(self._main_cf())
        (self.workdir / "spool").mkdir()  # `start` creates what is inside, with its owners
        (self.workdir / "data").mkdir()
        shutil.chown(self.workdir / "data", "postfix")
        self._postfix("start")
        wait_for_port(self.port)
        return self

    def _main_cf(self) -> str:
        return f"""\
compatibility_level = 3.6
queue_directory = {self.workdir}/spool
data_directory = {self.workdir}/data
maillog_file = {self.log}
maillog_file_prefixes = {self.workdir}
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = relay.clarion.test
mydomain = clarion.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{self.relay_port}
transport_maps = inline:{{ {{ {self.bounce_domain} = smtp:[127.0.0.1]:{self.bounce_port} }} }}
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = {self.delay_warning}s
notify_classes =
biff = no
"""

    def _postfix(self, action: str) -> None:
        subprocess.run(
            ["/usr/sbin/postfix", "-c", str(self.config_dir), action],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        if (self.workdir / "spool" / "pid" / "master.pid").exists():
            subprocess.run(
                ["/usr/sbin/postfix", "-c", str(self.config_dir), "stop"],
                check=False,
                capture_output=True,
            )

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
