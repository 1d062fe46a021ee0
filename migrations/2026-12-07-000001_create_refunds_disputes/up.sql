-- Refunds and disputes (SPEC §7): one row per Stripe refund and per Stripe dispute, and
-- the payment's refunded amount and the statuses refunds and disputes give it.

ALTER TABLE payments
    ADD COLUMN amount_refunded bigint NOT NULL DEFAULT 0
        CONSTRAINT payments_amount_refunded_check CHECK (amount_refunded >= 0);
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN (
    'succeeded', 'failed', 'refunded', 'partially_refunded', 'disputed', 'dispute_lost'));

-- A payment refunded or disputed is still the one success of its PaymentIntent and
-- charge: the partial unique indexes cover every status but `failed` (their names kept,
-- since the adapter maps conflicts by name).
DROP INDEX payments_succeeded_payment_intent_key;
CREATE UNIQUE INDEX payments_succeeded_payment_intent_key
    ON payments (stripe_payment_intent_id) WHERE status <> 'failed';
DROP INDEX payments_succeeded_charge_key;
CREATE UNIQUE INDEX payments_succeeded_charge_key
    ON payments (stripe_charge_id) WHERE status <> 'failed';

CREATE TABLE refunds (
    id               uuid        PRIMARY KEY,
    payment_id       uuid        NOT NULL
        CONSTRAINT refunds_payment_id_fkey REFERENCES payments (id),
    amount           bigint      NOT NULL
        CONSTRAINT refunds_amount_check CHECK (amount >= 0),
    currency         text        NOT NULL
        CONSTRAINT refunds_currency_check CHECK (currency ~ '^[a-z]{3}$'),
    status           text        NOT NULL
        CONSTRAINT refunds_status_check CHECK (status IN (
            'pending', 'requires_action', 'succeeded', 'failed', 'canceled')),
    reason           text,
    stripe_refund_id text        NOT NULL
        CONSTRAINT refunds_stripe_refund_id_key UNIQUE,
    -- `created` of the newest Stripe event applied to the refund: the order guard.
    last_event_at    timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at, id);

CREATE TABLE disputes (
    id                uuid        PRIMARY KEY,
    payment_id        uuid        NOT NULL
        CONSTRAINT disputes_payment_id_fkey REFERENCES payments (id),
    amount            bigint      NOT NULL
        CONSTRAINT disputes_amount_check CHECK (amount >= 0),
    currency          text        NOT NULL
        CONSTRAINT disputes_currency_check CHECK (currency ~ '^[a-z]{3}$'),
    reason            text        NOT NULL,
    status            text        NOT NULL
        CONSTRAINT disputes_status_check CHECK (status IN (
            'warning_needs_response', 'warning_under_review', 'warning_closed',
            'needs_response', 'under_review', 'won', 'lost', 'prevented')),
    stripe_dispute_id text        NOT NULL
        CONSTRAINT disputes_stripe_dispute_id_key UNIQUE,
    -- `created` of the newest Stripe event applied to the dispute: the order guard.
    last_event_at     timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX disputes_payment_idx ON disputes (payment_id, created_at, id);
CREATE INDEX disputes_created_idx ON disputes (created_at DESC, id DESC);
CREATE INDEX disputes_status_created_idx ON disputes (status, created_at DESC, id DESC);
