-- Idempotence: the msg_id a device gave a message, and the message it became.
CREATE TABLE message_ids (
    device_pk   integer NOT NULL,
    msg_id      text NOT NULL,
    message_id  bigint NOT NULL,
    PRIMARY KEY (device_pk, msg_id)
);
