-- Directory of practitioners, agendas, referral booking (issue 8). Text columns *_norm
-- hold storage.search_text.normalise()d text (accents folded in Python, so index and
-- query fold alike); pg_trgm finds name words within a typo.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE directory_organisations (
    id       TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    postcode TEXT NOT NULL,
    city     TEXT NOT NULL
);

CREATE TABLE directory_profiles (
    rid             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    user_id         TEXT UNIQUE REFERENCES users (id),
    title           TEXT NOT NULL,
    first_name      TEXT NOT NULL,
    last_name       TEXT NOT NULL,
    specialty       TEXT NOT NULL,
    specialty_norm  TEXT NOT NULL,
    rpps            TEXT,
    visible         BOOLEAN NOT NULL DEFAULT TRUE,
    first_norm      TEXT NOT NULL,
    last_norm       TEXT NOT NULL,
    sort_name       TEXT NOT NULL COLLATE "C",
    postcode        TEXT NOT NULL DEFAULT '',
    city            TEXT NOT NULL DEFAULT '',
    lat             DOUBLE PRECISION,
    lon             DOUBLE PRECISION,
    required_fields TEXT NOT NULL DEFAULT '',
    search_text     TEXT NOT NULL,
    search          TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED,
    created_at      BIGINT NOT NULL
);
CREATE INDEX directory_profiles_specialty ON directory_profiles (specialty_norm, sort_name);
CREATE INDEX directory_profiles_specialty_geo ON directory_profiles (specialty_norm, lat, lon);
CREATE INDEX directory_profiles_first ON directory_profiles (first_norm);
CREATE INDEX directory_profiles_search ON directory_profiles USING gin (search);
CREATE INDEX directory_profiles_geo ON directory_profiles USING gist (point(lon, lat));
-- Names in order: one-word searches walk last-name ranges (storage.directory_index).
CREATE INDEX directory_profiles_sort ON directory_profiles (sort_name, id);
CREATE INDEX directory_profiles_accounts_sort ON directory_profiles (sort_name, id)
    WHERE user_id IS NOT NULL;
-- Practitioners with an account, by place: "near" searches rank them first.
CREATE INDEX directory_profiles_accounts ON directory_profiles (lat, lon) WHERE user_id IS NOT NULL;

-- sort_name and profile_id copied from the profile: an organisation's members in
-- ranking order come straight from the (org_id, sort_name, profile_id) index.
CREATE TABLE directory_profile_orgs (
    org_id      TEXT NOT NULL,
    profile_rid BIGINT NOT NULL,
    sort_name   TEXT NOT NULL COLLATE "C",
    profile_id  TEXT NOT NULL,
    PRIMARY KEY (org_id, profile_rid)
);
CREATE INDEX directory_profile_orgs_profile ON directory_profile_orgs (profile_rid);
CREATE INDEX directory_profile_orgs_order ON directory_profile_orgs (org_id, sort_name, profile_id);

CREATE TABLE directory_terms (
    term TEXT PRIMARY KEY
);
CREATE INDEX directory_terms_trgm ON directory_terms USING gin (term gin_trgm_ops);

CREATE TABLE directory_localities (
    postcode   TEXT NOT NULL,
    city       TEXT NOT NULL,
    city_norm  TEXT NOT NULL,
    lat        DOUBLE PRECISION NOT NULL,
    lon        DOUBLE PRECISION NOT NULL,
    population INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (postcode, city_norm)
);
CREATE INDEX directory_localities_city ON directory_localities (city_norm, population);

CREATE TABLE directory_places (
    id         TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    address    TEXT NOT NULL,
    postcode   TEXT NOT NULL,
    city       TEXT NOT NULL,
    lat        DOUBLE PRECISION NOT NULL,
    lon        DOUBLE PRECISION NOT NULL
);
CREATE INDEX directory_places_profile ON directory_places (profile_id);
CREATE INDEX directory_places_geo ON directory_places (lat, lon);

CREATE TABLE directory_favourites (
    user_id    TEXT NOT NULL REFERENCES users (id),
    profile_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, profile_id)
);

CREATE TABLE agenda_motives (
    id           TEXT PRIMARY KEY,
    profile_id   TEXT NOT NULL,
    label        TEXT NOT NULL,
    duration_min INTEGER NOT NULL
);
CREATE INDEX agenda_motives_profile ON agenda_motives (profile_id);

CREATE TABLE agenda_slots (
    id             TEXT PRIMARY KEY,
    profile_id     TEXT NOT NULL,
    place_id       TEXT NOT NULL,
    starts_at      BIGINT NOT NULL,
    ends_at        BIGINT NOT NULL,
    motive_ids     TEXT NOT NULL,
    open_new       BOOLEAN NOT NULL,
    online         BOOLEAN NOT NULL,
    snp            BOOLEAN NOT NULL,
    lat            DOUBLE PRECISION NOT NULL,
    lon            DOUBLE PRECISION NOT NULL,
    appointment_id TEXT
);
CREATE INDEX agenda_slots_profile ON agenda_slots (profile_id, starts_at);
CREATE INDEX agenda_slots_place ON agenda_slots (place_id, starts_at);
-- Free slots open to the SAS, by place (lat, lon: the slot's place's, copied).
CREATE INDEX agenda_slots_sas ON agenda_slots (lat, lon, starts_at)
    WHERE appointment_id IS NULL AND (snp OR (open_new AND online));
-- ... and in time order (the SAS search looks at the soonest ones first).
CREATE INDEX agenda_slots_sas_time ON agenda_slots (starts_at, id)
    WHERE appointment_id IS NULL AND (snp OR (open_new AND online));

CREATE TABLE appointments (
    id                   TEXT PRIMARY KEY,
    slot_id              TEXT NOT NULL UNIQUE,
    profile_id           TEXT NOT NULL,
    practitioner_user_id TEXT,
    place_id             TEXT NOT NULL,
    motive_id            TEXT NOT NULL,
    starts_at            BIGINT NOT NULL,
    ends_at              BIGINT NOT NULL,
    booked_by            TEXT NOT NULL REFERENCES users (id),
    via                  TEXT NOT NULL,
    patient              TEXT NOT NULL,
    message              TEXT NOT NULL,
    attachments          TEXT NOT NULL,
    created_at           BIGINT NOT NULL
);
CREATE INDEX appointments_practitioner ON appointments (profile_id, starts_at);
CREATE INDEX appointments_booked_by ON appointments (booked_by, created_at);

CREATE TABLE patient_record_reads (
    appointment_id TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    at             BIGINT NOT NULL
);
CREATE INDEX patient_record_reads_appointment ON patient_record_reads (appointment_id, at);
