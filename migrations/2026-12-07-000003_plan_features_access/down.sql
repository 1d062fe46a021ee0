ALTER TABLE subscriptions DROP COLUMN past_due_since;
ALTER TABLE plans DROP COLUMN features;
