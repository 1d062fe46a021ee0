-- The Stripe customers a `customer.deleted` event removed: a later (or late) event that
-- still names one must not record it on a tenant again.
CREATE TABLE deleted_customers (
    stripe_customer_id TEXT PRIMARY KEY,
    deleted_at TIMESTAMPTZ NOT NULL
);
