"""The Redis and PostgreSQL that ``bench``'s targets run on: the ones given by URL, or
throwaway ones started on first use and pinned to the cores given (the generator's:
in production they are other hosts, so the nodes keep their core to themselves)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .fleet import RedisServer
from .postgres import fresh_database, postgres_pids, start_postgres

__all__ = ["Backends"]


class Backends:
    def __init__(
        self,
        *,
        broker_url: str | None,
        database_url: str | None,
        start_postgres: bool,
        cpus: Sequence[int] | None,
    ) -> None:
        if database_url is not None and not database_url.startswith(("postgresql:", "postgres:")):
            raise SystemExit(f"--database-url: a postgresql:// URL, not {database_url!r}")
        if database_url is not None and start_postgres:
            raise SystemExit("give --database-url or --start-postgres, not both")
        self._broker_url = broker_url
        self._database_url = database_url
        self.start_postgres = start_postgres
        self.cpus = list(cpus) if cpus else None
        self.redis: RedisServer | None = None
        self.postgres: Any = None  # a services_pg.PostgresServer we started

    @property
    def has_postgres(self) -> bool:
        return self._database_url is not None or self.start_postgres

    async def broker_url(self) -> str:
        if self._broker_url is None:
            self.redis = RedisServer(cpus=self.cpus)
            await self.redis.start()
            self._broker_url = self.redis.url
        return self._broker_url

    async def database_url(self) -> str:
        if self._database_url is None:
            if not self.start_postgres:
                raise SystemExit("the pg targets need --database-url URL or --start-postgres")
            self.postgres = start_postgres(self.cpus)
            self._database_url = await fresh_database(self.postgres)
        return self._database_url

    def pids(self) -> list[int]:
        """The processes of the Redis and PostgreSQL started here (none of external
        ones), whose CPU the bench reports beside the generator's."""
        pids = [self.redis.pid] if self.redis is not None else []
        if self.postgres is not None:
            pids += postgres_pids(self.postgres)
        return pids

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
