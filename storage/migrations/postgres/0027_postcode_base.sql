-- Localities now come from the official postcode base shipped with the server
-- (server/directory/postcodes.tsv), the same for every storage adapter.
DROP TABLE directory_localities;
