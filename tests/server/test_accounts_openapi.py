"""The accounts, verification and review answers match what /openapi.json promises
(their JSON Schemas and statuses), walking each route once with real data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema
from oidc_provider import card
from verification_kit import JPEG, PNG, PUBLIC_URL, form, node_with_psc, signed_up

from server.clock import now_ms


def _check(doc: dict[str, Any], template: str, method: str, response: httpx.Response) -> None:
    operation = doc["paths"][template][method]
    status = str(response.status_code)
    assert status in operation["responses"], (template, method, status, response.text)
    content = operation["responses"][status].get("content", {})
    if response.headers.get("content-type", "").startswith("application/json"):
        schema = content.get("application/json", {}).get("schema")
        if schema is not None and "$ref" not in schema:
            jsonschema.validate(response.json(), schema)


async def test_answers_match_the_document(tmp_path: Path) -> None:
    async with node_with_psc(tmp_path) as (srv, provider):
        account, body = await signed_up(srv)
        reviewer, _ = await signed_up(srv)
        await srv.store.grant_role(reviewer.user_id, "reviewer", now_ms())
        await srv.store.grant_role(reviewer.user_id, "admin", now_ms())
        auth = {"Authorization": f"Bearer {account.token}"}
        rauth = {"Authorization": f"Bearer {reviewer.token}"}
        async with httpx.AsyncClient(base_url=srv.url) as http:
            doc = (await http.get("/openapi.json")).json()

            async def call(template: str, method: str, path: str, **kw: Any) -> httpx.Response:
                response = await http.request(method.upper(), path, **kw)
                _check(doc, template, method, response)
                return response

            await call("/v1/accounts/form", "get", "/v1/accounts/form")
            await call("/v1/accounts", "post", "/v1/accounts", json=form())
            await call("/v1/accounts", "post", "/v1/accounts", json=form(rpps="1"))
            await call("/v1/me", "get", "/v1/me", headers=auth)
            await call(
                "/v1/accounts/email/resend", "post", "/v1/accounts/email/resend", headers=auth
            )
            await call(
                "/v1/sessions",
                "post",
                "/v1/sessions",
                json={"email": body["email"], "password": body["password"]},
            )
            await call("/v1/verification", "get", "/v1/verification", headers=auth)
            provider.card = card("8" + "10000000009", "Autre", "Nom")  # a mismatch
            started = await call(
                "/v1/verification/psc/start", "post", "/v1/verification/psc/start", headers=auth
            )
            async with httpx.AsyncClient() as browser:
                location = (await browser.get(started.json()["authorization_url"])).headers[
                    "location"
                ]
            await call("/v1/verification/psc/callback", "get", location.removeprefix(PUBLIC_URL))
            for side, data, ctype in (("front", PNG, "image/png"), ("selfie", JPEG, "image/jpeg")):
                await call(
                    "/v1/verification/documents/{side}",
                    "put",
                    f"/v1/verification/documents/{side}",
                    content=data,
                    headers={**auth, "Content-Type": ctype},
                )
            submitted = await call(
                "/v1/verification/manual",
                "post",
                "/v1/verification/manual",
                json={"document": "passport"},
                headers=auth,
            )
            await call("/v1/verification", "get", "/v1/verification", headers=auth)
            await call("/v1/review/requests", "get", "/v1/review/requests", headers=rauth)
            rid = submitted.json()["request"]["id"]
            await call(
                "/v1/review/requests/{id}/decision",
                "post",
                f"/v1/review/requests/{rid}/decision",
                json={"decision": "reject", "reason": "illisible"},
                headers=rauth,
            )
            await call(
                "/v1/regulator-links",
                "post",
                "/v1/regulator-links",
                json={"email": "sas.reg@example.org"},
                headers=rauth,
            )
