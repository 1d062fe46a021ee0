-- The webhook event ledger: every Stripe event received, with what it did.
-- 'duplicate' is never stored: a redelivery is answered from the existing row.
CREATE TABLE webhook_events (
    event_id     text        PRIMARY KEY,
    type         text        NOT NULL,
    -- Stripe's `created`.
    created      timestamptz NOT NULL,
    api_version  text,
    livemode     boolean     NOT NULL DEFAULT false,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    outcome      text        NOT NULL
        CONSTRAINT webhook_events_outcome_check CHECK (outcome IN (
            'processed', 'stale', 'ignored', 'unmatched', 'failed')),
    detail       text,
    -- Raw JSON exactly as received: text, not jsonb, so the hot path pays no parse.
    payload      text        NOT NULL
);

CREATE INDEX webhook_events_received_idx ON webhook_events (received_at DESC, event_id DESC);
CREATE INDEX webhook_events_outcome_received_idx ON webhook_events (outcome, received_at DESC, event_id DESC);
CREATE INDEX webhook_events_type_received_idx ON webhook_events (type, received_at DESC, event_id DESC);
