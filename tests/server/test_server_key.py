"""The server key (``server.server_key``): a deployment whose database is not SQLite
(so possibly several nodes) must name a shared key; a node refuses to start without
one instead of making a key of its own that the other nodes could not read with."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import SERVER_KEY, server_process, settings_for
from server.server_key import MissingServerKey, load_server_key


def test_a_node_not_on_sqlite_needs_a_shared_key(tmp_path: Path) -> None:
    postgres = settings_for(
        tmp_path, database_url="postgresql://db.example/confrere", server_key=""
    )
    with pytest.raises(MissingServerKey, match="CONFRERE_SERVER_KEY"):
        load_server_key(postgres)
    shared = tmp_path / "shared.key"
    shared.write_text(SERVER_KEY + "\n")
    shared.chmod(0o600)
    named = load_server_key(
        settings_for(
            tmp_path, database_url=postgres.database_url, server_key="", server_key_file=str(shared)
        )
    )
    assert named == load_server_key(settings_for(tmp_path, server_key=SERVER_KEY))
    # SQLite is one node: the key is made beside the database.
    alone = load_server_key(settings_for(tmp_path, server_key=""))
    assert (tmp_path / "server.key").exists() and alone != named


async def test_a_postgres_node_without_a_key_refuses_to_start(
    tmp_path: Path, postgres_database: str
) -> None:
    node = server_process(settings_for(tmp_path, database_url=postgres_database))
    node.extra_env["CONFRERE_SERVER_KEY"] = ""
    try:
        with pytest.raises(RuntimeError, match="server exited"):
            await node.start()
    finally:
        node.close()
    node = server_process(settings_for(tmp_path, database_url=postgres_database))
    try:
        await node.start()  # with the deployment's key, it starts
    finally:
        node.close()
