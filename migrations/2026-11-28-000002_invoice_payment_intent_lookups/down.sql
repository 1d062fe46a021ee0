DROP INDEX payments_unlinked_payment_intent_idx;
DROP INDEX invoices_payment_intent_lookup_due_idx;
ALTER TABLE invoices
    DROP COLUMN payment_intent_lookup_error,
    DROP COLUMN payment_intent_lookup_attempts,
    DROP COLUMN payment_intent_lookup_at;
