-- Every batch adds its counts to today's row. With one row a day, two batches committing at once queued on
-- that row's lock: the second batch's whole statement waited for the first one's COMMIT, whatever devices
-- they touched. Each writer connection now adds to a slot of its own (its backend pid modulo 16); readers
-- sum the slots of a day.
ALTER TABLE daily_counts ADD COLUMN slot smallint NOT NULL DEFAULT 0;
ALTER TABLE daily_counts DROP CONSTRAINT daily_counts_pkey;
ALTER TABLE daily_counts ADD PRIMARY KEY (day, slot);
