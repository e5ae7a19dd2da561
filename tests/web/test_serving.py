"""Serving the web client: the page and its modules at / without shadowing the API,
only the files meant to be served, and the security headers a browser app handling
health data needs (enforced: an injected inline script does not run)."""

from __future__ import annotations

import httpx
import pytest
from browser_kit import open_client
from playwright.async_api import Browser

from harness import ServerUnderTest
from server.routes.web import PAGES

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


async def test_page_and_modules_carry_the_security_headers(server: ServerUnderTest) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get("/")
        module = await http.get("/app/main.js")
        vendor = await http.get("/vendor/libsodium-sumo/libsodium-sumo.mjs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert module.headers["content-type"].startswith("text/javascript")
    assert vendor.status_code == 200
    for response in (page, module):
        csp = response.headers["content-security-policy"]
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "require-trusted-types-for 'script'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        policy = response.headers["permissions-policy"]
        assert "camera=()" in policy and "geolocation=(self)" in policy  # "Autour de moi"
        assert "strict-transport-security" not in response.headers  # plain HTTP here


async def test_hsts_behind_tls(server: ServerUnderTest) -> None:
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://confrere.test") as http:
        response = await http.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_the_api_is_not_shadowed(server: ServerUnderTest) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
        metrics = await http.get("/metrics")
        me = await http.get("/v1/me")
        openapi = await http.get("/openapi.json")
    assert health.status_code == 200 and health.headers["content-type"] == "application/json"
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert me.status_code == 401 and me.json()["code"] == "unauthenticated"
    assert openapi.status_code == 200 and "paths" in openapi.json()


@pytest.mark.parametrize("page", [p.replace("{room}", "AbCdEfGh12345678") for p in PAGES])
async def test_every_page_of_the_client_is_served(server: ServerUnderTest, page: str) -> None:
    """Links, bookmarks and reloads land on the client (its router shows the view)."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<div id="app"' in response.text
    assert "require-trusted-types-for 'script'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/app/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "/app/..%2f..%2fpackage.json",
        "/app/nothing.js",
        "/app/",
        "/vendor/libsodium-sumo/../../../../package.json",
        "/vendor/unknown/index.mjs",
        "/vendor/msgpack/index.d.ts",  # not a served type
        "/conversations/a/b",  # not a page of the client
        "/inscriptions",
        "/sw.js/x",
    ],
)
async def test_only_client_files_are_served(server: ServerUnderTest, path: str) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_the_policy_is_enforced_in_the_browser(
    server: ServerUnderTest, browser: Browser
) -> None:
    context, page, errors = await open_client(browser, server.url)
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await page.wait_for_selector("#login-form")  # the modules (and libsodium's wasm) ran
    assert violations == []  # the page itself needs nothing the policy forbids
    injected = await page.evaluate(
        """() => {
            try {
                const s = document.createElement('script');
                s.textContent = 'window.injected = true';
                document.body.append(s);
            } catch (e) { return 'refused: ' + e.name; }
            return window.injected === true ? 'ran' : 'blocked';
        }"""
    )
    assert injected != "ran"
    assert errors == []
    await context.close()
