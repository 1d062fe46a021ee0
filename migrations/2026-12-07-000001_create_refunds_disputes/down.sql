DROP TABLE disputes;
DROP TABLE refunds;
-- Refunded and disputed payments were succeeded ones before this migration.
UPDATE payments SET status = 'succeeded' WHERE status NOT IN ('succeeded', 'failed');
DROP INDEX payments_succeeded_charge_key;
CREATE UNIQUE INDEX payments_succeeded_charge_key
    ON payments (stripe_charge_id) WHERE status = 'succeeded';
DROP INDEX payments_succeeded_payment_intent_key;
CREATE UNIQUE INDEX payments_succeeded_payment_intent_key
    ON payments (stripe_payment_intent_id) WHERE status = 'succeeded';
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN ('succeeded', 'failed'));
ALTER TABLE payments DROP COLUMN amount_refunded;
