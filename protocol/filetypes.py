"""The file types an attachment may have, recognised by their magic bytes.

PDF, JPEG and PNG only (`DESIGN.md`, Attachments). A file's type is what its first
bytes say, never its name or the type someone declared: :func:`sniff` is used by the
server for the files it can read (referral and identity documents) and by clients
before encrypting a chat file and again after decrypting one.
"""

from __future__ import annotations

__all__ = ["CONTENT_TYPES", "SNIFF_BYTES", "describe", "sniff"]

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
CONTENT_TYPES = (PDF, JPEG, PNG)

# Signatures: PDF 1.7 (ISO 32000-1) section 7.5.2 file header; JPEG (ITU T.81) SOI
# marker followed by the first marker's 0xFF; PNG (RFC 2083) section 3.1 signature.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", PDF),
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
)
SNIFF_BYTES = max(len(magic) for magic, _ in _MAGIC)  # bytes :func:`sniff` needs at most

_NAMES = {PDF: "a PDF", JPEG: "a JPEG image", PNG: "a PNG image"}


def sniff(first_bytes: bytes) -> str | None:
    """The content type whose signature ``first_bytes`` starts with, or ``None``.

    Give it at least :data:`SNIFF_BYTES` bytes of the file (or the whole file if it is
    shorter): a shorter prefix of a valid file may not be recognised.
    """
    for magic, content_type in _MAGIC:
        if first_bytes.startswith(magic):
            return content_type
    return None


def describe(content_type: str) -> str:
    """A human name for an accepted content type, for error messages."""
    return _NAMES.get(content_type, content_type)
