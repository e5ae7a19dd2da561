"""What an outbox notification says, in French: an e-mail's subject, plain-text and HTML
bodies, an SMS's text (sans-I/O: pure functions of the template name and its data).

The data of each template is listed in SPEC.md §9.2 ("Outbox e-mail templates"). A
template this module does not know raises :class:`UnknownTemplate` (the notification
then fails for good: retrying would not teach it). Everything taken from the data is
HTML-escaped in the HTML body; links are only those the server built (sign-up pages of
``PUBLIC_URL``).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["Email", "UnknownTemplate", "french_datetime", "render_email", "render_sms"]

_PARIS = ZoneInfo("Europe/Paris")
_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_SIGNATURE = "L'équipe Confrère"


class UnknownTemplate(ValueError):
    """No text for this template on this channel."""


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


def french_datetime(ms: int) -> str:
    """``1764774000000`` -> ``"mercredi 3 décembre 2025 à 16 h 00"`` (Paris time)."""
    at = datetime.fromtimestamp(ms / 1000, UTC).astimezone(_PARIS)
    return f"{_DAYS[at.weekday()]} {at.day} {_MONTHS[at.month - 1]} {at.year} à {at:%H} h {at:%M}"


def _french_date(ms: int) -> str:
    at = datetime.fromtimestamp(ms / 1000, UTC).astimezone(_PARIS)
    return f"{at.day} {_MONTHS[at.month - 1]} {at.year}"


@dataclass(frozen=True, slots=True)
class _Body:
    """A body as paragraphs; a link (text, url) is a paragraph of its own."""

    subject: str
    paragraphs: tuple[str | tuple[str, str], ...]


def _email_code(d: dict[str, Any]) -> _Body:
    return _Body(
        "Votre code de vérification Confrère",
        (
            f"Votre code de vérification : {d['code']}",
            "Saisissez-le dans Confrère pour confirmer votre adresse e-mail. "
            "Il est valable 15 minutes.",
            "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.",
        ),
    )


def _password_reset(d: dict[str, Any]) -> _Body:
    return _Body(
        "Réinitialisation de votre mot de passe Confrère",
        (
            f"Votre code de réinitialisation : {d['code']}",
            "Saisissez-le dans Confrère, avec votre nouveau mot de passe. "
            "Il est valable 15 minutes. Toutes vos sessions seront fermées.",
            "Si vous n'avez pas demandé à changer votre mot de passe, ignorez ce message : "
            "votre mot de passe actuel reste valable.",
        ),
    )


def _identity_verified(d: dict[str, Any]) -> _Body:
    return _Body(
        "Votre identité est vérifiée",
        (
            "Votre identité de professionnel de santé a été vérifiée par Pro Santé Connect.",
            "Vous pouvez désormais échanger avec vos confrères sur Confrère.",
        ),
    )


def _identity_approved(d: dict[str, Any]) -> _Body:
    return _Body(
        "Votre identité est vérifiée",
        (
            "Nos équipes ont vérifié votre identité de professionnel de santé.",
            "Vous pouvez désormais échanger avec vos confrères sur Confrère.",
        ),
    )


def _identity_rejected(d: dict[str, Any]) -> _Body:
    return _Body(
        "Votre demande de vérification d'identité n'a pas abouti",
        (
            "Nos équipes n'ont pas pu vérifier votre identité avec les documents envoyés.",
            f"Motif : {d['reason']}",
            "Vous pouvez envoyer de nouveaux documents depuis Confrère.",
        ),
    )


def _regulator_link(d: dict[str, Any]) -> _Body:
    return _Body(
        "Votre accès régulateur à Confrère",
        (
            "Un administrateur vous invite à créer votre compte de régulateur sur Confrère.",
            ("Créer mon compte", str(d["url"])),
            "Ce lien est valable 7 jours et ne sert qu'une fois.",
        ),
    )


def _guest_invitation(d: dict[str, Any]) -> _Body:
    room_kind = d.get("room_kind") or "une conversation"
    lead = "Rappel : " if d.get("reminder") else ""
    return _Body(
        f"{lead}{d['inviter']} vous invite sur Confrère",
        (
            f"{d['inviter']} vous invite à rejoindre {room_kind} sur Confrère, la messagerie "
            "sécurisée des professionnels de santé.",
            ("Créer mon compte", str(d["signup_url"])),
            f"L'invitation est valable jusqu'au {_french_date(int(d['expires_at']))}.",
        ),
    )


def _appointment(d: dict[str, Any]) -> str:
    who = d["practitioner"] + (f" ({d['specialty']})" if d.get("specialty") else "")
    where = f", {d['place']}" if d.get("place") else ""
    return f"Rendez-vous confirmé avec {who} le {french_datetime(int(d['starts_at']))}{where}."


def _appointment_booked(d: dict[str, Any]) -> _Body:
    return _Body(
        "Confirmation de votre rendez-vous",
        (
            _appointment(d),
            "En cas d'empêchement, prévenez le cabinet au plus tôt.",
        ),
    )


_EMAILS: dict[str, Callable[[dict[str, Any]], _Body]] = {
    "email_code": _email_code,
    "password_reset": _password_reset,
    "identity_verified": _identity_verified,
    "identity_approved": _identity_approved,
    "identity_rejected": _identity_rejected,
    "regulator_link": _regulator_link,
    "guest_invitation": _guest_invitation,
    "appointment_booked": _appointment_booked,
}


def render_email(template: str, data: dict[str, Any]) -> Email:
    """The e-mail of ``template``; raises :class:`UnknownTemplate` (also for data that
    lacks a field the template needs)."""
    build = _EMAILS.get(template)
    if build is None:
        raise UnknownTemplate(f"no e-mail template {template!r}")
    try:
        body = build(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UnknownTemplate(f"e-mail template {template!r}: bad data") from exc
    text_parts = [p if isinstance(p, str) else f"{p[0]} : {p[1]}" for p in body.paragraphs]
    text = "Bonjour,\n\n" + "\n\n".join(text_parts) + f"\n\n{_SIGNATURE}\n"
    html_parts = [
        f"<p>{html.escape(p)}</p>"
        if isinstance(p, str)
        else f'<p><a href="{html.escape(p[1], quote=True)}">{html.escape(p[0])}</a></p>'
        for p in body.paragraphs
    ]
    page = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{html.escape(body.subject)}</title></head>"
        '<body style="font-family: sans-serif; line-height: 1.5">'
        "<p>Bonjour,</p>" + "".join(html_parts) + f"<p>{html.escape(_SIGNATURE)}</p>"
        "</body></html>"
    )
    return Email(body.subject, text, page)


def render_sms(template: str, data: dict[str, Any]) -> str:
    """The text of an SMS (one or two segments); raises :class:`UnknownTemplate`."""
    if template != "appointment_booked":
        raise UnknownTemplate(f"no SMS template {template!r}")
    try:
        return f"Confrère : {_appointment(data)}"
    except (KeyError, TypeError, ValueError) as exc:
        raise UnknownTemplate(f"SMS template {template!r}: bad data") from exc
