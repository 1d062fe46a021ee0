-- a redelivery: the ledger insert finds the event and nothing else runs.
BEGIN TRANSACTION ISOLATION LEVEL READ COMMITTED;
INSERT INTO "webhook_events" ("event_id", "type", "created", "api_version", "livemode", "received_at", "processed_at", "outcome", "payload") VALUES ('evt_pgb_redelivered', 'payment_intent.succeeded', now(), '2026-07-29.dahlia', false, now(), now(), 'processed', :pl_payment_intent_succeeded) ON CONFLICT ("event_id") DO NOTHING;
COMMIT;
