//! Stripe-shaped error bodies (`{"error":{type,code,message,param,doc_url}}`, docs/stripe.md, Errors) and
//! the [`Reply`] every endpoint produces.

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// A finished answer: status, JSON body, extra headers. `Request-Id` and the echoed headers
/// are added when it is rendered.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Self {
        Self::raw(status, Bytes::from(body.to_string()))
    }

    pub fn raw(status: u16, body: Bytes) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl From<Result<Value, ApiError>> for Reply {
    fn from(result: Result<Value, ApiError>) -> Self {
        match result {
            Ok(body) => Reply::json(200, &body),
            Err(error) => error.into(),
        }
    }
}

/// A Stripe API error.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub error_type: String,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// More fields of the error object (e.g. a declined card's `payment_intent`).
    pub extra: Option<Box<serde_json::Map<String, Value>>>,
}

impl ApiError {
    pub fn new(
        status: u16,
        error_type: &str,
        code: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_type: error_type.to_owned(),
            code: code.map(str::to_owned),
            message: message.into(),
            param: None,
            extra: None,
        }
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    /// 400 `parameter_missing`.
    pub fn missing(param: &str) -> Self {
        Self::new(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            format!("Missing required param: {param}."),
        )
        .with_param(param)
    }

    /// 400 `invalid_request_error` about one parameter.
    pub fn invalid(param: &str, code: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", code, message).with_param(param)
    }

    /// `resource_missing`: 400 when the id came in a parameter, 404 when it came in the path.
    pub fn no_such(status: u16, resource: &str, id: &str, param: &str) -> Self {
        Self::new(
            status,
            "invalid_request_error",
            Some("resource_missing"),
            format!("No such {resource}: '{id}'"),
        )
        .with_param(param)
    }

    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            None,
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
            ),
        )
    }

    pub fn to_json(&self) -> Value {
        let mut error = Map::new();
        if let Some(code) = &self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!(
                    "https://docs.stripe.com/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        error.insert("message".into(), json!(self.message));
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        error.insert("type".into(), json!(self.error_type));
        if let Some(extra) = &self.extra {
            for (key, value) in extra.iter() {
                error.insert(key.clone(), value.clone());
            }
        }
        json!({ "error": error })
    }
}

impl From<ApiError> for Reply {
    fn from(error: ApiError) -> Self {
        Reply::json(error.status, &error.to_json())
    }
}
