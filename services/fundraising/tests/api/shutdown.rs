//! Graceful shutdown of fundraising under a steady stream of gifts: the shutdown (what SIGTERM starts) lets every
//! request it accepted finish, and the outbox relay, stopped last, publishes the event of every gift it answered
//! 201 for before the service exits: nothing waits in the outbox for the next start.

use crate::events::{clean_up, next, observe};
use crate::helpers::spawn_app;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const WRITERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_under_load_answers_every_accepted_gift_and_publishes_its_event() {
    let app = Arc::new(spawn_app().await);
    let observer = CancellationToken::new();
    let mut events = observe(&app, &observer).await;
    let donor = app.create_donor(&json!({"first_name": "Ada", "last_name": "Lovelace"})).await;
    let donor_id = donor["id"].as_str().unwrap().to_owned();
    next(&mut events, 1).await; // the donor's event

    let stop = Arc::new(AtomicBool::new(false));
    // Gifts answered 201 so far, by every writer: the shutdown starts once the load is really running.
    let made = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (app, stop, donor_id, made) = (app.clone(), stop.clone(), donor_id.clone(), made.clone());
            tokio::spawn(async move {
                let (mut created, mut answered_badly, mut refused) = (Vec::new(), Vec::new(), 0usize);
                let mut n = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let body = json!({"donor_id": donor_id, "amount_minor": 100 + n, "currency": "GBP",
                                      "gift_date": "2026-04-06", "external_reference": format!("w{w}-{n}")});
                    match app.client.post(app.url("/v1/gifts")).bearer_auth(app.token()).json(&body).send().await {
                        Ok(r) if r.status() == 201 => {
                            let gift: Value = r.json().await.unwrap();
                            created.push(gift["id"].as_str().unwrap().to_owned());
                            made.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => answered_badly.push(format!("{} {}", r.status(), r.text().await.unwrap_or_default())),
                        Err(_) => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                (created, answered_badly, refused)
            })
        })
        .collect();

    // At least 20 gifts made, however loaded the machine, then the shutdown under a load still running.
    let warm = Instant::now();
    while made.load(Ordering::SeqCst) < 20 {
        assert!(warm.elapsed() < Duration::from_secs(30), "the writers made no 20 gifts in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let began = Instant::now();
    app.shutdown.cancel();
    let stopped = loop {
        if app.stopped.is_finished() {
            break began.elapsed();
        }
        assert!(began.elapsed() < Duration::from_secs(25), "fundraising did not stop within its deadline");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    stop.store(true, Ordering::SeqCst);
    let (mut created, mut answered_badly, mut refused) = (Vec::new(), Vec::new(), 0);
    for writer in writers {
        let (c, a, r) = writer.await.unwrap();
        created.extend(c);
        answered_badly.extend(a);
        refused += r;
    }
    assert!(stopped < Duration::from_secs(20), "stopped after {stopped:?}, past the 20 s deadline");
    assert!(
        answered_badly.is_empty(),
        "{} accepted requests failed, first: {:?}",
        answered_badly.len(),
        answered_badly.first()
    );
    assert!(created.len() >= 20, "only {} gifts before the shutdown: the load did not run", created.len());
    assert!(refused > 0, "no request was refused after the shutdown: it never stopped listening");

    let unpublished: i64 = app
        .db
        .admin_client()
        .await
        .query_one("SELECT count(*) FROM fundraising.outbox WHERE published_at IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(unpublished, 0, "the relay flushed the outbox before the service exited");
    // Gifts written together are announced together (batch_upserted): read events until every gift is seen.
    let mut published: HashSet<String> = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while created.iter().any(|id| !published.contains(id)) {
        let Ok(Some(m)) = tokio::time::timeout_at(deadline, events.recv()).await else { break };
        let gifts = match m.event_type() {
            "fundraising.gift.upserted.v1" => vec![m.envelope.payload["gift"].clone()],
            "fundraising.gift.batch_upserted.v1" => m.envelope.payload["gifts"].as_array().cloned().unwrap_or_default(),
            _ => vec![],
        };
        published.extend(gifts.iter().map(|gift| gift["id"].as_str().unwrap().to_owned()));
    }
    let missing: Vec<&String> = created.iter().filter(|id| !published.contains(*id)).collect();
    assert!(missing.is_empty(), "gifts answered 201 whose event was not published: {missing:?}");
    eprintln!("{} gifts created, {refused} requests refused after the shutdown; stopped in {stopped:?}", created.len());
    clean_up(&app, observer).await;
}
