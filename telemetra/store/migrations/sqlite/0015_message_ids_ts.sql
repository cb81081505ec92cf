-- A msg_id is remembered as long as the message it names is kept: retention prunes both by the message's
-- time (before, retention deleted the messages and left their msg_ids behind for ever). Microseconds since
-- the epoch, as every time in this schema; messages not kept raw (or already gone) count from now.
ALTER TABLE message_ids ADD COLUMN ts INTEGER NOT NULL DEFAULT 0;
UPDATE message_ids SET ts = coalesce(
    (SELECT m.ts FROM messages m WHERE m.id = message_ids.message_id),
    CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
