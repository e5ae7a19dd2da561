"""SQLite part of the directory store: FTS5 (prefix indexes) for words, an R*Tree for
places, a SymSpell key table for typos. See :mod:`storage.directory` for the contract."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..directory import (
    SNP_MOTIVE,
    Appointment,
    DirectoryPage,
    DirectoryQuery,
    Hit,
    Locality,
    Motive,
    NewAppointment,
    NewProfile,
    NewSlot,
    Organisation,
    Place,
    Profile,
    SasQuery,
    SasSlot,
    Slot,
)
from ..directory_index import (
    KM_PER_DEGREE,
    MIN_TYPO_WORD,
    Groups,
    flat_terms,
    fts5_expression,
    index_texts,
    lon_scale,
    name_terms,
    near_rings,
    sort_name,
    symspell_keys,
    word_passes,
)
from ..errors import Conflict, NotFound
from ..outbox import NewNotification
from ..search_text import deletes, edit_distance_at_most_1, normalise
from .base import SqliteBase
from .outbox import insert_notifications

__all__ = ["SqliteDirectory"]

_CHUNK = 500
_HIT_COLS = (
    "p.rid, p.id, p.user_id, p.title, p.first_name, p.last_name, p.specialty, p.postcode,"
    " p.city, p.sort_name"
)
_PROFILE_COLS = (
    "rid, id, user_id, title, first_name, last_name, specialty, rpps, visible, required_fields,"
    " instructions"
)
_SLOT_COLS = (
    "s.id, s.profile_id, s.place_id, s.starts_at, s.ends_at, s.motive_ids, s.open_new,"
    " s.online, s.snp, s.appointment_id"
)
_PLACE_COLS = "id, profile_id, name, address, postcode, city, lat, lon"
_APPOINTMENT_COLS = (
    "a.id, a.slot_id, a.profile_id, a.practitioner_user_id, a.place_id, a.motive_id,"
    " a.starts_at, a.ends_at, a.booked_by, a.via, a.patient, a.message, a.attachments,"
    " a.created_at, m.label, a.consultation_type"
)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _organisations(c: sqlite3.Connection, rids: Sequence[int]) -> dict[int, list[Organisation]]:
    found: dict[int, list[Organisation]] = {}
    for chunk in _chunks(rids):
        for rid, *org in c.execute(
            "SELECT po.profile_rid, o.id, o.kind, o.name, o.postcode, o.city"
            " FROM directory_profile_orgs po JOIN directory_organisations o ON o.id = po.org_id"
            f" WHERE po.profile_rid IN ({_marks(len(chunk))}) ORDER BY o.kind, o.name",
            list(chunk),
        ):
            found.setdefault(rid, []).append(Organisation(*org))
    return found


def _verified(c: sqlite3.Connection, user_ids: Sequence[str]) -> set[str]:
    if not user_ids:
        return set()
    return {
        r[0]
        for r in c.execute(
            f"SELECT id FROM users WHERE verified = 1 AND id IN ({_marks(len(user_ids))})",
            list(user_ids),
        )
    }


def _hits(c: sqlite3.Connection, rows: list[Any]) -> list[Hit]:
    """Rows of ``_HIT_COLS`` + dist + rank, as hits."""
    orgs = _organisations(c, [r[0] for r in rows])
    verified = _verified(c, [r[2] for r in rows if r[2] is not None])
    return [
        Hit(
            id=r[1],
            user_id=r[2],
            title=r[3],
            first_name=r[4],
            last_name=r[5],
            specialty=r[6],
            verified=r[2] in verified,
            postcode=r[7],
            city=r[8],
            organisations=tuple(orgs.get(r[0], ())),
            distance_km=None if r[10] is None else round(float(r[10]), 3),
            cursor=(float(r[11]), r[9], r[1]),
        )
        for r in rows
    ]


def _insert_profiles(c: sqlite3.Connection, profiles: Sequence[NewProfile]) -> None:
    if not profiles:
        return
    org_ids = list({o for p in profiles for o in p.organisations})
    org_names: dict[str, str] = {}
    for chunk in _chunks(org_ids):
        org_names.update(
            c.execute(
                f"SELECT id, name FROM directory_organisations WHERE id IN ({_marks(len(chunk))})",
                list(chunk),
            ).fetchall()
        )
    missing = [o for o in org_ids if o not in org_names]
    if missing:
        raise NotFound(f"no organisation {missing[0]}")
    first = c.execute("SELECT COALESCE(MAX(rid), 0) + 1 FROM directory_profiles").fetchone()[0]
    rows: list[tuple[Any, ...]] = []
    fts: list[tuple[Any, ...]] = []
    geo: list[tuple[Any, ...]] = []
    links: list[tuple[str, int, str, str]] = []
    places: list[tuple[Any, ...]] = []
    for rid, p in enumerate(profiles, start=first):
        place = p.places[0] if p.places else None
        rows.append(
            (
                rid,
                p.id,
                p.user_id,
                p.title,
                p.first_name,
                p.last_name,
                p.specialty,
                normalise(p.specialty),
                p.rpps,
                int(p.visible),
                normalise(p.first_name),
                normalise(p.last_name),
                sort_name(p),
                place.postcode if place else "",
                place.city if place else "",
                place.lat if place else None,
                place.lon if place else None,
                ",".join(p.required_fields),
                p.created_at,
            )
        )
        fts.append((rid, *index_texts(p, [org_names[o] for o in p.organisations])))
        if place is not None:
            geo.append((rid, place.lat, place.lat, place.lon, place.lon))
        links.extend((o, rid, sort_name(p), p.id) for o in dict.fromkeys(p.organisations))
        places.extend(
            (pl.id, p.id, pl.name, pl.address, pl.postcode, pl.city, pl.lat, pl.lon)
            for pl in p.places
        )
    c.executemany(
        "INSERT INTO directory_profiles (rid, id, user_id, title, first_name, last_name,"
        " specialty, specialty_norm, rpps, visible, first_norm, last_norm, sort_name,"
        " postcode, city, lat, lon, required_fields, created_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    c.executemany("INSERT INTO directory_fts (rowid, names, other) VALUES (?,?,?)", fts)
    c.executemany(
        "INSERT INTO directory_geo (rid, min_lat, max_lat, min_lon, max_lon) VALUES (?,?,?,?,?)",
        geo,
    )
    c.executemany(
        "INSERT INTO directory_profile_orgs (org_id, profile_rid, sort_name, profile_id)"
        " VALUES (?,?,?,?)",
        links,
    )
    c.executemany(f"INSERT INTO directory_places ({_PLACE_COLS}) VALUES (?,?,?,?,?,?,?,?)", places)
    c.executemany(
        "INSERT OR IGNORE INTO directory_term_keys (key, term) VALUES (?,?)",
        symspell_keys(name_terms(profiles)),
    )


def _insert_slots(c: sqlite3.Connection, slots: Sequence[tuple[str, str, NewSlot]]) -> None:
    if not slots:
        return
    motive_ids = list({m for _, _, s in slots for m in s.motive_ids})
    motives: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(motive_ids):
        for mid, profile_id, label in c.execute(
            f"SELECT id, profile_id, label FROM agenda_motives WHERE id IN ({_marks(len(chunk))})",
            list(chunk),
        ):
            motives[mid] = (profile_id, label)
    place_ids = list({s.place_id for _, _, s in slots})
    places: dict[str, tuple[str, float, float]] = {}
    for chunk in _chunks(place_ids):
        for pid, owner, lat, lon in c.execute(
            "SELECT id, profile_id, lat, lon FROM directory_places"
            f" WHERE id IN ({_marks(len(chunk))})",
            list(chunk),
        ):
            places[pid] = (owner, lat, lon)
    rows = []
    for slot_id, profile_id, s in slots:
        place = places.get(s.place_id)
        if place is None or place[0] != profile_id:
            raise NotFound(f"no place {s.place_id} for this practitioner")
        if not s.motive_ids or any(motives.get(m, ("",))[0] != profile_id for m in s.motive_ids):
            raise NotFound("a slot names a motive this practitioner does not have")
        snp = any(motives[m][1] == SNP_MOTIVE for m in s.motive_ids)
        rows.append(
            (
                slot_id,
                profile_id,
                s.place_id,
                s.starts_at,
                s.ends_at,
                ",".join(s.motive_ids),
                int(s.open_to_new_patients),
                int(s.bookable_online),
                int(snp),
                place[1],
                place[2],
            )
        )
    c.executemany(
        "INSERT INTO agenda_slots (id, profile_id, place_id, starts_at, ends_at, motive_ids,"
        " open_new, online, snp, lat, lon) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )


def _slot(r: Any) -> Slot:
    return Slot(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        tuple(r[5].split(",")) if r[5] else (),
        bool(r[6]),
        bool(r[7]),
        bool(r[8]),
        r[9],
    )


def _appointment(r: Any) -> Appointment:
    return Appointment(
        id=r[0],
        slot_id=r[1],
        profile_id=r[2],
        practitioner_user_id=r[3],
        place_id=r[4],
        motive_id=r[5],
        starts_at=r[6],
        ends_at=r[7],
        booked_by=r[8],
        via=r[9],
        patient=json.loads(r[10]),
        message=r[11],
        attachments=tuple(json.loads(r[12])),
        created_at=r[13],
        motive_label=r[14] or "",
        consultation_type=r[15],
    )


def _corrections(c: sqlite3.Connection, words: Sequence[str]) -> list[list[str]]:
    """Each word, or the indexed name words within one edit of it when there are."""
    groups: list[list[str]] = []
    for word in words:
        if len(word) < MIN_TYPO_WORD:
            groups.append([word])
            continue
        keys = sorted(deletes(word) | {word})
        candidates = [
            r[0]
            for r in c.execute(
                f"SELECT DISTINCT term FROM directory_term_keys WHERE key IN ({_marks(len(keys))})",
                keys,
            )
        ]
        near = sorted(t for t in candidates if edit_distance_at_most_1(word, t))
        groups.append(near or [word])
    return groups


def _near_search(c: sqlite3.Connection, q: DirectoryQuery) -> list[Any]:
    """A "near" search without words: account holders first (few: found through the
    user index), then the others ring by ring (:func:`near_rings`), so a dense city
    never ranks its tens of thousands of practitioners for one page."""
    rows = _search(c, q, (), True, accounts=True)
    need = q.limit - len(rows)
    if need <= 0:
        return rows
    rest = replace(q, limit=need)
    for ring in near_rings(q.radius_km, q.after[0] if q.after else None):
        found = _search(c, rest, (), True, accounts=False, ring=ring)
        if len(found) == need:
            break
    return rows + found


def _word_search(c: sqlite3.Connection, q: DirectoryQuery, word: str) -> list[Any]:
    """A one-word search without a place, pass by pass (:func:`word_passes`)."""
    filters: list[str] = ["p.visible = 1"]
    filter_params: list[Any] = []
    if q.specialty:
        filters.append("p.specialty_norm = ?")
        filter_params.append(q.specialty)
    for org in (q.organisation, q.cpts):
        if org:
            filters.append(
                "p.rid IN (SELECT profile_rid FROM directory_profile_orgs WHERE org_id = ?)"
            )
            filter_params.append(org)
    rows: list[Any] = []
    fts = "p.rid IN (SELECT rowid FROM directory_fts WHERE directory_fts MATCH ?)"
    for rank, condition, params, walk in word_passes(word):
        need = q.limit - len(rows)
        if need <= 0:
            break
        if q.after is not None and rank < q.after[0]:
            continue
        args: list[Any] = [rank]
        where = condition
        if "*fts*" in where:
            where = where.replace("*fts*", fts)
            args.append(fts5_expression([[word]], True))
        args += [*params, *filter_params]
        keyset = ""
        if q.after is not None and rank == q.after[0]:
            keyset = " AND (p.sort_name, p.id) > (?, ?)"
            args += [q.after[1], q.after[2]]
        rows += c.execute(
            f"SELECT {_HIT_COLS}, NULL, ? FROM directory_profiles p"
            f" WHERE {where} AND {' AND '.join(filters)}{keyset}"
            # "+": sort this pass's matches rather than walk all names in order.
            f" ORDER BY {'' if walk else '+'}p.sort_name, p.id LIMIT ?",
            [*args, need],
        ).fetchall()
    return rows


def _org_search(c: sqlite3.Connection, q: DirectoryQuery) -> list[Any]:
    """Members of an organisation (or CPTS), without words or place: account holders
    (few) first, then the others straight from the membership index, in name order."""
    org = q.cpts or q.organisation
    other = q.organisation if q.cpts else None
    filters = ["p.visible = 1"]
    filter_params: list[Any] = []
    if other:
        filters.append(
            "EXISTS (SELECT 1 FROM directory_profile_orgs o2"
            " WHERE o2.org_id = ? AND o2.profile_rid = p.rid)"
        )
        filter_params.append(other)
    if q.specialty:
        filters.append("p.specialty_norm = ?")
        filter_params.append(q.specialty)
    rows: list[Any] = []
    for rank in (0, 1):
        need = q.limit - len(rows)
        if need <= 0 or (q.after is not None and rank < q.after[0]):
            continue
        keyset, keyset_params = "", []
        if q.after is not None and rank == q.after[0]:
            keyset, keyset_params = " AND (sort_name, id) > (?, ?)", [q.after[1], q.after[2]]
        if rank == 0:  # account holders (few), in name order, each checked for membership
            sql = (
                f"SELECT {_HIT_COLS}, NULL, ? FROM directory_profiles p"
                " WHERE p.user_id IS NOT NULL AND EXISTS (SELECT 1 FROM directory_profile_orgs"
                " po WHERE po.org_id = ? AND po.profile_rid = p.rid)"
                f" AND {' AND '.join(filters)}"
                f"{keyset.replace('(sort_name, id)', '(p.sort_name, p.id)')}"
                " ORDER BY p.sort_name, p.id LIMIT ?"
            )
        else:  # the members, in name order, straight from the membership index
            sql = (
                f"SELECT {_HIT_COLS}, NULL, ? FROM directory_profile_orgs po"
                " JOIN directory_profiles p ON p.rid = po.profile_rid"
                f" WHERE po.org_id = ? AND p.user_id IS NULL AND {' AND '.join(filters)}"
                f"{keyset.replace('(sort_name, id)', '(po.sort_name, po.profile_id)')}"
                " ORDER BY po.sort_name, po.profile_id LIMIT ?"
            )
        rows += c.execute(sql, [rank, org, *filter_params, *keyset_params, need]).fetchall()
    return rows


def _search(
    c: sqlite3.Connection,
    q: DirectoryQuery,
    groups: Groups,
    prefix: bool,
    *,
    accounts: bool | None = None,
    ring: float | None = None,
) -> list[Any]:
    """One query. ``accounts``: only profiles with (True) or without (False) an
    account; ``ring``: only within this distance (ranks still use ``q.radius_km``)."""
    where = ["p.visible = 1"]
    params: list[Any] = []
    terms = flat_terms(groups)
    if groups:
        where.append("p.rid IN (SELECT rowid FROM directory_fts WHERE directory_fts MATCH ?)")
        params.append(fts5_expression(groups, prefix))
    if q.specialty:
        # Among account holders (few) their own index must drive: "+" keeps SQLite
        # from walking the specialty's index through a whole city instead.
        where.append("+p.specialty_norm = ?" if accounts else "p.specialty_norm = ?")
        params.append(q.specialty)
    for org in (q.organisation, q.cpts):
        if org:
            where.append(
                "p.rid IN (SELECT profile_rid FROM directory_profile_orgs WHERE org_id = ?)"
            )
            params.append(org)
    if accounts is not None:
        where.append(f"p.user_id IS {'NOT ' if accounts else ''}NULL")
    dist = "NULL"
    dist_params: list[Any] = []
    within = q.radius_km if ring is None else ring
    if q.near is not None:
        lat, lon = q.near
        dlat = within / KM_PER_DEGREE
        dlon = within / max(lon_scale(lat), 0.01)
        if accounts or q.specialty:
            # Account holders are few: their index drives. A specialty's own index
            # (specialty, lat, lon) holds far fewer entries in the box than the R*Tree.
            where.append("p.lat BETWEEN ? AND ? AND p.lon BETWEEN ? AND ?")
        else:
            where.append(
                "p.rid IN (SELECT rid FROM directory_geo WHERE min_lat >= ? AND max_lat <= ?"
                " AND min_lon >= ? AND max_lon <= ?)"
            )
        params += [lat - dlat, lat + dlat, lon - dlon, lon + dlon]
        dist = "sqrt(power((p.lat - ?) * ?, 2) + power((p.lon - ?) * ?, 2))"
        dist_params = [lat, KM_PER_DEGREE, lon, lon_scale(lat)]
    tier = "0"
    tier_params: list[Any] = []
    if terms:
        marks = _marks(len(terms))
        likes = " OR ".join(["p.last_norm LIKE ?"] * len(terms))
        first_likes = " OR ".join(["p.first_norm LIKE ?"] * len(terms))
        tier = (
            f"(CASE WHEN p.last_norm IN ({marks}) THEN 0 WHEN ({likes}) THEN 1"
            f" WHEN ({first_likes}) THEN 2 ELSE 3 END)"
        )
        patterns = [t + "%" for t in terms]
        tier_params = [*terms, *patterns, *patterns]
    rank = f"({tier} * 2 + (CASE WHEN p.user_id IS NULL THEN 1 ELSE 0 END))"
    rank_params = list(tier_params)
    if q.near is not None:
        rank = f"({rank} + {dist} / ?)"
        rank_params += [*dist_params, q.radius_km + 1]
    outer: list[str] = []
    outer_params: list[Any] = []
    if q.near is not None:
        outer.append("dist <= ?")
        outer_params.append(within)
    if q.after is not None:
        outer.append("(rank, sort_name, id) > (?, ?, ?)")
        outer_params += list(q.after)
    sql = (
        f"SELECT * FROM (SELECT {_HIT_COLS}, {dist} AS dist, {rank} AS rank"
        f" FROM directory_profiles p WHERE {' AND '.join(where)})"
        f"{' WHERE ' + ' AND '.join(outer) if outer else ''}"
        " ORDER BY rank, sort_name, id LIMIT ?"
    )
    return c.execute(sql, [*dist_params, *rank_params, *params, *outer_params, q.limit]).fetchall()


class SqliteDirectory(SqliteBase):
    # -- loading

    async def load_directory(
        self,
        organisations: Sequence[Organisation],
        profiles: Sequence[NewProfile],
        localities: Sequence[Locality] = (),
        motives: Sequence[Motive] = (),
        slots: Sequence[tuple[str, str, NewSlot]] = (),
    ) -> None:
        def tx(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT INTO directory_organisations (id, kind, name, postcode, city)"
                " VALUES (?,?,?,?,?)",
                [(o.id, o.kind, o.name, o.postcode, o.city) for o in organisations],
            )
            c.executemany(
                "INSERT OR IGNORE INTO directory_localities"
                " (postcode, city, city_norm, lat, lon, population) VALUES (?,?,?,?,?,?)",
                [
                    (x.postcode, x.city, normalise(x.city), x.lat, x.lon, x.population)
                    for x in localities
                ],
            )
            _insert_profiles(c, profiles)
            c.executemany(
                "INSERT INTO agenda_motives (id, profile_id, label, duration_min) VALUES (?,?,?,?)",
                [(m.id, m.profile_id, m.label, m.duration_min) for m in motives],
            )
            _insert_slots(c, slots)

        await self._write("load_directory", tx)

    async def finish_directory_load(self) -> None:
        def tx(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO directory_fts (directory_fts) VALUES ('optimize')")
            c.execute("ANALYZE")

        await self._write("finish_directory_load", tx)

    async def directory_size(self) -> int:
        row = await self._read(
            "directory_size",
            lambda c: c.execute("SELECT COUNT(*) FROM directory_profiles").fetchone(),
        )
        return int(row[0])

    # -- profiles

    async def create_profile(self, profile: NewProfile) -> None:
        await self._write("create_profile", lambda c: _insert_profiles(c, [profile]))

    async def link_profile(self, profile_id: str, user_id: str) -> None:
        def tx(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE directory_profiles SET user_id = ? WHERE id = ? AND user_id IS NULL",
                (user_id, profile_id),
            )
            if cur.rowcount == 0:
                raise NotFound("no such unclaimed profile")

        await self._write("link_profile", tx)

    def _profile(self, c: sqlite3.Connection, where: str, arg: str) -> Profile | None:
        r = c.execute(
            f"SELECT {_PROFILE_COLS} FROM directory_profiles WHERE {where} = ?", (arg,)
        ).fetchone()
        if r is None:
            return None
        orgs = _organisations(c, [r[0]]).get(r[0], [])
        places = [
            Place(*x)
            for x in c.execute(
                f"SELECT {_PLACE_COLS} FROM directory_places WHERE profile_id = ? ORDER BY rowid",
                (r[1],),
            )
        ]
        verified = bool(_verified(c, [r[2]])) if r[2] else False
        return Profile(
            id=r[1],
            user_id=r[2],
            title=r[3],
            first_name=r[4],
            last_name=r[5],
            specialty=r[6],
            rpps=r[7],
            verified=verified,
            visible=bool(r[8]),
            organisations=tuple(orgs),
            places=tuple(places),
            required_fields=tuple(f for f in r[9].split(",") if f),
            instructions=r[10],
        )

    async def profile(self, profile_id: str) -> Profile | None:
        return await self._read("profile", lambda c: self._profile(c, "id", profile_id))

    async def profile_of_user(self, user_id: str) -> Profile | None:
        return await self._read("profile_of_user", lambda c: self._profile(c, "user_id", user_id))

    async def set_profile_visible(self, profile_id: str, visible: bool) -> None:
        def tx(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE directory_profiles SET visible = ? WHERE id = ?", (int(visible), profile_id)
            )
            if cur.rowcount == 0:
                raise NotFound("no such profile")

        await self._write("set_profile_visible", tx)

    async def set_required_fields(self, profile_id: str, fields: Sequence[str]) -> None:
        def tx(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE directory_profiles SET required_fields = ? WHERE id = ?",
                (",".join(fields), profile_id),
            )
            if cur.rowcount == 0:
                raise NotFound("no such profile")

        await self._write("set_required_fields", tx)

    async def set_instructions(self, profile_id: str, text: str) -> None:
        def tx(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE directory_profiles SET instructions = ? WHERE id = ?", (text, profile_id)
            )
            if cur.rowcount == 0:
                raise NotFound("no such profile")

        await self._write("set_instructions", tx)

    async def search_directory(self, query: DirectoryQuery) -> DirectoryPage:
        def rows_for(c: sqlite3.Connection, groups: Groups, prefix: bool) -> list[Any]:
            if query.near is not None and not groups:
                return _near_search(c, query)
            if query.near is None and prefix and len(groups) == 1:
                return _word_search(c, query, groups[0][0])
            if query.near is None and not groups and (query.cpts or query.organisation):
                return _org_search(c, query)
            return _search(c, query, groups, prefix)

        def read(c: sqlite3.Connection) -> DirectoryPage:
            groups: Groups = [[w] for w in query.words]
            corrected = None
            rows = rows_for(c, groups, True)
            # Nothing found: a typo, if the words match nothing at all (not merely
            # nothing under these filters or after this cursor).
            if not rows and groups:
                expression = fts5_expression(groups, True)
                found = c.execute(
                    "SELECT 1 FROM directory_fts WHERE directory_fts MATCH ? LIMIT 1", (expression,)
                ).fetchone()
                if found is None:
                    fixed = _corrections(c, query.words)
                    if fixed != groups:
                        corrected = tuple(flat_terms(fixed))
                        rows = rows_for(c, fixed, False)
            hits = _hits(c, rows)
            more = len(hits) == query.limit
            return DirectoryPage(hits, hits[-1].cursor if more else None, corrected)

        return await self._read("search_directory", read)

    async def locality(self, postcode: str | None, city: str | None) -> Locality | None:
        def read(c: sqlite3.Connection) -> Locality | None:
            if postcode:
                r = c.execute(
                    "SELECT postcode, city, lat, lon, population FROM directory_localities"
                    " WHERE postcode = ?"
                    " ORDER BY population DESC LIMIT 1",
                    (postcode,),
                ).fetchone()
            else:
                r = c.execute(
                    "SELECT postcode, city, lat, lon, population FROM directory_localities"
                    " WHERE city_norm = ?"
                    " ORDER BY population DESC, postcode LIMIT 1",
                    (normalise(city or ""),),
                ).fetchone()
            return None if r is None else Locality(*r)

        return await self._read("locality", read)

    # -- favourites

    async def add_favourite(self, user_id: str, profile_id: str, now: int) -> None:
        def tx(c: sqlite3.Connection) -> None:
            if (
                c.execute("SELECT 1 FROM directory_profiles WHERE id = ?", (profile_id,)).fetchone()
                is None
            ):
                raise NotFound("no such profile")
            c.execute(
                "INSERT OR IGNORE INTO directory_favourites (user_id, profile_id, created_at)"
                " VALUES (?,?,?)",
                (user_id, profile_id, now),
            )

        await self._write("add_favourite", tx)

    async def remove_favourite(self, user_id: str, profile_id: str) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "DELETE FROM directory_favourites WHERE user_id = ? AND profile_id = ?",
                (user_id, profile_id),
            )
            return cur.rowcount > 0

        return await self._write("remove_favourite", tx)

    async def favourites(self, user_id: str) -> list[Hit]:
        def read(c: sqlite3.Connection) -> list[Hit]:
            rows = c.execute(
                f"SELECT {_HIT_COLS}, NULL, 0 FROM directory_favourites f"
                " JOIN directory_profiles p ON p.id = f.profile_id"
                " WHERE f.user_id = ? AND p.visible = 1 ORDER BY f.created_at DESC, p.id",
                (user_id,),
            ).fetchall()
            return _hits(c, rows)

        return await self._read("favourites", read)

    # -- agenda

    async def add_place(self, place: Place) -> None:
        def tx(c: sqlite3.Connection) -> None:
            r = c.execute(
                "SELECT rid, lat FROM directory_profiles WHERE id = ?", (place.profile_id,)
            ).fetchone()
            if r is None:
                raise NotFound("no such profile")
            c.execute(
                f"INSERT INTO directory_places ({_PLACE_COLS}) VALUES (?,?,?,?,?,?,?,?)",
                (
                    place.id,
                    place.profile_id,
                    place.name,
                    place.address,
                    place.postcode,
                    place.city,
                    place.lat,
                    place.lon,
                ),
            )
            if r[1] is None:  # the first place becomes the main one
                c.execute(
                    "UPDATE directory_profiles SET postcode = ?, city = ?, lat = ?, lon = ?"
                    " WHERE rid = ?",
                    (place.postcode, place.city, place.lat, place.lon, r[0]),
                )
                c.execute(
                    "INSERT INTO directory_geo (rid, min_lat, max_lat, min_lon, max_lon)"
                    " VALUES (?,?,?,?,?)",
                    (r[0], place.lat, place.lat, place.lon, place.lon),
                )

        await self._write("add_place", tx)

    async def add_motive(self, motive: Motive) -> None:
        def tx(c: sqlite3.Connection) -> None:
            if (
                c.execute(
                    "SELECT 1 FROM directory_profiles WHERE id = ?", (motive.profile_id,)
                ).fetchone()
                is None
            ):
                raise NotFound("no such profile")
            c.execute(
                "INSERT INTO agenda_motives (id, profile_id, label, duration_min) VALUES (?,?,?,?)",
                (motive.id, motive.profile_id, motive.label, motive.duration_min),
            )

        await self._write("add_motive", tx)

    async def add_slots(self, profile_id: str, slots: Sequence[tuple[str, NewSlot]]) -> None:
        await self._write(
            "add_slots", lambda c: _insert_slots(c, [(i, profile_id, s) for i, s in slots])
        )

    async def motives(self, profile_id: str) -> list[Motive]:
        def read(c: sqlite3.Connection) -> list[Motive]:
            return [
                Motive(*r)
                for r in c.execute(
                    "SELECT id, profile_id, label, duration_min FROM agenda_motives"
                    " WHERE profile_id = ? ORDER BY label, id",
                    (profile_id,),
                )
            ]

        return await self._read("motives", read)

    async def slots(
        self, profile_id: str, starts_from: int, starts_before: int, free_only: bool
    ) -> list[Slot]:
        def read(c: sqlite3.Connection) -> list[Slot]:
            free = " AND s.appointment_id IS NULL" if free_only else ""
            return [
                _slot(r)
                for r in c.execute(
                    f"SELECT {_SLOT_COLS} FROM agenda_slots s WHERE s.profile_id = ?"
                    f" AND s.starts_at >= ? AND s.starts_at < ?{free} ORDER BY s.starts_at, s.id",
                    (profile_id, starts_from, starts_before),
                )
            ]

        return await self._read("slots", read)

    async def slot(self, slot_id: str) -> Slot | None:
        def read(c: sqlite3.Connection) -> Slot | None:
            r = c.execute(
                f"SELECT {_SLOT_COLS} FROM agenda_slots s WHERE s.id = ?", (slot_id,)
            ).fetchone()
            return None if r is None else _slot(r)

        return await self._read("slot", read)

    async def sas_slots(self, query: SasQuery) -> list[SasSlot]:
        def read(c: sqlite3.Connection) -> list[SasSlot]:
            lat, lon = query.near
            dlat = query.radius_km / KM_PER_DEGREE
            dlon = query.radius_km / max(lon_scale(lat), 0.01)
            specialty = " AND p.specialty_norm = ?" if query.specialty else ""
            dist = "sqrt(power((s.lat - ?) * ?, 2) + power((s.lon - ?) * ?, 2))"
            params: list[Any] = [lat, KM_PER_DEGREE, lon, lon_scale(lat)]
            params += [query.starts_from, query.starts_before, lat - dlat, lat + dlat]
            params += [lon - dlon, lon + dlon]
            if query.specialty:
                params.append(query.specialty)
            # The free eligible slots of the box, by the (lat, lon, starts_at) index.
            # (First looking among the country's soonest slots, as the PostgreSQL
            # adapter does, measured slower here.)
            rows = c.execute(
                f"SELECT * FROM (SELECT {_SLOT_COLS}, {_HIT_COLS}, {dist} AS dist,"
                " pl.id, pl.profile_id, pl.name, pl.address, pl.postcode, pl.city,"
                " pl.lat, pl.lon FROM agenda_slots s"
                " JOIN directory_places pl ON pl.id = s.place_id"
                " JOIN directory_profiles p ON p.id = s.profile_id"
                " WHERE s.appointment_id IS NULL"
                " AND (s.snp = 1 OR (s.open_new = 1 AND s.online = 1))"
                " AND s.starts_at >= ? AND s.starts_at < ? AND p.visible = 1"
                " AND s.lat BETWEEN ? AND ? AND s.lon BETWEEN ? AND ?"
                f"{specialty}) WHERE dist <= ? ORDER BY 4, 1 LIMIT ?",
                [*params, query.radius_km, query.limit],
            ).fetchall()
            hits = _hits(c, [(*r[10:20], r[20], 0) for r in rows])
            return [
                SasSlot(_slot(r[:10]), hit, Place(*r[21:29]))
                for r, hit in zip(rows, hits, strict=True)
            ]

        return await self._read("sas_slots", read)

    # -- booking

    async def book(
        self, new: NewAppointment, notifications: Sequence[NewNotification], now: int
    ) -> Appointment:
        def tx(c: sqlite3.Connection) -> Appointment:
            r = c.execute(
                f"SELECT {_SLOT_COLS}, p.user_id FROM agenda_slots s"
                " JOIN directory_profiles p ON p.id = s.profile_id WHERE s.id = ?",
                (new.slot_id,),
            ).fetchone()
            if r is None:
                raise NotFound("no such slot")
            slot = _slot(r[:10])
            if new.motive_id not in slot.motive_ids:
                raise NotFound("this motive is not offered on this slot")
            taken = c.execute(
                "UPDATE agenda_slots SET appointment_id = ?"
                " WHERE id = ? AND appointment_id IS NULL",
                (new.id, new.slot_id),
            )
            if taken.rowcount != 1:
                raise Conflict("this slot is already booked")
            attachment_ids = list(dict.fromkeys(new.attachments))
            if attachment_ids:
                marked = c.execute(
                    "UPDATE attachments SET referenced_at = COALESCE(referenced_at, ?)"
                    f" WHERE id IN ({_marks(len(attachment_ids))}) AND uploader = ?"
                    " AND state = 'ready' AND kind = 'document' AND room_id IS NULL",
                    [now, *attachment_ids, new.booked_by],
                )
                if marked.rowcount != len(attachment_ids):
                    raise NotFound("an attachment is not a ready document of yours")
            c.execute(
                "INSERT INTO appointments (id, slot_id, profile_id, practitioner_user_id,"
                " place_id, motive_id, starts_at, ends_at, booked_by, via, patient, message,"
                " attachments, created_at, consultation_type)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    new.id,
                    slot.id,
                    slot.profile_id,
                    r[10],
                    slot.place_id,
                    new.motive_id,
                    slot.starts_at,
                    slot.ends_at,
                    new.booked_by,
                    new.via,
                    json.dumps(new.patient, ensure_ascii=False, sort_keys=True),
                    new.message,
                    json.dumps(attachment_ids),
                    new.created_at,
                    new.consultation_type,
                ),
            )
            insert_notifications(c, notifications, now)
            return self._appointment(c, new.id)  # type: ignore[return-value]

        return await self._write("book", tx)

    @staticmethod
    def _appointment(c: sqlite3.Connection, appointment_id: str) -> Appointment | None:
        r = c.execute(
            f"SELECT {_APPOINTMENT_COLS} FROM appointments a"
            " LEFT JOIN agenda_motives m ON m.id = a.motive_id WHERE a.id = ?",
            (appointment_id,),
        ).fetchone()
        return None if r is None else _appointment(r)

    async def appointment(self, appointment_id: str) -> Appointment | None:
        return await self._read("appointment", lambda c: self._appointment(c, appointment_id))

    async def appointments_of_practitioner(
        self, profile_id: str, starts_from: int, starts_before: int
    ) -> list[Appointment]:
        def read(c: sqlite3.Connection) -> list[Appointment]:
            return [
                _appointment(r)
                for r in c.execute(
                    f"SELECT {_APPOINTMENT_COLS} FROM appointments a"
                    " LEFT JOIN agenda_motives m ON m.id = a.motive_id"
                    " WHERE a.profile_id = ? AND a.starts_at >= ? AND a.starts_at < ?"
                    " ORDER BY a.starts_at, a.id",
                    (profile_id, starts_from, starts_before),
                )
            ]

        return await self._read("appointments_of_practitioner", read)

    async def appointments_booked_by(self, user_id: str, limit: int) -> list[Appointment]:
        def read(c: sqlite3.Connection) -> list[Appointment]:
            return [
                _appointment(r)
                for r in c.execute(
                    f"SELECT {_APPOINTMENT_COLS} FROM appointments a"
                    " LEFT JOIN agenda_motives m ON m.id = a.motive_id"
                    " WHERE a.booked_by = ? ORDER BY a.created_at DESC, a.id LIMIT ?",
                    (user_id, limit),
                )
            ]

        return await self._read("appointments_booked_by", read)

    async def record_patient_access(self, appointment_id: str, user_id: str, now: int) -> None:
        await self._write(
            "record_patient_access",
            lambda c: c.execute(
                "INSERT INTO patient_record_reads (appointment_id, user_id, at) VALUES (?,?,?)",
                (appointment_id, user_id, now),
            ),
        )

    async def patient_accesses(self, appointment_id: str) -> list[tuple[str, int]]:
        def read(c: sqlite3.Connection) -> list[tuple[str, int]]:
            return [
                (r[0], r[1])
                for r in c.execute(
                    "SELECT user_id, at FROM patient_record_reads WHERE appointment_id = ?"
                    " ORDER BY at, rowid",
                    (appointment_id,),
                )
            ]

        return await self._read("patient_accesses", read)
