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

from storage import Store
from storage.audit import NewAuditEntry

from .clock import now_ms

__all__ = ["record"]

log = logging.getLogger("confrere.audit")


async def record(
    store: Store, action: str, actor: str | None, target: str | None = None, **detail: Any
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
