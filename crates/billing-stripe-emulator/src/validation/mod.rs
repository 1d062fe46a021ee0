//! Requests validated as Stripe validates them.
//!
//! [`check`] looks an operation up in a table of its parameters (`params.json`, generated
//! by `scripts/stripe/gen_params.py` from Stripe's published OpenAPI description and
//! corrected for the 2026 API by `scripts/stripe/gen_params.overrides.json`) and refuses
//! what Stripe refuses: an unknown parameter, a malformed one (not an integer, not a
//! boolean, not one of an enum's values, a string too long, an array index that is not a
//! number, metadata over Stripe's limits) and a missing required one. The [`ParamError`]
//! carries Stripe's `param`, `message` and `code`; the server answers it as a 400
//! `invalid_request_error`.
//!
//! Regenerate the table after changing the script or the overrides with
//! `python3 scripts/stripe/gen_params.py SPEC` where SPEC is Stripe's description
//! `openapi.spec3.2023-09-12.api-2023-08-16.json` (kept in the shared `stripe/spec/`
//! folder, not in the repository); `--check` tells whether the committed table is what
//! the script makes, and `python3 -m unittest scripts/stripe/test_gen_params.py` tests
//! the script itself.

mod schema;
mod tree;

#[cfg(test)]
mod tests;

use schema::{Kind, Schema};
use tree::{join, Node};

/// Metadata limits (docs/stripe.md, Wire): keys, key length, value length.
const METADATA_MAX_KEYS: usize = 50;
const METADATA_KEY_MAX: usize = 40;
const METADATA_VALUE_MAX: usize = 500;

/// A parameter Stripe would refuse, as its 400 `invalid_request_error` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter as sent, in bracket notation (`line_items[0][foo]`, `metadata`).
    pub param: String,
    /// Stripe's message (`Received unknown parameter: foo`).
    pub message: String,
    /// Stripe's error code where it gives one (`parameter_unknown`, `parameter_missing`,
    /// `parameter_invalid_integer`, `parameter_invalid_empty`).
    pub code: Option<&'static str>,
}

impl ParamError {
    fn new(param: impl Into<String>, code: Option<&'static str>, message: String) -> Self {
        Self {
            param: param.into(),
            message,
            code,
        }
    }

    fn unknown(param: String) -> Self {
        let message = format!("Received unknown parameter: {param}");
        Self::new(param, Some("parameter_unknown"), message)
    }

    fn missing(param: String) -> Self {
        let message = format!("Missing required param: {param}.");
        Self::new(param, Some("parameter_missing"), message)
    }

    fn empty(param: String) -> Self {
        let message = format!(
            "You passed an empty string for '{param}'. We assume empty values are an attempt to unset a parameter; however '{param}' cannot be unset. You should remove '{param}' from your request or supply a non-empty value."
        );
        Self::new(param, Some("parameter_invalid_empty"), message)
    }
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.param)
    }
}

impl std::error::Error for ParamError {}

/// Checks the parameters of one request against the operation's table entry.
///
/// `method` is the HTTP method (`POST`); `path_template` the path as the router knows it
/// (`/v1/checkout/sessions/{session}`; the placeholder's name does not matter, and a
/// concrete path such as `/v1/invoices/in_123` is matched too); `params` the decoded
/// query or form pairs with bracket keys as sent (`line_items[0][price]`, `expand[]`).
/// Operations not in the table pass: the router answers those.
///
/// # Errors
/// The first parameter Stripe would refuse.
pub fn check(
    method: &str,
    path_template: &str,
    params: &[(String, String)],
) -> Result<(), ParamError> {
    let Some(operation) = find(method, path_template) else {
        return Ok(());
    };
    let hash = tree::build(params).map_err(|tree::Clash(param)| {
        let message = format!("Invalid hash: {param} was sent both as a value and as a hash");
        ParamError::new(param, None, message)
    })?;
    match &operation.root.kind {
        Kind::Object { props, required } => check_object("", props, required, &hash),
        _ => Ok(()),
    }
}

/// Whether the table has the operation (for the router's tests and diagnostics).
#[must_use]
pub fn knows(method: &str, path_template: &str) -> bool {
    find(method, path_template).is_some()
}

fn find(method: &str, path: &str) -> Option<&'static schema::Operation> {
    let path = path.split('?').next().unwrap_or_default();
    let wanted = schema::split_path(path);
    let is_placeholder = |s: &str| s.starts_with('{') && s.ends_with('}');
    schema::operations()?
        .iter()
        .filter(|op| op.method.eq_ignore_ascii_case(method) && op.segments.len() == wanted.len())
        .filter_map(|op| {
            let mut literal_hits = 0usize;
            for (ours, theirs) in op.segments.iter().zip(&wanted) {
                match (is_placeholder(ours), is_placeholder(theirs)) {
                    (true, _) => {}
                    (false, false) if ours == theirs => literal_hits += 1,
                    _ => return None,
                }
            }
            Some((literal_hits, op))
        })
        // `/v1/invoices/create_preview` beats `/v1/invoices/{invoice}`.
        .max_by_key(|(hits, _)| *hits)
        .map(|(_, op)| op)
}

fn check_object(
    path: &str,
    props: &std::collections::BTreeMap<String, Schema>,
    required: &[String],
    hash: &[(String, Node)],
) -> Result<(), ParamError> {
    if let Some((key, _)) = hash.iter().find(|(k, _)| !props.contains_key(k)) {
        return Err(ParamError::unknown(join(path, key)));
    }
    for (key, node) in hash {
        if let Some(schema) = props.get(key) {
            check_node(&join(path, key), schema, node)?;
        }
    }
    match required.iter().find(|r| !hash.iter().any(|(k, _)| k == *r)) {
        Some(name) => Err(ParamError::missing(join(path, name))),
        None => Ok(()),
    }
}

fn check_node(path: &str, schema: &Schema, node: &Node) -> Result<(), ParamError> {
    if schema.empty && matches!(node, Node::Value(v) if v.is_empty()) {
        return Ok(());
    }
    match (&schema.kind, node) {
        (Kind::Any, _) => Ok(()),
        (Kind::AnyOf(choices), _) => check_any_of(path, choices, node),
        (kind, Node::Value(value)) => check_value(path, kind, value),
        (Kind::Object { props, required }, Node::Hash(hash)) => {
            check_object(path, props, required, hash)
        }
        (Kind::Map { values, metadata }, Node::Hash(hash)) => {
            if *metadata {
                check_metadata(path, hash)
            } else {
                hash.iter()
                    .try_for_each(|(key, node)| check_node(&join(path, key), values, node))
            }
        }
        (Kind::Array(items), Node::Hash(hash)) => check_array(path, items, hash),
        // A hash where a plain value belongs: its keys are unknown parameters.
        (_, Node::Hash(hash)) => {
            let key = match hash.first() {
                Some((k, _)) if k.is_empty() => "0",
                Some((k, _)) => k.as_str(),
                None => "",
            };
            Err(ParamError::unknown(join(path, key)))
        }
    }
}

fn check_any_of(path: &str, choices: &[Schema], node: &Node) -> Result<(), ParamError> {
    let fits = |s: &&Schema| match node {
        Node::Value(_) => s.kind.takes_value() || matches!(s.kind, Kind::AnyOf(_)),
        Node::Hash(_) => !s.kind.takes_value() || matches!(s.kind, Kind::Any),
    };
    let mut first_error = None;
    for choice in choices.iter().filter(fits) {
        match check_node(path, choice, node) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (first_error, choices.first()) {
        (Some(e), _) => Err(e),
        (None, Some(choice)) => check_node(path, choice, node),
        (None, None) => Ok(()),
    }
}

fn check_value(path: &str, kind: &Kind, value: &str) -> Result<(), ParamError> {
    match kind {
        Kind::Integer => {
            if value.parse::<i64>().is_err() {
                return Err(ParamError::new(
                    path,
                    Some("parameter_invalid_integer"),
                    format!("Invalid integer: {value}"),
                ));
            }
        }
        Kind::Boolean => {
            if value != "true" && value != "false" {
                return Err(ParamError::new(
                    path,
                    None,
                    format!("Invalid boolean: {value}"),
                ));
            }
        }
        _ if value.is_empty() => return Err(ParamError::empty(path.to_owned())),
        Kind::String { max } => {
            let length = value.chars().count();
            if let Some(max) = max.filter(|max| length > *max) {
                return Err(ParamError::new(
                    path,
                    None,
                    format!(
                        "Invalid string: {}; must be at most {max} characters",
                        abbreviate(value)
                    ),
                ));
            }
        }
        Kind::Decimal => {
            if !is_decimal(value) {
                return Err(ParamError::new(
                    path,
                    None,
                    format!("Invalid decimal: {value}"),
                ));
            }
        }
        Kind::Number => {
            if !value.parse::<f64>().is_ok_and(f64::is_finite) {
                return Err(ParamError::new(
                    path,
                    None,
                    format!("Invalid float: {value}"),
                ));
            }
        }
        Kind::Enum(values) => {
            if !values.iter().any(|v| v == value) {
                return Err(ParamError::new(
                    path,
                    None,
                    format!("Invalid {path}: must be one of {}", one_of(values)),
                ));
            }
        }
        Kind::Object { .. } | Kind::Map { .. } => {
            return Err(ParamError::new(path, None, "Invalid hash".to_owned()));
        }
        Kind::Array(_) => {
            return Err(ParamError::new(path, None, "Invalid array".to_owned()));
        }
        Kind::AnyOf(_) | Kind::Any => {}
    }
    Ok(())
}

fn check_array(path: &str, items: &Schema, hash: &[(String, Node)]) -> Result<(), ParamError> {
    // Indexed (`a[0]`, as the SDKs send; named by the index sent) or appended (`a[]`,
    // named by position).
    let mut indexed: Vec<(usize, &Node)> = Vec::with_capacity(hash.len());
    for (key, node) in hash {
        if key.is_empty() {
            indexed.push((usize::MAX, node));
            continue;
        }
        if !key.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParamError::new(path, None, "Invalid array".to_owned()));
        }
        match key.parse::<usize>() {
            Ok(i) if i < usize::MAX => indexed.push((i, node)),
            _ => return Err(ParamError::new(path, None, "Invalid array".to_owned())),
        }
    }
    for (position, (index, node)) in indexed.into_iter().enumerate() {
        let label = if index == usize::MAX { position } else { index };
        check_node(&join(path, &label.to_string()), items, node)?;
    }
    Ok(())
}

fn check_metadata(path: &str, hash: &[(String, Node)]) -> Result<(), ParamError> {
    if hash.len() > METADATA_MAX_KEYS {
        return Err(ParamError::new(
            path,
            None,
            format!(
                "Metadata can have up to {METADATA_MAX_KEYS} keys, but you've set {}.",
                hash.len()
            ),
        ));
    }
    for (key, node) in hash {
        if key.is_empty() || key.chars().count() > METADATA_KEY_MAX {
            return Err(ParamError::new(
                path,
                None,
                format!("Invalid key: {key} must be a string under {METADATA_KEY_MAX} characters"),
            ));
        }
        let value = match node {
            Node::Value(v) if v.chars().count() <= METADATA_VALUE_MAX => continue,
            Node::Value(v) => v.clone(),
            Node::Hash(_) => render(node),
        };
        return Err(ParamError::new(
            path,
            None,
            format!("Invalid val: {value} must be a string under {METADATA_VALUE_MAX} characters"),
        ));
    }
    Ok(())
}

/// `payment, setup, or subscription` / `reusable or single_use`, as Stripe lists them.
fn one_of(values: &[String]) -> String {
    match values {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [rest @ .., last] => format!("{}, or {last}", rest.join(", ")),
    }
}

/// Long values are shown as their first and last ten characters, as Stripe does.
fn abbreviate(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 20 {
        return value.to_owned();
    }
    let head: String = chars.iter().take(10).collect();
    let tail: String = chars.iter().skip(chars.len() - 10).collect();
    format!("{head}...{tail}")
}

fn is_decimal(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    !(whole.is_empty() && fraction.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.ends_with('.'))
}

/// A hash shown the way Stripe's messages show one: `{"k"=>"v"}`.
fn render(node: &Node) -> String {
    match node {
        Node::Value(v) => format!("{v:?}"),
        Node::Hash(hash) => {
            let inner: Vec<String> = hash
                .iter()
                .map(|(k, v)| format!("{k:?}=>{}", render(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}
