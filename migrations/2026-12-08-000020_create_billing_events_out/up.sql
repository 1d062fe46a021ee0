-- Billing events out (issue 16, SPEC §9): each tenant's events numbered from 1 without
-- gaps, and one delivery per subscriber, delivered in order per (subscriber, tenant).

-- The per-tenant counter: locked (by its upsert) in the transaction that appends an
-- event, so that sequences have no gaps and commit in order.
CREATE TABLE billing_event_counters (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
    last_sequence bigint NOT NULL CHECK (last_sequence > 0)
);

CREATE TABLE billing_events (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    sequence bigint NOT NULL CHECK (sequence > 0),
    kind text NOT NULL,
    created_at timestamptz NOT NULL,
    -- The body every delivery sends, rendered once (same bytes on every attempt).
    payload text NOT NULL,
    UNIQUE (tenant_id, sequence)
);

CREATE TABLE billing_event_deliveries (
    id uuid PRIMARY KEY,
    event_id uuid NOT NULL REFERENCES billing_events (id),
    -- The subscriber's URL without credentials or query.
    subscriber text NOT NULL,
    tenant_id uuid NOT NULL,
    sequence bigint NOT NULL,
    kind text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL,
    delivered_at timestamptz,
    UNIQUE (subscriber, tenant_id, sequence)
);

-- The chains' heads: the lowest sequence not yet delivered per (subscriber, tenant).
CREATE INDEX billing_event_deliveries_open
    ON billing_event_deliveries (subscriber, tenant_id, sequence)
    WHERE status <> 'delivered';
-- The admin's listing, newest first.
CREATE INDEX billing_event_deliveries_listing
    ON billing_event_deliveries (status, created_at DESC, id DESC);
CREATE INDEX billing_event_deliveries_newest
    ON billing_event_deliveries (created_at DESC, id DESC);
