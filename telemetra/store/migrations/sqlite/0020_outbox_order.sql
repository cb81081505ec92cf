-- The notifications of one alert to one channel go out in order: a row is claimed only when no earlier row
-- of the same alert and channel is still pending (a "raised" in back-off holds its "cleared" back). This
-- index answers that question per claimed row.
CREATE INDEX outbox_alert_channel_pending ON outbox (alert_id, channel_id, id) WHERE status = 'pending';
