"""The SQL store's directory: profiles, search, favourites, agenda and booking, written
once; what the full-text and spatial indexes do differently is the engine's
:class:`~storage.sql.search.DirectorySearch`. See :mod:`storage.directory` for the
contract."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..directory import (
    SNP_MOTIVE,
    Appointment,
    DirectoryPage,
    DirectoryQuery,
    Hit,
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
    Groups,
    flat_terms,
    index_texts,
    lon_scale,
    name_terms,
    near_rings,
    sas_cells,
    slot_cells,
    sort_name,
    word_passes,
)
from ..errors import (
    MotiveNotOffered,
    NoSuchOrganisation,
    NoSuchProfile,
    NoSuchSlot,
    SlotPartNotOwned,
    SlotTaken,
    UnusableAttachment,
)
from ..outbox import NewNotification
from ..search_text import normalise
from .base import SqlBase
from .engine import Tx
from .outbox import insert_notifications
from .search import DirectorySearch, IndexEntry

__all__ = ["SqlDirectory"]

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
_PROFILE_INSERT_COLS = (
    "rid",
    "id",
    "user_id",
    "title",
    "first_name",
    "last_name",
    "specialty",
    "specialty_norm",
    "rpps",
    "visible",
    "first_norm",
    "last_norm",
    "sort_name",
    "postcode",
    "city",
    "lat",
    "lon",
    "required_fields",
    "created_at",
)
_SLOT_INSERT_COLS = (
    "id",
    "profile_id",
    "place_id",
    "starts_at",
    "ends_at",
    "motive_ids",
    "open_new",
    "online",
    "snp",
    "lat",
    "lon",
    "cell_fine",
    "cell_coarse",
)


class _Params:
    """Collects query arguments and hands out their ``$n`` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


async def _organisations(c: Tx, rids: Sequence[int]) -> dict[int, list[Organisation]]:
    found: dict[int, list[Organisation]] = {}
    if not rids:
        return found
    for r in await c.fetch(
        "SELECT po.profile_rid, o.id, o.kind, o.name, o.postcode, o.city"
        " FROM directory_profile_orgs po JOIN directory_organisations o ON o.id = po.org_id"
        " WHERE po.profile_rid = ANY($1::bigint[]) ORDER BY o.kind, o.name",
        list(rids),
    ):
        found.setdefault(r[0], []).append(Organisation(*tuple(r)[1:]))
    return found


async def _verified(c: Tx, user_ids: Sequence[str]) -> set[str]:
    if not user_ids:
        return set()
    rows = await c.fetch(
        "SELECT id FROM users WHERE verified AND id = ANY($1::text[])", list(user_ids)
    )
    return {r[0] for r in rows}


async def _hits(c: Tx, rows: Sequence[Any]) -> list[Hit]:
    orgs = await _organisations(c, [r[0] for r in rows])
    verified = await _verified(c, [r[2] for r in rows if r[2] is not None])
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


async def _insert_profiles(c: Tx, d: DirectorySearch, profiles: Sequence[NewProfile]) -> None:
    if not profiles:
        return
    org_ids = list({o for p in profiles for o in p.organisations})
    org_names: dict[str, str] = {}
    if org_ids:
        org_names = {
            r[0]: r[1]
            for r in await c.fetch(
                "SELECT id, name FROM directory_organisations WHERE id = ANY($1::text[])", org_ids
            )
        }
    missing = [o for o in org_ids if o not in org_names]
    if missing:
        raise NoSuchOrganisation(f"no organisation {missing[0]}")
    rids = await d.next_rids(c, len(profiles))
    rows: list[tuple[Any, ...]] = []
    index: list[IndexEntry] = []
    links: list[tuple[str, int, str, str]] = []
    places: list[tuple[Any, ...]] = []
    for rid, p in zip(rids, profiles, strict=True):
        place = p.places[0] if p.places else None
        names, other = index_texts(p, [org_names[o] for o in p.organisations])
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
                p.visible,
                normalise(p.first_name),
                normalise(p.last_name),
                sort_name(p),
                place.postcode if place else "",
                place.city if place else "",
                place.lat if place else None,
                place.lon if place else None,
                ",".join(p.required_fields),
                p.created_at,
                *d.extra_values(names, other),
            )
        )
        index.append((rid, names, other, (place.lat, place.lon) if place else None))
        links.extend((o, rid, sort_name(p), p.id) for o in dict.fromkeys(p.organisations))
        places.extend(
            (pl.id, p.id, pl.name, pl.address, pl.postcode, pl.city, pl.lat, pl.lon)
            for pl in p.places
        )
    await c.copy("directory_profiles", _PROFILE_INSERT_COLS + d.extra_columns, rows)
    await d.index_profiles(c, index)
    if links:
        await c.copy(
            "directory_profile_orgs", ("org_id", "profile_rid", "sort_name", "profile_id"), links
        )
    if places:
        await c.copy("directory_places", _PLACE_COLS.split(", "), places)
    await d.add_terms(c, name_terms(profiles))


async def _insert_slots(c: Tx, slots: Sequence[tuple[str, str, NewSlot]]) -> None:
    if not slots:
        return
    motive_ids = list({m for _, _, s in slots for m in s.motive_ids})
    motives = {
        r[0]: (r[1], r[2])
        for r in await c.fetch(
            "SELECT id, profile_id, label FROM agenda_motives WHERE id = ANY($1::text[])",
            motive_ids,
        )
    }
    places = {
        r[0]: (r[1], r[2], r[3])
        for r in await c.fetch(
            "SELECT id, profile_id, lat, lon FROM directory_places WHERE id = ANY($1::text[])",
            list({s.place_id for _, _, s in slots}),
        )
    }
    rows = []
    for slot_id, profile_id, s in slots:
        place = places.get(s.place_id)
        if place is None or place[0] != profile_id:
            raise SlotPartNotOwned(f"no place {s.place_id} for this practitioner")
        if not s.motive_ids or any(motives.get(m, ("",))[0] != profile_id for m in s.motive_ids):
            raise SlotPartNotOwned("a slot names a motive this practitioner does not have")
        snp = any(motives[m][1] == SNP_MOTIVE for m in s.motive_ids)
        rows.append(
            (
                slot_id,
                profile_id,
                s.place_id,
                s.starts_at,
                s.ends_at,
                ",".join(s.motive_ids),
                s.open_to_new_patients,
                s.bookable_online,
                snp,
                place[1],
                place[2],
                *slot_cells(place[1], place[2]),
            )
        )
    await c.copy("agenda_slots", _SLOT_INSERT_COLS, rows)


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


def _appointment(r: Sequence[Any]) -> Appointment:
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


async def _near_search(c: Tx, d: DirectorySearch, q: DirectoryQuery) -> list[Any]:
    """A "near" search without words: account holders first (few: found through the
    user index), then the others ring by ring (:func:`near_rings`), so a dense city
    never ranks its tens of thousands of practitioners for one page."""
    rows = await _search(c, d, q, (), True, accounts=True)
    need = q.limit - len(rows)
    if need <= 0:
        return rows
    rest = replace(q, limit=need)
    found: list[Any] = []
    for ring in near_rings(q.radius_km, q.after[0] if q.after else None):
        found = await _search(c, d, rest, (), True, accounts=False, ring=ring)
        if len(found) == need:
            break
    return rows + found


def _numbered(condition: str, values: Sequence[Any], p: _Params) -> str:
    """``condition`` with each ``?`` replaced by the placeholder of the next value."""
    parts = condition.split("?")
    assert len(parts) == len(values) + 1
    out = parts[0]
    for value, rest in zip(values, parts[1:], strict=True):
        out += p(value) + rest
    return out


async def _word_search(c: Tx, d: DirectorySearch, q: DirectoryQuery, word: str) -> list[Any]:
    """A one-word search without a place, pass by pass (:func:`word_passes`)."""
    rows: list[Any] = []
    for rank, condition, params, walk in word_passes(word):
        need = q.limit - len(rows)
        if need <= 0:
            break
        if q.after is not None and rank < q.after[0]:
            continue
        p = _Params()
        head = f"SELECT {_HIT_COLS}, NULL::float8, {p(float(rank))}::float8"
        where = condition
        if "*fts*" in where:
            where = where.replace("*fts*", d.match([[word]], True, p))
        where = _numbered(where, params, p)
        filters = [d.flag("p.visible")]
        if q.specialty:
            filters.append(f"p.specialty_norm = {p(q.specialty)}")
        for org in (q.organisation, q.cpts):
            if org:
                filters.append(
                    "p.rid IN (SELECT profile_rid FROM directory_profile_orgs"
                    f" WHERE org_id = {p(org)})"
                )
        if q.after is not None and rank == q.after[0]:
            filters.append(f"(p.sort_name, p.id) > ({p(q.after[1])}::text, {p(q.after[2])}::text)")
        sql = (
            f"{head} FROM directory_profiles p WHERE {where} AND {' AND '.join(filters)}"
            # Passes that sort their matches must not walk every name in order hoping
            # to meet them (the LIMIT trap): an expression has no index.
            f" ORDER BY {'p.sort_name' if walk else d.unindexed('p.sort_name', order=True)},"
            f" p.id LIMIT {p(need)}"
        )
        rows += await c.fetch(sql, *p.values)
    return rows


async def _org_search(c: Tx, d: DirectorySearch, q: DirectoryQuery) -> list[Any]:
    """Members of an organisation (or CPTS), without words or place: account holders
    first, then the others straight from the membership index, in name order."""
    rows: list[Any] = []
    for rank in (0, 1):
        need = q.limit - len(rows)
        if need <= 0 or (q.after is not None and rank < q.after[0]):
            continue
        p = _Params()
        head = f"SELECT {_HIT_COLS}, NULL::float8, {p(float(rank))}::float8"
        org = p(q.cpts or q.organisation)
        where = [d.flag("p.visible")]
        if q.cpts and q.organisation:
            where.append(
                "EXISTS (SELECT 1 FROM directory_profile_orgs o2"
                f" WHERE o2.org_id = {p(q.organisation)} AND o2.profile_rid = p.rid)"
            )
        if q.specialty:
            where.append(f"p.specialty_norm = {p(q.specialty)}")
        name, pid = ("p.sort_name", "p.id") if rank == 0 else ("po.sort_name", "po.profile_id")
        if q.after is not None and rank == q.after[0]:
            where.append(f"({name}, {pid}) > ({p(q.after[1])}::text, {p(q.after[2])}::text)")
        if rank == 0:  # account holders (few), in name order, each checked for membership
            source = (
                "directory_profiles p WHERE p.user_id IS NOT NULL AND EXISTS (SELECT 1 FROM"
                f" directory_profile_orgs po WHERE po.org_id = {org} AND po.profile_rid = p.rid)"
            )
        else:  # the members, in name order, straight from the membership index
            source = (
                "directory_profile_orgs po JOIN directory_profiles p ON p.rid = po.profile_rid"
                f" WHERE po.org_id = {org} AND p.user_id IS NULL"
            )
        sql = (
            f"{head} FROM {source} AND {' AND '.join(where)} ORDER BY {name}, {pid} LIMIT {p(need)}"
        )
        rows += await c.fetch(sql, *p.values)
    return rows


async def _search(
    c: Tx,
    d: DirectorySearch,
    q: DirectoryQuery,
    groups: Groups,
    prefix: bool,
    *,
    accounts: bool | None = None,
    ring: float | None = None,
) -> list[Any]:
    """One query. ``accounts``: only profiles with (True) or without (False) an
    account; ``ring``: only within this distance (ranks still use ``q.radius_km``)."""
    p = _Params()
    within = q.radius_km if ring is None else ring
    terms = flat_terms(groups)
    dist = "NULL::float8"
    if q.near is not None:
        lat, lon = q.near
        dist = (
            f"sqrt(power((p.lat - {p(lat)}) * {p(KM_PER_DEGREE)}, 2)"
            f" + power((p.lon - {p(lon)}) * {p(lon_scale(lat))}, 2))"
        )
    tier = "0"
    if terms and not prefix:
        # Corrected words: each alternative name is a tier of its own, in the order
        # given (rarest first, :func:`_rarest_first`), so the few practitioners of a
        # rare name are not buried under the many of a common one a letter away.
        n = len(terms)
        last = " ".join(f"WHEN p.last_norm = {p(t)} THEN {i}" for i, t in enumerate(terms))
        first = " ".join(f"WHEN p.first_norm = {p(t)} THEN {n + i}" for i, t in enumerate(terms))
        tier = f"(CASE {last} {first} ELSE {2 * n} END)"
    elif terms:
        patterns = [p(t + "%") for t in terms]
        last = " OR ".join(f"p.last_norm LIKE {x}" for x in patterns)
        first = " OR ".join(f"p.first_norm LIKE {x}" for x in patterns)
        tier = (
            f"(CASE WHEN p.last_norm = ANY({p(terms)}::text[]) THEN 0"
            f" WHEN {last} THEN 1 WHEN {first} THEN 2 ELSE 3 END)"
        )
    rank = f"({tier} * 2 + (CASE WHEN p.user_id IS NULL THEN 1 ELSE 0 END))::float8"
    if q.near is not None:
        rank = f"({rank} + {dist} / {p(q.radius_km + 1)})"
    where = [d.flag("p.visible")]
    if accounts is not None:
        where.append(f"p.user_id IS {'NOT ' if accounts else ''}NULL")
    if groups:
        where.append(d.match(groups, prefix, p))
    if q.specialty:
        # Among account holders (few) their own index must drive, not the specialty's
        # through a whole city.
        column = d.unindexed("p.specialty_norm", order=False) if accounts else "p.specialty_norm"
        where.append(f"{column} = {p(q.specialty)}")
    for org in (q.organisation, q.cpts):
        if org:
            where.append(
                f"p.rid IN (SELECT profile_rid FROM directory_profile_orgs WHERE org_id = {p(org)})"
            )
    if q.near is not None:
        lat, lon = q.near
        dlat = within / KM_PER_DEGREE
        dlon = within / max(lon_scale(lat), 0.01)
        if accounts or q.specialty:
            # Account holders are few: their index drives. A specialty's own index
            # (specialty, lat, lon) holds far fewer entries in the box than the GiST.
            where.append(
                f"p.lat BETWEEN {p(lat - dlat)} AND {p(lat + dlat)}"
                f" AND p.lon BETWEEN {p(lon - dlon)} AND {p(lon + dlon)}"
            )
        else:
            where.append(d.in_box(p, lat - dlat, lat + dlat, lon - dlon, lon + dlon))
    outer = []
    if q.near is not None:
        outer.append(f"dist <= {p(within)}")
    if q.after is not None:
        rank0, name0, id0 = q.after
        outer.append(
            f"(rank, sort_name, id) > ({p(rank0)}::float8, {p(name0)}::text, {p(id0)}::text)"
        )
    sql = (
        f"SELECT * FROM (SELECT {_HIT_COLS}, {dist} AS dist, {rank} AS rank"
        f" FROM directory_profiles p WHERE {' AND '.join(where)}) t"
        f"{' WHERE ' + ' AND '.join(outer) if outer else ''}"
        f" ORDER BY rank, sort_name, id LIMIT {p(q.limit)}"
    )
    return list(await c.fetch(sql, *p.values))


async def _rarest_first(c: Tx, groups: Groups) -> list[list[str]]:
    """Each group's words, the rarest last names first (counted up to a bound, through
    the ``sort_name`` index: a few milliseconds even for the commonest name)."""

    async def count(term: str) -> int:
        return int(
            await c.fetchval(
                "SELECT COUNT(*) FROM (SELECT 1 FROM directory_profiles"
                " WHERE sort_name >= $1 AND sort_name < $2 LIMIT 1000) t",
                term + " ",
                term + "!",
            )
        )

    counts = {t: await count(t) for t in flat_terms(groups)}
    return [sorted(g, key=lambda t: (counts[t], t)) for g in groups]


class SqlDirectory(SqlBase):
    # -- loading

    async def load_directory(
        self,
        organisations: Sequence[Organisation],
        profiles: Sequence[NewProfile],
        motives: Sequence[Motive] = (),
        slots: Sequence[tuple[str, str, NewSlot]] = (),
    ) -> None:
        async def tx(c: Tx) -> None:
            if organisations:
                await c.copy(
                    "directory_organisations",
                    ("id", "kind", "name", "postcode", "city"),
                    [(o.id, o.kind, o.name, o.postcode, o.city) for o in organisations],
                )
            await _insert_profiles(c, self.db.search, profiles)
            if motives:
                await c.copy(
                    "agenda_motives",
                    ("id", "profile_id", "label", "duration_min"),
                    [(m.id, m.profile_id, m.label, m.duration_min) for m in motives],
                )
            await _insert_slots(c, slots)

        await self.db.run("load_directory", tx, "transaction")

    async def finish_directory_load(self) -> None:
        await self.db.run("finish_directory_load", self.db.search.finish_load, "write")

    async def directory_size(self) -> int:
        n = await self.db.run(
            "directory_size",
            lambda c: c.fetchval("SELECT COUNT(*) FROM directory_profiles"),
            "read",
        )
        return int(n)

    # -- profiles

    async def create_profile(self, profile: NewProfile) -> None:
        await self.db.run(
            "create_profile",
            lambda c: _insert_profiles(c, self.db.search, [profile]),
            "transaction",
        )

    async def link_profile(self, profile_id: str, user_id: str) -> None:
        status = await self.db.run(
            "link_profile",
            lambda c: c.execute(
                "UPDATE directory_profiles SET user_id = $1 WHERE id = $2 AND user_id IS NULL",
                user_id,
                profile_id,
            ),
            "write",
        )
        if status == 0:
            raise NoSuchProfile("no such unclaimed profile")

    async def _profile(self, c: Tx, column: str, value: str) -> Profile | None:
        r = await c.fetchrow(
            f"SELECT {_PROFILE_COLS} FROM directory_profiles WHERE {column} = $1", value
        )
        if r is None:
            return None
        orgs = (await _organisations(c, [r[0]])).get(r[0], [])
        places = [
            Place(*tuple(x))
            for x in await c.fetch(
                f"SELECT {_PLACE_COLS} FROM directory_places WHERE profile_id = $1"
                f" ORDER BY {self.db.search.insertion_order}",
                r[1],
            )
        ]
        verified = bool(await _verified(c, [r[2]])) if r[2] else False
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
        return await self.db.run(
            "profile", lambda c: self._profile(c, "id", profile_id), "snapshot"
        )

    async def profile_of_user(self, user_id: str) -> Profile | None:
        return await self.db.run(
            "profile_of_user", lambda c: self._profile(c, "user_id", user_id), "snapshot"
        )

    async def set_profile_visible(self, profile_id: str, visible: bool) -> None:
        status = await self.db.run(
            "set_profile_visible",
            lambda c: c.execute(
                "UPDATE directory_profiles SET visible = $1 WHERE id = $2", visible, profile_id
            ),
            "write",
        )
        if status == 0:
            raise NoSuchProfile("no such profile")

    async def set_required_fields(self, profile_id: str, fields: Sequence[str]) -> None:
        status = await self.db.run(
            "set_required_fields",
            lambda c: c.execute(
                "UPDATE directory_profiles SET required_fields = $1 WHERE id = $2",
                ",".join(fields),
                profile_id,
            ),
            "write",
        )
        if status == 0:
            raise NoSuchProfile("no such profile")

    async def set_instructions(self, profile_id: str, text: str) -> None:
        status = await self.db.run(
            "set_instructions",
            lambda c: c.execute(
                "UPDATE directory_profiles SET instructions = $1 WHERE id = $2", text, profile_id
            ),
            "write",
        )
        if status == 0:
            raise NoSuchProfile("no such profile")

    async def search_directory(self, query: DirectoryQuery) -> DirectoryPage:
        d = self.db.search

        async def rows_for(c: Tx, groups: Groups, prefix: bool) -> list[Any]:
            if query.near is not None and not groups:
                return await _near_search(c, d, query)
            if query.near is None and prefix and len(groups) == 1:
                return await _word_search(c, d, query, groups[0][0])
            if query.near is None and not groups and (query.cpts or query.organisation):
                return await _org_search(c, d, query)
            return await _search(c, d, query, groups, prefix)

        async def read(c: Tx) -> DirectoryPage:
            groups: Groups = [[w] for w in query.words]
            corrected = None
            rows = await rows_for(c, groups, True)
            # Nothing found: a typo, if the words match nothing at all (not merely
            # nothing under these filters or after this cursor).
            if not rows and groups and not await d.any_match(c, groups):
                fixed = await d.corrections(c, query.words)
                if fixed != groups:
                    fixed = await _rarest_first(c, fixed)
                    corrected = tuple(flat_terms(fixed))
                    rows = await rows_for(c, fixed, False)
            hits = await _hits(c, rows)
            more = len(hits) == query.limit
            return DirectoryPage(hits, hits[-1].cursor if more else None, corrected)

        return await self.db.run("search_directory", read, "snapshot")

    # -- favourites

    async def add_favourite(self, user_id: str, profile_id: str, now: int) -> None:
        async def tx(c: Tx) -> None:
            if (
                await c.fetchval("SELECT 1 FROM directory_profiles WHERE id = $1", profile_id)
                is None
            ):
                raise NoSuchProfile("no such profile")
            await c.execute(
                "INSERT INTO directory_favourites (user_id, profile_id, created_at)"
                " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                user_id,
                profile_id,
                now,
            )

        await self.db.run("add_favourite", tx, "transaction")

    async def remove_favourite(self, user_id: str, profile_id: str) -> bool:
        status = await self.db.run(
            "remove_favourite",
            lambda c: c.execute(
                "DELETE FROM directory_favourites WHERE user_id = $1 AND profile_id = $2",
                user_id,
                profile_id,
            ),
            "write",
        )
        return status > 0

    async def favourites(self, user_id: str) -> list[Hit]:
        async def read(c: Tx) -> list[Hit]:
            rows = await c.fetch(
                f"SELECT {_HIT_COLS}, NULL::float8, 0::float8 FROM directory_favourites f"
                " JOIN directory_profiles p ON p.id = f.profile_id"
                f" WHERE f.user_id = $1 AND {self.db.search.flag('p.visible')}"
                " ORDER BY f.created_at DESC, p.id",
                user_id,
            )
            return await _hits(c, rows)

        return await self.db.run("favourites", read, "snapshot")

    # -- agenda

    async def add_place(self, place: Place) -> None:
        async def tx(c: Tx) -> None:
            r = await c.fetchrow(
                "SELECT rid, lat FROM directory_profiles WHERE id = $1 FOR UPDATE", place.profile_id
            )
            if r is None:
                raise NoSuchProfile("no such profile")
            await c.execute(
                f"INSERT INTO directory_places ({_PLACE_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
                place.id,
                place.profile_id,
                place.name,
                place.address,
                place.postcode,
                place.city,
                place.lat,
                place.lon,
            )
            if r[1] is None:  # the first place becomes the main one
                await self.db.search.index_main_place(c, r[0], place.lat, place.lon)
                await c.execute(
                    "UPDATE directory_profiles SET postcode = $1, city = $2, lat = $3, lon = $4"
                    " WHERE rid = $5",
                    place.postcode,
                    place.city,
                    place.lat,
                    place.lon,
                    r[0],
                )

        await self.db.run("add_place", tx, "transaction")

    async def add_motive(self, motive: Motive) -> None:
        async def tx(c: Tx) -> None:
            if (
                await c.fetchval(
                    "SELECT 1 FROM directory_profiles WHERE id = $1", motive.profile_id
                )
                is None
            ):
                raise NoSuchProfile("no such profile")
            await c.execute(
                "INSERT INTO agenda_motives (id, profile_id, label, duration_min)"
                " VALUES ($1, $2, $3, $4)",
                motive.id,
                motive.profile_id,
                motive.label,
                motive.duration_min,
            )

        await self.db.run("add_motive", tx, "transaction")

    async def add_slots(self, profile_id: str, slots: Sequence[tuple[str, NewSlot]]) -> None:
        await self.db.run(
            "add_slots",
            lambda c: _insert_slots(c, [(i, profile_id, s) for i, s in slots]),
            "transaction",
        )

    async def motives(self, profile_id: str) -> list[Motive]:
        rows = await self.db.run(
            "motives",
            lambda c: c.fetch(
                "SELECT id, profile_id, label, duration_min FROM agenda_motives"
                " WHERE profile_id = $1 ORDER BY label, id",
                profile_id,
            ),
            "read",
        )
        return [Motive(*tuple(r)) for r in rows]

    async def slots(
        self, profile_id: str, starts_from: int, starts_before: int, free_only: bool
    ) -> list[Slot]:
        free = " AND s.appointment_id IS NULL" if free_only else ""
        rows = await self.db.run(
            "slots",
            lambda c: c.fetch(
                f"SELECT {_SLOT_COLS} FROM agenda_slots s WHERE s.profile_id = $1"
                f" AND s.starts_at >= $2 AND s.starts_at < $3{free} ORDER BY s.starts_at, s.id",
                profile_id,
                starts_from,
                starts_before,
            ),
            "read",
        )
        return [_slot(r) for r in rows]

    async def slot(self, slot_id: str) -> Slot | None:
        r = await self.db.run(
            "slot",
            lambda c: c.fetchrow(
                f"SELECT {_SLOT_COLS} FROM agenda_slots s WHERE s.id = $1", slot_id
            ),
            "read",
        )
        return None if r is None else _slot(r)

    async def sas_slots(self, query: SasQuery) -> list[SasSlot]:
        d = self.db.search
        eligible = f"({d.flag('s.snp')} OR ({d.flag('s.open_new')} AND {d.flag('s.online')}))"

        async def read(c: Tx) -> list[SasSlot]:
            p = _Params()
            lat, lon = query.near
            column, cells = sas_cells(lat, lon, query.radius_km)
            dist = (
                f"sqrt(power((s.lat - {p(lat)}) * {p(KM_PER_DEGREE)}, 2)"
                f" + power((s.lon - {p(lon)}) * {p(lon_scale(lat))}, 2))"
            )
            specialty = f" AND p.specialty_norm = {p(query.specialty)}" if query.specialty else ""
            conditions = (
                f"s.appointment_id IS NULL AND {eligible}"
                f" AND s.starts_at >= {p(query.starts_from)}"
                f" AND s.starts_at < {p(query.starts_before)} AND {d.flag('p.visible')}"
                f" AND {dist} <= {p(query.radius_km)}{specialty}"
            )
            limit = p(query.limit)
            # Each cell's soonest page, walked in its index's order; then the soonest
            # page of those (see storage.directory_index.sas_cells). No (lat, lon) box
            # besides the distance: PostgreSQL would estimate a cell's matches at one
            # and read and sort the whole cell rather than walk its first rows
            # (Marseille: 13.7 ms against 0.7).
            per_cell = " UNION ALL ".join(
                f"SELECT * FROM (SELECT {_SLOT_COLS}, {_HIT_COLS}, {dist} AS dist, 0::float8,"
                " pl.id AS pid, pl.profile_id AS ppid, pl.name, pl.address,"
                " pl.postcode AS ppc, pl.city AS pcity, pl.lat, pl.lon"
                " FROM agenda_slots s JOIN directory_places pl ON pl.id = s.place_id"
                " JOIN directory_profiles p ON p.id = s.profile_id"
                f" WHERE s.{column} = {p(cell)} AND {conditions}"
                f" ORDER BY s.starts_at, s.id LIMIT {limit}) c{i}"
                for i, cell in enumerate(cells)
            )
            sql = f"SELECT * FROM ({per_cell}) t ORDER BY 4, 1 LIMIT {limit}"
            rows = [tuple(r) for r in await c.fetch(sql, *p.values)]
            hits = await _hits(c, [r[10:22] for r in rows])
            return [
                SasSlot(_slot(r[:10]), hit, Place(*r[22:30]))
                for r, hit in zip(rows, hits, strict=True)
            ]

        return await self.db.run("sas_slots", read, "snapshot")

    # -- booking

    async def book(
        self, new: NewAppointment, notifications: Sequence[NewNotification], now: int
    ) -> Appointment:
        async def tx(c: Tx) -> Appointment:
            r = await c.fetchrow(
                f"SELECT {_SLOT_COLS}, p.user_id FROM agenda_slots s"
                " JOIN directory_profiles p ON p.id = s.profile_id WHERE s.id = $1",
                new.slot_id,
            )
            if r is None:
                raise NoSuchSlot("no such slot")
            slot = _slot(tuple(r)[:10])
            if new.motive_id not in slot.motive_ids:
                raise MotiveNotOffered("this motive is not offered on this slot")
            # Under READ COMMITTED a concurrent booking of the slot waits for this row
            # lock, then re-checks "appointment_id IS NULL" and updates nothing.
            status = await c.execute(
                "UPDATE agenda_slots SET appointment_id = $1"
                " WHERE id = $2 AND appointment_id IS NULL",
                new.id,
                new.slot_id,
            )
            if status == 0:
                raise SlotTaken("this slot is already booked")
            attachment_ids = list(dict.fromkeys(new.attachments))
            if attachment_ids:
                status = await c.execute(
                    "UPDATE attachments SET referenced_at = COALESCE(referenced_at, $1)"
                    " WHERE id = ANY($2::text[]) AND uploader = $3"
                    " AND state = 'ready' AND kind = 'document' AND room_id IS NULL",
                    now,
                    attachment_ids,
                    new.booked_by,
                )
                if status != len(attachment_ids):
                    raise UnusableAttachment("an attachment is not a ready document of yours")
            await c.execute(
                "INSERT INTO appointments (id, slot_id, profile_id, practitioner_user_id,"
                " place_id, motive_id, starts_at, ends_at, booked_by, via, patient, message,"
                " attachments, created_at, consultation_type)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
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
            )
            await insert_notifications(c, notifications, now)
            found = await self._appointment(c, new.id)
            assert found is not None
            return found

        return await self.db.run("book", tx, "transaction")

    @staticmethod
    async def _appointment(c: Tx, appointment_id: str) -> Appointment | None:
        r = await c.fetchrow(
            f"SELECT {_APPOINTMENT_COLS} FROM appointments a"
            " LEFT JOIN agenda_motives m ON m.id = a.motive_id WHERE a.id = $1",
            appointment_id,
        )
        return None if r is None else _appointment(tuple(r))

    async def appointment(self, appointment_id: str) -> Appointment | None:
        return await self.db.run(
            "appointment", lambda c: self._appointment(c, appointment_id), "read"
        )

    async def appointments_of_practitioner(
        self, profile_id: str, starts_from: int, starts_before: int
    ) -> list[Appointment]:
        rows = await self.db.run(
            "appointments_of_practitioner",
            lambda c: c.fetch(
                f"SELECT {_APPOINTMENT_COLS} FROM appointments a"
                " LEFT JOIN agenda_motives m ON m.id = a.motive_id"
                " WHERE a.profile_id = $1 AND a.starts_at >= $2 AND a.starts_at < $3"
                " ORDER BY a.starts_at, a.id",
                profile_id,
                starts_from,
                starts_before,
            ),
            "read",
        )
        return [_appointment(tuple(r)) for r in rows]

    async def appointments_booked_by(self, user_id: str, limit: int) -> list[Appointment]:
        rows = await self.db.run(
            "appointments_booked_by",
            lambda c: c.fetch(
                f"SELECT {_APPOINTMENT_COLS} FROM appointments a"
                " LEFT JOIN agenda_motives m ON m.id = a.motive_id"
                " WHERE a.booked_by = $1 ORDER BY a.created_at DESC, a.id LIMIT $2",
                user_id,
                limit,
            ),
            "read",
        )
        return [_appointment(tuple(r)) for r in rows]

    async def record_patient_access(self, appointment_id: str, user_id: str, now: int) -> None:
        await self.db.run(
            "record_patient_access",
            lambda c: c.execute(
                "INSERT INTO patient_record_reads (appointment_id, user_id, at)"
                " VALUES ($1, $2, $3)",
                appointment_id,
                user_id,
                now,
            ),
            "write",
        )

    async def patient_accesses(self, appointment_id: str) -> list[tuple[str, int]]:
        rows = await self.db.run(
            "patient_accesses",
            lambda c: c.fetch(
                "SELECT user_id, at FROM patient_record_reads WHERE appointment_id = $1"
                f" ORDER BY at, {self.db.search.insertion_order}",
                appointment_id,
            ),
            "read",
        )
        return [(r[0], int(r[1])) for r in rows]
