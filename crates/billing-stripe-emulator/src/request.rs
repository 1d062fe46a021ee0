//! What the fake saw: one [`RecordedRequest`] per HTTP request, plus the form-parameter
//! helpers the endpoints use to read Stripe's bracket-notation keys.

use serde_json::{Map, Value};

/// One HTTP request as received by the fake, before any failure injection or routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, upper case (`POST`, `GET`).
    pub method: String,
    /// Path without the query string (`/v1/payment_intents`).
    pub path: String,
    /// Raw query string without the `?`, if any.
    pub query: Option<String>,
    /// Headers in arrival order; names are lower case.
    pub headers: Vec<(String, String)>,
    /// The body decoded as `application/x-www-form-urlencoded` pairs, in order, with keys
    /// kept as sent (`line_items[0][price]`). Empty for non-form bodies.
    pub form: Vec<(String, String)>,
    /// The raw body bytes.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub(crate) fn new(parts: &hyper::http::request::Parts, body: Vec<u8>) -> Self {
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let content_type = headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .map(|(_, value)| value.as_str());
        // Stripe's SDKs always send form bodies; a body without a content type is read as one too.
        let form = match content_type {
            Some(ct) if !ct.contains("x-www-form-urlencoded") => Vec::new(),
            _ => decode_pairs(&body),
        };
        Self {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
            form,
            body,
        }
    }

    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first form value sent under `key` (exact bracket key, e.g. `metadata[order]`).
    #[must_use]
    pub fn form_value(&self, key: &str) -> Option<&str> {
        Params(&self.form).get(key)
    }

    /// The query string decoded into pairs.
    #[must_use]
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| decode_pairs(q.as_bytes()))
            .unwrap_or_default()
    }
}

fn decode_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// Read access to decoded Stripe parameters (bracket keys as sent).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params<'a>(pub &'a [(String, String)]);

impl<'a> Params<'a> {
    /// First value for `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// First non-empty value for `key`.
    pub fn non_empty(&self, key: &str) -> Option<&'a str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// `metadata[KEY]=VALUE` pairs as a JSON map; empty values (Stripe's "unset") are skipped.
    pub fn metadata(&self, prefix: &str) -> Map<String, Value> {
        let open = format!("{prefix}[");
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let inner = k.strip_prefix(&open)?.strip_suffix(']')?;
                (!v.is_empty() && !inner.contains('['))
                    .then(|| (inner.to_owned(), Value::from(v.as_str())))
            })
            .collect()
    }

    /// Values of `expand[]` / `expand[N]`.
    pub fn expand(&self) -> Vec<&'a str> {
        self.0
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix("expand[")
                    .and_then(|rest| rest.strip_suffix(']'))
                    .is_some_and(|idx| idx.chars().all(|c| c.is_ascii_digit()))
            })
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The parameters sorted, used to compare two requests made with one idempotency key.
    pub fn fingerprint(&self) -> Vec<(String, String)> {
        let mut pairs = self.0.to_vec();
        pairs.sort();
        pairs
    }
}
