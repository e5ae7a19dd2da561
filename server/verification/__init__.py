"""Accounts and identity verification, the pure parts (no I/O but the OIDC client's
HTTP calls): practitioner identifiers, specialties, password rules, e-mail codes,
Pro Santé Connect (OpenID Connect), the manual review's states, regulator links.

The routes that use them are ``server/routes/accounts.py``, ``verification.py`` and
``review.py``; the records live in :mod:`storage.verification`.
"""
