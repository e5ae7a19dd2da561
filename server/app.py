"""The composition root: builds the Starlette app and opens/closes every adapter."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from protocol.errors import ErrorCode
from storage import GroupCommit, open_store
from storage.blobs import open_blobs
from storage.errors import StorageError, Unavailable

from .auth import hash_password, new_token
from .broker import open_broker
from .catchup import run_catch_up
from .config import Settings
from .errors import ApiError, from_storage
from .handlers import Services
from .handlers.messages import commit_and_publish
from .hub import Hub
from .last_seen import LastSeen
from .limits import UserRates
from .live import LiveConnections
from .log import RequestIdMiddleware
from .metrics import METRICS, timed
from .node import Node, NodeApp, RestLimiters, psc_client
from .notifications import open_notifications
from .presence import open_presence
from .probe import BrokerProbe
from .receipts import RECEIPTS_COMMIT_EVERY_S, ReceiptAnnouncer, commit_and_announce
from .retention import run_retention
from .revocation import on_revoke_envelope, run_session_watch
from .routes import routes, web
from .routes.common import error_response
from .security_headers import SecurityHeaders
from .server_key import load_server_key
from .sweeper import run_sweeper
from .url_text import UrlTextRule
from .verification.sweep import run_identity_sweeper
from .websocket import run_keepalive

__all__ = ["create_app"]

log = logging.getLogger("confrere")


def create_app(settings: Settings | None = None) -> NodeApp:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: NodeApp) -> AsyncIterator[None]:
        server_key = await asyncio.to_thread(load_server_key, settings)
        store = await open_store(settings.database_url)
        try:
            blobs = await open_blobs(settings.blob_url)
        except BaseException:
            await store.close()
            raise
        hub = Hub(open_broker(settings.broker_url), open_presence(settings.broker_url))
        await hub.start()
        notifications = open_notifications(store, hub.presence, settings, server_key)
        announcer = ReceiptAnnouncer(hub)
        services = Services(
            store,
            hub,
            GroupCommit(
                commit_and_publish(
                    timed(METRICS.commit, store.append_messages), hub, notifications
                ),
                delay_s=settings.commit_delay_ms / 1000,
            ),
            GroupCommit(
                commit_and_announce(timed(METRICS.receipts_commit, store.set_reads), announcer),
                min_interval_s=RECEIPTS_COMMIT_EVERY_S,
            ),
            announcer,
            blobs,
            server_key,
            LastSeen(store),
            notifications,
        )
        hub.on_revoke = on_revoke_envelope(live)
        app.started(
            Node(
                settings=settings,
                services=services,
                live=live,
                user_rates=UserRates(settings.limits),
                limiters=RestLimiters.from_settings(settings),
                psc=psc_client(settings),
                dummy_password_hash=await hash_password(new_token(), settings.password_cost),
            )
        )
        notifications.start()
        # What start-up built lives as long as the node: out of the collector's full
        # passes, which otherwise walk it all again as connections come and go.
        gc.freeze()
        watchers = [
            asyncio.create_task(BrokerProbe(hub.broker).run(), name="broker-probe"),
            asyncio.create_task(
                run_session_watch(store, live, settings.session_check_interval_s),
                name="session-watch",
            ),
            asyncio.create_task(
                run_retention(store, blobs, settings.retention), name="retention-sweeper"
            ),
            asyncio.create_task(
                run_keepalive(live, settings.ping_interval_s), name="websocket-keepalive"
            ),
            asyncio.create_task(run_catch_up(hub, store), name="broker-outage-catch-up"),
        ]
        sweeper = asyncio.create_task(
            run_sweeper(store, blobs, settings.orphan_ttl_s, settings.orphan_sweep_interval_s),
            name="orphan-sweeper",
        )
        identity_sweeper = asyncio.create_task(
            run_identity_sweeper(
                store, blobs, settings.identity_retention_s, settings.identity_sweep_interval_s
            ),
            name="identity-document-sweeper",
        )
        log.info(
            "confrere ready: database=%s broker=%s blobs=%s",
            settings.database_url.split("://")[0],
            settings.broker_url.split("://")[0],
            settings.blob_url.split("://")[0],
        )
        try:
            yield
        finally:
            for task in watchers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for task in (sweeper, identity_sweeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            app.started(None)
            await notifications.close()
            await services.last_seen.flush()
            await announcer.release_all()  # its timers end before the hub does
            await hub.close()
            await blobs.close()
            await store.close()

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.BAD_FRAME}.get(
            exc.status_code, ErrorCode.BAD_FRAME
        )
        return JSONResponse(
            {"code": code.value, "message": str(exc.detail)}, status_code=exc.status_code
        )

    async def storage_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StorageError)
        answer = from_storage(exc)
        if isinstance(exc, Unavailable):
            log.warning("storage error on %s: %s", request.url.path, exc)
        else:
            log.info("storage refusal on %s: %s: %s", request.url.path, type(exc).__name__, exc)
        return error_response(answer)

    async def client_gone(request: Request, exc: Exception) -> Response:
        # The peer left (or was cut off for sending its body too slowly): nobody reads
        # this answer, and nothing went wrong on our side.
        log.info("client disconnected during %s", request.url.path)
        return Response(status_code=400)

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return JSONResponse({"code": "internal", "message": "internal error"}, status_code=500)

    live = LiveConnections()
    return NodeApp(
        settings,
        live,
        routes=[*routes, *web.routes],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(SecurityHeaders),
            Middleware(UrlTextRule),
        ],
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            StorageError: storage_error,
            ClientDisconnect: client_gone,
            Exception: internal_error,
        },
    )
