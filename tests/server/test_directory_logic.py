"""The directory's pure logic: text folding, typo distance, phones, postcodes, dates,
the patient form, search parameters, rings, and the seed generator's determinism."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from server.directory.patient import check_patient, parse_birth_date
from server.directory.query import decode_cursor, encode_cursor, parse_search
from server.directory.seed import generate
from server.errors import ApiError
from server.fields import e164, valid_postcode
from server.postcodes import DATA, all_communes, communes
from storage.directory_index import (
    KM_PER_DEGREE,
    MAX_SAS_CELLS,
    SAS_CELL_COLUMNS,
    fts5_expression,
    lon_scale,
    near_rings,
    sas_cells,
    slot_cells,
    tsquery_expression,
    word_passes,
)
from storage.search_text import deletes, edit_distance_at_most_1, normalise, tokens

TODAY = dt.date(2026, 11, 22)


def test_normalise_folds_case_accents_ligatures_and_punctuation() -> None:
    assert normalise("Lefèvre-Saint  ŒUVRE, Émilie") == "lefevre saint oeuvre emilie"
    assert tokens("Jean  jean DUPONT") == ["jean", "dupont"]
    assert tokens("") == []


@pytest.mark.parametrize(
    ("a", "b", "near"),
    [
        ("lefevre", "lefebre", True),  # substitution
        ("faure", "fuare", True),  # transposition
        ("martin", "martn", True),  # deletion
        ("martin", "marttin", True),  # insertion
        ("martin", "martin", True),
        ("martin", "matrn", False),
        ("dupont", "dumond", False),
    ],
)
def test_one_edit(a: str, b: str, near: bool) -> None:
    assert edit_distance_at_most_1(a, b) is near
    assert edit_distance_at_most_1(b, a) is near
    if near and a != b:  # SymSpell finds them: a shared one-deletion key
        assert (deletes(a) | {a}) & (deletes(b) | {b})


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("06 45 37 26 53", "+33645372653"),
        ("06.45.37.26.53", "+33645372653"),
        ("+33 6 45 37 26 53", "+33645372653"),
        ("+33 (0)6 45 37 26 53", "+33645372653"),
        ("0033645372653", "+33645372653"),
        ("01 23 45 67 89", "+33123456789"),
        ("+262 692 12 34 56", "+262692123456"),
        ("06 45 37 26", None),
        ("+06 45 37 26 53", None),
        ("+33 6 45", None),
        ("téléphone", None),
    ],
)
def test_phones_become_e164(raw: str, number: str | None) -> None:
    assert e164(raw) == number


def test_postcodes_and_birth_dates() -> None:
    assert valid_postcode("59500") and valid_postcode("20000") and valid_postcode("97411")
    assert (
        not valid_postcode("00100") and not valid_postcode("9950") and not valid_postcode("96000")
    )
    # The official base: arrondissements are postcodes, codes La Poste does not serve
    # are not, even inside a département's range.
    assert all(valid_postcode(c) for c in ("75011", "75116", "69003", "13001", "13016"))
    assert not any(valid_postcode(c) for c in ("75021", "69010", "13017", "59999", " 75011"))
    assert parse_birth_date("21/11/1952", TODAY) == dt.date(1952, 11, 21)
    assert parse_birth_date("1952-11-21", TODAY) == dt.date(1952, 11, 21)
    for bad in ("31/02/1990", "2027-01-01", "1890-01-01", "21-11-1952", "hier"):
        assert parse_birth_date(bad, TODAY) is None


def test_patient_form_names_every_problem() -> None:
    form = check_patient(
        {"first_name": "Marie", "phone": "12", "colour": "blue", "consulted_before": "yes"},
        ["email"],
        TODAY,
    )
    assert form.missing == ["last_name", "birth_name", "birth_date", "email"]
    assert [f for f, _ in form.invalid] == ["colour", "phone", "consulted_before"]
    message = form.problem()
    for name in ("patient.last_name", "patient.email", "patient.phone", "patient.colour"):
        assert name in message
    ok = check_patient(
        {
            "first_name": " Marie ",
            "last_name": "Durand",
            "birth_name": "Martin",
            "birth_date": "21/11/1952",
            "phone": "06 45 37 26 53",
            "civility": "Madame",
        },
        [],
        TODAY,
    )
    assert ok.ok and ok.patient["first_name"] == "Marie" and ok.patient["civility"] == "madame"
    assert check_patient({"first_name": "a\x00b"}, [], TODAY).invalid[0][0] == "first_name"


def test_search_parameters() -> None:
    req = parse_search({"q": "Émilie LEF", "specialty": "Cardiologie", "radius_km": "5"})
    assert req.words == ("emilie", "lef") and req.specialty == "cardiologie"
    assert req.radius_km == 5 and req.limit == 20 and req.point is None
    cursor = (1.25, "dupont jean", "abc")
    assert decode_cursor(encode_cursor(cursor)) == cursor
    for params, field in (
        ({"cursor": "e30"}, "cursor"),
        ({"lat": "1"}, "lon"),
        ({"limit": "2.5"}, "limit"),
        ({"cpts": "a b"}, "cpts"),
        ({"near": "Paris", "lat": "1", "lon": "2"}, "near"),
    ):
        with pytest.raises(ApiError) as err:
            parse_search(params)
        assert field in err.value.message


def test_index_expressions_and_rings() -> None:
    assert fts5_expression([["dup"], ["jean"]], True) == '("dup"*) AND ("jean"*)'
    assert tsquery_expression([["dupont", "dumont"]], False) == "(dupont | dumont)"
    ranks = [rank for rank, _, _, _ in word_passes("dup")]
    assert ranks == list(range(8))
    assert near_rings(32, None) == [1, 2, 4, 8, 16, 32]
    # After a cursor 8 km out (rank 1 + 8/33), the rings start there.
    assert near_rings(32, 1 + 8 / 33)[0] == pytest.approx(9)
    assert near_rings(32, 0.5)[0] == 1  # a cursor among account holders: from the centre


def test_seed_is_deterministic() -> None:
    first = list(generate(300, 7, 0, batch_size=100))
    again = list(generate(300, 7, 0, batch_size=100))
    other = list(generate(300, 8, 0, batch_size=100))
    assert [b.profiles for b in first] == [b.profiles for b in again]
    assert [p.id for p in first[0].profiles] != [p.id for p in other[0].profiles]
    profiles = [p for b in first for p in b.profiles]
    assert len(profiles) == 300 and len({p.id for p in profiles}) == 300
    assert first[0].organisations and any(o.kind == "cpts" for o in first[0].organisations)
    assert {p.specialty for p in profiles} >= {"Médecine générale", "Infirmier"}
    for p in profiles:
        assert valid_postcode(p.places[0].postcode) and 41 < p.places[0].lat < 51.2


def test_sas_cells_cover_their_circle() -> None:
    """Every point within a SAS search's radius is in one of the cells searched,
    whatever the radius and wherever in France (overseas and west of Greenwich too);
    the corners of the bounding box are left out."""
    rng = random.Random(5)
    for _ in range(3000):
        lat, lon = rng.uniform(-21.5, 51.0), rng.uniform(-61.0, 55.5)
        radius = rng.choice((1.0, 5.0, 20.0, 60.0, 200.0))
        column, cells = sas_cells(lat, lon, radius)
        assert len(cells) <= MAX_SAS_CELLS or column == SAS_CELL_COLUMNS[-1]
        distance = radius * math.sqrt(rng.random())
        bearing = rng.uniform(0, 2 * math.pi)
        at = (
            lat + distance * math.cos(bearing) / KM_PER_DEGREE,
            lon + distance * math.sin(bearing) / lon_scale(lat),
        )
        assert slot_cells(*at)[SAS_CELL_COLUMNS.index(column)] in cells
    assert sas_cells(48.85, 2.35, 20)[0] == "cell_fine"
    assert sas_cells(48.85, 2.35, 200)[0] == "cell_coarse"
    # 40 km around a cell's corner: the bounding box has 4 x 6 cells; the circle
    # does not reach the box's corner cells (48.0-48.25 N, 1.75-2.0 E: 46 km away).
    column, cells = sas_cells(48.5, 2.5, 40)
    assert column == "cell_fine" and slot_cells(48.1, 1.9)[0] not in cells and len(cells) < 24


def test_the_postcode_base_shipped() -> None:
    """server/postcodes.tsv: built from the pinned package (its header says which),
    every commune of every postcode, metropolitan and overseas, each located."""
    header = DATA.read_text("utf-8").splitlines()[0]
    assert "codes-postaux@4.1.2" in header
    rows = all_communes()
    assert len(rows) == 35_684 and len({c.postcode for c in rows}) == 6_201
    assert all(len(c.postcode) == 5 and c.postcode.isdigit() for c in rows)
    assert all(-22 < c.lat < 52 and -62 < c.lon < 56 for c in rows)
    assert [c.name for c in communes("75011")] == ["Paris 11e Arrondissement"]
    assert {c.name for c in communes("13001")} == {"Marseille 1er Arrondissement"}
