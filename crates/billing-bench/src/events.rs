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
//!   PaymentIntent in the payload: the service's linker asks Stripe after answering, the
//!   fake answers `pi_binv_n`).
//! * `invoice.payment_failed`: a fresh invoice `in_bfail_n`, and an outbox notification.
//! * `payment_intent.succeeded` / `payment_intent.payment_failed`: a fresh PaymentIntent,
//!   a payment row.

use rand::{Rng, RngExt};
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
        let mut x = rng.random_range(0..self.total.max(1));
        for (kind, w) in &self.weights {
            if x < *w {
                return *kind;
            }
            x -= w;
        }
        Kind::PaymentSucceeded
    }
}

/// One run of a pre-serialised body: literal text, or a value filled per event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Prefix,
    Number,
    TenantIndex,
    TenantUuid,
    Created,
}

impl Piece {
    /// The markers standing for each value while the body is serialised.
    const MARKERS: [(&'static str, Piece); 5] = [
        ("%%P%%", Piece::Prefix),
        ("%%N%%", Piece::Number),
        ("%%I%%", Piece::TenantIndex),
        ("%%T%%", Piece::TenantUuid),
        ("%%C%%", Piece::Created),
    ];

    fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            _ => 0,
        }
    }

    /// Splits a serialised body at its markers.
    fn split(mut text: &str) -> Vec<Piece> {
        let mut pieces = Vec::new();
        while let Some((at, marker, piece)) = Self::MARKERS
            .iter()
            .filter_map(|(m, p)| text.find(m).map(|at| (at, *m, p)))
            .min_by_key(|(at, _, _)| *at)
        {
            if at > 0 {
                pieces.push(Piece::Text(text[..at].to_owned()));
            }
            pieces.push(piece.clone());
            text = &text[at + marker.len()..];
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_owned()));
        }
        pieces
    }
}

/// Parsed samples, and each one serialised once with markers where the per-event values go.
pub struct Templates {
    samples: Vec<(Kind, Value)>,
    compiled: Vec<(Kind, Vec<Piece>)>,
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
        let mut templates = Self {
            samples,
            compiled: Vec::new(),
        };
        for kind in KINDS {
            let marked = templates.shaped(kind, "%%P%%", "%%N%%", "%%I%%", "%%T%%", json!("%%C%%"));
            // `created` is a number: the marker goes in without its quotes.
            let text = serde_json::to_string_pretty(&marked)?.replace("\"%%C%%\"", "%%C%%");
            templates.compiled.push((kind, Piece::split(&text)));
        }
        Ok(templates)
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

    /// The sample of `kind` made into event `n` of tenant `tenant` (its index and its
    /// UUID `t`), with `created`; the strings may be markers (see [`Piece`]).
    fn shaped(
        &self,
        kind: Kind,
        prefix: &str,
        n: &str,
        tenant: &str,
        t: &str,
        created: Value,
    ) -> Value {
        let mut v = self.template(kind).cloned().unwrap_or(Value::Null);
        let id = format!("evt_{prefix}_{n}");
        let sub = format!("sub_bench_{tenant}");
        let cus = format!("cus_bench_{tenant}");
        set(&mut v, &["id"], json!(id));
        set(&mut v, &["created"], created);
        set(&mut v, &["livemode"], json!(false));
        let o = ["data", "object"];
        let at = |field: &'static str| [o[0], o[1], field];
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
                    json!({ "tenantId": t, "order_id": n }),
                );
                if let Some(err) = v.pointer_mut("/data/object/last_payment_error") {
                    set(err, &["charge"], json!(ch));
                }
            }
        }
        v
    }

    /// Builds event number `n` of `kind` for tenant `tenant`; `prefix` makes the event id
    /// unique per level, `created` is its Stripe `created`. Fills the pre-serialised body
    /// of `kind` (no JSON tree is cloned or serialised per event: the load generator
    /// shares the service's two cores, so it should cost as little as pgbench's client).
    #[must_use]
    pub fn build(&self, kind: Kind, prefix: &str, n: u64, tenant: u32, created: i64) -> Event {
        let pieces = self
            .compiled
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[][..], |(_, p)| p.as_slice());
        let (n_text, tenant_text) = (n.to_string(), tenant.to_string());
        let (t, created_text) = (tenant_uuid(tenant), created.to_string());
        let mut body = Vec::with_capacity(pieces.iter().map(Piece::len).sum::<usize>() + 256);
        for piece in pieces {
            body.extend_from_slice(match piece {
                Piece::Text(text) => text.as_bytes(),
                Piece::Prefix => prefix.as_bytes(),
                Piece::Number => n_text.as_bytes(),
                Piece::TenantIndex => tenant_text.as_bytes(),
                Piece::TenantUuid => t.as_bytes(),
                Piece::Created => created_text.as_bytes(),
            });
        }
        let fake_invoice =
            (kind == Kind::InvoicePaid).then(|| (format!("in_bpaid_{n}"), format!("pi_binv_{n}")));
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
    fn the_pre_serialised_body_is_the_event_the_json_tree_makes() {
        let templates = Templates::load().unwrap();
        for kind in KINDS {
            let built = templates.build(kind, "c8", 12_345, 77, 1_800_000_123);
            let tree = templates.shaped(
                kind,
                "c8",
                "12345",
                "77",
                &tenant_uuid(77),
                json!(1_800_000_123),
            );

            let parsed: Value = serde_json::from_slice(&built.body).unwrap();
            assert_eq!(parsed, tree, "{}", kind.as_str());
            assert!(!String::from_utf8_lossy(&built.body).contains("%%"));
        }
    }

    #[test]
    fn a_body_splits_at_its_markers() {
        assert_eq!(
            Piece::split("a%%N%%b%%C%%"),
            vec![
                Piece::Text("a".into()),
                Piece::Number,
                Piece::Text("b".into()),
                Piece::Created
            ]
        );
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
        let mut rng = rand::rng();

        for _ in 0..100 {
            assert_eq!(mix.draw(&mut rng), Kind::InvoicePaid);
        }
    }

    #[test]
    fn tenant_uuids_parse_as_tenant_ids() {
        assert!(billing_domain::TenantId::parse(&tenant_uuid(999)).is_ok());
    }
}
