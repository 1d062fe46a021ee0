-- Subscriptions, mirrored from Stripe (Stripe is the source of truth for their status).
CREATE TABLE subscriptions (
    id                     uuid        PRIMARY KEY,
    tenant_id              uuid        NOT NULL
        CONSTRAINT subscriptions_tenant_id_fkey REFERENCES tenants (id),
    plan_id                uuid        NOT NULL
        CONSTRAINT subscriptions_plan_id_fkey REFERENCES plans (id),
    status                 text        NOT NULL
        CONSTRAINT subscriptions_status_check CHECK (status IN (
            'incomplete', 'incomplete_expired', 'trialing', 'active',
            'past_due', 'canceled', 'unpaid', 'paused')),
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean     NOT NULL DEFAULT false,
    canceled_at            timestamptz,
    stripe_subscription_id text
        CONSTRAINT subscriptions_stripe_subscription_id_key UNIQUE,
    stripe_customer_id     text,
    -- `created` of the newest Stripe event applied to the row: older events are stale.
    last_event_at          timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- "The tenant's current subscription" reads the newest rows of one tenant.
CREATE INDEX subscriptions_tenant_created_idx ON subscriptions (tenant_id, created_at DESC);
CREATE INDEX subscriptions_plan_idx ON subscriptions (plan_id);
