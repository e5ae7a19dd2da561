"""Recording to the audit log (:mod:`storage.audit`) from the server's code.

Call :func:`record` after an administrative action or a read of patient data has
succeeded, e.g. ``await record(svc.store, "patient.referral_viewed", user.id,
referral.id)``. ``detail`` carries ids, counts and codes only, never names, e-mail
addresses or patient fields. A failure to record is logged and raised: an access
that cannot be audited must not look as if it had been.
"""

from __future__ import annotations

import logging
from typing import Any

from storage.audit import AuditStore, NewAuditEntry

from .clock import now_ms

__all__ = ["record", "record_patient_reads"]

log = logging.getLogger("confrere.audit")


async def record(
    store: AuditStore, action: str, actor: str | None, target: str | None = None, **detail: Any
) -> int:
    """Append one entry; return its id."""
    try:
        [entry_id] = await store.append_audit(
            [NewAuditEntry(action, actor, target, detail)], now_ms()
        )
    except Exception:
        log.error("audit entry %s by %s on %s not recorded", action, actor, target)
        raise
    return entry_id


async def record_patient_reads(
    store: AuditStore, reader: str, targets: list[str], action: str = "patient.appointment_read"
) -> None:
    """One entry per record of patient data ``reader`` was shown (an appointment with
    its patient's details...), in one transaction; nothing when ``targets`` is empty."""
    if not targets:
        return
    try:
        await store.append_audit([NewAuditEntry(action, reader, t) for t in targets], now_ms())
    except Exception:
        log.error("audit of %d patient record read(s) by %s not recorded", len(targets), reader)
        raise
