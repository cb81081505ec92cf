-- Tables whose rows every batch rewrites (the newest value per series, the current hour's statistics, a
-- device's last-seen time) leave room in each page, so that PostgreSQL can put the new row version on the
-- same page without touching the indexes (a HOT update). None of the updated columns is indexed.
-- Only pages written from now on keep the room; VACUUM FULL (which locks the table) repacks older ones.
ALTER TABLE latest SET (fillfactor = 70);
ALTER TABLE rollup_hourly SET (fillfactor = 70);
ALTER TABLE devices SET (fillfactor = 70);
