-- The last message id given out. Ids were taken as max(id) of `messages`, which stays empty when raw
-- messages are not kept (TELEMETRA_KEEP_RAW_MESSAGES=false): every batch then numbered its messages from 1
-- again, and the ids answered to HTTP senders and kept in `message_ids` repeated. PostgreSQL has a sequence.
CREATE TABLE message_id_counter (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    last_id INTEGER NOT NULL
);
INSERT INTO message_id_counter (one, last_id) VALUES (1, max(
    (SELECT coalesce(max(id), 0) FROM messages),
    (SELECT coalesce(max(message_id), 0) FROM message_ids)));
