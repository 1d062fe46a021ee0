//! The fake's in-memory state: created and seeded objects, known customers and the
//! idempotency-key map. Always used under one mutex, so each request executes atomically.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};

use crate::error::Reply;
use crate::fixtures;

/// A stored first answer for an idempotency key.
#[derive(Debug, Clone)]
pub(crate) struct IdempotentEntry {
    pub path: String,
    pub params: Vec<(String, String)>,
    pub reply: Reply,
}

#[derive(Debug)]
pub(crate) struct Store {
    pub accept_any_customer: bool,
    pub customers: HashSet<String>,
    pub customer_objects: HashMap<String, Value>,
    pub checkout_sessions: HashMap<String, Value>,
    /// The ids of `checkout_sessions`, in creation order.
    pub checkout_session_ids: Vec<String>,
    pub portal_sessions: usize,
    pub portal_configuration: String,
    pub payment_intents: HashMap<String, Value>,
    pub invoices: HashMap<String, Value>,
    pub invoice_payments: HashMap<String, Vec<Value>>,
    pub subscriptions: HashMap<String, Value>,
    pub events: HashMap<String, Bytes>,
    pub idempotency: HashMap<String, IdempotentEntry>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            accept_any_customer: true,
            customers: HashSet::new(),
            customer_objects: HashMap::new(),
            checkout_sessions: HashMap::new(),
            checkout_session_ids: Vec::new(),
            portal_sessions: 0,
            portal_configuration: random_id("bpc_", 24),
            payment_intents: HashMap::new(),
            invoices: HashMap::new(),
            invoice_payments: HashMap::new(),
            subscriptions: HashMap::new(),
            events: HashMap::new(),
            idempotency: HashMap::new(),
        }
    }
}

impl Store {
    /// Whether Stripe would find this customer: seeded/created ones always, any `cus_` id
    /// while `accept_any_customer` is on.
    pub fn customer_known(&self, id: &str) -> bool {
        self.customers.contains(id) || (self.accept_any_customer && id.starts_with("cus_"))
    }

    /// Stores a created Checkout Session, remembering the creation order.
    pub fn add_checkout_session(&mut self, id: String, session: Value) {
        self.checkout_session_ids.push(id.clone());
        self.checkout_sessions.insert(id, session);
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
                Value::String(pi) => self.add_invoice_payment(&id, &pi),
                object => self
                    .invoice_payments
                    .entry(id.clone())
                    .or_default()
                    .push(object),
            }
        }
        id
    }

    /// Appends an `invoice_payment` paying `invoice_id` with PaymentIntent `pi`.
    pub fn add_invoice_payment(&mut self, invoice_id: &str, pi: &str) {
        let invoice = self.invoices.get(invoice_id);
        let field = |name: &str| {
            invoice
                .and_then(|inv| inv.get(name))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let mut payment = fixtures::invoice_payment();
        set_all(
            &mut payment,
            [
                ("id", json!(random_id("inpay_", 24))),
                ("invoice", json!(invoice_id)),
                ("amount_paid", field("amount_paid")),
                ("amount_requested", field("amount_due")),
                ("currency", field("currency")),
                ("created", json!(now())),
                ("livemode", json!(false)),
                ("status", json!("paid")),
                (
                    "payment",
                    json!({ "type": "payment_intent", "payment_intent": pi }),
                ),
            ],
        );
        self.invoice_payments
            .entry(invoice_id.to_owned())
            .or_default()
            .push(payment);
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
    let suffix: String = rand::thread_rng()
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

/// A Stripe list object.
pub(crate) fn list(data: Vec<Value>, url: &str) -> Value {
    json!({ "object": "list", "data": data, "has_more": false, "url": url })
}
