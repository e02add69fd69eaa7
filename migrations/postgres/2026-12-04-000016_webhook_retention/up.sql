-- Housekeeping deletes events older than `webhooks.retention_days` whose deliveries are all
-- finished: find them by age, and their deliveries by event.
CREATE INDEX webhook_events_created ON webhook_events (created_at);
CREATE INDEX webhook_deliveries_of_event ON webhook_deliveries (event_id);
