-- Plans: what a tenant can subscribe to, each billed by one Stripe price.
CREATE TABLE plans (
    id              uuid        PRIMARY KEY,
    code            text        NOT NULL
        CONSTRAINT plans_code_key UNIQUE,
    name            text        NOT NULL
        CONSTRAINT plans_name_check CHECK (name <> ''),
    stripe_price_id text        NOT NULL
        CONSTRAINT plans_stripe_price_id_key UNIQUE,
    amount          bigint      NOT NULL
        CONSTRAINT plans_amount_check CHECK (amount >= 0),
    currency        text        NOT NULL
        CONSTRAINT plans_currency_check CHECK (currency ~ '^[a-z]{3}$'),
    "interval"      text        NOT NULL
        CONSTRAINT plans_interval_check CHECK ("interval" IN ('month', 'year')),
    trial_days      integer
        CONSTRAINT plans_trial_days_check CHECK (trial_days BETWEEN 1 AND 730),
    active          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
