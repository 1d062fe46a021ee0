-- Invoices: ours (created by an admin) or mirrored from Stripe's.
CREATE TABLE invoices (
    id                       uuid        PRIMARY KEY,
    tenant_id                uuid        NOT NULL
        CONSTRAINT invoices_tenant_id_fkey REFERENCES tenants (id),
    subscription_id          uuid
        CONSTRAINT invoices_subscription_id_fkey REFERENCES subscriptions (id),
    number                   text        NOT NULL
        CONSTRAINT invoices_number_key UNIQUE,
    status                   text        NOT NULL
        CONSTRAINT invoices_status_check CHECK (status IN (
            'draft', 'open', 'paid', 'overdue', 'void', 'uncollectible')),
    amount_due               bigint      NOT NULL
        CONSTRAINT invoices_amount_due_check CHECK (amount_due >= 0),
    amount_paid              bigint      NOT NULL DEFAULT 0
        CONSTRAINT invoices_amount_paid_check CHECK (amount_paid >= 0),
    -- One currency for both amounts: they can never disagree.
    currency                 text        NOT NULL
        CONSTRAINT invoices_currency_check CHECK (currency ~ '^[a-z]{3}$'),
    due_date                 date,
    description              text,
    paid_at                  timestamptz,
    stripe_invoice_id        text
        CONSTRAINT invoices_stripe_invoice_id_key UNIQUE,
    stripe_payment_intent_id text
        CONSTRAINT invoices_stripe_payment_intent_id_key UNIQUE,
    last_event_at            timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Keyset pagination, newest first, for each filter the API offers.
CREATE INDEX invoices_tenant_created_idx ON invoices (tenant_id, created_at DESC, id DESC);
CREATE INDEX invoices_status_created_idx ON invoices (status, created_at DESC, id DESC);
CREATE INDEX invoices_created_idx ON invoices (created_at DESC, id DESC);
CREATE INDEX invoices_subscription_idx ON invoices (subscription_id);
