"""Several files in one message with the Python SDK (issue 19; SPEC.md §11.2 allows up to
10): one message carries every reference, the receiver decrypts and checks each, and
their names are found by the receiver's search; more than 10 are refused before any
upload."""

from __future__ import annotations

from pathlib import Path

import pytest
from attachment_kit import pdf_with_text
from test_e2ee import encrypted, next_decrypted
from verification_kit import PNG

from clients.python.errors import AttachmentRefused
from harness import ServerUnderTest


async def test_several_files_in_one_message(server: ServerUnderTest, tmp_path: Path) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path, search_file=tmp_path / "b.search")
    report = pdf_with_text("Compte rendu")
    try:
        room = await a.create_room("direct", [b.user_id])
        seq = await a.send_files(
            room.id,
            [(report, "compte-rendu-échographie.pdf"), (PNG, "radio.png")],
            text="Les examens",
        )
        got = await next_decrypted(b, room.id)
        assert got.seq == seq and got.text == "Les examens"
        assert [(f.name, f.content_type, f.size) for f in got.files] == [
            ("compte-rendu-échographie.pdf", "application/pdf", len(report)),
            ("radio.png", "image/png", len(PNG)),
        ]
        assert [await b.fetch_file(f) for f in got.files] == [report, PNG]
        assert [h.seq for h in b.search("echographie")] == [seq]  # file names are indexed

        with pytest.raises(AttachmentRefused):
            await a.send_files(room.id, [(report, f"p{n}.pdf") for n in range(11)])
        with pytest.raises(AttachmentRefused):
            await a.send_files(room.id, [])
        with pytest.raises(AttachmentRefused, match="not a PDF"):  # checked up front
            await a.send_files(room.id, [(report, "ok.pdf"), (b"just text", "notes.pdf")])
    finally:
        await a.close()
        await b.close()
