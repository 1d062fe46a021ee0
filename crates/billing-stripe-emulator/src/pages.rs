//! Hosted pages: server-rendered HTML, no JavaScript, no external assets. Checkout at a
//! session's `url`, the Customer Portal at a portal session's `url`, an invoice's
//! `hosted_invoice_url`, paying a PaymentIntent from its client secret, and the 3-D Secure
//! step of `next_action.redirect_to_url`.

use serde_json::Value;

use crate::api::Call;
use crate::api_billing::{authenticate_intent, confirm_payment_intent};
use crate::api_subscriptions::{resume_subscription, update_subscription};
use crate::checkout::{self, Authentication, CheckoutError};
use crate::error::Reply;
use crate::request::{Params, RecordedRequest};
use crate::store::{int_of, str_of, Card, Store};

mod html;

use html::{escape, money, page};

/// The page for `req`, `None` when the path is not one of the hosted pages.
pub(crate) fn handle(store: &mut Store, req: &RecordedRequest) -> Option<Reply> {
    if !store.settings.hosted_pages {
        return None;
    }
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let form = Params(&req.form);
    Some(match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["c", "pay", id]) => checkout_page(store, id, None),
        ("POST", ["c", "pay", id]) => pay_checkout(store, id, form, Authentication::Pending),
        ("POST", ["c", "pay", id, "authenticate"]) => {
            let answer = if form.get("outcome") == Some("approve") {
                Authentication::Approve
            } else {
                Authentication::Fail
            };
            pay_checkout(store, id, form, answer)
        }
        ("GET", ["p", "session", token]) => portal_page(store, token, None),
        ("POST", ["p", "session", token, action]) => portal_action(store, token, action, form),
        ("GET", ["i", invoice]) => invoice_page(store, invoice, None),
        ("GET", ["i", invoice, "pdf"]) => invoice_pdf(store, invoice),
        ("POST", ["i", invoice, "pay"]) => pay_invoice(store, invoice, form),
        ("GET", ["pay", "authenticate", pi]) => authenticate_page(store, pi),
        ("POST", ["pay", "authenticate", pi]) => {
            let approve = form.get("outcome") == Some("approve");
            match authenticate_intent(store, pi, approve) {
                Ok(intent) => intent_result(&intent),
                Err(error) => page(
                    400,
                    "Authentication",
                    &format!("<p class=error>{}</p>", escape(&error.message)),
                ),
            }
        }
        ("GET", ["pay", secret]) => intent_page(store, secret, None),
        ("POST", ["pay", secret]) => pay_intent(store, secret, form),
        _ => return None,
    })
}

fn redirect(location: &str) -> Reply {
    Reply::raw(303, bytes::Bytes::new()).with_header("location", location)
}

const TEST_CARDS: &str = "<details open><summary>Test cards</summary><ul>\
<li><code>4242 4242 4242 4242</code> pays</li>\
<li><code>4000 0000 0000 0002</code> is declined</li>\
<li><code>4000 0025 0000 3155</code> asks for authentication</li>\
<li><code>4000 0000 0000 9995</code> is declined (insufficient funds)</li>\
<li><code>4000 0000 0000 0341</code> pays now, fails on renewals (not at Checkout)</li>\
</ul></details>";

fn card_form(action: &str, button: &str) -> String {
    format!(
        "<form method=post action=\"{action}\"><label>Card number <input name=card value=\"4242 4242 4242 4242\" autocomplete=off></label>\
         <div class=row><label>Expiry <input name=exp value=\"12 / 34\"></label><label>CVC <input name=cvc value=\"123\"></label></div>\
         <button type=submit class=wide>{button}</button></form>{TEST_CARDS}"
    )
}

fn checkout_page(store: &Store, id: &str, error: Option<&str>) -> Reply {
    let Some(session) = store.checkout_sessions.get(id) else {
        return page(
            404,
            "Checkout",
            "<p class=error>This Checkout Session does not exist.</p>",
        );
    };
    let status = str_of(session, "status").unwrap_or_default();
    if status == "complete" {
        return receipt_page(store, session, id);
    }
    if status != "open" {
        return page(
            200,
            "Checkout",
            &format!("<p>This Checkout Session is {}.</p>", escape(status)),
        );
    }
    let (rows, total, currency) = line_rows(store, id);
    let trial = store.session_trial_days.get(id).map_or(String::new(), |d| {
        format!("<p class=note>{d} days free, then billed every period.</p>")
    });
    let error = error.map_or(String::new(), |e| {
        format!("<p class=error>{}</p>", escape(e))
    });
    let email = str_of(session, "customer_email")
        .map_or(String::new(), |e| format!("<p>Paying as {}</p>", escape(e)));
    let cancel = str_of(session, "cancel_url").map_or(String::new(), |url| {
        format!("<p><a href=\"{}\">Cancel and go back</a></p>", escape(url))
    });
    let body = format!(
        "{error}<table>{rows}<tr class=total><td>Total due today</td><td class=num>{}</td></tr></table>{trial}{email}{}{cancel}",
        money(if store.session_trial_days.contains_key(id) { 0 } else { total }, &currency),
        card_form(&format!("/c/pay/{id}"), "Pay")
    );
    page(200, "Checkout", &body)
}

/// The session's line items as table rows, their total and currency.
fn line_rows(store: &Store, id: &str) -> (String, i64, String) {
    let mut rows = String::new();
    let mut total = 0;
    let mut currency = "usd".to_owned();
    for (price_id, quantity) in store
        .session_lines
        .get(id)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let price = store.prices.get(price_id);
        let amount = price.map_or(1000, |p| int_of(p, "unit_amount")) * quantity;
        total += amount;
        currency = price
            .and_then(|p| str_of(p, "currency"))
            .unwrap_or("usd")
            .to_owned();
        let product = price
            .and_then(|p| str_of(p, "product"))
            .and_then(|p| store.products.get(p))
            .and_then(|p| str_of(p, "name"))
            .unwrap_or(price_id);
        let interval = price
            .and_then(|p| p["recurring"]["interval"].as_str())
            .map_or(String::new(), |i| format!(" / {i}"));
        rows.push_str(&format!(
            "<tr><td>{} × {}</td><td class=num>{}{}</td></tr>",
            quantity,
            escape(product),
            money(amount, &currency),
            escape(&interval)
        ));
    }
    (rows, total, currency)
}

/// A completed session's page (where a test's `success_url` may point, and what a
/// second visit of the link shows): what was bought, what was paid, the subscription.
fn receipt_page(store: &Store, session: &Value, id: &str) -> Reply {
    let (rows, _, currency) = line_rows(store, id);
    let paid = money(int_of(session, "amount_total"), &currency);
    let subscription = str_of(session, "subscription")
        .and_then(|s| store.subscriptions.get(s))
        .map_or(String::new(), |s| {
            format!(
                "<p>Subscription <code>{}</code> · status <b>{}</b></p>",
                escape(str_of(s, "id").unwrap_or_default()),
                escape(str_of(s, "status").unwrap_or_default())
            )
        });
    let email = session["customer_details"]["email"]
        .as_str()
        .map_or(String::new(), |e| {
            format!("<p class=note>A receipt goes to {}.</p>", escape(e))
        });
    // Back to the platform, unless its success URL is this very page.
    let back = str_of(session, "success_url")
        .map(|url| url.replace("{CHECKOUT_SESSION_ID}", id))
        .filter(|url| !url.contains(&format!("/c/pay/{id}")))
        .map_or(String::new(), |url| {
            format!("<p><a href=\"{}\">Continue</a></p>", escape(&url))
        });
    page(
        200,
        "Checkout",
        &format!(
            "<p class=success>Payment complete. Thank you!</p><table>{rows}<tr class=total><td>Total paid</td><td class=num>{paid}</td></tr></table>{subscription}{email}{back}"
        ),
    )
}

fn pay_checkout(store: &mut Store, id: &str, form: Params<'_>, answer: Authentication) -> Reply {
    let card_text = form.get("card").unwrap_or_default();
    let Some(card) = Card::parse(card_text) else {
        return checkout_page(
            store,
            id,
            Some("This is not one of the test cards listed below."),
        );
    };
    match checkout::complete(store, id, card, answer, None) {
        Ok(session) => {
            let url = str_of(&session, "success_url").unwrap_or("/").to_owned();
            let url = if url.contains("{CHECKOUT_SESSION_ID}") {
                url.replace("{CHECKOUT_SESSION_ID}", id)
            } else {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}session_id={id}")
            };
            redirect(&url)
        }
        Err(CheckoutError::AuthenticationRequired) => {
            challenge(&format!("/c/pay/{id}/authenticate"), card_text)
        }
        Err(CheckoutError::Declined(message)) => checkout_page(store, id, Some(&message)),
        Err(CheckoutError::AuthenticationFailed) => checkout_page(
            store,
            id,
            Some("Authentication failed. Try again or use another card."),
        ),
        Err(_) => checkout_page(store, id, None),
    }
}

/// The 3-D Secure step: approve or fail.
fn challenge(action: &str, card: &str) -> Reply {
    let hidden = format!("<input type=hidden name=card value=\"{}\">", escape(card));
    page(
        200,
        "Authenticate this payment",
        &format!(
            "<p>Your bank asks you to confirm this payment (test mode: choose the outcome).</p>\
             <form method=post action=\"{action}\">{hidden}<input type=hidden name=outcome value=approve><button type=submit class=wide>Complete authentication</button></form>\
             <form method=post action=\"{action}\">{hidden}<input type=hidden name=outcome value=fail><button type=submit class=\"secondary wide\">Fail authentication</button></form>"
        ),
    )
}

fn portal_page(store: &Store, token: &str, notice: Option<&str>) -> Reply {
    let Some(session) = store.portal_sessions.get(token) else {
        return page(
            404,
            "Billing",
            "<p class=error>This portal session does not exist.</p>",
        );
    };
    let customer = str_of(session, "customer").unwrap_or_default();
    let mut body = notice.map_or(String::new(), |n| {
        format!("<p class=note>{}</p>", escape(n))
    });
    let subs: Vec<&Value> = store
        .subscription_ids
        .iter()
        .rev()
        .filter_map(|id| store.subscriptions.get(id))
        .filter(|s| {
            str_of(s, "customer") == Some(customer) && str_of(s, "status") != Some("canceled")
        })
        .collect();
    if subs.is_empty() {
        body.push_str("<p>No current subscription.</p>");
    }
    let mut plans: Vec<&Value> = store
        .prices
        .values()
        .filter(|p| !p["recurring"].is_null())
        .collect();
    plans.sort_by_key(|p| int_of(p, "unit_amount"));
    for sub in subs {
        let id = str_of(sub, "id").unwrap_or_default();
        let item = &sub["items"]["data"][0];
        let price = &item["price"];
        let name = price_name(store, price);
        let end = item["current_period_end"].as_i64().unwrap_or(0);
        let ending = sub["cancel_at_period_end"].as_bool() == Some(true);
        body.push_str(&format!(
            "<section><h2>{}</h2><p>{} / {} · status <b>{}</b></p><p>{} {}</p>",
            escape(&name),
            money(
                int_of(price, "unit_amount"),
                str_of(price, "currency").unwrap_or("usd")
            ),
            escape(price["recurring"]["interval"].as_str().unwrap_or("month")),
            escape(str_of(sub, "status").unwrap_or_default()),
            if ending { "Ends on" } else { "Renews on" },
            html::date(end)
        ));
        let options: String = plans
            .iter()
            .filter(|p| str_of(p, "id") != str_of(price, "id"))
            .map(|p| {
                format!(
                    "<option value=\"{}\">{} — {}</option>",
                    escape(str_of(p, "id").unwrap_or_default()),
                    escape(&price_name(store, p)),
                    money(
                        int_of(p, "unit_amount"),
                        str_of(p, "currency").unwrap_or("usd")
                    )
                )
            })
            .collect();
        let sub_field = format!(
            "<input type=hidden name=subscription value=\"{}\">",
            escape(id)
        );
        if !options.is_empty() && !ending {
            body.push_str(&format!("<form method=post action=\"/p/session/{token}/switch\">{sub_field}<label>Switch plan <select name=price>{options}</select></label><button type=submit>Switch</button></form>"));
        }
        if ending || str_of(sub, "status") == Some("paused") {
            body.push_str(&format!("<form method=post action=\"/p/session/{token}/resume\">{sub_field}<button type=submit>Resume subscription</button></form>"));
        } else {
            body.push_str(&format!("<form method=post action=\"/p/session/{token}/cancel\">{sub_field}<button type=submit class=secondary>Cancel at period end</button></form>"));
        }
        body.push_str("</section>");
    }
    if let Some(url) = str_of(session, "return_url") {
        body.push_str(&format!("<p><a href=\"{}\">Return</a></p>", escape(url)));
    }
    page(200, "Billing", &body)
}

fn price_name(store: &Store, price: &Value) -> String {
    str_of(price, "product")
        .and_then(|p| store.products.get(p))
        .and_then(|p| str_of(p, "name"))
        .or_else(|| str_of(price, "nickname"))
        .or_else(|| str_of(price, "id"))
        .unwrap_or("Plan")
        .to_owned()
}

fn portal_action(store: &mut Store, token: &str, action: &str, form: Params<'_>) -> Reply {
    let Some(customer) = store
        .portal_sessions
        .get(token)
        .and_then(|s| str_of(s, "customer"))
        .map(str::to_owned)
    else {
        return page(
            404,
            "Billing",
            "<p class=error>This portal session does not exist.</p>",
        );
    };
    let sub_id = form.get("subscription").unwrap_or_default().to_owned();
    let Some(sub) = store
        .subscriptions
        .get(&sub_id)
        .filter(|s| str_of(s, "customer") == Some(&customer))
        .cloned()
    else {
        return portal_page(store, token, Some("No such subscription."));
    };
    let args = [sub_id.clone()];
    let item = str_of(&sub["items"]["data"][0], "id")
        .unwrap_or_default()
        .to_owned();
    let params: Vec<(String, String)> = match action {
        "switch" => vec![
            ("items[0][id]".into(), item),
            (
                "items[0][price]".into(),
                form.get("price").unwrap_or_default().to_owned(),
            ),
            ("proration_behavior".into(), "create_prorations".into()),
        ],
        "cancel" => vec![("cancel_at_period_end".into(), "true".into())],
        "resume" if str_of(&sub, "status") == Some("paused") => {
            let call = Call {
                params: Params(&[]),
                args: &args,
            };
            return match resume_subscription(store, &call) {
                Ok(_) => redirect(&format!("/p/session/{token}")),
                Err(e) => portal_page(store, token, Some(&e.message)),
            };
        }
        "resume" => vec![("cancel_at_period_end".into(), "false".into())],
        _ => return portal_page(store, token, None),
    };
    let call = Call {
        params: Params(&params),
        args: &args,
    };
    match update_subscription(store, &call) {
        Ok(_) => redirect(&format!("/p/session/{token}")),
        Err(e) => portal_page(store, token, Some(&e.message)),
    }
}

fn invoice_page(store: &Store, id: &str, error: Option<&str>) -> Reply {
    let Some(invoice) = store.invoices.get(id) else {
        return page(
            404,
            "Invoice",
            "<p class=error>This invoice does not exist.</p>",
        );
    };
    let currency = str_of(invoice, "currency").unwrap_or("usd");
    let lines: String = invoice["lines"]["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|l| {
            format!(
                "<tr><td>{}</td><td class=num>{}</td></tr>",
                escape(str_of(l, "description").unwrap_or_default()),
                money(int_of(l, "amount"), currency)
            )
        })
        .collect();
    let status = str_of(invoice, "status").unwrap_or_default();
    let pay = if status == "open" {
        card_form(&format!("/i/{id}/pay"), "Pay invoice")
    } else {
        String::new()
    };
    let error = error.map_or(String::new(), |e| {
        format!("<p class=error>{}</p>", escape(e))
    });
    let body = format!(
        "{error}<p>Invoice {} · status <b>{}</b></p><table>{lines}<tr class=total><td>Amount due</td><td class=num>{}</td></tr></table>{pay}<p><a href=\"/i/{id}/pdf\">Download PDF</a></p>",
        escape(str_of(invoice, "number").unwrap_or("draft")),
        escape(status),
        money(int_of(invoice, "amount_remaining"), currency),
    );
    page(200, "Invoice", &body)
}

fn invoice_pdf(store: &Store, id: &str) -> Reply {
    let Some(invoice) = store.invoices.get(id) else {
        return page(
            404,
            "Invoice",
            "<p class=error>This invoice does not exist.</p>",
        );
    };
    let text = format!(
        "Invoice {}\nStatus: {}\nAmount due: {}\n",
        str_of(invoice, "number").unwrap_or("draft"),
        str_of(invoice, "status").unwrap_or_default(),
        money(
            int_of(invoice, "amount_due"),
            str_of(invoice, "currency").unwrap_or("usd")
        )
    );
    Reply::raw(200, bytes::Bytes::from(html::pdf(&text)))
        .with_header("content-type", "application/pdf")
}

fn pay_invoice(store: &mut Store, id: &str, form: Params<'_>) -> Reply {
    if store.invoices.get(id).and_then(|i| str_of(i, "status")) != Some("open") {
        return invoice_page(store, id, None);
    }
    let at = store.time_for(store.invoices.get(id).and_then(|i| str_of(i, "customer")));
    let Some(pi) = crate::invoices::invoice_intent(store, id, at) else {
        return invoice_page(store, id, Some("This invoice cannot be paid."));
    };
    let secret = store
        .payment_intents
        .get(&pi)
        .and_then(|p| str_of(p, "client_secret"))
        .unwrap_or_default()
        .to_owned();
    pay_intent(store, &secret, form)
}

fn intent_by_secret<'a>(store: &'a Store, secret: &str) -> Option<&'a Value> {
    store
        .payment_intents
        .values()
        .find(|p| str_of(p, "client_secret") == Some(secret))
}

fn intent_page(store: &Store, secret: &str, error: Option<&str>) -> Reply {
    let Some(intent) = intent_by_secret(store, secret) else {
        return page(
            404,
            "Payment",
            "<p class=error>No payment for this link.</p>",
        );
    };
    let status = str_of(intent, "status").unwrap_or_default();
    let amount = money(
        int_of(intent, "amount"),
        str_of(intent, "currency").unwrap_or("usd"),
    );
    let error = error.map_or(String::new(), |e| {
        format!("<p class=error>{}</p>", escape(e))
    });
    let form = if matches!(status, "requires_payment_method" | "requires_confirmation") {
        card_form(&format!("/pay/{}", escape(secret)), "Pay")
    } else {
        String::new()
    };
    page(
        200,
        "Payment",
        &format!(
            "{error}<p>Amount <b>{amount}</b> · status <b>{}</b></p>{form}",
            escape(status)
        ),
    )
}

fn pay_intent(store: &mut Store, secret: &str, form: Params<'_>) -> Reply {
    let Some(id) = intent_by_secret(store, secret)
        .and_then(|p| str_of(p, "id"))
        .map(str::to_owned)
    else {
        return intent_page(store, secret, None);
    };
    let card = form.get("card").unwrap_or_default().to_owned();
    let params = vec![("payment_method".to_owned(), card)];
    let args = [id.clone()];
    match confirm_payment_intent(
        store,
        &Call {
            params: Params(&params),
            args: &args,
        },
    ) {
        Ok(intent) if str_of(&intent, "status") == Some("requires_action") => {
            redirect(&format!("/pay/authenticate/{id}"))
        }
        Ok(intent) => intent_result(&intent),
        Err(error) => intent_page(store, secret, Some(&error.message)),
    }
}

fn authenticate_page(store: &Store, pi: &str) -> Reply {
    match store.payment_intents.get(pi) {
        Some(intent) if str_of(intent, "status") == Some("requires_action") => {
            challenge(&format!("/pay/authenticate/{pi}"), "")
        }
        Some(intent) => intent_result(intent),
        None => page(404, "Payment", "<p class=error>No such payment.</p>"),
    }
}

fn intent_result(intent: &Value) -> Reply {
    let status = str_of(intent, "status").unwrap_or_default();
    let message = match status {
        "succeeded" => "Payment complete. Thank you!",
        "requires_payment_method" => "The payment failed. Try another card.",
        _ => "The payment is being processed.",
    };
    let back = intent["next_action"]["redirect_to_url"]["return_url"]
        .as_str()
        .map_or(String::new(), |u| {
            format!("<p><a href=\"{}\">Continue</a></p>", escape(u))
        });
    page(
        200,
        "Payment",
        &format!(
            "<p>{message}</p><p>Status <b>{}</b></p>{back}",
            escape(status)
        ),
    )
}
