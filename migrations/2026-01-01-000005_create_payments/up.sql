-- Payments: money Stripe collected, and failed attempts to collect it.
CREATE TABLE payments (
    id                       uuid        PRIMARY KEY,
    tenant_id                uuid        NOT NULL
        CONSTRAINT payments_tenant_id_fkey REFERENCES tenants (id),
    invoice_id               uuid
        CONSTRAINT payments_invoice_id_fkey REFERENCES invoices (id),
    amount                   bigint      NOT NULL
        CONSTRAINT payments_amount_check CHECK (amount >= 0),
    currency                 text        NOT NULL
        CONSTRAINT payments_currency_check CHECK (currency ~ '^[a-z]{3}$'),
    status                   text        NOT NULL
        CONSTRAINT payments_status_check CHECK (status IN ('succeeded', 'failed')),
    failure_code             text,
    failure_message          text,
    stripe_payment_intent_id text,
    stripe_charge_id         text
        CONSTRAINT payments_stripe_charge_id_key UNIQUE,
    -- The Stripe event that recorded the payment: an event records at most one.
    source_event_id          text
        CONSTRAINT payments_source_event_id_key UNIQUE,
    created_at               timestamptz NOT NULL DEFAULT now()
);

-- A PaymentIntent succeeds once; it may fail several times before that.
CREATE UNIQUE INDEX payments_succeeded_payment_intent_key
    ON payments (stripe_payment_intent_id) WHERE status = 'succeeded';

CREATE INDEX payments_tenant_created_idx ON payments (tenant_id, created_at DESC, id DESC);
CREATE INDEX payments_invoice_created_idx ON payments (invoice_id, created_at DESC, id DESC);
CREATE INDEX payments_created_idx ON payments (created_at DESC, id DESC);
