"""The web client (``clients/web``), served as ES modules without a build step.

``/`` is the page, served as well at each of the client's own paths (:data:`PAGES`:
log-in, sign-up, a conversation… so that e-mailed links, bookmarks and reloads land on
the right view; the client's router reads the path). ``/app/…`` are the client's own
modules, styles and icons, ``/vendor/NAME/…`` the few browser builds of the npm
packages it uses, straight from ``clients/web/node_modules`` (``npm ci`` in ``make
run``/``make test``); ``/manifest.webmanifest`` and ``/sw.js`` make it an installable
web app (the service worker caches the application's files only). The page's import
map is inline, so the Content-Security-Policy allows exactly that script by its
SHA-256 (:func:`content_security_policy`) and no other inline code.

Only files under those folders, with an extension listed in ``_TYPES``, are served;
anything else is 404. Paths never escape their folder (resolved, then checked).
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from protocol.errors import ErrorCode

from ..errors import ApiError

__all__ = ["PAGES", "WEB_ROOT", "content_security_policy", "routes"]

WEB_ROOT = Path(__file__).resolve().parents[2] / "clients" / "web"
_MODULES = WEB_ROOT / "node_modules"
_VENDOR = {
    "msgpack": _MODULES / "@msgpack" / "msgpack" / "dist.esm",
    "noble-hashes": _MODULES / "@noble" / "hashes",
    "libsodium-wrappers-sumo": _MODULES / "libsodium-wrappers-sumo" / "dist" / "modules-sumo-esm",
    "libsodium-sumo": _MODULES / "libsodium-sumo" / "dist" / "modules-sumo-esm",
}
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The client's pages (SPEC.md §9.3); keep in step with clients/web/app/router.js.
PAGES = (
    "/",
    "/connexion",
    "/inscription",
    "/inscription-regulateur",
    "/verification",
    "/conversations",
    "/conversations/{room}",
    "/adressage",
    "/adressage/{profile}",
    "/agenda",
    "/sas",
    "/verifications",
    "/administration",
    "/conditions",
    "/confidentialite",
    "/mot-de-passe-oublie",
    "/compte/securite",
    "/approbation",  # a new device waits for its approval (SPEC.md §10.5)
    "/signup",  # the invitation links of e-mails sent before /inscription
)
_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)


@cache
def _inline_script_hashes() -> tuple[str, ...]:
    """CSP sources of the page's inline import map (its exact text, hashed)."""
    try:
        page = (WEB_ROOT / "index.html").read_text("utf-8")
    except FileNotFoundError:
        return ()
    return tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in _IMPORT_MAP.findall(page)
    )


def content_security_policy() -> str:
    """No inline code but the import map, no eval (WebAssembly compilation only, for
    libsodium), nothing from other origins, no framing, no plugins."""
    scripts = " ".join(("'self'", "'wasm-unsafe-eval'", *_inline_script_hashes()))
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {scripts}",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "connect-src 'self'",
            "manifest-src 'self'",
            "worker-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "require-trusted-types-for 'script'",
            # One policy, whose only use is the service worker's URL (clients/web/app/pwa.js).
            "trusted-types confrere-sw",
        )
    )


def _file(root: Path, relative: str) -> Response:
    path = (root / relative).resolve()
    content_type = _TYPES.get(path.suffix)
    if content_type is None or not path.is_relative_to(root.resolve()) or not path.is_file():
        raise ApiError(ErrorCode.NOT_FOUND, "no such file")
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "no-cache"})


async def index(request: Request) -> Response:
    page = WEB_ROOT / "index.html"
    if not (_MODULES / ".package-lock.json").is_file():
        raise ApiError(
            ErrorCode.UNAVAILABLE, "the web client is not installed: run `make run` (npm ci)"
        )
    return FileResponse(
        page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"}
    )


async def app_file(request: Request) -> Response:
    return _file(WEB_ROOT / "app", request.path_params["path"])


async def manifest(request: Request) -> Response:
    return FileResponse(
        WEB_ROOT / "manifest.webmanifest",
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


async def service_worker(request: Request) -> Response:
    """At the root, so that its scope is the whole client."""
    return FileResponse(
        WEB_ROOT / "sw.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def favicon(request: Request) -> Response:
    return FileResponse(
        WEB_ROOT / "app" / "icons" / "icon-32.png",
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )


async def vendor_file(request: Request) -> Response:
    root = _VENDOR.get(request.path_params["package"])
    if root is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such package")
    return _file(root, request.path_params["path"])


routes = [
    *(Route(page, index, methods=["GET", "HEAD"]) for page in PAGES),
    Route("/manifest.webmanifest", manifest, methods=["GET", "HEAD"]),
    Route("/sw.js", service_worker, methods=["GET", "HEAD"]),
    Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
    Route("/app/{path:path}", app_file, methods=["GET", "HEAD"]),
    Route("/vendor/{package}/{path:path}", vendor_file, methods=["GET", "HEAD"]),
]
