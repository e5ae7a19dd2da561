"""CONFRERE_COMMIT_DELAY_MS: the sends' group commit delay (storage/group_commit.py)."""

from __future__ import annotations

import pytest

from server.config import Settings


def test_the_commit_delay_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFRERE_COMMIT_DELAY_MS", raising=False)
    assert Settings.from_env().commit_delay_ms == 5.0


@pytest.mark.parametrize(("raw", "ms"), [("0", 0.0), ("2.5", 2.5)])
def test_the_commit_delay_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, ms: float
) -> None:
    monkeypatch.setenv("CONFRERE_COMMIT_DELAY_MS", raw)
    assert Settings.from_env().commit_delay_ms == ms


@pytest.mark.parametrize("raw", ["-1", "soon", "nan", "inf"])
def test_a_bad_commit_delay_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CONFRERE_COMMIT_DELAY_MS", raw)
    with pytest.raises(ValueError, match="CONFRERE_COMMIT_DELAY_MS"):
        Settings.from_env()
