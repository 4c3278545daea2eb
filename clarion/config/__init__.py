"""Settings from CLARION_* environment variables (and an optional .env), validated at start."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clarion.config.bounces import BounceSettings, load_bounce_settings
from clarion.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SmtpServer:
    """One outbound SMTP server: where it is, how to log in, and how hard to push it."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: str = "none"  # none | starttls | ssl
    max_connections: int = 4
    rate: float = 0.0  # messages per second across all workers; 0 = unlimited
    weight: int = 1

    @property
    def name(self) -> str:
        """A stable label for logs, rate-limit keys and the circuit breaker."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read once per process."""

    instance_dir: Path
    database_url: str
    redis_url: str
    smtp_servers: tuple[SmtpServer, ...]
    base_url: str
    secret_key: str
    mail_from: str
    bounce_domain: str
    timezone: str = "UTC"
    catcher_host: str = "127.0.0.1"
    catcher_port: int = 1025
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None
    # (selector, key file) of every key that signs: CLARION_DKIM_KEYS, or the single key above.
    dkim_keys: tuple[tuple[str, Path], ...] = ()
    confirm_ttl_hours: int = 72
    confirm_resend_minutes: int = 15
    subscribe_limit_per_ip: str = "20/hour"
    subscribe_limit_per_address: str = "5/day"
    batch_size: int = 250
    # Delivery engine: batches enqueued at once per alert, how long a claimed batch may run
    # before its rows count as abandoned, retry backoff for 4xx, and when to give up on them.
    send_window: int = 16
    send_lease_seconds: int = 600
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    retry_expire_hours: int = 72
    sweep_seconds: float = 30.0
    open_tracking: bool = False
    # Networks outbound fetches (images, feeds) may reach although they are not public.
    allow_private_fetch: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    fetch_max_bytes: int = 10 * 1024 * 1024
    fetch_timeout: int = 10
    feed_poll_seconds: int = 600  # how often each feed is fetched
    environment: str = "embedded"
    outbox_dir: Path = Path("instance/outbox")  # Maildir of the local mail catcher
    site_name: str = "Clarion"
    proxy_count: int = 0
    languages: tuple[tuple[str, str], ...] = (("en", "English"),)
    embed_origins: tuple[str, ...] = ()
    # Reader privacy: how long a click recognises its reader on a petition page, how long
    # after sending such a reader signs without a confirmation mail (0: always by mail), and
    # how long IP addresses, user agents and per-reader clicks are kept (clarion.retention).
    recognise_days: int = 30
    reader_sign_hours: int = 48
    retain_ip_days: int = 30
    retain_clicks_days: int = 180
    # The inbound paths: bounce server, IMAP mailbox, provider webhooks.
    bounces: BounceSettings = field(default_factory=BounceSettings)
    # Prometheus scrapes /metrics with this as its bearer token; without one, loopback only.
    metrics_token: str = ""
    # Requests one API token may make (limits' notation, like "600/minute").
    api_rate_limit: str = "600/minute"
    # Webhook deliveries a second, all endpoints together, while a send is running (0: no
    # pace, as fast as the workers go); outside a send they always go as fast as they can.
    webhook_rate_during_send: int = 40

    @property
    def is_sqlite(self) -> bool:
        """True on the embedded default database."""
        return self.database_url.startswith("sqlite")

    @property
    def from_address(self) -> str:
        """The bare address of CLARION_FROM."""
        return parseaddr(self.mail_from)[1]


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"a number of at least {minimum}, got {value}")
    return value


def _float(name: str, default: float, minimum: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"a number of at least {minimum}, got {value}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(name, f"true or false, got {raw!r}")


def parse_smtp_url(url: str, name: str = "CLARION_SMTP_URL") -> SmtpServer:
    """Parse `smtp://[user:pass@]host:port[?tls=starttls|ssl&max_connections=N&rate=R&weight=W]`."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"}:
        raise ConfigError(name, f"smtp://[user:pass@]host:port[?tls=starttls|ssl], got {url!r}")
    if not parts.hostname:
        raise ConfigError(name, f"a host name after smtp://, got {url!r}")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise ConfigError(name, f"a numeric port, got {url!r}") from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls = query.pop("tls", "ssl" if parts.scheme == "smtps" else "none")
    if tls not in {"none", "starttls", "ssl"}:
        raise ConfigError(name, f"tls=starttls or tls=ssl, got tls={tls!r}")
    try:
        max_conn = int(query.pop("max_connections", "4"))
        rate = float(query.pop("rate", "0"))
        weight = int(query.pop("weight", "1"))
    except ValueError:
        raise ConfigError(name, "numbers for max_connections, rate and weight") from None
    if query:
        unknown = ", ".join(sorted(query))
        raise ConfigError(name, f"only tls, max_connections, rate, weight options; got {unknown}")
    if max_conn < 1 or weight < 1 or rate < 0:
        raise ConfigError(name, "max_connections and weight of at least 1, rate of 0 or more")
    return SmtpServer(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        max_connections=max_conn,
        rate=rate,
        weight=weight,
    )


def _base_url() -> str:
    raw = _env("CLARION_BASE_URL", "http://127.0.0.1:5000")
    assert raw is not None
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError("CLARION_BASE_URL", f"an absolute http(s) URL, got {raw!r}")
    if parts.query or parts.fragment:
        raise ConfigError("CLARION_BASE_URL", f"a URL without query or fragment, got {raw!r}")
    return raw.rstrip("/")


def _secret_key(instance_dir: Path, environment: str) -> str:
    raw = _env("CLARION_SECRET_KEY")
    if raw is not None:
        if len(raw) < 32:
            raise ConfigError("CLARION_SECRET_KEY", "at least 32 random characters")
        return raw
    if environment == "production":
        raise ConfigError("CLARION_SECRET_KEY", "a secret of at least 32 random characters")
    # Embedded default: one random key kept in the instance folder, so restarts keep tokens valid.
    path = instance_dir / "secret_key"
    if not path.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _mail_from() -> str:
    raw = _env("CLARION_FROM", "Clarion <clarion@localhost>")
    assert raw is not None
    addr = parseaddr(raw)[1]
    if "@" not in addr:
        raise ConfigError("CLARION_FROM", f'a sender like "Name <alerts@example.org>", got {raw!r}')
    return raw


def _database_url(instance_dir: Path) -> str:
    raw = _env("CLARION_DATABASE_URL")
    if raw is None:
        instance_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{instance_dir / 'clarion.db'}"
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw[len("postgresql://") :]
    if not (raw.startswith("sqlite:") or raw.startswith("postgresql+psycopg://")):
        raise ConfigError(
            "CLARION_DATABASE_URL", f"sqlite:///path or postgresql://user@host/db, got {raw!r}"
        )
    return raw


def _redis_url() -> str:
    raw = _env("CLARION_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert raw is not None
    if urlsplit(raw).scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError("CLARION_REDIS_URL", f"redis://host:port/db, got {raw!r}")
    return raw


DkimKeys = tuple[tuple[str, Path], ...]


def _dkim() -> tuple[str | None, DkimKeys]:
    """CLARION_DKIM_DOMAIN with either CLARION_DKIM_KEYS (selector:path,selector:path) or
    CLARION_DKIM_SELECTOR and CLARION_DKIM_KEY_FILE (one key, as before)."""
    domain = _env("CLARION_DKIM_DOMAIN")
    selector = _env("CLARION_DKIM_SELECTOR")
    key_file = _env("CLARION_DKIM_KEY_FILE")
    listed = _env("CLARION_DKIM_KEYS")
    if listed is not None and (selector is not None or key_file is not None):
        raise ConfigError(
            "CLARION_DKIM_KEYS",
            "either CLARION_DKIM_KEYS or CLARION_DKIM_SELECTOR with CLARION_DKIM_KEY_FILE, "
            "not both",
        )
    keys = _dkim_keys(listed) if listed is not None else ()
    if selector is not None and key_file is not None:
        keys = ((selector, Path(key_file)),)
    single_half_set = (selector is None) != (key_file is None)
    if (domain is None) != (not keys) or single_half_set:
        raise ConfigError(
            "CLARION_DKIM_DOMAIN",
            "CLARION_DKIM_DOMAIN set together with CLARION_DKIM_KEYS (selector:path,...) or "
            "with CLARION_DKIM_SELECTOR and CLARION_DKIM_KEY_FILE",
        )
    for _, path in keys:
        if not path.is_file():
            raise ConfigError(
                "CLARION_DKIM_KEY_FILE", f"a readable PEM private key, {path} is missing"
            )
    return domain, keys


def _dkim_keys(raw: str) -> DkimKeys:
    keys = []
    for item in (i.strip() for i in raw.split(",") if i.strip()):
        selector, colon, path = item.partition(":")
        if not colon or not selector.strip() or not path.strip():
            raise ConfigError(
                "CLARION_DKIM_KEYS", f"selector:/path/to/key.pem, comma-separated; got {item!r}"
            )
        keys.append((selector.strip(), Path(path.strip())))
    selectors = [s for s, _ in keys]
    if len(set(selectors)) != len(selectors):
        raise ConfigError("CLARION_DKIM_KEYS", f"a different selector per key, got {raw!r}")
    return tuple(keys)


def _timezone() -> str:
    raw = _env("CLARION_TIMEZONE", "UTC")
    assert raw is not None
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "CLARION_TIMEZONE", f"an IANA zone like Europe/Minsk, got {raw!r}"
        ) from None
    return raw


def _languages() -> tuple[tuple[str, str], ...]:
    raw = _env("CLARION_LANGUAGES", "en=English,be=Беларуская,ru=Русский,uk=Українська,pl=Polski")
    assert raw is not None
    pairs = []
    for item in raw.split(","):
        code, _, label = item.strip().partition("=")
        if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z]{2,4})?", code) or not label.strip():
            raise ConfigError(
                "CLARION_LANGUAGES", f"code=Label pairs like en=English, got {item!r}"
            )
        pairs.append((code, label.strip()))
    return tuple(pairs)


def _origins() -> tuple[str, ...]:
    raw = _env("CLARION_EMBED_ORIGINS", "")
    origins = tuple(o.strip().rstrip("/") for o in (raw or "").split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
            raise ConfigError(
                "CLARION_EMBED_ORIGINS", f"origins like https://blog.example.org, got {origin!r}"
            )
    return origins


def _limit_spec(name: str, default: str) -> str:
    from limits import parse

    raw = _env(name, default) or default
    try:
        parse(raw)
    except ValueError:
        raise ConfigError(name, f'a rate like "20/hour" or "5 per day", got {raw!r}') from None
    return raw


def _private_fetch() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """false (default), true (every network), or the networks allowed, like 10.0.0.0/8."""
    name = "CLARION_ALLOW_PRIVATE_FETCH"
    raw = (_env(name, "false") or "false").lower()
    if raw in {"0", "false", "no", "off"}:
        return ()
    if raw in {"1", "true", "yes", "on"}:
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    try:
        return tuple(ipaddress.ip_network(p.strip()) for p in raw.split(",") if p.strip())
    except ValueError:
        raise ConfigError(
            name, f"false, true, or networks like 10.0.0.0/8,192.168.1.20, got {raw!r}"
        ) from None


def load_settings(env_file: Path | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError naming the first bad variable."""
    from dotenv import load_dotenv

    load_dotenv(env_file or Path.cwd() / ".env", override=False)
    environment = _env("CLARION_ENV", "embedded") or "embedded"
    if environment not in {"embedded", "production", "test"}:
        raise ConfigError("CLARION_ENV", f"embedded, production or test, got {environment!r}")
    instance_dir = Path(_env("CLARION_INSTANCE_DIR", str(PROJECT_ROOT / "instance")) or "")
    catcher_port = _int("CLARION_CATCHER_PORT", 1025, minimum=1)
    smtp_raw = _env("CLARION_SMTP_URL", f"smtp://127.0.0.1:{catcher_port}")
    assert smtp_raw is not None
    servers = tuple(parse_smtp_url(u.strip()) for u in smtp_raw.split(",") if u.strip())
    if not servers:
        raise ConfigError("CLARION_SMTP_URL", "at least one smtp:// URL")
    base_url = _base_url()
    dkim_domain, dkim_keys = _dkim()
    return Settings(
        instance_dir=instance_dir,
        database_url=_database_url(instance_dir),
        redis_url=_redis_url(),
        smtp_servers=servers,
        base_url=base_url,
        secret_key=_secret_key(instance_dir, environment),
        mail_from=_mail_from(),
        bounce_domain=_env("CLARION_BOUNCE_DOMAIN", urlsplit(base_url).hostname or "localhost")
        or "localhost",
        timezone=_timezone(),
        catcher_port=catcher_port,
        dkim_domain=dkim_domain,
        dkim_selector=dkim_keys[0][0] if dkim_keys else None,
        dkim_key_file=dkim_keys[0][1] if dkim_keys else None,
        dkim_keys=dkim_keys,
        confirm_ttl_hours=_int("CLARION_CONFIRM_TTL_HOURS", 72, minimum=1),
        confirm_resend_minutes=_int("CLARION_CONFIRM_RESEND_MINUTES", 15, minimum=1),
        subscribe_limit_per_ip=_limit_spec("CLARION_SUBSCRIBE_LIMIT_PER_IP", "20/hour"),
        subscribe_limit_per_address=_limit_spec("CLARION_SUBSCRIBE_LIMIT_PER_ADDRESS", "5/day"),
        batch_size=_int("CLARION_BATCH_SIZE", 250, minimum=1),
        send_window=_int("CLARION_SEND_WINDOW", 16, minimum=1),
        send_lease_seconds=_int("CLARION_SEND_LEASE_SECONDS", 600, minimum=2),
        retry_base_seconds=_float("CLARION_RETRY_BASE_SECONDS", 60.0, minimum=0.01),
        retry_max_seconds=_float("CLARION_RETRY_MAX_SECONDS", 3600.0, minimum=0.01),
        retry_expire_hours=_int("CLARION_RETRY_EXPIRE_HOURS", 72, minimum=1),
        sweep_seconds=_float("CLARION_SWEEP_SECONDS", 30.0, minimum=0.1),
        open_tracking=_bool("CLARION_OPEN_TRACKING", False),
        allow_private_fetch=_private_fetch(),
        fetch_max_bytes=_int("CLARION_FETCH_MAX_BYTES", 10 * 1024 * 1024, minimum=1024),
        fetch_timeout=_int("CLARION_FETCH_TIMEOUT", 10, minimum=1),
        feed_poll_seconds=_int("CLARION_FEED_POLL_SECONDS", 600, minimum=30),
        environment=environment,
        outbox_dir=Path(_env("CLARION_OUTBOX_DIR", str(instance_dir / "outbox")) or ""),
        site_name=_env("CLARION_SITE_NAME", "Clarion") or "Clarion",
        proxy_count=_int("CLARION_PROXY_COUNT", 0),
        languages=_languages(),
        embed_origins=_origins(),
        recognise_days=_int("CLARION_RECOGNISE_DAYS", 30),
        reader_sign_hours=_int("CLARION_READER_SIGN_HOURS", 48),
        retain_ip_days=_int("CLARION_RETAIN_IP_DAYS", 30, minimum=1),
        retain_clicks_days=_int("CLARION_RETAIN_CLICKS_DAYS", 180, minimum=1),
        bounces=load_bounce_settings(),
        metrics_token=_env("CLARION_METRICS_TOKEN", "") or "",
        api_rate_limit=_limit_spec("CLARION_API_RATE_LIMIT", "600/minute"),
        webhook_rate_during_send=_int("CLARION_WEBHOOK_RATE_DURING_SEND", 40),
    )


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between apps)."""
    global _settings
    _settings = None
