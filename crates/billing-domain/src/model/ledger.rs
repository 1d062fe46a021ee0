//! The webhook event ledger: every Stripe event we received, with what it did.

use chrono::{DateTime, Utc};

use crate::ids::EventId;

/// What became of a received event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventOutcome {
    /// Its effects were applied.
    Processed,
    /// Already in the ledger; nothing changed. (Never stored: a duplicate is answered
    /// from the existing row.)
    Duplicate,
    /// Older than the newest event already applied to the same object; nothing changed.
    Stale,
    /// A type we do not act on.
    Ignored,
    /// Its tenant (or plan) could not be resolved; kept for an operator to replay.
    Unmatched,
    /// Applying it failed in a way a redelivery cannot fix.
    Failed,
}

impl EventOutcome {
    /// Every outcome.
    pub const ALL: [Self; 6] = [
        Self::Processed,
        Self::Duplicate,
        Self::Stale,
        Self::Ignored,
        Self::Unmatched,
        Self::Failed,
    ];

    /// The lower-case name used in the API, the database and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
            Self::Ignored => "ignored",
            Self::Unmatched => "unmatched",
            Self::Failed => "failed",
        }
    }

    /// Parses [`Self::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Stripe's event id.
    pub event_id: EventId,
    /// Stripe's event type (`invoice.payment_succeeded`).
    pub kind: String,
    /// Stripe's `created`.
    pub created: DateTime<Utc>,
    /// API version the payload was rendered in.
    pub api_version: Option<String>,
    /// When we first received it.
    pub received_at: DateTime<Utc>,
    /// When its outcome was decided.
    pub processed_at: Option<DateTime<Utc>>,
    /// What it did.
    pub outcome: EventOutcome,
    /// Why, for stale, unmatched and failed events.
    pub detail: Option<String>,
    /// The raw event JSON as received (after its signature was verified).
    pub payload: String,
}

/// Filters for listing the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerQuery {
    /// Only this outcome.
    pub outcome: Option<EventOutcome>,
    /// Only this event type.
    pub kind: Option<String>,
}

/// How an event reached the ledger (its `source` column): Stripe's webhook, the catch-up
/// from Stripe's Events API (`jobs::catchup`), or an operator's replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EventSource {
    /// Delivered by Stripe's webhook.
    #[default]
    Webhook,
    /// Found missing by the catch-up and applied from `GET /v1/events`.
    Catchup,
    /// Fetched again by an operator's replay.
    Replay,
}

impl EventSource {
    /// Every source.
    pub const ALL: [Self; 3] = [Self::Webhook, Self::Catchup, Self::Replay];

    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Catchup => "catchup",
            Self::Replay => "replay",
        }
    }

    /// Parses [`Self::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}
