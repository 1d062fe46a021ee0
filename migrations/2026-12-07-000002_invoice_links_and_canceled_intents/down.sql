ALTER TABLE invoices
    DROP COLUMN stripe_payment_intent_canceled,
    DROP COLUMN invoice_pdf_url,
    DROP COLUMN hosted_invoice_url;
