//! Stripe's nested `application/x-www-form-urlencoded` encoder.
//!
//! Hand-written on purpose: Stripe's v1 API wants nested maps as bracketed keys
//! (`subscription_data[metadata][planId]`), arrays as *indexed* brackets
//! (`line_items[0][price]`), booleans as `true`/`false`, an empty value (`key=`) to unset,
//! and — like its SDKs — literal `[`/`]` in keys while everything else is percent-encoded.
//! `serde_urlencoded` cannot nest, and `serde_qs` differs on arrays and booleans in ways
//! that are easy to get subtly wrong, so the ~100 lines below are the safer dependency.
//!
//! Spaces are encoded as `%20` (stripe-node's choice; the API accepts `+` too). Every byte
//! outside the RFC 3986 unreserved set (`A-Z a-z 0-9 - . _ ~`) is escaped, which also covers
//! the extra characters stripe-node escapes (`! ' ( ) *`).
//!
//! This module knows nothing about HTTP; the client hands the encoded string to the wire.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but the RFC 3986 unreserved characters.
const VALUE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Same as values, but brackets stay literal for readability (Stripe accepts both).
const KEY_SET: &AsciiSet = &VALUE_SET.remove(b'[').remove(b']');

/// One value of a form parameter, possibly nested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormValue {
    /// A string, sent percent-encoded.
    Str(String),
    /// An integer, sent in decimal.
    Int(i64),
    /// A boolean, sent as `true`/`false`.
    Bool(bool),
    /// `key=`: Stripe's way to unset a value.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "no operation unsets a value yet; the encoder supports it"
        )
    )]
    Empty,
    /// Nested map: `key[child]=…`, in insertion order.
    Map(Vec<(String, FormValue)>),
    /// Array: `key[0]=…`, `key[1]=…`.
    List(Vec<FormValue>),
}

impl From<&str> for FormValue {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for FormValue {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<i64> for FormValue {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl From<bool> for FormValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl FormValue {
    /// A nested map from `(key, value)` pairs.
    pub(crate) fn map<K: Into<String>, V: Into<FormValue>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// An ordered set of top-level form parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Form {
    params: Vec<(String, FormValue)>,
}

impl Form {
    /// An empty form.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter.
    pub(crate) fn push(&mut self, key: impl Into<String>, value: impl Into<FormValue>) {
        self.params.push((key.into(), value.into()));
    }

    /// Adds a parameter when present; absent values are skipped, as the SDKs do.
    pub(crate) fn push_opt<V: Into<FormValue>>(
        &mut self,
        key: impl Into<String>,
        value: Option<V>,
    ) {
        if let Some(v) = value {
            self.push(key, v);
        }
    }

    /// The flattened `(key, value)` pairs, unencoded: `("line_items[0][price]", "price_1")`.
    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (key, value) in &self.params {
            flatten(key.clone(), value, &mut out);
        }
        out
    }

    /// The encoded body (or query string, without the leading `?`).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (key, value)) in self.pairs().iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.extend(utf8_percent_encode(key, KEY_SET));
            out.push('=');
            out.extend(utf8_percent_encode(value, VALUE_SET));
        }
        out
    }
}

/// Percent-encodes one path segment or free-standing value (everything but the RFC 3986
/// unreserved characters), so that an id holding `/`, `?` or `#` cannot change the path.
pub(crate) fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, VALUE_SET).to_string()
}

fn flatten(key: String, value: &FormValue, out: &mut Vec<(String, String)>) {
    match value {
        FormValue::Str(s) => out.push((key, s.clone())),
        FormValue::Int(n) => out.push((key, n.to_string())),
        FormValue::Bool(b) => out.push((key, b.to_string())),
        FormValue::Empty => out.push((key, String::new())),
        FormValue::Map(entries) => {
            for (child, v) in entries {
                flatten(format!("{key}[{child}]"), v, out);
            }
        }
        FormValue::List(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(format!("{key}[{i}]"), v, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(key: &str, value: impl Into<FormValue>) -> String {
        let mut f = Form::new();
        f.push(key, value);
        f.encode()
    }

    #[test]
    fn plain_strings_are_sent_as_is() {
        assert_eq!(one("mode", "subscription"), "mode=subscription");
    }

    #[test]
    fn unreserved_characters_are_not_escaped() {
        assert_eq!(one("k", "aZ09-._~"), "k=aZ09-._~");
    }

    #[test]
    fn integers_and_booleans_use_their_plain_spelling() {
        assert_eq!(one("quantity", 1_i64), "quantity=1");
        assert_eq!(one("amount", -42_i64), "amount=-42");
        assert_eq!(one("confirm", true), "confirm=true");
        assert_eq!(one("confirm", false), "confirm=false");
    }

    #[test]
    fn an_empty_value_is_sent_as_key_equals_nothing() {
        assert_eq!(one("metadata[old]", FormValue::Empty), "metadata[old]=");
        assert_eq!(one("description", ""), "description=");
    }

    #[test]
    fn nested_maps_become_bracketed_keys() {
        let v = FormValue::map([(
            "metadata",
            FormValue::map([("planId", "plan-pro"), ("tenantId", "t1")]),
        )]);

        assert_eq!(
            one("subscription_data", v),
            "subscription_data[metadata][planId]=plan-pro&subscription_data[metadata][tenantId]=t1"
        );
    }

    #[test]
    fn arrays_are_indexed_from_zero() {
        let items = FormValue::List(vec![
            FormValue::Map(vec![
                ("price".into(), "price_a".into()),
                ("quantity".into(), 1_i64.into()),
            ]),
            FormValue::Map(vec![("price".into(), "price_b".into())]),
        ]);

        assert_eq!(
            one("line_items", items),
            "line_items[0][price]=price_a&line_items[0][quantity]=1&line_items[1][price]=price_b"
        );
    }

    #[test]
    fn reserved_characters_in_values_are_percent_encoded() {
        assert_eq!(one("k", "a&b"), "k=a%26b");
        assert_eq!(one("k", "a=b"), "k=a%3Db");
        assert_eq!(one("k", "a+b"), "k=a%2Bb");
        assert_eq!(one("k", "100%"), "k=100%25");
        assert_eq!(one("k", "a[b]"), "k=a%5Bb%5D");
        assert_eq!(one("k", "a b"), "k=a%20b");
        assert_eq!(one("k", "Jane's (beta)*!"), "k=Jane%27s%20%28beta%29%2A%21");
    }

    #[test]
    fn unicode_is_encoded_as_utf8_bytes() {
        assert_eq!(one("k", "é€"), "k=%C3%A9%E2%82%AC");
    }

    #[test]
    fn reserved_characters_in_keys_are_encoded_but_brackets_stay_literal() {
        assert_eq!(one("metadata[a&b=c]", "v"), "metadata[a%26b%3Dc]=v");
        assert_eq!(one("metadata[é]", "v"), "metadata[%C3%A9]=v");
    }

    #[test]
    fn a_success_url_with_the_session_template_round_trips() {
        let url = "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}";

        let encoded = one("success_url", url);

        assert_eq!(
            encoded,
            "success_url=https%3A%2F%2Fapp.example.com%2Fbilling%2Fsuccess%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D"
        );
        let decoded: Vec<(String, String)> = url::form_urlencoded::parse(encoded.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(decoded, vec![("success_url".to_owned(), url.to_owned())]);
    }

    #[test]
    fn absent_optional_values_are_skipped() {
        let mut f = Form::new();
        f.push("a", "1");
        f.push_opt::<&str>("b", None);
        f.push_opt("c", Some(3_i64));

        assert_eq!(f.encode(), "a=1&c=3");
    }

    #[test]
    fn pairs_are_the_unencoded_flattened_keys_and_values() {
        let mut f = Form::new();
        f.push("metadata", FormValue::map([("tenantId", "a b")]));

        assert_eq!(
            f.pairs(),
            vec![("metadata[tenantId]".to_owned(), "a b".to_owned())]
        );
    }

    #[test]
    fn an_empty_form_encodes_to_an_empty_string() {
        assert_eq!(Form::new().encode(), "");
    }
}
