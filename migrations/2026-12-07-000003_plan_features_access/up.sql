-- Access (SPEC §9): what a plan entitles its subscribers to, and when a subscription
-- became past_due (its first failed payment, which the access grace counts from).
ALTER TABLE plans
    ADD COLUMN features text[] NOT NULL DEFAULT '{}'
        CONSTRAINT plans_features_check CHECK (
            cardinality(features) <= 50 AND array_position(features, NULL) IS NULL);

ALTER TABLE subscriptions
    -- The `created` time of the Stripe event that moved it into past_due; NULL in every
    -- other status.
    ADD COLUMN past_due_since timestamptz;

-- Subscriptions already past_due: the newest event applied to them is the best known
-- start (at the latest it is when Stripe last changed them).
UPDATE subscriptions SET past_due_since = COALESCE(last_event_at, updated_at)
WHERE status = 'past_due';
