//! `stripe-emulator [--host 127.0.0.1] [--port 12111]`: runs the Stripe fake until Ctrl-C, for
//! manual use and benchmarks. Any `sk_test_...` key is accepted.

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use billing_stripe_emulator::FakeStripe;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port: u16 = 12111;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--host" => host = args.next().ok_or("--host needs a value")?.parse()?,
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "-h" | "--help" => {
                println!("usage: stripe-emulator [--host 127.0.0.1] [--port 12111]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    let fake = FakeStripe::start_on(SocketAddr::new(host, port)).await?;
    println!("stripe-emulator listening on {}", fake.base_url());
    tokio::signal::ctrl_c().await?;
    fake.stop().await;
    Ok(())
}
