//! How an emulator is started: address, webhook forwarding, retry schedules, seeds.

use std::net::SocketAddr;
use std::time::Duration;

/// What happens to a subscription when the last automatic retry of its renewal fails
/// (Stripe's "Subscription status" setting under failed-payment retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRetries {
    /// The subscription is canceled (`customer.subscription.deleted`); the invoice stays open.
    Cancel,
    /// The subscription becomes `unpaid`; the invoice stays open.
    Unpaid,
    /// The subscription stays `past_due`.
    PastDue,
}

/// A price the emulator knows from the start (with its product), e.g. the plans `--dev` seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSeed {
    /// The price id, e.g. `price_basic_monthly`.
    pub id: String,
    /// The product's name (the product gets the id `prod_` + the price id's tail).
    pub product_name: String,
    /// Amount in the currency's minor unit.
    pub unit_amount: i64,
    /// Lower-case ISO currency, e.g. `usd`.
    pub currency: String,
    /// `day`, `week`, `month` or `year`; `None` for a one-time price.
    pub interval: Option<String>,
}

/// The configuration of a [`crate::StripeEmulator`].
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub addr: SocketAddr,
    /// Where events are POSTed (e.g. `http://127.0.0.1:8087/api/v1/billing/stripe/webhook`);
    /// `None` delivers nothing (events are still listed, with `pending_webhooks: 0`).
    pub forward_to: Option<String>,
    /// The endpoint secret deliveries are signed with (`whsec_...`).
    pub webhook_secret: String,
    /// The only API key accepted; `None` accepts any `sk_test_...` key.
    pub api_key: Option<String>,
    /// Waits between delivery attempts of one event: the first retry after `[0]`, and so on;
    /// when they are used up the event is given up (`delivery_success=false`).
    pub webhook_retries: Vec<Duration>,
    /// How long a delivery may take before it counts as failed.
    pub webhook_timeout: Duration,
    /// Deliver due events in random order instead of creation order.
    pub shuffle_deliveries: bool,
    /// Serve the hosted pages (Checkout, Customer Portal, invoice payment) and hand out URLs
    /// pointing at them; when off, URLs point at Stripe's hosts as Stripe's API would.
    pub hosted_pages: bool,
    /// Any `cus_...` id counts as an existing customer.
    pub accept_any_customer: bool,
    /// An unknown price id in a Checkout line item is created on the fly (1000 usd a month)
    /// instead of answering `No such price`.
    pub accept_unknown_prices: bool,
    /// Prices (with products) known from the start.
    pub prices: Vec<PriceSeed>,
    /// Days from one failed renewal attempt to the next retry: `[3, 5, 7]` is three retries,
    /// 3, 5 and 7 days apart (four attempts over 15 days).
    pub payment_retry_days: Vec<i64>,
    /// The subscription's fate when the retries are used up.
    pub after_retries: AfterRetries,
    /// Stripe's rate limit: API requests per second (`None`: unlimited).
    pub rate_limit: Option<u32>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            forward_to: None,
            webhook_secret: "whsec_test_emulator".to_owned(),
            api_key: None,
            webhook_retries: vec![
                Duration::from_millis(200),
                Duration::from_secs(1),
                Duration::from_secs(5),
            ],
            webhook_timeout: Duration::from_secs(10),
            shuffle_deliveries: false,
            hosted_pages: true,
            accept_any_customer: false,
            accept_unknown_prices: false,
            prices: Vec::new(),
            payment_retry_days: vec![3, 5, 7],
            after_retries: AfterRetries::Cancel,
            rate_limit: None,
        }
    }
}

impl EmulatorConfig {
    /// The settings of [`crate::FakeStripe::start`]: Stripe's hosts in URLs, any `cus_` id
    /// and any price accepted, no forwarding.
    #[must_use]
    pub fn lenient() -> Self {
        Self {
            hosted_pages: false,
            accept_any_customer: true,
            accept_unknown_prices: true,
            ..Self::default()
        }
    }
}
