//! Benchmark events: the seven sample events of `billing-stripe`'s fixtures, each made
//! unique (event id, object ids, invoice numbers, `created`) and pointed at one tenant of a
//! pool, kept at the sample's full size (pretty-printed like Stripe's deliveries).
//!
//! The shapes the service then sees, per type (tenant `t`, event number `n`):
//! * `checkout.session.completed`: subscription `sub_bench_t`, customer `cus_bench_t`, plan
//!   `basic` by metadata: creates the subscription the first time, completes it after.
//! * `customer.subscription.updated`: `sub_bench_t` active on the `pro` price.
//! * `customer.subscription.deleted`: a fresh subscription `sub_bdel_n` of `t`, canceled.
//! * `invoice.payment_succeeded`: a fresh invoice `in_bpaid_n` (dahlia shape, no
//!   PaymentIntent in the payload: the service asks Stripe, the fake answers `pi_binv_n`).
//! * `invoice.payment_failed`: a fresh invoice `in_bfail_n`, and an outbox notification.
//! * `payment_intent.succeeded` / `payment_intent.payment_failed`: a fresh PaymentIntent,
//!   a payment row.

use rand::Rng;
use serde_json::{json, Value};

/// One of the seven event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `checkout.session.completed`
    CheckoutCompleted,
    /// `customer.subscription.updated`
    SubscriptionUpdated,
    /// `customer.subscription.deleted`
    SubscriptionDeleted,
    /// `invoice.payment_succeeded`
    InvoicePaid,
    /// `invoice.payment_failed`
    InvoiceFailed,
    /// `payment_intent.succeeded`
    PaymentSucceeded,
    /// `payment_intent.payment_failed`
    PaymentFailed,
}

/// Every kind, in a fixed order.
pub const KINDS: [Kind; 7] = [
    Kind::CheckoutCompleted,
    Kind::SubscriptionUpdated,
    Kind::SubscriptionDeleted,
    Kind::InvoicePaid,
    Kind::InvoiceFailed,
    Kind::PaymentSucceeded,
    Kind::PaymentFailed,
];

impl Kind {
    /// Stripe's type string.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CheckoutCompleted => "checkout.session.completed",
            Self::SubscriptionUpdated => "customer.subscription.updated",
            Self::SubscriptionDeleted => "customer.subscription.deleted",
            Self::InvoicePaid => "invoice.payment_succeeded",
            Self::InvoiceFailed => "invoice.payment_failed",
            Self::PaymentSucceeded => "payment_intent.succeeded",
            Self::PaymentFailed => "payment_intent.payment_failed",
        }
    }

    /// The default weight in the mix (percent).
    #[must_use]
    pub const fn default_weight(self) -> u32 {
        match self {
            Self::CheckoutCompleted => 10,
            Self::SubscriptionUpdated => 20,
            Self::SubscriptionDeleted => 5,
            Self::InvoicePaid => 20,
            Self::InvoiceFailed => 10,
            Self::PaymentSucceeded => 25,
            Self::PaymentFailed => 10,
        }
    }

    /// The sample event, as stored in the fixtures.
    #[must_use]
    pub const fn sample(self) -> &'static str {
        match self {
            Self::CheckoutCompleted => include_str!(
                "../../billing-stripe/tests/fixtures/events/checkout.session.completed.json"
            ),
            Self::SubscriptionUpdated => include_str!(
                "../../billing-stripe/tests/fixtures/events/customer.subscription.updated.json"
            ),
            Self::SubscriptionDeleted => include_str!(
                "../../billing-stripe/tests/fixtures/events/customer.subscription.deleted.json"
            ),
            Self::InvoicePaid => include_str!(
                "../../billing-stripe/tests/fixtures/events/invoice.payment_succeeded.json"
            ),
            Self::InvoiceFailed => include_str!(
                "../../billing-stripe/tests/fixtures/events/invoice.payment_failed.json"
            ),
            Self::PaymentSucceeded => include_str!(
                "../../billing-stripe/tests/fixtures/events/payment_intent.succeeded.json"
            ),
            Self::PaymentFailed => include_str!(
                "../../billing-stripe/tests/fixtures/events/payment_intent.payment_failed.json"
            ),
        }
    }
}

/// The Stripe price of plan `basic` (the invoice samples' price).
pub const BASIC_PRICE: &str = "price_1Rq3oaHx4KpL29aTqhCv4Gt4";
/// The Stripe price of plan `pro` (the subscription samples' price).
pub const PRO_PRICE: &str = "price_1Rq48kHx4KpL29aTV5PnnbOR";

/// The tenant UUID of pool member `i` (a valid v4-shaped UUID, easy to rebuild in SQL).
#[must_use]
pub fn tenant_uuid(i: u32) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// The mix: a weight per kind, and a sampler.
#[derive(Debug, Clone)]
pub struct Mix {
    weights: Vec<(Kind, u32)>,
    total: u32,
}

impl Mix {
    /// A mix from weights (kinds with weight 0 are never drawn).
    #[must_use]
    pub fn new(weights: Vec<(Kind, u32)>) -> Self {
        let total = weights.iter().map(|(_, w)| w).sum();
        Self { weights, total }
    }

    /// The weights.
    #[must_use]
    pub fn weights(&self) -> &[(Kind, u32)] {
        &self.weights
    }

    /// Draws a kind.
    pub fn draw(&self, rng: &mut impl Rng) -> Kind {
        let mut x = rng.gen_range(0..self.total.max(1));
        for (kind, w) in &self.weights {
            if x < *w {
                return *kind;
            }
            x -= w;
        }
        Kind::PaymentSucceeded
    }
}

/// Parsed samples, cloned for each event.
pub struct Templates {
    samples: Vec<(Kind, Value)>,
}

/// One generated event.
pub struct Event {
    /// The body, as sent.
    pub body: Vec<u8>,
    /// For `invoice.payment_succeeded`: the invoice to seed in the fake and the
    /// PaymentIntent that paid it.
    pub fake_invoice: Option<(String, String)>,
}

fn set(v: &mut Value, path: &[&str], new: Value) {
    let mut cur = v;
    for key in &path[..path.len() - 1] {
        let Some(next) = cur.get_mut(*key) else {
            return;
        };
        cur = next;
    }
    if let Some(map) = cur.as_object_mut() {
        map.insert(path[path.len() - 1].to_owned(), new);
    }
}

impl Templates {
    /// Parses the seven samples.
    ///
    /// # Errors
    /// When a sample is not JSON.
    pub fn load() -> Result<Self, serde_json::Error> {
        let samples = KINDS
            .iter()
            .map(|k| serde_json::from_str(k.sample()).map(|v| (*k, v)))
            .collect::<Result<_, _>>()?;
        Ok(Self { samples })
    }

    /// The sample body of `kind`, re-serialised as the benchmark sends it.
    #[must_use]
    pub fn sample_len(&self, kind: Kind) -> usize {
        self.template(kind)
            .and_then(|v| serde_json::to_vec_pretty(v).ok())
            .map_or(0, |b| b.len())
    }

    fn template(&self, kind: Kind) -> Option<&Value> {
        self.samples
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v)
    }

    /// Builds event number `n` of `kind` for tenant `tenant`; `prefix` makes the event id
    /// unique per level, `created` is its Stripe `created`.
    #[must_use]
    pub fn build(&self, kind: Kind, prefix: &str, n: u64, tenant: u32, created: i64) -> Event {
        let mut v = self.template(kind).cloned().unwrap_or(Value::Null);
        let id = format!("evt_{prefix}_{n}");
        let t = tenant_uuid(tenant);
        let sub = format!("sub_bench_{tenant}");
        let cus = format!("cus_bench_{tenant}");
        set(&mut v, &["id"], json!(id));
        set(&mut v, &["created"], json!(created));
        set(&mut v, &["livemode"], json!(false));
        let o = ["data", "object"];
        let at = |field: &'static str| [o[0], o[1], field];
        let mut fake_invoice = None;
        match kind {
            Kind::CheckoutCompleted => {
                set(&mut v, &at("id"), json!(format!("cs_test_bench_{n}")));
                set(&mut v, &at("client_reference_id"), json!(t));
                set(&mut v, &at("customer"), json!(cus));
                set(&mut v, &at("subscription"), json!(sub));
                set(
                    &mut v,
                    &at("metadata"),
                    json!({"tenantId": t, "planId": "basic"}),
                );
            }
            Kind::SubscriptionUpdated | Kind::SubscriptionDeleted => {
                let sub = if kind == Kind::SubscriptionUpdated {
                    sub
                } else {
                    format!("sub_bdel_{n}")
                };
                set(&mut v, &at("id"), json!(sub));
                set(&mut v, &at("customer"), json!(cus));
                set(&mut v, &at("metadata"), json!({ "tenantId": t }));
                if let Some(items) = v.pointer_mut("/data/object/items/data/0") {
                    set(items, &["subscription"], json!(sub));
                }
            }
            Kind::InvoicePaid | Kind::InvoiceFailed => {
                let (inv, number) = if kind == Kind::InvoicePaid {
                    (format!("in_bpaid_{n}"), format!("BP-{n}"))
                } else {
                    (format!("in_bfail_{n}"), format!("BF-{n}"))
                };
                set(&mut v, &at("id"), json!(inv));
                set(&mut v, &at("number"), json!(number));
                set(&mut v, &at("customer"), json!(cus));
                set(&mut v, &at("metadata"), json!({ "tenantId": t }));
                if let Some(details) = v.pointer_mut("/data/object/parent/subscription_details") {
                    set(details, &["metadata"], json!({ "tenantId": t }));
                    set(details, &["subscription"], json!(sub));
                }
                if let Some(line) = v.pointer_mut("/data/object/lines/data/0") {
                    set(line, &["invoice"], json!(inv));
                    set(line, &["subscription"], json!(sub));
                    set(line, &["metadata"], json!({ "tenantId": t }));
                }
                if kind == Kind::InvoicePaid {
                    fake_invoice = Some((inv, format!("pi_binv_{n}")));
                }
            }
            Kind::PaymentSucceeded | Kind::PaymentFailed => {
                let (pi, ch) = if kind == Kind::PaymentSucceeded {
                    (format!("pi_bok_{n}"), format!("ch_bok_{n}"))
                } else {
                    (format!("pi_bko_{n}"), format!("ch_bko_{n}"))
                };
                set(&mut v, &at("id"), json!(pi));
                set(&mut v, &at("customer"), json!(cus));
                set(&mut v, &at("latest_charge"), json!(ch));
                set(
                    &mut v,
                    &at("metadata"),
                    json!({ "tenantId": t, "order_id": n.to_string() }),
                );
                if let Some(err) = v.pointer_mut("/data/object/last_payment_error") {
                    set(err, &["charge"], json!(ch));
                }
            }
        }
        let body = serde_json::to_vec_pretty(&v).unwrap_or_default();
        Event { body, fake_invoice }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_event_keeps_its_type_and_gets_the_requested_id_and_tenant() {
        let templates = Templates::load().unwrap();
        for kind in KINDS {
            let e = templates.build(kind, "t1", 42, 7, 1_800_000_000);
            let v: Value = serde_json::from_slice(&e.body).unwrap();

            assert_eq!(v["type"], kind.as_str());
            assert_eq!(v["id"], "evt_t1_42");
            assert_eq!(v["created"], 1_800_000_000);
            assert!(
                String::from_utf8_lossy(&e.body).contains(&tenant_uuid(7)),
                "{}",
                kind.as_str()
            );
        }
    }

    #[test]
    fn events_keep_the_samples_full_size() {
        let templates = Templates::load().unwrap();
        for kind in KINDS {
            let e = templates.build(kind, "t", 1, 1, 1);

            assert!(
                e.body.len() * 10 >= kind.sample().len() * 9,
                "{}: {} < {}",
                kind.as_str(),
                e.body.len(),
                kind.sample().len()
            );
        }
    }

    #[test]
    fn the_mix_draws_only_kinds_with_weight() {
        let mix = Mix::new(vec![(Kind::InvoicePaid, 1), (Kind::PaymentFailed, 0)]);
        let mut rng = rand::thread_rng();

        for _ in 0..100 {
            assert_eq!(mix.draw(&mut rng), Kind::InvoicePaid);
        }
    }

    #[test]
    fn tenant_uuids_parse_as_tenant_ids() {
        assert!(billing_domain::TenantId::parse(&tenant_uuid(999)).is_ok());
    }
}
