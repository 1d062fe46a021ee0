-- How each ledger event arrived: Stripe's webhook, the catch-up from the Events API, or
-- an operator's replay. Rows from before the catch-up arrived by webhook.
ALTER TABLE webhook_events
    ADD COLUMN source text NOT NULL DEFAULT 'webhook'
        CONSTRAINT webhook_events_source_check CHECK (source IN ('webhook', 'catchup', 'replay'));

-- The catch-up's one row: its watermark (every event created before it is in the ledger)
-- and the lease that lets one replica at a time run a pass (lost when lease_until passes).
CREATE TABLE catchup_state (
    id           smallint    PRIMARY KEY DEFAULT 1 CONSTRAINT catchup_state_one_row CHECK (id = 1),
    watermark    timestamptz,
    lease_holder text,
    lease_until  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
