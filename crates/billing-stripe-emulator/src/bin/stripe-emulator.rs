//! `stripe-emulator [--host 127.0.0.1] [--port 12111] [--forward-to URL] [--webhook-secret S]
//! [--api-key sk_test_...]`: runs the Stripe emulator until Ctrl-C, for manual use, other
//! services and benchmarks. Without `--api-key` any `sk_test_...` key is accepted.

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use billing_stripe_emulator::{EmulatorConfig, StripeEmulator};

const USAGE: &str = "usage: stripe-emulator [--host 127.0.0.1] [--port 12111] [--forward-to URL] [--webhook-secret whsec_...] [--api-key sk_test_...] [--lenient] [--rate-limit N]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port: u16 = 12111;
    let mut config = EmulatorConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?.parse()?,
            "--port" => port = value()?.parse()?,
            "--forward-to" => config.forward_to = Some(value()?),
            "--webhook-secret" => config.webhook_secret = value()?,
            "--api-key" => config.api_key = Some(value()?),
            "--rate-limit" => config.rate_limit = Some(value()?.parse()?),
            "--lenient" => {
                let lenient = EmulatorConfig::lenient();
                config.accept_any_customer = lenient.accept_any_customer;
                config.accept_unknown_prices = lenient.accept_unknown_prices;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    config.addr = SocketAddr::new(host, port);
    let emulator = StripeEmulator::start(config).await?;
    println!("stripe-emulator listening on {}", emulator.base_url());
    tokio::signal::ctrl_c().await?;
    emulator.stop().await;
    Ok(())
}
