//! A rough latency check of receiving, not a benchmark: `cargo nextest run -p webhook-ingest --run-ignored all
//! load` prints p50/p99 of signed deliveries sent 32 at a time (debug builds are several times slower than release).

use crate::helpers::{Options, spawn_app_with};
use futures::StreamExt;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a latency measurement; run on demand"]
async fn receiving_latency() {
    let app = spawn_app_with(Options { rate_limit_per_endpoint: 1_000_000, ..Options::default() }).await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let body = br#"{"type":"payment.succeeded","data":{"amount":1200,"currency":"GBP"}}"#;
    let total = 3000;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..total)
        .map(|i| {
            let (app, secret) = (&app, &secret);
            async move {
                let t = Instant::now();
                let response = app.deliver_now(endpoint, secret, &format!("load{i}"), body).await;
                assert_eq!(response.status(), 200);
                t.elapsed()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{total} deliveries in {elapsed:?} ({:.0}/s): p50 {:?}, p99 {:?}, max {:?}",
        total as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    app.clean_up().await;
}
