-- Idempotence: the msg_id a device gave a message, and the message it became.
CREATE TABLE message_ids (
    device_pk   INTEGER NOT NULL,
    msg_id      TEXT NOT NULL,
    message_id  INTEGER NOT NULL,
    PRIMARY KEY (device_pk, msg_id)
) WITHOUT ROWID;
