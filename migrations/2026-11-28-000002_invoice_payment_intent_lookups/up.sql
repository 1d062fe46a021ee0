-- Since API version 2025-03-31.basil Stripe's invoice events no longer name the
-- PaymentIntent that paid the invoice. The webhook marks a paid invoice for a lookup at
-- Stripe, and the linker works the lookups off after the event was acknowledged.
ALTER TABLE invoices
    -- When the pending lookup is due (also the end of a linker's lease); NULL: none
    -- pending, or given up.
    ADD COLUMN payment_intent_lookup_at       timestamptz,
    ADD COLUMN payment_intent_lookup_attempts integer     NOT NULL DEFAULT 0
        CONSTRAINT invoices_payment_intent_lookup_attempts_check
            CHECK (payment_intent_lookup_attempts >= 0),
    -- The last failure, kept when the linker gives up, for an operator.
    ADD COLUMN payment_intent_lookup_error    text;

-- The linker only ever looks at invoices with a lookup pending.
CREATE INDEX invoices_payment_intent_lookup_due_idx ON invoices (payment_intent_lookup_at)
    WHERE payment_intent_lookup_at IS NOT NULL;

-- Paid Stripe invoices the earlier, best-effort lookup (inside the webhook, 5 s) could
-- not link are looked up again.
UPDATE invoices SET payment_intent_lookup_at = now()
WHERE status = 'paid' AND stripe_invoice_id IS NOT NULL AND stripe_payment_intent_id IS NULL;

-- Recording a lookup attaches the payments of its PaymentIntent that have no invoice yet:
-- found through this index, not by reading every payment.
CREATE INDEX payments_unlinked_payment_intent_idx ON payments (stripe_payment_intent_id)
    WHERE invoice_id IS NULL;
