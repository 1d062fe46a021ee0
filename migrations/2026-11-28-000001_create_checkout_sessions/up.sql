-- The Checkout Sessions the service opened, so that a tenant never has two it could both
-- complete: each completed session starts a subscription, and Stripe would bill both.
-- Opening a session expires the tenant's older open ones at Stripe first.
CREATE TABLE checkout_sessions (
    stripe_session_id text PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    status text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'complete', 'expired')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The open sessions of a tenant, oldest first.
CREATE INDEX checkout_sessions_open_idx
    ON checkout_sessions (tenant_id, created_at, stripe_session_id)
    WHERE status = 'open';
