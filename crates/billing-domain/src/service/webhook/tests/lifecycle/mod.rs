//! The lifecycle beyond the seven events (docs/contract.md, The whole lifecycle), one file
//! per Stripe object: invoices mirrored before payment, paid out of band, voided,
//! uncollectible, needing authentication; subscriptions created, paused, resumed, their
//! trial ending; checkouts expiring or paid late; PaymentIntents canceled; customers
//! deleted.

use super::*;
use crate::notification::NotificationBody;

mod checkout;
mod intents_customers;
mod invoices;
mod subscriptions;
