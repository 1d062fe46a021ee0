//! The emulator's in-memory state: every object by kind and id, events with their delivery
//! state, idempotency keys. Always used under one mutex, so each request executes atomically.

use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::distr::Alphanumeric;
use rand::RngExt;
use serde_json::{json, Value};

use crate::config::{AfterRetries, EmulatorConfig};
use crate::error::Reply;
use crate::fixtures;

/// A stored first answer for an idempotency key.
#[derive(Debug, Clone)]
pub(crate) struct IdempotentEntry {
    pub path: String,
    pub params: Vec<(String, String)>,
    pub reply: Reply,
}

/// Where one event's delivery to the forward URL stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// No endpoint was configured when the event was made: nothing to deliver.
    NoEndpoint,
    /// Waiting for its next attempt (`attempts` made so far).
    Pending { attempts: u32, next_at: Instant },
    /// A 2xx was received.
    Delivered { attempts: u32 },
    /// Given up (retries used up, or dropped by the control).
    Failed { attempts: u32 },
}

/// One event: its JSON (without `pending_webhooks`, added when rendered) or a seeded raw body.
#[derive(Debug, Clone)]
pub(crate) struct EventRecord {
    pub id: String,
    pub seq: u64,
    pub created: i64,
    pub event_type: String,
    pub body: Value,
    pub raw: Option<Bytes>,
    pub delivery: Delivery,
}

impl EventRecord {
    pub fn pending_webhooks(&self) -> u32 {
        u32::from(matches!(
            self.delivery,
            Delivery::Pending { .. } | Delivery::Failed { .. }
        ))
    }

    pub fn delivered(&self) -> bool {
        matches!(
            self.delivery,
            Delivery::NoEndpoint | Delivery::Delivered { .. }
        )
    }

    /// The event as the API and deliveries show it.
    pub fn render(&self) -> Bytes {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut body = self.body.clone();
        set(
            &mut body,
            "pending_webhooks",
            json!(self.pending_webhooks()),
        );
        Bytes::from(body.to_string())
    }
}

/// One delivery attempt, for `GET /__emulator/deliveries`.
#[derive(Debug, Clone)]
pub(crate) struct AttemptRecord {
    pub event_id: String,
    pub event_type: String,
    pub attempt: u32,
    /// The HTTP status received, `None` on a timeout or connection failure.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: i64,
}

/// What a test card does (Stripe's documented test numbers and `pm_card_*` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    /// `4242 4242 4242 4242`, `pm_card_visa`: pays.
    Visa,
    /// `4000 0000 0000 0002`, `pm_card_chargeDeclined`: declined (`generic_decline`).
    Declined,
    /// `4000 0000 0000 9995`: declined (`insufficient_funds`).
    InsufficientFunds,
    /// `4000 0025 0000 3155`, `pm_card_authenticationRequired`: on-session payments need
    /// 3-D Secure; off-session ones (renewals) pay once it is set up.
    Authenticate,
    /// `4000 0000 0000 0341`, `pm_card_chargeCustomerFail`: attaches, every charge fails.
    FailsOnCharge,
}

impl Card {
    /// A card number (spaces allowed) or a `pm_card_*` test id.
    pub fn parse(text: &str) -> Option<Self> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        Some(match digits.as_str() {
            "4242424242424242" | "pm_card_visa" | "tok_visa" => Self::Visa,
            "4000000000000002" | "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => {
                Self::Declined
            }
            "4000000000009995" | "pm_card_chargeDeclinedInsufficientFunds" => {
                Self::InsufficientFunds
            }
            "4000002500003155" | "pm_card_authenticationRequired" => Self::Authenticate,
            "4000000000000341" | "pm_card_chargeCustomerFail" => Self::FailsOnCharge,
            _ => return None,
        })
    }

    pub fn last4(self) -> &'static str {
        match self {
            Self::Visa => "4242",
            Self::Declined => "0002",
            Self::InsufficientFunds => "9995",
            Self::Authenticate => "3155",
            Self::FailsOnCharge => "0341",
        }
    }

    /// The decline (`code`, `decline_code`, message) a charge with this card gets, if any.
    pub fn decline(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Self::Declined | Self::FailsOnCharge => Some((
                "card_declined",
                "generic_decline",
                "Your card was declined.",
            )),
            Self::InsufficientFunds => Some((
                "card_declined",
                "insufficient_funds",
                "Your card has insufficient funds.",
            )),
            Self::Visa | Self::Authenticate => None,
        }
    }
}

/// Settings the engine reads, copied from the [`EmulatorConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub base_url: String,
    pub hosted_pages: bool,
    pub deliver: bool,
    pub accept_unknown_prices: bool,
    pub payment_retry_days: Vec<i64>,
    pub after_retries: AfterRetries,
}

/// `(request id, idempotency key)` of the API request being executed, for events' `request`.
pub(crate) type RequestInfo = (String, Option<String>);

#[derive(Debug)]
pub(crate) struct Store {
    pub settings: Settings,
    pub accept_any_customer: bool,
    /// Ids known as customers without a stored object (`add_customer`).
    pub known_customers: HashSet<String>,
    pub customers: HashMap<String, Value>,
    pub products: HashMap<String, Value>,
    pub prices: HashMap<String, Value>,
    pub checkout_sessions: HashMap<String, Value>,
    /// The ids of `checkout_sessions`, in creation order.
    pub checkout_session_ids: Vec<String>,
    /// Per Checkout Session: `(price, quantity)` line items, trial days, subscription metadata.
    pub session_lines: HashMap<String, Vec<(String, i64)>>,
    pub session_trial_days: HashMap<String, i64>,
    pub session_subscription_metadata: HashMap<String, Value>,
    pub portal_sessions: HashMap<String, Value>,
    pub portal_sessions_created: usize,
    pub portal_configuration: String,
    pub payment_intents: HashMap<String, Value>,
    pub charges: HashMap<String, Value>,
    pub refunds: HashMap<String, Value>,
    pub disputes: HashMap<String, Value>,
    pub payment_methods: HashMap<String, Value>,
    pub cards: HashMap<String, Card>,
    pub invoices: HashMap<String, Value>,
    pub invoice_payments: HashMap<String, Vec<Value>>,
    pub subscriptions: HashMap<String, Value>,
    /// Creation order of subscriptions (for lists).
    pub subscription_ids: Vec<String>,
    pub clocks: HashMap<String, Value>,
    /// Subscriptions whose `trial_will_end` was sent for their current `trial_end`.
    pub trial_will_end_sent: HashSet<(String, i64)>,
    /// Per renewal draft invoice: the subscription and its items before the renewal.
    pub renewal_previous: HashMap<String, (Value, Value)>,
    pub events: Vec<EventRecord>,
    pub event_index: HashMap<String, usize>,
    pub attempts: Vec<AttemptRecord>,
    pub held: bool,
    pub rate_limit: crate::rate_limit::RateLimit,
    pub seq: u64,
    pub invoice_number: u64,
    pub idempotency: HashMap<String, IdempotentEntry>,
    pub request: Option<RequestInfo>,
}

impl Store {
    pub fn new(config: &EmulatorConfig, base_url: String) -> Self {
        let mut store = Self {
            settings: Settings {
                base_url,
                hosted_pages: config.hosted_pages,
                deliver: config.forward_to.is_some(),
                accept_unknown_prices: config.accept_unknown_prices,
                payment_retry_days: config.payment_retry_days.clone(),
                after_retries: config.after_retries,
            },
            accept_any_customer: config.accept_any_customer,
            known_customers: HashSet::new(),
            customers: HashMap::new(),
            products: HashMap::new(),
            prices: HashMap::new(),
            checkout_sessions: HashMap::new(),
            checkout_session_ids: Vec::new(),
            session_lines: HashMap::new(),
            session_trial_days: HashMap::new(),
            session_subscription_metadata: HashMap::new(),
            portal_sessions: HashMap::new(),
            portal_sessions_created: 0,
            portal_configuration: random_id("bpc_", 24),
            payment_intents: HashMap::new(),
            charges: HashMap::new(),
            refunds: HashMap::new(),
            disputes: HashMap::new(),
            payment_methods: HashMap::new(),
            cards: HashMap::new(),
            invoices: HashMap::new(),
            invoice_payments: HashMap::new(),
            subscriptions: HashMap::new(),
            subscription_ids: Vec::new(),
            clocks: HashMap::new(),
            trial_will_end_sent: HashSet::new(),
            renewal_previous: HashMap::new(),
            events: Vec::new(),
            rate_limit: crate::rate_limit::RateLimit::new(config.rate_limit),
            event_index: HashMap::new(),
            attempts: Vec::new(),
            held: false,
            seq: 0,
            invoice_number: 0,
            idempotency: HashMap::new(),
            request: None,
        };
        for seed in &config.prices {
            crate::objects::seed_price(&mut store, seed);
        }
        store
    }

    /// Whether Stripe would find this customer: seeded/created ones always, any `cus_` id
    /// while `accept_any_customer` is on.
    pub fn customer_known(&self, id: &str) -> bool {
        self.customers.contains_key(id)
            || self.known_customers.contains(id)
            || (self.accept_any_customer && id.starts_with("cus_"))
    }

    /// The time "now" for objects of `customer`: its test clock's frozen time, else the wall clock.
    pub fn time_for(&self, customer: Option<&str>) -> i64 {
        customer
            .and_then(|id| self.customers.get(id))
            .and_then(|c| str_of(c, "test_clock"))
            .and_then(|clock| self.clocks.get(clock))
            .and_then(|clock| clock.get("frozen_time").and_then(Value::as_i64))
            .unwrap_or_else(now)
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Stores a created Checkout Session, remembering the creation order.
    pub fn add_checkout_session(&mut self, id: String, session: Value) {
        self.checkout_session_ids.push(id.clone());
        self.checkout_sessions.insert(id, session);
    }

    /// Stores a subscription, remembering the creation order.
    pub fn put_subscription(&mut self, id: &str, subscription: Value) {
        if !self.subscriptions.contains_key(id) {
            self.subscription_ids.push(id.to_owned());
        }
        self.subscriptions.insert(id.to_owned(), subscription);
    }

    /// Stores a seeded invoice; a `payments` field (list object or array) is kept apart and
    /// only shown with `expand[]=payments`. Entries may be `pi_...` strings.
    pub fn add_invoice(&mut self, mut invoice: Value) -> String {
        let id = ensure_id(&mut invoice, "in_");
        let payments = invoice
            .as_object_mut()
            .and_then(|map| map.remove("payments"))
            .map(|payments| match payments {
                Value::Array(items) => items,
                mut list => list
                    .get_mut("data")
                    .map(Value::take)
                    .and_then(|data| match data {
                        Value::Array(items) => Some(items),
                        _ => None,
                    })
                    .unwrap_or_default(),
            })
            .unwrap_or_default();
        self.invoices.insert(id.clone(), invoice);
        for payment in payments {
            match payment {
                Value::String(pi) => self.add_invoice_payment(&id, &pi, "paid"),
                object => self
                    .invoice_payments
                    .entry(id.clone())
                    .or_default()
                    .push(object),
            }
        }
        id
    }

    /// Appends an `invoice_payment` paying `invoice_id` with PaymentIntent `pi`, or updates
    /// the one for `pi` to `status`.
    pub fn add_invoice_payment(&mut self, invoice_id: &str, pi: &str, status: &str) {
        let invoice = self.invoices.get(invoice_id);
        let field = |name: &str| {
            invoice
                .and_then(|inv| inv.get(name))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let paid = status == "paid";
        let amount_paid = if paid {
            field("amount_due")
        } else {
            Value::Null
        };
        let amount_requested = field("amount_due");
        let currency = field("currency");
        let created = invoice
            .and_then(|inv| inv.get("created"))
            .and_then(Value::as_i64)
            .unwrap_or_else(now);
        let payments = self
            .invoice_payments
            .entry(invoice_id.to_owned())
            .or_default();
        if let Some(existing) = payments
            .iter_mut()
            .find(|p| p["payment"]["payment_intent"].as_str() == Some(pi))
        {
            set(existing, "status", json!(status));
            set(existing, "amount_paid", amount_paid);
            return;
        }
        let mut payment = fixtures::invoice_payment();
        set_all(
            &mut payment,
            [
                ("id", json!(random_id("inpay_", 24))),
                ("invoice", json!(invoice_id)),
                ("amount_paid", amount_paid),
                ("amount_requested", amount_requested),
                ("currency", currency),
                ("created", json!(created)),
                ("livemode", json!(false)),
                ("status", json!(status)),
                (
                    "payment",
                    json!({ "type": "payment_intent", "payment_intent": pi }),
                ),
                (
                    "status_transitions",
                    json!({ "canceled_at": null, "paid_at": if paid { Some(created) } else { None } }),
                ),
            ],
        );
        payments.push(payment);
    }
}

/// Returns the object's string `id`, inserting a fresh `<prefix>...` one when it has none.
pub(crate) fn ensure_id(object: &mut Value, prefix: &str) -> String {
    if let Some(id) = object.get("id").and_then(Value::as_str) {
        return id.to_owned();
    }
    let id = random_id(prefix, 24);
    set(object, "id", json!(id));
    id
}

/// `prefix` followed by `len` random alphanumerics, like Stripe's ids.
pub(crate) fn random_id(prefix: &str, len: usize) -> String {
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{suffix}")
}

/// Current Unix time in seconds.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Sets `key` on a JSON object (no-op on non-objects).
pub(crate) fn set(object: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = object {
        map.insert(key.to_owned(), value);
    }
}

pub(crate) fn set_all<const N: usize>(object: &mut Value, fields: [(&str, Value); N]) {
    for (key, value) in fields {
        set(object, key, value);
    }
}

/// A string field.
pub(crate) fn str_of<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// An integer field (0 when absent).
pub(crate) fn int_of(object: &Value, key: &str) -> i64 {
    object.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// A Stripe list object.
pub(crate) fn list(data: Vec<Value>, url: &str) -> Value {
    json!({ "object": "list", "data": data, "has_more": false, "url": url })
}
