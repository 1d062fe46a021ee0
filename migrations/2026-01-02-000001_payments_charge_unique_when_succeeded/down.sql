DROP INDEX payments_succeeded_charge_key;
ALTER TABLE payments ADD CONSTRAINT payments_stripe_charge_id_key UNIQUE (stripe_charge_id);
