"""Settings, read once from the environment (``CONFRERE_*``). Defaults are the embedded
setup: SQLite and blobs under ./var, the in-process broker, 127.0.0.1:8000.

``server_key`` (base64 of 32 bytes) encrypts server-visible documents at rest; it is
kept out of ``repr`` and never logged. Unset, the key is read from (or generated into)
``server_key_file``, by default ``server.key`` beside the SQLite database (see
:mod:`server.server_key`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from protocol.limits import HELLO_TIMEOUT_S

__all__ = ["Settings"]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CONFRERE_{name}", default)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite:///var/confrere.db"
    broker_url: str = "memory://"
    # file://relative/dir, file:///absolute/dir or s3://bucket?endpoint=... (storage.blobs)
    blob_url: str = "file://var/blobs"
    # Uploads no message (or referral) referenced within this time are deleted.
    orphan_ttl_s: int = 24 * 3600
    orphan_sweep_interval_s: float = 600.0
    # Lifetime of presigned download URLs of chat files (stores that issue them: S3).
    download_url_ttl_s: int = 300
    server_key: str = field(default="", repr=False)
    server_key_file: str = ""
    session_ttl_s: int = 30 * 24 * 3600
    hello_timeout_s: float = HELLO_TIMEOUT_S
    # Frames queued for one connection before it counts as a slow consumer (close 4008).
    send_queue_frames: int = 2048
    max_inflight_requests: int = 64
    # Argon2id cost: "interactive" (default) or "moderate"; "min" only for throwaway tests.
    password_cost: str = "interactive"
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "info"

    @classmethod
    def from_env(cls) -> Settings:
        d = cls()
        origins = tuple(o.strip() for o in _env("ALLOWED_ORIGINS", "").split(",") if o.strip())
        return cls(
            host=_env("HOST", d.host),
            port=int(_env("PORT", str(d.port))),
            database_url=_env("DATABASE_URL", d.database_url),
            broker_url=_env("BROKER_URL", d.broker_url),
            blob_url=_env("BLOB_URL", d.blob_url),
            orphan_ttl_s=int(_env("ORPHAN_TTL_S", str(d.orphan_ttl_s))),
            orphan_sweep_interval_s=float(
                _env("ORPHAN_SWEEP_INTERVAL_S", str(d.orphan_sweep_interval_s))
            ),
            download_url_ttl_s=int(_env("DOWNLOAD_URL_TTL_S", str(d.download_url_ttl_s))),
            server_key=_env("SERVER_KEY", ""),
            server_key_file=_env("SERVER_KEY_FILE", ""),
            session_ttl_s=int(_env("SESSION_TTL_S", str(d.session_ttl_s))),
            hello_timeout_s=float(_env("HELLO_TIMEOUT_S", str(d.hello_timeout_s))),
            send_queue_frames=int(_env("SEND_QUEUE_FRAMES", str(d.send_queue_frames))),
            max_inflight_requests=int(_env("MAX_INFLIGHT_REQUESTS", str(d.max_inflight_requests))),
            password_cost=_env("PASSWORD_COST", d.password_cost),
            allowed_origins=origins,
            log_level=_env("LOG_LEVEL", d.log_level),
        )
