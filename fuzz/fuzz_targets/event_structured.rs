//! Fuzz target: structure-aware mutations of the seven sample events.
//!
//! The input picks a seed event (embedded from `fuzz/seeds/event_parse/`), optionally
//! changes its `type`, then applies a list of edits at paths that walk the seed's real
//! keys: replace a value with arbitrary JSON (including raw text serde's `Value` cannot
//! hold: integers beyond 64 bits, `1e400`, deep nesting), or remove a key or element.
//! Properties:
//! * `parse` never panics;
//! * an unedited seed parses, to a non-ignored event of its own type;
//! * whenever `parse` accepts, the event's `kind` is the body's `type`, and it is
//!   `Ignored` exactly when that type is not one of the seven the service acts on.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use billing_domain::ports::WebhookVerifier;
use billing_domain::webhook::PaymentEvent;
use billing_stripe::StripeWebhookVerifier;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const SEEDS: [&str; 12] = [
    include_str!("../seeds/event_parse/checkout.session.completed.json"),
    include_str!("../seeds/event_parse/invoice.payment_succeeded.json"),
    include_str!("../seeds/event_parse/invoice.payment_failed.json"),
    include_str!("../seeds/event_parse/customer.subscription.updated.json"),
    include_str!("../seeds/event_parse/customer.subscription.deleted.json"),
    include_str!("../seeds/event_parse/payment_intent.succeeded.json"),
    include_str!("../seeds/event_parse/payment_intent.payment_failed.json"),
    // ---- refunds and disputes (issue 14) ----
    include_str!("../seeds/event_parse/charge.refunded.json"),
    include_str!("../seeds/event_parse/refund.created.json"),
    include_str!("../seeds/event_parse/refund.failed.json"),
    include_str!("../seeds/event_parse/charge.dispute.created.json"),
    include_str!("../seeds/event_parse/charge.dispute.closed.json"),
];

const KNOWN_TYPES: [&str; 17] = [
    "checkout.session.completed",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    // ---- refunds and disputes (issue 14): the seeds' types first, in their order ----
    "charge.refunded",
    "refund.created",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.closed",
    "refund.updated",
    "charge.refund.updated",
    "charge.dispute.updated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
];

/// The seeds, parsed once per process.
fn seeds() -> &'static [Value] {
    static PARSED: OnceLock<Vec<Value>> = OnceLock::new();
    PARSED.get_or_init(|| {
        SEEDS
            .iter()
            .map(|s| serde_json::from_str(s).expect("seed is JSON"))
            .collect()
    })
}

#[derive(Debug, Arbitrary)]
struct Input {
    seed: u8,
    retype: Option<Retype>,
    edits: Vec<Edit>,
}

#[derive(Debug, Arbitrary)]
enum Retype {
    /// Another known type: the object no longer matches what the type promises.
    Known(u8),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Edit {
    /// Replace the value at the path.
    Set(Vec<u8>, Json),
    /// Remove the key or element at the path.
    Remove(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Json {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
    /// Raw JSON text that `serde_json::Value` cannot represent.
    Raw(RawJson),
}

#[derive(Debug, Arbitrary)]
enum RawJson {
    /// An integer with 20–40 digits: outside i64 and u64.
    HugeInt { negative: bool, digits: u8 },
    /// A float literal that overflows f64.
    HugeFloat,
    /// `[[[…]]]` nested this deep (up to 20 000).
    DeepArray(u16),
    /// `{"a":{"a":…}}` nested this deep (up to 20 000).
    DeepObject(u16),
    /// A string of this many KiB (up to 255).
    LongString(u8),
}

impl RawJson {
    fn text(&self) -> String {
        match self {
            Self::HugeInt { negative, digits } => {
                let n = 20 + usize::from(*digits % 21);
                format!("{}{}", if *negative { "-" } else { "" }, "9".repeat(n))
            }
            Self::HugeFloat => "1e400".to_owned(),
            Self::DeepArray(depth) => {
                let d = usize::from(*depth % 20_001);
                format!("{}{}", "[".repeat(d), "]".repeat(d))
            }
            Self::DeepObject(depth) => {
                let d = usize::from(*depth % 20_001);
                format!("{}1{}", "{\"a\":".repeat(d), "}".repeat(d))
            }
            Self::LongString(kib) => format!("\"{}\"", "x".repeat(usize::from(*kib) * 1024)),
        }
    }
}

/// Raw texts are spliced in after serialisation, in place of unique placeholder strings.
struct Raws(Vec<String>);

impl Raws {
    fn placeholder(i: usize) -> String {
        format!("\u{1}fuzz-raw-{i}\u{1}")
    }

    fn value(&mut self, json: &Json) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::I64(n) => Value::from(*n),
            Json::U64(n) => Value::from(*n),
            Json::F64(f) => Value::from(*f),
            Json::Str(s) => Value::String(s.clone()),
            Json::Array(items) => Value::Array(items.iter().map(|j| self.value(j)).collect()),
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, j)| (k.clone(), self.value(j)))
                    .collect::<Map<_, _>>(),
            ),
            Json::Raw(raw) => {
                self.0.push(raw.text());
                Value::String(Self::placeholder(self.0.len() - 1))
            }
        }
    }

    fn splice(&self, mut text: String) -> String {
        for (i, raw) in self.0.iter().enumerate() {
            let quoted = serde_json::to_string(&Self::placeholder(i)).unwrap_or_default();
            text = text.replacen(&quoted, raw, 1);
        }
        text
    }
}

/// Walks `path` (each byte picks a child, modulo the number of children) as far as it goes.
fn node<'v>(v: &'v mut Value, path: &[u8]) -> &'v mut Value {
    let Some((&step, rest)) = path.split_first() else {
        return v;
    };
    let step = usize::from(step);
    let has_children = match &*v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    };
    if !has_children {
        return v;
    }
    match v {
        Value::Object(m) => {
            let n = m.len();
            let child = m.values_mut().nth(step % n);
            node(child.expect("nth(i % len) of a non-empty map exists"), rest)
        }
        Value::Array(a) => {
            let n = a.len();
            node(&mut a[step % n], rest)
        }
        other => other,
    }
}

fn remove(v: &mut Value, path: &[u8]) {
    let Some((&last, parent_path)) = path.split_last() else {
        return;
    };
    match node(v, parent_path) {
        Value::Object(m) if !m.is_empty() => {
            let n = m.len();
            if let Some(key) = m.keys().nth(usize::from(last) % n).cloned() {
                m.remove(&key);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            a.remove(usize::from(last) % n);
        }
        _ => {}
    }
}

fuzz_target!(|input: Input| {
    let seed = usize::from(input.seed) % SEEDS.len();
    let mut event = seeds()[seed].clone();
    let mut raws = Raws(Vec::new());
    let unedited = input.retype.is_none() && input.edits.is_empty();

    match &input.retype {
        Some(Retype::Known(i)) => {
            event["type"] = Value::from(KNOWN_TYPES[usize::from(*i) % KNOWN_TYPES.len()]);
        }
        Some(Retype::Other(s)) => event["type"] = Value::String(s.clone()),
        None => {}
    }
    for edit in &input.edits {
        match edit {
            Edit::Set(path, json) => *node(&mut event, path) = raws.value(json),
            Edit::Remove(path) => remove(&mut event, path),
        }
    }
    let declared_type = event.get("type").and_then(Value::as_str).map(str::to_owned);
    let body = raws.splice(serde_json::to_string(&event).expect("Value serialises"));

    let v = StripeWebhookVerifier::new(Vec::new(), Duration::from_secs(300));
    let result = v.parse(body.as_bytes());

    if unedited {
        let parsed = result.as_ref().expect("an unedited seed parses");
        assert_eq!(parsed.kind, KNOWN_TYPES[seed]);
        assert_ne!(parsed.event, PaymentEvent::Ignored);
    }
    if let Ok(parsed) = &result {
        // A raw splice can replace `type` itself with a non-string only if it was set to a
        // placeholder, in which case `declared_type` is that placeholder, not the real type.
        let placeholder_type = declared_type
            .as_deref()
            .is_some_and(|t| t.starts_with('\u{1}'));
        if !placeholder_type {
            assert_eq!(Some(parsed.kind.as_str()), declared_type.as_deref());
            let known = KNOWN_TYPES.contains(&parsed.kind.as_str());
            assert_eq!(
                parsed.event == PaymentEvent::Ignored,
                !known,
                "type {:?} mapped to {:?}",
                parsed.kind,
                parsed.event
            );
        }
    }
});
