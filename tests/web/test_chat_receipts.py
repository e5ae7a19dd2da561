"""Read receipts from the web client (SPEC.md §4.4): the open room is marked read at
once, then at most once a second (what arrived meanwhile goes when that second ends),
and at once when the room is left. Paul's clock is Playwright's, paused: only the
client's own timers, run on purpose, or leaving the room can send a ``read``."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from browser_kit import (
    eventually,
    log_in,
    named_practitioner,
    open_client,
    open_room,
    send_text,
    start_direct,
    to_list,
)
from playwright.async_api import Browser, Page, WebSocket, expect

from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


def frames_sent(page: Page) -> list[dict[str, Any]]:
    """Every frame the page sends on its WebSockets, decoded, in order."""
    sent: list[dict[str, Any]] = []

    def on_socket(ws: WebSocket) -> None:
        ws.on(
            "framesent",
            lambda data: sent.append(msgpack.unpackb(data)) if isinstance(data, bytes) else None,
        )

    page.on("websocket", on_socket)
    return sent


def reads(sent: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in sent if f.get("t") == "read"]


async def arrived(page: Page, room_id: str, seq: int) -> bool:
    """The client has ``seq`` in its model of the room (drawn or not)."""
    has: bool = await page.evaluate(
        """async ([id, seq]) => {
            const { rooms } = await import("/app/state.js");
            return !!rooms.get(id)?.messages.has(seq);
        }""",
        [room_id, seq],
    )
    return has


async def reads_so_far(page: Page, sent: list[dict[str, Any]]) -> list[int]:
    """The reads sent up to now: a ping sent after them comes back, so every frame the
    page had sent before it was seen here."""
    before = sum(1 for f in sent if f.get("t") == "ping")
    await page.evaluate("""async () => (await import("/app/state.js")).app.client.ping()""")
    assert await eventually(lambda: _pings(sent, before + 1))
    return reads(sent)


async def _pings(sent: list[dict[str, Any]], count: int) -> bool:
    return sum(1 for f in sent if f.get("t") == "ping") >= count


async def test_reads_go_at_most_once_a_second_and_when_the_room_is_left(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    anne = await named_practitioner(
        server, "Anne", "Martin", "Cardiologie et maladies vasculaires", "Lyon"
    )
    paul = await named_practitioner(server, "Paul", "Durand", "Médecine générale", "Lyon")
    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    ctx_p, page_p, errors_p = await open_client(browser, server.url, viewport)
    sent = frames_sent(page_p)
    await log_in(page_a, anne)
    await log_in(page_p, paul)

    await start_direct(page_a, paul.user_id)
    await send_text(page_a, "un")
    await to_list(page_p)
    await expect(page_p.locator("[data-testid=room] [data-testid=unread]")).to_have_text("1")

    # Time stops for Paul: he opens the room, read at once.
    await page_p.clock.install()
    now = await page_p.evaluate("Date.now()")
    await page_p.clock.pause_at(now + 10)
    await open_room(page_p)
    await expect(page_p.locator(".msg.theirs .text")).to_have_text("un")
    room_id = await page_p.evaluate("""async () => (await import("/app/state.js")).app.current""")
    [first] = [i.seq for i in await server.store.timeline(room_id, 0, 10) if i.body]
    assert await eventually(lambda: _read(sent, [first]))
    await expect(page_a.locator(".msg.mine [data-testid=receipt]")).to_have_text(
        "✓✓ Lu par Paul Durand"
    )

    # Two messages arrive and are drawn within the second: their read waits.
    await send_text(page_a, "deux")
    await send_text(page_a, "trois")
    third = first + 2
    assert await eventually(lambda: arrived(page_p, room_id, third))
    await page_p.clock.run_for(20)  # the render frame
    await expect(page_p.locator(".msg.theirs .text").last).to_have_text("trois")
    assert await reads_so_far(page_p, sent) == [first]  # held: read less than 1 s ago
    await page_p.clock.run_for(1000)  # that second over: one read for both
    assert await eventually(lambda: _read(sent, [first, third]))
    await expect(page_a.locator(".msg.mine [data-testid=receipt]").last).to_have_text(
        "✓✓ Lu par Paul Durand"
    )

    # One more, drawn, held; leaving the room sends it at once.
    await send_text(page_a, "quatre")
    fourth = third + 1
    assert await eventually(lambda: arrived(page_p, room_id, fourth))
    await page_p.clock.run_for(20)
    await expect(page_p.locator(".msg.theirs .text").last).to_have_text("quatre")
    assert await reads_so_far(page_p, sent) == [first, third]
    await page_p.go_back()  # to the list
    assert await eventually(lambda: _read(sent, [first, third, fourth]))
    await expect(page_a.locator(".msg.mine [data-testid=receipt]").last).to_have_text(
        "✓✓ Lu par Paul Durand"
    )
    assert errors_a == [] and errors_p == []
    await ctx_a.close()
    await ctx_p.close()


async def _read(sent: list[dict[str, Any]], expected: list[int]) -> bool:
    return reads(sent) == expected
