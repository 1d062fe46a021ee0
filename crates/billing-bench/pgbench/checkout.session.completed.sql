-- checkout.session.completed, steady state: the tenant's subscription exists and is complete.
\set n random(1, 1000000000000)
\set t random(0, :tenants - 1)
BEGIN TRANSACTION ISOLATION LEVEL READ COMMITTED;
INSERT INTO "webhook_events" ("event_id", "type", "created", "api_version", "livemode", "received_at", "processed_at", "outcome", "payload") VALUES ('evt_pgb_' || :n::bigint, 'checkout.session.completed', now(), '2026-07-29.dahlia', false, now(), now(), 'processed', :pl_checkout_session_completed) ON CONFLICT ("event_id") DO NOTHING;
WITH ins AS (INSERT INTO tenants (id, status) VALUES (('00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'))::uuid, 'pending') ON CONFLICT (id) DO NOTHING RETURNING id, name, status, stripe_customer_id, created_at, updated_at) SELECT id, name, status, stripe_customer_id, created_at, updated_at FROM ins UNION ALL SELECT id, name, status, stripe_customer_id, created_at, updated_at FROM tenants WHERE id = ('00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'))::uuid LIMIT 1;
SELECT "tenants"."id", "tenants"."name", "tenants"."status", "tenants"."stripe_customer_id", "tenants"."created_at", "tenants"."updated_at" FROM "tenants" WHERE ("tenants"."stripe_customer_id" = 'cus_bench_' || :t);
SELECT "subscriptions"."id", "subscriptions"."tenant_id", "subscriptions"."plan_id", "subscriptions"."status", "subscriptions"."current_period_start", "subscriptions"."current_period_end", "subscriptions"."cancel_at_period_end", "subscriptions"."canceled_at", "subscriptions"."stripe_subscription_id", "subscriptions"."stripe_customer_id", "subscriptions"."last_event_at", "subscriptions"."created_at", "subscriptions"."updated_at" FROM "subscriptions" WHERE ("subscriptions"."stripe_subscription_id" = 'sub_bench_' || :t) FOR UPDATE;
UPDATE "checkout_sessions" SET "status" = 'complete', "updated_at" = now() WHERE ("checkout_sessions"."stripe_session_id" = 'cs_test_bench_' || :n::bigint);
SELECT "tenants"."id", "tenants"."name", "tenants"."status", "tenants"."stripe_customer_id", "tenants"."created_at", "tenants"."updated_at" FROM "tenants" WHERE ("tenants"."id" = ('00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'))::uuid) FOR UPDATE;
COMMIT;
