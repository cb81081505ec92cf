-- A small telemetry batch is written by one statement in a transaction of its own (postgres/write.py,
-- WRITE_ALONE): one round trip instead of three (BEGIN with the seal lock, the statement, COMMIT).

-- The seal mark, read under the seal lock held shared until the transaction ends. A volatile function's
-- statements each take a fresh snapshot: the mark is read after the lock is granted, so a sealer that
-- moved it meanwhile has committed and its move is seen (the calling statement's own snapshot, taken
-- before the lock, could still show the old mark).
CREATE FUNCTION batch_seal_mark() RETURNS timestamptz LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(7302, 0);
    RETURN (SELECT sealed_until FROM rollup_seal);
END
$$;

-- Refuses (SQLSTATE TL001, rolling the statement back) a batch alone whose points replace stored ones:
-- those are rewritten and their sealed hours rebuilt by further statements, so that batch is written
-- again in a transaction of several statements.
CREATE FUNCTION batch_refuse_replacements(replaced bigint) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF replaced > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'TL001', MESSAGE = 'the batch replaces stored points';
    END IF;
    RETURN replaced;
END
$$;
