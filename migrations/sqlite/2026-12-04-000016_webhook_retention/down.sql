DROP INDEX webhook_deliveries_of_event;
DROP INDEX webhook_events_created;
