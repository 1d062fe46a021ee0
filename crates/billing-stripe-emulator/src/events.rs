//! Events: made by every state change (`emit`), listed and retrieved through the API.

use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::request::Params;
use crate::store::{now, random_id, Delivery, EventRecord, Store};

/// The API version every object and event is rendered in.
pub const API_VERSION: &str = "2026-07-29.dahlia";

/// How long events are listed and retrievable.
const RETENTION: i64 = 30 * 86_400;

/// Records an event of `event_type` about `object` at `created` (the object's clock time),
/// with `previous` as `data.previous_attributes` (only the changed keys, old values).
pub(crate) fn emit(
    store: &mut Store,
    event_type: &str,
    object: &Value,
    previous: Option<Map<String, Value>>,
    created: i64,
) -> String {
    let id = random_id("evt_", 24);
    let mut data = json!({ "object": object });
    if let Some(previous) = previous.filter(|p| !p.is_empty()) {
        data["previous_attributes"] = Value::Object(previous);
    }
    let request = match &store.request {
        Some((request_id, key)) => json!({ "id": request_id, "idempotency_key": key }),
        None => json!({ "id": null, "idempotency_key": null }),
    };
    let body = json!({
        "id": id, "object": "event", "api_version": API_VERSION, "created": created,
        "data": data, "livemode": false, "pending_webhooks": 0, "request": request,
        "type": event_type,
    });
    let delivery = if store.settings.deliver {
        Delivery::Pending {
            attempts: 0,
            next_at: Instant::now(),
        }
    } else {
        Delivery::NoEndpoint
    };
    let seq = store.next_seq();
    store.event_index.insert(id.clone(), store.events.len());
    store.events.push(EventRecord {
        id: id.clone(),
        seq,
        created,
        event_type: event_type.to_owned(),
        body,
        raw: None,
        delivery,
    });
    id
}

/// The keys of `new` whose values differ from `old`, with their old values.
pub(crate) fn changed(old: &Value, new: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter(|key| old.get(**key) != new.get(**key))
        .map(|key| {
            (
                (*key).to_owned(),
                old.get(*key).cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// `GET /v1/events/{id}`.
pub(crate) fn retrieve(store: &Store, id: &str) -> Result<bytes::Bytes, ApiError> {
    store
        .event_index
        .get(id)
        .and_then(|index| store.events.get(*index))
        .filter(|event| event.raw.is_some() || event.created >= now() - RETENTION)
        .map(crate::store::EventRecord::render)
        .ok_or_else(|| ApiError::no_such(404, "event", id, "id"))
}

fn parse_int(params: Params<'_>, key: &str) -> Result<Option<i64>, ApiError> {
    params
        .non_empty(key)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                ApiError::invalid(
                    key,
                    Some("parameter_invalid_integer"),
                    format!("Invalid integer: {v}"),
                )
            })
        })
        .transpose()
}

/// `GET /v1/events`: newest first, filters on `created`, `type`/`types[]`,
/// `delivery_success`, cursor pagination, the 30-day window.
pub(crate) fn list(store: &Store, params: Params<'_>) -> Result<Value, ApiError> {
    let limit = parse_int(params, "limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            None,
            format!("This value must be between 1 and 100 (it currently is {limit})."),
        ));
    }
    let created = |op: &str| parse_int(params, &format!("created[{op}]"));
    let (gt, gte, lt, lte) = (
        created("gt")?,
        created("gte")?,
        created("lt")?,
        created("lte")?,
    );
    let exact = parse_int(params, "created")?;
    let single_type = params.non_empty("type");
    let types: Vec<&str> = params
        .0
        .iter()
        .filter(|(k, _)| k.starts_with("types[") && k.ends_with(']'))
        .map(|(_, v)| v.as_str())
        .collect();
    if single_type.is_some() && !types.is_empty() {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            None,
            "You may only specify one of these parameters: type, types.",
        ));
    }
    if types.len() > 20 {
        return Err(ApiError::invalid(
            "types",
            None,
            "You may only pass up to 20 types.",
        ));
    }
    let delivery_success = match params.non_empty("delivery_success") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid(
                "delivery_success",
                Some("parameter_invalid_boolean"),
                format!("Invalid boolean: {other}"),
            ))
        }
    };
    let type_matches = |t: &str| {
        let matches = |pattern: &str| {
            pattern
                .strip_suffix('*')
                .map_or(pattern == t, |prefix| t.starts_with(prefix))
        };
        single_type.is_none_or(matches) && (types.is_empty() || types.iter().any(|p| matches(p)))
    };
    let cursor = |key: &str| -> Result<Option<u64>, ApiError> {
        params
            .non_empty(key)
            .map(|id| {
                store
                    .event_index
                    .get(id)
                    .map(|i| store.events[*i].seq)
                    .ok_or_else(|| ApiError::no_such(400, "event", id, key))
            })
            .transpose()
    };
    let (after, before) = (cursor("starting_after")?, cursor("ending_before")?);
    let oldest = now() - RETENTION;
    let mut matching: Vec<&EventRecord> = store
        .events
        .iter()
        .filter(|e| e.raw.is_none() && e.created >= oldest)
        .filter(|e| gt.is_none_or(|t| e.created > t) && gte.is_none_or(|t| e.created >= t))
        .filter(|e| lt.is_none_or(|t| e.created < t) && lte.is_none_or(|t| e.created <= t))
        .filter(|e| exact.is_none_or(|t| e.created == t))
        .filter(|e| type_matches(&e.event_type))
        .filter(|e| delivery_success.is_none_or(|ok| e.delivered() == ok))
        .collect();
    // Newest first: by `created`, then by creation order within a second.
    matching.sort_by_key(|e| std::cmp::Reverse((e.created, e.seq)));
    let position = |seq: u64| matching.iter().position(|e| e.seq == seq);
    let limit = usize::try_from(limit).unwrap_or(10);
    let (page, has_more): (Vec<&EventRecord>, bool) = if let Some(after) = after {
        let start = position(after).map_or(matching.len(), |i| i + 1);
        let rest = &matching[start.min(matching.len())..];
        (
            rest.iter().take(limit).copied().collect(),
            rest.len() > limit,
        )
    } else if let Some(before) = before {
        let end = position(before).unwrap_or(0);
        let newer = &matching[..end];
        let start = newer.len().saturating_sub(limit);
        (newer[start..].to_vec(), start > 0)
    } else {
        (
            matching.iter().take(limit).copied().collect(),
            matching.len() > limit,
        )
    };
    let data: Vec<Value> = page
        .iter()
        .filter_map(|e| serde_json::from_slice(&e.render()).ok())
        .collect();
    Ok(json!({ "object": "list", "data": data, "has_more": has_more, "url": "/v1/events" }))
}
