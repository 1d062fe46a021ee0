// Verifies one billing event with Stripe's official webhook verifier: the scheme of
// `Billing-Signature` is Stripe's (`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`).
// Usage: node verify.js <body-file> <Billing-Signature value> <secret>; exit 0 if valid.
"use strict";
const fs = require("fs");
const Stripe = require("stripe");

const [bodyFile, header, secret] = process.argv.slice(2);
if (!bodyFile || !header || !secret) {
  console.error("usage: node verify.js <body-file> <signature-header> <secret>");
  process.exit(2);
}
const body = fs.readFileSync(bodyFile);
const stripe = new Stripe("sk_test_unused");
try {
  const event = stripe.webhooks.constructEvent(body, header, secret);
  console.log(`verified ${event.id}`);
  process.exit(0);
} catch (err) {
  console.error(`rejected: ${err.message}`);
  process.exit(1);
}
