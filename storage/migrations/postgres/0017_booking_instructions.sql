-- The SAS booking (issue 17): the consultation type chosen ("cabinet" or "video") and
-- the practitioner's instructions shown before booking ("À lire avant de prendre RDV").
ALTER TABLE appointments ADD COLUMN consultation_type TEXT NOT NULL DEFAULT 'cabinet';
ALTER TABLE directory_profiles ADD COLUMN instructions TEXT NOT NULL DEFAULT '';
