//! The webhook rules against an in-memory fake of the transaction (state matters here
//! more than call sequences), one file per Stripe object as the rules are; the shared
//! arrange helpers are in `support`. The service's delivery path with mocked ports is
//! tested in `service/tests/delivery.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::error::ConflictField;
use crate::ids::{
    ChargeRef, CheckoutSessionRef, CustomerRef, EventId, InvoiceId, InvoiceRef, PaymentIntentRef,
    PriceRef, SubscriptionId, SubscriptionRef, TenantId,
};
use crate::model::{
    Invoice, InvoiceNumber, InvoiceStatus, Payment, PaymentStatus, Plan, PlanKey, Subscription,
    SubscriptionStatus, Tenant, TenantStatus,
};
use crate::money::{Currency, Money};
use crate::notification::NewNotification;
use crate::ports::{WebhookStore, WebhookWork};
use crate::webhook::{
    CheckoutCompleted, InvoiceSnapshot, PaymentIntentSnapshot, SubscriptionSnapshot, TenantHints,
};

// ---- refunds and disputes (issue 14) ----
use crate::ids::{DisputeRef, PaymentId, RefundRef};
use crate::model::{Dispute, DisputeStatus, Refund, RefundStatus};
use crate::webhook::{ChargeRefunded, DisputeSnapshot, RefundSnapshot};

mod support;
use support::*;

mod checkout;
mod invoice;
mod ledger;
mod lifecycle;
mod payment_intent;
mod refund_dispute;
mod subscription;
mod tenant;
