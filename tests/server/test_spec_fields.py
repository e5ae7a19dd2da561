"""SPEC.md §8.1 lists every field a REST error can name and every reason it can give
(clients translate them: tests/web/test_catalogue.py renders each in French). This
reads the server's code for the fields and reasons it uses and checks both ways."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "protocol" / "SPEC.md").read_text("utf-8")
CODE = "\n".join(p.read_text("utf-8") for p in sorted((ROOT / "server").rglob("*.py")))


def _section() -> str:
    start = SPEC.index("### 8.1 Fields and reasons")
    return SPEC[start : SPEC.index("\n## ", start)]


def spec_fields() -> set[str]:
    rows = re.findall(r"^\| [A-Z][^|]+ \| (`[^|]+) \|$", _section(), re.M)
    return {f for row in rows for f in re.findall(r"`([a-z0-9_.]+)`", row)}


def spec_reasons() -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \| `[a-z_]+`", _section(), re.M))


def code_fields() -> set[str]:
    """Fields named by the validators: literal "field 'x'" messages and the first
    string argument of the field helpers."""
    found = set(re.findall(r"field '([a-z_]+)", CODE))
    helpers = r"(?<![\w.])(?:_bad|text|optional_text|choice|_line|email|_coordinate)"
    found |= set(re.findall(helpers + r"\((?:body, )?\"([a-z_]+)\"", CODE))
    return found | declared_fields()


def declared_fields() -> set[str]:
    """The fields of body declarations (server/bodies.py), but those of an item of a
    list (``Items(SlotBody, ...)``): the list names them (§8.1)."""
    fields: dict[str, set[str]] = {}
    items: set[str] = set()
    for path in sorted((ROOT / "server").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ClassDef):
                fields[node.name] = {
                    n.target.id
                    for n in node.body
                    if isinstance(n, ast.AnnAssign)
                    and isinstance(n.target, ast.Name)
                    and "Annotated[" in ast.unparse(n.annotation)
                }
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "Items"
                and node.args
                and isinstance(node.args[0], ast.Name)
            ):
                items.add(node.args[0].id)
    return {f for name, names in fields.items() if name not in items for f in names}


def test_every_field_the_server_names_is_in_the_spec() -> None:
    missing = code_fields() - spec_fields()
    assert not missing, f"add to SPEC.md §8.1 (and clients/web/app/i18n.js): {sorted(missing)}"


def test_reasons_match_both_ways() -> None:
    used = set(re.findall(r"reason=\"([a-z_]+)\"", CODE))
    used |= set(re.findall(r"Problem\(\s*\"([a-z_]+)\"", CODE))
    used |= set(re.findall(r"bad_field\([^()]*\"[^\"]*\",\s*\"([a-z_]+)\"\s*\)", CODE))
    used |= set(re.findall(r"\"(link_[a-z]+)\"", CODE))
    # A declared rule's reason: Pattern(regex, why, reason).
    used |= set(re.findall(r"Pattern\(\s*r?\"[^\"]*\",\s*\"[^\"]*\",\s*\"([a-z_]+)\"", CODE))
    # The e-mail code's outcomes become reasons as f"code_{outcome}".
    assert 'f"code_{outcome}"' in CODE
    used |= {f"code_{o}" for o in ("wrong", "expired", "exhausted", "locked", "none")}
    assert used - spec_reasons() == set(), "reasons missing from SPEC.md §8.1"
    assert spec_reasons() - used == set(), "reasons in SPEC.md §8.1 the server never gives"


def test_the_directory_referral_sas_review_and_admin_routes_are_in_the_spec() -> None:
    """SPEC.md §9.7 and §9.8 list these routes with who may call them: the same set,
    and the same caller, as /openapi.json (server.openapi.document of the routes)."""
    from server.openapi import document
    from server.routes import routes

    who = {"session": "session", "verified": "verified"}
    prefixes = ("/v1/directory", "/v1/agenda", "/v1/referrals", "/v1/sas", "/v1/review")
    prefixes += ("/v1/admin", "/v1/regulator-links")
    served = {
        (method.upper(), path): op["x-auth"]
        for path, ops in document(routes)["paths"].items()
        if path.startswith(prefixes)
        for method, op in ops.items()
    }
    start = SPEC.index("### 9.7 Directory")
    rows = re.findall(r"^\| `([A-Z]+) (/v1/[^`]+)` \| ([a-z]+) \|", SPEC[start:], re.M)
    listed = {(m, p): who.get(w, f"role:{w}") for m, p, w in rows}
    assert listed == served
