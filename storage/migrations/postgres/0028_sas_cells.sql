-- The SAS slot search walks, per grid cell of its area, the cell's free eligible slots
-- in time order (storage/directory_index.py, sas_cells): 0.25° and 2° cells, computed
-- by the store when a slot is added. The (lat, lon) box index and the country's
-- soonest-slots index go: the first made a dense city's search read and sort all of
-- the city's slots, the second a sparse area's read most of the country's.
ALTER TABLE agenda_slots ADD COLUMN cell_fine INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agenda_slots ADD COLUMN cell_coarse INTEGER NOT NULL DEFAULT 0;
UPDATE agenda_slots SET
    cell_fine = (floor(lat / 0.25)::integer + 10000) * 100000
        + floor(lon / 0.25)::integer + 10000,
    cell_coarse = (floor(lat / 2.0)::integer + 10000) * 100000
        + floor(lon / 2.0)::integer + 10000;
DROP INDEX agenda_slots_sas;
DROP INDEX agenda_slots_sas_time;
CREATE INDEX agenda_slots_sas_fine ON agenda_slots (cell_fine, starts_at, id)
    WHERE appointment_id IS NULL AND (snp OR (open_new AND online));
CREATE INDEX agenda_slots_sas_coarse ON agenda_slots (cell_coarse, starts_at, id)
    WHERE appointment_id IS NULL AND (snp OR (open_new AND online));
