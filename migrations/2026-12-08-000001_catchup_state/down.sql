DROP TABLE catchup_state;
ALTER TABLE webhook_events DROP COLUMN source;
