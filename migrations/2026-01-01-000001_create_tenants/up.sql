-- Tenants: the platform's customers. Their id is the platform's tenant UUID (we never mint it).
-- Constraint names are part of the adapter's contract: the Rust code maps them to API field
-- names when reporting a conflict.
CREATE TABLE tenants (
    id                 uuid        PRIMARY KEY,
    name               text        NOT NULL DEFAULT '',
    status             text        NOT NULL DEFAULT 'pending'
        CONSTRAINT tenants_status_check
        CHECK (status IN ('pending', 'active', 'suspended', 'cancelled')),
    stripe_customer_id text
        CONSTRAINT tenants_stripe_customer_id_key UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
