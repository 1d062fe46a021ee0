//! Diesel's view of the tables, written by hand to match `migrations/` exactly (what
//! `diesel print-schema` would print). Change it together with a migration.

#![allow(missing_docs, reason = "generated-style table definitions")]

diesel::table! {
    tenants (id) {
        id -> Uuid,
        name -> Text,
        status -> Text,
        stripe_customer_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    plans (id) {
        id -> Uuid,
        code -> Text,
        name -> Text,
        stripe_price_id -> Text,
        amount -> Int8,
        currency -> Text,
        interval -> Text,
        trial_days -> Nullable<Int4>,
        active -> Bool,
        features -> Array<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        plan_id -> Uuid,
        status -> Text,
        current_period_start -> Nullable<Timestamptz>,
        current_period_end -> Nullable<Timestamptz>,
        cancel_at_period_end -> Bool,
        canceled_at -> Nullable<Timestamptz>,
        stripe_subscription_id -> Nullable<Text>,
        stripe_customer_id -> Nullable<Text>,
        last_event_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        past_due_since -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    invoices (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        subscription_id -> Nullable<Uuid>,
        number -> Text,
        status -> Text,
        amount_due -> Int8,
        amount_paid -> Int8,
        currency -> Text,
        due_date -> Nullable<Date>,
        description -> Nullable<Text>,
        paid_at -> Nullable<Timestamptz>,
        stripe_invoice_id -> Nullable<Text>,
        stripe_payment_intent_id -> Nullable<Text>,
        last_event_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        payment_intent_lookup_at -> Nullable<Timestamptz>,
        payment_intent_lookup_attempts -> Int4,
        payment_intent_lookup_error -> Nullable<Text>,
        hosted_invoice_url -> Nullable<Text>,
        invoice_pdf_url -> Nullable<Text>,
        stripe_payment_intent_canceled -> Bool,
    }
}

diesel::table! {
    payments (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        invoice_id -> Nullable<Uuid>,
        amount -> Int8,
        currency -> Text,
        status -> Text,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        stripe_payment_intent_id -> Nullable<Text>,
        stripe_charge_id -> Nullable<Text>,
        source_event_id -> Nullable<Text>,
        created_at -> Timestamptz,
        amount_refunded -> Int8,
    }
}

diesel::table! {
    webhook_events (event_id) {
        event_id -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        created -> Timestamptz,
        api_version -> Nullable<Text>,
        livemode -> Bool,
        received_at -> Timestamptz,
        processed_at -> Nullable<Timestamptz>,
        outcome -> Text,
        detail -> Nullable<Text>,
        payload -> Text,
        source -> Text,
    }
}

diesel::table! {
    notifications (id) {
        id -> Uuid,
        kind -> Text,
        dedupe_key -> Text,
        tenant_id -> Nullable<Uuid>,
        payload -> Text,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    checkout_sessions (stripe_session_id) {
        stripe_session_id -> Text,
        tenant_id -> Uuid,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    refunds (id) {
        id -> Uuid,
        payment_id -> Uuid,
        amount -> Int8,
        currency -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        stripe_refund_id -> Text,
        last_event_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    disputes (id) {
        id -> Uuid,
        payment_id -> Uuid,
        amount -> Int8,
        currency -> Text,
        reason -> Text,
        status -> Text,
        stripe_dispute_id -> Text,
        last_event_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    deleted_customers (stripe_customer_id) {
        stripe_customer_id -> Text,
        deleted_at -> Timestamptz,
    }
}

// Reconciliation sweeps (issue 15); joined with nothing.
diesel::table! {
    reconcile_sweeps (slot) {
        slot -> Timestamptz,
        claimed_by -> Text,
        claimed_at -> Timestamptz,
    }
}

diesel::joinable!(subscriptions -> tenants (tenant_id));
diesel::joinable!(checkout_sessions -> tenants (tenant_id));
diesel::joinable!(subscriptions -> plans (plan_id));
diesel::joinable!(invoices -> tenants (tenant_id));
diesel::joinable!(invoices -> subscriptions (subscription_id));
diesel::joinable!(payments -> tenants (tenant_id));
diesel::joinable!(payments -> invoices (invoice_id));
diesel::joinable!(refunds -> payments (payment_id));
diesel::joinable!(disputes -> payments (payment_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    plans,
    subscriptions,
    invoices,
    payments,
    webhook_events,
    notifications,
    checkout_sessions,
    refunds,
    disputes,
    deleted_customers,
);
