use super::*;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ok(method: &str, path: &str, list: &[(&str, &str)]) {
    if let Err(e) = check(method, path, &pairs(list)) {
        panic!("{method} {path} refused: {e:?}");
    }
}

fn refused(method: &str, path: &str, list: &[(&str, &str)]) -> ParamError {
    match check(method, path, &pairs(list)) {
        Ok(()) => panic!("{method} {path} accepted {list:?}"),
        Err(e) => e,
    }
}

const TENANT: &str = "0b6f7d2e-8f51-4c8e-9a0f-2f1b6f1f9a11";
const PLAN: &str = "7c1e4b0a-3d2f-4f7e-8b1a-5a9d3c2e1f00";

/// What `StripeClient::create_checkout_session` sends (trial and existing customer).
fn service_checkout() -> Vec<(&'static str, &'static str)> {
    vec![
        ("mode", "subscription"),
        ("line_items[0][price]", "price_test_pro"),
        ("line_items[0][quantity]", "1"),
        ("client_reference_id", TENANT),
        ("customer", "cus_test_1"),
        ("metadata[tenantId]", TENANT),
        ("metadata[planId]", PLAN),
        ("subscription_data[metadata][tenantId]", TENANT),
        ("subscription_data[metadata][planId]", PLAN),
        ("subscription_data[trial_period_days]", "14"),
        (
            "success_url",
            "http://localhost:8087/billing/success?session_id={CHECKOUT_SESSION_ID}",
        ),
        ("cancel_url", "http://localhost:8087/billing/cancel"),
    ]
}

// ---- what the service sends today passes ---------------------------------------------

#[test]
fn the_table_is_complete_and_parses() {
    let ops = schema::operations().map(<[_]>::len);
    assert_eq!(
        ops,
        Some(32),
        "params.json parses with every served operation"
    );
    for (method, path) in [
        ("POST", "/v1/checkout/sessions"),
        ("GET", "/v1/checkout/sessions/{session}"),
        ("POST", "/v1/checkout/sessions/{session}"),
        ("POST", "/v1/checkout/sessions/{session}/expire"),
        ("POST", "/v1/billing_portal/sessions"),
        ("POST", "/v1/payment_intents"),
        ("GET", "/v1/payment_intents/{intent}"),
        ("POST", "/v1/payment_intents/{intent}/confirm"),
        ("POST", "/v1/customers"),
        ("GET", "/v1/customers/{customer}"),
        ("GET", "/v1/invoices"),
        ("GET", "/v1/invoices/{invoice}"),
        ("POST", "/v1/invoices/{invoice}/void"),
        ("POST", "/v1/invoices/{invoice}/mark_uncollectible"),
        ("POST", "/v1/invoices/{invoice}/pay"),
        ("POST", "/v1/invoices/create_preview"),
        ("GET", "/v1/subscriptions"),
        ("GET", "/v1/subscriptions/{subscription_exposed_id}"),
        ("POST", "/v1/subscriptions/{subscription_exposed_id}"),
        ("DELETE", "/v1/subscriptions/{subscription_exposed_id}"),
        ("POST", "/v1/subscriptions/{subscription}/resume"),
        ("GET", "/v1/events"),
        ("GET", "/v1/events/{id}"),
        ("POST", "/v1/refunds"),
        ("GET", "/v1/refunds/{refund}"),
        ("GET", "/v1/charges/{charge}"),
        ("GET", "/v1/disputes/{dispute}"),
        ("POST", "/v1/products"),
        ("POST", "/v1/prices"),
        ("POST", "/v1/test_helpers/test_clocks"),
        ("GET", "/v1/test_helpers/test_clocks/{test_clock}"),
        ("POST", "/v1/test_helpers/test_clocks/{test_clock}/advance"),
    ] {
        assert!(knows(method, path), "{method} {path} is in the table");
    }
}

#[test]
fn the_services_checkout_passes() {
    ok("POST", "/v1/checkout/sessions", &service_checkout());
    // Without trial or customer, as for a first subscription.
    let first: Vec<_> = service_checkout()
        .into_iter()
        .filter(|(k, _)| *k != "customer" && *k != "subscription_data[trial_period_days]")
        .collect();
    ok("POST", "/v1/checkout/sessions", &first);
}

#[test]
fn the_sdk_worked_example_passes() {
    // docs/stripe.md, Form encoding, python style.
    ok(
        "POST",
        "/v1/checkout/sessions",
        &[
            ("mode", "subscription"),
            ("line_items[0][price]", "price_1Rq3oaHx4KpL29aTqhCv4Gt4"),
            ("line_items[0][quantity]", "1"),
            ("customer", "cus_t9FXeM4pJmfNhL"),
            ("client_reference_id", "user_8842"),
            ("metadata[app_user_id]", "user_8842"),
            ("metadata[note]", "Jane's plan (beta)"),
            ("subscription_data[metadata][app_user_id]", "user_8842"),
            ("subscription_data[trial_period_days]", "14"),
            (
                "success_url",
                "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}",
            ),
            ("cancel_url", "https://app.example.com/billing/cancel"),
            ("allow_promotion_codes", "true"),
            ("automatic_tax[enabled]", "true"),
            ("expand[0]", "subscription"),
            ("expand[1]", "customer"),
        ],
    );
}

#[test]
fn the_services_other_calls_pass() {
    ok("POST", "/v1/checkout/sessions/{session}/expire", &[]);
    ok(
        "GET",
        "/v1/checkout/sessions/{session}",
        &[("expand[]", "subscription")],
    );
    ok(
        "POST",
        "/v1/billing_portal/sessions",
        &[
            ("customer", "cus_test_1"),
            ("return_url", "http://localhost:8087/account"),
        ],
    );
    ok(
        "POST",
        "/v1/payment_intents",
        &[
            ("amount", "2900"),
            ("currency", "eur"),
            ("customer", "cus_test_1"),
            ("metadata[invoiceId]", PLAN),
            ("metadata[tenantId]", TENANT),
            ("automatic_payment_methods[enabled]", "true"),
        ],
    );
    ok("GET", "/v1/payment_intents/{intent}", &[]);
    ok("GET", "/v1/invoices/{invoice}", &[("expand[]", "payments")]);
    ok("GET", "/v1/subscriptions/{subscription_exposed_id}", &[]);
    ok("GET", "/v1/events/{id}", &[]);
}

#[test]
fn the_emulators_other_operations_take_their_usual_parameters() {
    ok(
        "GET",
        "/v1/events",
        &[
            ("created[gte]", "1785765907"),
            ("types[]", "invoice.paid"),
            ("types[]", "customer.subscription.updated"),
            ("delivery_success", "false"),
            ("limit", "100"),
            ("starting_after", "evt_test_1"),
        ],
    );
    ok(
        "GET",
        "/v1/events",
        &[("created", "1785765907"), ("type", "invoice.*")],
    );
    ok(
        "GET",
        "/v1/invoices",
        &[
            ("customer", "cus_test_1"),
            ("status", "open"),
            ("limit", "100"),
        ],
    );
    ok(
        "GET",
        "/v1/subscriptions",
        &[
            ("customer", "cus_test_1"),
            ("status", "all"),
            ("limit", "3"),
        ],
    );
    ok(
        "POST",
        "/v1/subscriptions/{subscription_exposed_id}",
        &[
            ("items[0][id]", "si_test_1"),
            ("items[0][price]", "price_test_team"),
            ("proration_behavior", "always_invoice"),
            ("cancel_at_period_end", "true"),
            ("pause_collection[behavior]", "void"),
            ("metadata[tenantId]", TENANT),
        ],
    );
    ok(
        "POST",
        "/v1/subscriptions/{subscription_exposed_id}",
        &[("pause_collection", ""), ("cancel_at", "")],
    );
    ok(
        "DELETE",
        "/v1/subscriptions/{subscription_exposed_id}",
        &[("invoice_now", "true"), ("prorate", "false")],
    );
    ok(
        "POST",
        "/v1/subscriptions/{subscription}/resume",
        &[
            ("billing_cycle_anchor", "now"),
            ("proration_behavior", "none"),
        ],
    );
    ok(
        "POST",
        "/v1/invoices/create_preview",
        &[
            ("customer", "cus_test_1"),
            ("subscription", "sub_test_1"),
            ("subscription_details[items][0][id]", "si_test_1"),
            ("subscription_details[items][0][price]", "price_test_team"),
            (
                "subscription_details[proration_behavior]",
                "create_prorations",
            ),
            ("subscription_details[proration_date]", "1785765907"),
        ],
    );
    ok(
        "POST",
        "/v1/refunds",
        &[
            ("payment_intent", "pi_test_1"),
            ("amount", "500"),
            ("reason", "requested_by_customer"),
            ("metadata[source]", "dashboard"),
        ],
    );
    ok(
        "POST",
        "/v1/payment_intents/{intent}/confirm",
        &[
            ("payment_method", "pm_card_visa"),
            ("return_url", "http://localhost:8087/pay/done"),
        ],
    );
    ok(
        "POST",
        "/v1/customers",
        &[
            ("email", "owner@example.test"),
            ("name", "Example GmbH"),
            ("business_name", "Example GmbH"),
            ("metadata[tenantId]", TENANT),
            ("test_clock", "clock_test_1"),
        ],
    );
    ok("POST", "/v1/customers", &[("metadata", "")]);
    ok("POST", "/v1/products", &[("name", "Pro")]);
    ok(
        "POST",
        "/v1/prices",
        &[
            ("currency", "eur"),
            ("unit_amount", "2900"),
            ("product", "prod_test_pro"),
            ("recurring[interval]", "month"),
            ("lookup_key", "pro_monthly"),
        ],
    );
    ok(
        "POST",
        "/v1/test_helpers/test_clocks",
        &[("frozen_time", "1785765907"), ("name", "renewals")],
    );
    ok(
        "POST",
        "/v1/test_helpers/test_clocks/{test_clock}/advance",
        &[("frozen_time", "1788444307")],
    );
    ok(
        "POST",
        "/v1/checkout/sessions/{session}",
        &[("metadata[note]", "changed"), ("expand[0]", "line_items")],
    );
}

#[test]
fn the_2026_corrections_apply() {
    // success_url optional, ui_mode with dahlia values.
    ok(
        "POST",
        "/v1/checkout/sessions",
        &[
            ("mode", "subscription"),
            ("ui_mode", "embedded_page"),
            ("return_url", "http://localhost:8087/back"),
            ("automatic_tax[enabled]", "true"),
            ("automatic_tax[liability][type]", "self"),
        ],
    );
    let e = refused("POST", "/v1/checkout/sessions", &[("ui_mode", "hosted")]);
    assert_eq!(e.param, "ui_mode");
    // Portal: customer_account is an alternative to customer.
    ok(
        "POST",
        "/v1/billing_portal/sessions",
        &[("customer_account", "acct_test_1")],
    );
    // Customers: coupon removed in basil.
    let e = refused("POST", "/v1/customers", &[("coupon", "SUMMER")]);
    assert_eq!(e.param, "coupon");
    assert_eq!(e.message, "Received unknown parameter: coupon");
    // create_preview does not take upcoming's flat subscription_* names.
    let e = refused(
        "POST",
        "/v1/invoices/create_preview",
        &[("subscription_items[0][price]", "price_test_team")],
    );
    assert_eq!(e.param, "subscription_items");
}

#[test]
fn placeholders_and_concrete_paths_find_the_operation() {
    let list = [("foo", "bar")];
    assert_eq!(refused("GET", "/v1/invoices/{id}", &list).param, "foo");
    assert_eq!(refused("GET", "/v1/invoices/in_123", &list).param, "foo");
    assert_eq!(
        refused("get", "/v1/invoices/in_123?x=1", &list).param,
        "foo"
    );
    assert_eq!(
        refused("POST", "/v1/invoices/create_preview", &list).param,
        "foo"
    );
    assert_eq!(
        refused("POST", "/v1/subscriptions/sub_1/resume", &list).param,
        "foo"
    );
}

#[test]
fn unknown_operations_pass() {
    ok("GET", "/v1/balance", &[("anything", "goes")]);
    ok("PUT", "/v1/customers", &[("anything", "goes")]);
    ok("POST", "/v1/invoices/in_1/send", &[("anything", "goes")]);
}

#[test]
fn paying_an_invoice_takes_stripes_parameters_and_refuses_others() {
    ok(
        "POST",
        "/v1/invoices/in_1/pay",
        &[("paid_out_of_band", "true")],
    );
    let e = refused("POST", "/v1/invoices/in_1/pay", &[("anything", "goes")]);
    assert_eq!(e.param, "anything");
}

// ---- each refusal with its param -----------------------------------------------------

#[test]
fn an_unknown_parameter_is_refused_with_its_full_path() {
    let mut list = service_checkout();
    list.push(("trial_period_days", "14"));
    let e = refused("POST", "/v1/checkout/sessions", &list);
    assert_eq!(e.param, "trial_period_days");
    assert_eq!(e.message, "Received unknown parameter: trial_period_days");
    assert_eq!(e.code, Some("parameter_unknown"));

    let mut list = service_checkout();
    list.push(("line_items[0][foo]", "x"));
    let e = refused("POST", "/v1/checkout/sessions", &list);
    assert_eq!(e.param, "line_items[0][foo]");
    assert_eq!(e.message, "Received unknown parameter: line_items[0][foo]");

    let e = refused(
        "POST",
        "/v1/checkout/sessions",
        &[
            ("subscription_data[metadata][a]", "b"),
            ("subscription_data[trial_days]", "3"),
        ],
    );
    assert_eq!(e.param, "subscription_data[trial_days]");

    // A hash where a plain value belongs.
    let e = refused("POST", "/v1/payment_intents", &[("customer[id]", "cus_1")]);
    assert_eq!(e.param, "customer[id]");
    // A key whose brackets do not parse is one unknown name.
    let e = refused("POST", "/v1/checkout/sessions", &[("line_items[0", "x")]);
    assert_eq!(e.param, "line_items[0");
}

#[test]
fn a_non_integer_is_refused() {
    let e = refused(
        "POST",
        "/v1/payment_intents",
        &[("amount", "12.50"), ("currency", "eur")],
    );
    assert_eq!(e.param, "amount");
    assert_eq!(e.message, "Invalid integer: 12.50");
    assert_eq!(e.code, Some("parameter_invalid_integer"));

    let mut list = service_checkout();
    list.retain(|(k, _)| *k != "line_items[0][quantity]");
    list.push(("line_items[0][quantity]", "one"));
    assert_eq!(
        refused("POST", "/v1/checkout/sessions", &list).param,
        "line_items[0][quantity]"
    );

    let e = refused("GET", "/v1/events", &[("created[gte]", "yesterday")]);
    assert_eq!(e.param, "created[gte]");
    let e = refused("GET", "/v1/events", &[("created", "yesterday")]);
    assert_eq!(e.param, "created");
    assert_eq!(e.message, "Invalid integer: yesterday");
    let e = refused(
        "POST",
        "/v1/test_helpers/test_clocks",
        &[("frozen_time", "")],
    );
    assert_eq!(
        (e.param.as_str(), e.message.as_str()),
        ("frozen_time", "Invalid integer: ")
    );
}

#[test]
fn a_value_outside_an_enum_is_refused() {
    let e = refused(
        "POST",
        "/v1/checkout/sessions",
        &[("mode", "subscriptions")],
    );
    assert_eq!(e.param, "mode");
    assert_eq!(
        e.message,
        "Invalid mode: must be one of payment, setup, or subscription"
    );
    let e = refused(
        "POST",
        "/v1/payment_intents",
        &[
            ("amount", "100"),
            ("currency", "eur"),
            ("automatic_payment_methods[enabled]", "true"),
            ("automatic_payment_methods[allow_redirects]", "sometimes"),
        ],
    );
    assert_eq!(e.param, "automatic_payment_methods[allow_redirects]");
    assert_eq!(
        e.message,
        "Invalid automatic_payment_methods[allow_redirects]: must be one of always or never"
    );
    let e = refused(
        "POST",
        "/v1/subscriptions/{subscription_exposed_id}",
        &[("items[0][id]", "si_1"), ("proration_behavior", "never")],
    );
    assert_eq!(e.param, "proration_behavior");
}

#[test]
fn a_non_boolean_is_refused() {
    let e = refused(
        "POST",
        "/v1/payment_intents",
        &[
            ("amount", "100"),
            ("currency", "eur"),
            ("automatic_payment_methods[enabled]", "1"),
        ],
    );
    assert_eq!(e.param, "automatic_payment_methods[enabled]");
    assert_eq!(e.message, "Invalid boolean: 1");
    let e = refused("GET", "/v1/events", &[("delivery_success", "True")]);
    assert_eq!(e.param, "delivery_success");
}

#[test]
fn an_index_that_is_not_a_number_is_refused() {
    let e = refused(
        "POST",
        "/v1/checkout/sessions",
        &[
            ("mode", "subscription"),
            ("line_items[first][price]", "price_1"),
        ],
    );
    assert_eq!(e.param, "line_items");
    assert_eq!(e.message, "Invalid array");
    let e = refused("GET", "/v1/invoices/{invoice}", &[("expand", "payments")]);
    assert_eq!(
        (e.param.as_str(), e.message.as_str()),
        ("expand", "Invalid array")
    );
    // Appended and indexed items are numbered in the path.
    let e = refused(
        "GET",
        "/v1/invoices/{invoice}",
        &[("expand[]", "payments"), ("expand[]", &"x".repeat(5001))],
    );
    assert_eq!(e.param, "expand[1]");
}

#[test]
fn a_string_over_its_max_length_is_refused() {
    let long = "u".repeat(201);
    let e = refused(
        "POST",
        "/v1/checkout/sessions",
        &[("mode", "subscription"), ("client_reference_id", &long)],
    );
    assert_eq!(e.param, "client_reference_id");
    assert_eq!(
        e.message,
        "Invalid string: uuuuuuuuuu...uuuuuuuuuu; must be at most 200 characters"
    );
    ok(
        "POST",
        "/v1/checkout/sessions",
        &[
            ("mode", "subscription"),
            ("client_reference_id", &long[..200]),
        ],
    );
    // Characters, not bytes.
    ok("POST", "/v1/customers", &[("name", &"é".repeat(256))]);
    let e = refused("POST", "/v1/customers", &[("name", &"é".repeat(257))]);
    assert_eq!(e.param, "name");
}

#[test]
fn metadata_over_stripes_limits_is_refused() {
    let key40 = "k".repeat(40);
    let key41 = "k".repeat(41);
    let value500 = "v".repeat(500);
    let value501 = "v".repeat(501);
    let k40 = format!("metadata[{key40}]");
    let k41 = format!("metadata[{key41}]");
    ok("POST", "/v1/customers", &[(&k40, &value500)]);

    let e = refused("POST", "/v1/customers", &[(&k41, "x")]);
    assert_eq!(e.param, "metadata");
    assert_eq!(
        e.message,
        format!("Invalid key: {key41} must be a string under 40 characters")
    );
    let e = refused("POST", "/v1/customers", &[("metadata[note]", &value501)]);
    assert_eq!(e.param, "metadata");
    assert!(e.message.starts_with("Invalid val: vvvv"), "{}", e.message);

    let e = refused(
        "POST",
        "/v1/checkout/sessions",
        &[("subscription_data[metadata][note]", &value501)],
    );
    assert_eq!(e.param, "subscription_data[metadata]");

    let many: Vec<(String, String)> = (0..51)
        .map(|i| (format!("metadata[k{i}]"), "v".to_owned()))
        .collect();
    let e = match check("POST", "/v1/customers", &many) {
        Err(e) => e,
        Ok(()) => panic!("51 metadata keys accepted"),
    };
    assert_eq!(e.param, "metadata");
    assert_eq!(
        e.message,
        "Metadata can have up to 50 keys, but you've set 51."
    );
    assert!(check("POST", "/v1/customers", &many[..50]).is_ok());
}

#[test]
fn a_missing_required_parameter_is_refused() {
    let e = refused("POST", "/v1/payment_intents", &[("amount", "100")]);
    assert_eq!(e.param, "currency");
    assert_eq!(e.message, "Missing required param: currency.");
    assert_eq!(e.code, Some("parameter_missing"));

    let e = refused(
        "POST",
        "/v1/payment_intents",
        &[
            ("amount", "100"),
            ("currency", "eur"),
            ("automatic_payment_methods[allow_redirects]", "never"),
        ],
    );
    assert_eq!(e.param, "automatic_payment_methods[enabled]");
    assert_eq!(
        e.message,
        "Missing required param: automatic_payment_methods[enabled]."
    );

    let e = refused(
        "POST",
        "/v1/checkout/sessions",
        &[
            ("mode", "payment"),
            ("line_items[0][price_data][product]", "prod_1"),
            ("line_items[0][price_data][unit_amount]", "500"),
        ],
    );
    assert_eq!(e.param, "line_items[0][price_data][currency]");

    let e = refused(
        "POST",
        "/v1/test_helpers/test_clocks/{test_clock}/advance",
        &[],
    );
    assert_eq!(e.param, "frozen_time");
    let e = refused("POST", "/v1/products", &[("active", "true")]);
    assert_eq!(e.param, "name");
}

#[test]
fn an_empty_value_is_refused_where_it_cannot_unset() {
    let e = refused(
        "POST",
        "/v1/checkout/sessions",
        &[("mode", "subscription"), ("customer", "")],
    );
    assert_eq!(e.param, "customer");
    assert_eq!(e.code, Some("parameter_invalid_empty"));
    // Checkout's create takes no `metadata=` (the spec offers no unset there).
    let e = refused("POST", "/v1/checkout/sessions", &[("metadata", "")]);
    assert_eq!(e.param, "metadata");
    // A metadata key sent empty unsets it: fine.
    ok("POST", "/v1/customers", &[("metadata[old]", "")]);
}

#[test]
fn a_key_sent_as_value_and_hash_is_refused() {
    let e = refused(
        "POST",
        "/v1/customers",
        &[("address", "x"), ("address[city]", "Berlin")],
    );
    assert_eq!(e.param, "address");
}

#[test]
fn repeated_keys_keep_the_last_value() {
    ok(
        "POST",
        "/v1/payment_intents",
        &[("amount", "abc"), ("amount", "100"), ("currency", "eur")],
    );
}

#[test]
fn appended_hashes_fill_like_stripes_decoder() {
    // `line_items[][price]` then `[quantity]` fill one item; a repeated key starts the next.
    let hash = tree::build(&pairs(&[
        ("line_items[][price]", "p1"),
        ("line_items[][quantity]", "1"),
        ("line_items[][price]", "p2"),
    ]))
    .unwrap_or_default();
    let items = match hash.first() {
        Some((_, Node::Hash(items))) => items.len(),
        _ => 0,
    };
    assert_eq!(items, 2);
    let e = refused(
        "POST",
        "/v1/checkout/sessions",
        &[("line_items[][price]", "p1"), ("line_items[][bogus]", "1")],
    );
    assert_eq!(e.param, "line_items[0][bogus]");
}

#[test]
fn the_helpers_format_like_stripe() {
    let values = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(one_of(&values(&["a"])), "a");
    assert_eq!(one_of(&values(&["a", "b"])), "a or b");
    assert_eq!(one_of(&values(&["a", "b", "c"])), "a, b, or c");
    assert_eq!(abbreviate("short"), "short");
    assert!(is_decimal("12.5") && is_decimal("-3") && is_decimal(".5"));
    assert!(!is_decimal("1e5") && !is_decimal("12.") && !is_decimal("") && !is_decimal("x"));
    assert_eq!(
        tree::split_key("a[b][0][]"),
        vec!["a", "b", "0", ""]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    );
    assert_eq!(tree::split_key("a[b]c"), vec!["a[b]c".to_owned()]);
}

#[test]
fn the_raw_form_bodies_of_both_sdks_pass_once_decoded() {
    // docs/stripe.md's form-encoding example, python style (`+`) and node style (`%20`, `%27`).
    let python = "mode=subscription&line_items[0][price]=price_1Rq3oaHx4KpL29aTqhCv4Gt4&line_items[0][quantity]=1&customer=cus_t9FXeM4pJmfNhL&client_reference_id=user_8842&metadata[app_user_id]=user_8842&metadata[note]=Jane%27s+plan+%28beta%29&subscription_data[metadata][app_user_id]=user_8842&subscription_data[trial_period_days]=14&success_url=https%3A%2F%2Fapp.example.com%2Fbilling%2Fsuccess%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D&cancel_url=https%3A%2F%2Fapp.example.com%2Fbilling%2Fcancel&allow_promotion_codes=true&automatic_tax[enabled]=true&expand[0]=subscription&expand[1]=customer";
    let node = python.replace("Jane%27s+plan+%28beta%29", "Jane%27s%20plan%20%28beta%29");
    let encoded_brackets = python.replace('[', "%5B").replace(']', "%5D");
    for body in [python.to_owned(), node, encoded_brackets] {
        let decoded: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(decoded.len(), 15);
        assert_eq!(check("POST", "/v1/checkout/sessions", &decoded), Ok(()));
    }
}
