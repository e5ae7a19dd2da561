"""Search in one's messages with the Python SDK (issue 19): the index file of the
messages a device read, encrypted at rest, accent- and case-insensitive with word
prefixes (a word typed without accents finds the accented one), edits replacing the
indexed text and deletions for everyone removing it; the index reopens from its file."""

from __future__ import annotations

from pathlib import Path

from test_e2ee import encrypted, next_decrypted, next_of
from test_edit_delete import next_deletion

from clients.python import Deleted, EncryptedClient, log_in
from clients.python.search import MessageIndex, fold, index_key
from harness import PASSWORD, ServerUnderTest


def test_fold_ignores_case_accents_and_ligatures() -> None:
    assert fold("Réunion ŒDÈME Cœur à Noël") == "reunion oedeme coeur a noel"


async def test_a_word_typed_without_accents_finds_the_accented_one(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    index_file = tmp_path / "b.search"
    b = await encrypted(server, tmp_path, search_file=index_file)
    # b's second device, offline when the message is deleted: its index learns it later.
    phone = await log_in(server.url, b.client.account.email, PASSWORD, device_name="phone")
    b2 = EncryptedClient(
        phone, tmp_path / "b2.key", search_file=tmp_path / "b2.search", max_backoff=0.5
    )
    await b2.connect()
    try:
        room = await a.create_room("group", [b.user_id], name="Staff")
        seq = await a.send_text(room.id, "Réunion de concertation jeudi pour Mme D.")
        other = await a.send_text(room.id, "Autre sujet : échographie cardiaque")
        assert (await next_decrypted(b, room.id)).seq == seq
        assert (await next_decrypted(b, room.id)).seq == other
        assert (await next_decrypted(b2, room.id)).seq == seq
        assert [h.seq for h in b2.search("reunion")] == [seq]
        b2.client.endpoints = ["http://127.0.0.1:9"]
        b2.client.drop_connection()

        (hit,) = b.search("reunion")
        assert (hit.room, hit.seq, hit.sender) == (room.id, seq, a.user_id)
        assert hit.text[hit.start : hit.end] == "Réunion" and hit.ts > 0
        assert [h.seq for h in b.search("REUN conc")] == [seq]  # every word, prefixes
        assert [h.seq for h in b.search("echo")] == [other]
        assert b.search("reunions") == [] and b.search("  ") == []

        # At rest the file holds nothing readable.
        stored = index_file.read_bytes()
        assert b"union" not in stored and b"concertation" not in stored
        assert b"sujet" not in stored and index_file.stat().st_mode & 0o077 == 0

        # An edit replaces the indexed text; a deletion for everyone removes it.
        edit = await a.edit_text(room.id, seq, "Réunion annulée, reportée à lundi")
        assert (await next_decrypted(b, room.id)).seq == edit
        (edited,) = b.search("annulee")
        assert edited.seq == seq and edited.text[edited.start : edited.end] == "annulée"
        assert b.search("concertation") == []
        await a.delete(room.id, seq)
        assert (await next_deletion(b, room.id)).target == seq
        assert b.search("reunion") == []
        # Back: the resync brings the edit as a tombstone (its original was deleted).
        b2.client.endpoints = [server.url]
        gone = await next_of(b2, Deleted, room.id)
        assert isinstance(gone, Deleted) and (gone.seq, gone.edits) == (edit, seq)
        assert b2.search("reunion") == [] and b2.search("concertation") == []

        # Reopened from its file (with the device's key), the index has the same.
        again = MessageIndex(index_file, index_key(bytes(b.keys.box)))
        assert len(again) == 1 and [h.seq for h in again.search("cardiaque")] == [other]
        assert again.search("reunion") == []
    finally:
        await a.close()
        await b.close()
        await b2.close()
