"""French everywhere: every error code of SPEC.md §8 and every field and reason of
§8.1, read from SPEC.md itself, renders in French in the client's error line (never the
server's English message), over REST and WebSocket alike; and real refusals of the
server reach the screen in French. At both sizes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_kit import fill_sign_up, open_client
from playwright.async_api import Browser, expect

from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

SPEC = (Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md").read_text("utf-8")
ENGLISH = re.compile(
    r"\b(the|is|are|must|field|not|error|invalid|unknown|please|request|failed|missing)\b", re.I
)


def section(title: str) -> str:
    start = SPEC.index(title)
    end = SPEC.index("\n## ", start + 1)
    nxt = SPEC.find("\n### ", start + 1)
    return SPEC[start : min(end, nxt) if nxt != -1 else end]


def codes() -> list[str]:
    return re.findall(r"^\| `([a-z_]+)` \| \d{3}[^|]*\|", section("## 8 Error codes"), re.M)


def fields() -> list[str]:
    table = section("### 8.1 Fields and reasons")
    rows = re.findall(r"^\| [A-Z][^|]+ \| (`[^|]+) \|$", table, re.M)
    return sorted({f for row in rows for f in re.findall(r"`([a-z_.]+)`", row)})


def reasons() -> list[str]:
    table = section("### 8.1 Fields and reasons")
    return re.findall(r"^\| `([a-z_]+)` \| `[a-z_]+`", table, re.M)


RENDER = """async ({ codes, fields, reasons }) => {
    const { ERRORS, FIELDS, REASONS } = await import("/app/i18n.js");
    const { ApiError } = await import("/app/rest.js");
    const { ServerError } = await import("/app/client.js");
    const { errorLine, fail } = await import("/app/widgets.js");
    const line = errorLine("catalogue");
    document.getElementById("app").append(line);
    const english = "The server says something in English that must not be shown";
    const shown = (err) => {
        fail(line, err);
        return line.textContent;
    };
    const out = [];
    for (const code of codes) {
        out.push(["code", code, code in ERRORS, shown(new ApiError(400, code, english))]);
        out.push(["frame", code, code in ERRORS, shown(new ServerError(code, english))]);
    }
    for (const field of fields) {
        const err = new ApiError(400, "bad_frame", `field '${field}' ${english}`, { field });
        out.push(["field", field, field in FIELDS, shown(err)]);
    }
    for (const reason of reasons) {
        const err = new ApiError(400, "bad_frame", english, { reason });
        out.push(["reason", reason, reason in REASONS, shown(err)]);
    }
    return out;
}"""


async def test_every_code_field_and_reason_of_the_spec_renders_in_french(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    wanted = {"codes": codes(), "fields": fields(), "reasons": reasons()}
    assert len(wanted["codes"]) == 10 and "identity_unverified" in wanted["codes"]
    assert {"password", "email", "users", "pro_sante_connect"} <= set(wanted["fields"])
    assert {"password_common", "card_mismatch", "psc_other_browser"} <= set(wanted["reasons"])
    context, page, errors = await open_client(browser, server.url, viewport)
    await expect(page.locator("#login-form")).to_be_visible()
    rendered = await page.evaluate(RENDER, wanted)
    assert len(rendered) == 2 * len(wanted["codes"]) + len(wanted["fields"]) + len(
        wanted["reasons"]
    )
    missing = [f"{kind} {name}" for kind, name, known, _ in rendered if not known]
    assert missing == [], "no French words for these (clients/web/app/i18n.js)"
    for kind, name, _, text in rendered:
        assert text.strip(), (kind, name)
        assert "English" not in text, (kind, name, text)
        assert not ENGLISH.search(text), (kind, name, text)
    # A field's words name the field the user sees; reasons say different things.
    labels = {name: text for kind, name, _, text in rendered if kind == "field"}
    assert labels["password"].startswith("« Mot de passe »")
    assert labels["rpps"].startswith("« Numéro RPPS ou ADELI »")
    said = [text for kind, _, _, text in rendered if kind == "reason"]
    assert len(set(said)) == len(said)
    assert errors == []
    await context.close()


async def test_real_refusals_are_said_in_french(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    """What the server really answers (English messages) shows as French."""
    context, page, errors = await open_client(browser, server.url, viewport)
    await page.fill("#login-form input[name=email]", "personne@example.fr")
    await page.fill("#login-form input[name=password]", "pas le bon mot de passe")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#auth-error")).to_have_text(
        "Adresse e-mail ou mot de passe incorrect."
    )
    # A sign-up the server refuses for its postcode: five digits, but no postcode of
    # the official base (the browser's own checks skipped).
    await page.goto(server.url + "/inscription")
    form = page.locator("#signup-form")
    await form.evaluate("f => f.noValidate = true")
    await fill_sign_up(
        page,
        first_name="Jean",
        last_name="Valjean",
        email=f"jean.{viewport['width']}@example.fr",
        postcode="75021",
        city="Paris",
        password="correct horse battery staple",
    )
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#signup-error")).to_have_text(
        "Ce code postal n'existe pas : vérifiez-le (les codes CEDEX ne sont pas acceptés)."
    )
    assert errors == []
    await context.close()
