-- Stripe's invoices are mirrored before payment (`invoice.created`, `.finalized`,
-- `.updated`): the hosted invoice page and the PDF, null until Stripe finalises them.
-- `payment_intent.canceled` marks the invoice's PaymentIntent so that it is never handed
-- out again; attaching the next one clears the mark.
ALTER TABLE invoices
    ADD COLUMN hosted_invoice_url              text,
    ADD COLUMN invoice_pdf_url                 text,
    ADD COLUMN stripe_payment_intent_canceled  boolean NOT NULL DEFAULT false;
