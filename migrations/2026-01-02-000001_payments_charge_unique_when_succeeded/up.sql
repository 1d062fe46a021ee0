-- A charge is paid once, but several failed attempts can name the same charge (a
-- PaymentIntent whose `latest_charge` did not change between two failures, e.g. after a
-- failed 3-D Secure step): only succeeded payments need a unique charge. With the plain
-- UNIQUE, the second failed attempt was silently dropped by ON CONFLICT DO NOTHING.
ALTER TABLE payments DROP CONSTRAINT payments_stripe_charge_id_key;
CREATE UNIQUE INDEX payments_succeeded_charge_key
    ON payments (stripe_charge_id) WHERE status = 'succeeded';
