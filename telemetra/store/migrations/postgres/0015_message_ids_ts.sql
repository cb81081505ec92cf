-- A msg_id is remembered as long as the message it names is kept: retention prunes both by the message's
-- time (before, retention deleted the messages and left their msg_ids behind for ever).
ALTER TABLE message_ids ADD COLUMN ts timestamptz;
UPDATE message_ids i SET ts = m.ts FROM messages m WHERE m.id = i.message_id;
-- Messages not kept raw (or already gone): counted from now.
UPDATE message_ids SET ts = now() WHERE ts IS NULL;
ALTER TABLE message_ids ALTER COLUMN ts SET NOT NULL;
