"""What a request or a connection needs of its node, as one typed object.

The composition root (:mod:`server.app`) builds every service once, in the lifespan,
and hands them to :class:`Node`; the routes get it with :func:`node`, the WebSocket
transport from :attr:`NodeApp.node`. Nothing is created lazily by a request, and
nothing hangs untyped on ``app.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request

from storage import Store

from .config import Settings
from .handlers import Services
from .limits import UserRates
from .live import LiveConnections
from .ratelimit import RateLimiter
from .verification import oidc

__all__ = ["Node", "NodeApp", "RestLimiters", "node", "psc_redirect_uri"]


@dataclass(frozen=True, slots=True)
class RestLimiters:
    """The REST routes' token buckets, one set per node (test servers share none)."""

    signups: RateLimiter  # per client address: CONFRERE_SIGNUPS_PER_HOUR
    login_account: RateLimiter  # per account and client address: failures only
    login_address: RateLimiter  # per client address: failures only
    code_guesses: RateLimiter  # e-mail confirmation codes tried, per account
    code_mails: RateLimiter  # e-mail codes sent again, per account
    reset_mails: RateLimiter  # per address: 3, then one a minute
    reset_clients: RateLimiter  # per client address: 20, then one every 10 s
    reset_guesses: RateLimiter  # per address: 10, then one a minute (besides the 5)
    password_checks: RateLimiter  # per account: 10, then one a minute
    verification: RateLimiter  # identity verification attempts, per account or address

    @classmethod
    def from_settings(cls, settings: Settings) -> RestLimiters:
        per_hour = settings.signups_per_hour
        return cls(
            signups=RateLimiter(per_hour / 3600, max(1.0, per_hour)),
            login_account=RateLimiter(1 / 60, 10),
            login_address=RateLimiter(1.0, 50),
            code_guesses=RateLimiter(1 / 60, 10),
            code_mails=RateLimiter(1 / 60, 3),
            reset_mails=RateLimiter(1 / 60, 3),
            reset_clients=RateLimiter(1 / 10, 20),
            reset_guesses=RateLimiter(1 / 60, 10),
            password_checks=RateLimiter(1 / 60, 10),
            verification=RateLimiter(0.1, 20),
        )


def psc_redirect_uri(settings: Settings) -> str:
    """Where the provider sends the browser back: from the settings only, never from
    the request's Host (a forged Host must not choose where codes go)."""
    return settings.psc_redirect_uri or (
        settings.public_url.rstrip("/") + "/v1/verification/psc/callback"
    )


def psc_client(settings: Settings) -> oidc.OidcClient | None:
    """The Pro Santé Connect client, or ``None`` when PSC is not configured."""
    if not settings.psc_issuer:
        return None
    return oidc.OidcClient(
        oidc.OidcConfig(
            settings.psc_issuer,
            settings.psc_client_id,
            settings.psc_client_secret,
            psc_redirect_uri(settings),
        )
    )


@dataclass(frozen=True, slots=True)
class Node:
    settings: Settings
    services: Services[Store]
    live: LiveConnections
    user_rates: UserRates
    limiters: RestLimiters
    psc: oidc.OidcClient | None  # None: Pro Santé Connect is not configured
    # A hash of a random password at this node's cost: log-in checks an unknown
    # address's password against it, so timing does not tell which addresses exist.
    dummy_password_hash: str


class NodeApp(Starlette):
    """The Starlette app of one node. ``settings`` and ``live`` exist from the start
    (the HTTP protocol and the graceful shutdown read them outside any request); the
    node is set by the lifespan once every adapter is open."""

    def __init__(self, settings: Settings, live: LiveConnections, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.live = live
        self._node: Node | None = None

    @property
    def node(self) -> Node:
        if self._node is None:
            raise RuntimeError("the node's services are not open (outside the lifespan)")
        return self._node

    def started(self, node: Node | None) -> None:
        """The lifespan's: the node once built, ``None`` once closed."""
        self._node = node


def node(request: Request) -> Node:
    app = request.app
    assert isinstance(app, NodeApp), "a Confrère route outside create_app()"
    return app.node
