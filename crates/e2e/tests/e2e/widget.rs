//! The chat widget's calls through the real gateway, as a page on a charity's own site makes them: identity's
//! widget routes answer only the tenant's allowed origins, messaging's member routes only the origin the member
//! token was issued to, preflights pass from any origin, and the member's live stream (Server-Sent Events)
//! carries a staff reply through nginx within a second. Security: a forged or missing identifier hash gets no
//! token, and a token lifted to another site is refused.

use crate::stack::{Options, Stack};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SITE: &str = "https://members.charity.example";

/// HMAC-SHA256 (RFC 2104) of `message` under `key`, in lower-case hex: what the host site's server computes.
fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn allowed_origin(response: &Response) -> Option<String> {
    response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
}

async fn json_of(response: Response, status: u16) -> Value {
    let got = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

#[tokio::test]
async fn the_widget_talks_through_the_gateway_only_from_allowed_origins_and_hears_replies_live() {
    let stack = Stack::start_with(Options { messaging: true, ..Options::default() }).await;
    let client = &stack.client;
    let admin = stack.admin_token().await;
    let tenant = stack.admin.tenant_id;
    let url = |path: &str| stack.gateway.url(path);

    let secret = set_up_widget(&stack, &admin).await;

    // The widget's configuration: for the tenant's site only.
    let config_url = url(&format!("/api/identity/v1/widget/config?tenant_id={tenant}"));
    let config = client.get(&config_url).header("origin", SITE).send().await.unwrap();
    assert_eq!(allowed_origin(&config).as_deref(), Some(SITE));
    assert_eq!(config.headers().get("vary").unwrap(), "Origin");
    assert_eq!(json_of(config, 200).await["accent_colour"], "#7a1fa2");
    let elsewhere = client.get(&config_url).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(allowed_origin(&elsewhere), None, "no CORS for a site the tenant did not allow");
    assert_eq!(json_of(elsewhere, 403).await["code"], "origin_not_allowed");

    // Preflights pass for the widget's routes whatever the origin (the request itself is checked).
    for (path, method) in [
        ("/api/identity/v1/widget/token", "POST"),
        ("/api/messaging/v1/member/conversations", "POST"),
        ("/api/messaging/v1/member/stream", "GET"),
    ] {
        let preflight = client
            .request(Method::OPTIONS, url(path))
            .header("origin", SITE)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization, content-type, last-event-id")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204, "{path}");
        assert_eq!(allowed_origin(&preflight).as_deref(), Some(SITE), "{path}");
        let headers = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
        assert!(headers.contains("last-event-id") && headers.contains("authorization"), "{headers}");
    }

    // Identity: a forged, foreign or missing hash gets no token; the right one does.
    let token_url = url("/api/identity/v1/widget/token");
    let exchange = |identifier: &str, hash: Option<String>, origin: &str| {
        let mut body = json!({"tenant_id": tenant, "identifier": identifier});
        if let Some(hash) = hash {
            body["identifier_hash"] = json!(hash);
        }
        client.post(&token_url).header("origin", origin).json(&body).send()
    };
    let forged = exchange("alice", Some(hmac_hex(b"not the secret", b"alice")), SITE).await.unwrap();
    assert_eq!(json_of(forged, 401).await["code"], "identity_unverified");
    let bobs = exchange("alice", Some(hmac_hex(secret.as_bytes(), b"bob")), SITE).await.unwrap();
    assert_eq!(json_of(bobs, 401).await["code"], "identity_unverified");
    let missing = exchange("alice", None, SITE).await.unwrap();
    assert_eq!(json_of(missing, 401).await["code"], "identity_unverified");
    let other_site = exchange("alice", Some(hmac_hex(secret.as_bytes(), b"alice")), "https://evil.example").await;
    assert_eq!(json_of(other_site.unwrap(), 403).await["code"], "origin_not_allowed");
    let issued = exchange("alice", Some(hmac_hex(secret.as_bytes(), b"alice")), SITE).await.unwrap();
    assert_eq!(allowed_origin(&issued).as_deref(), Some(SITE));
    let member = json_of(issued, 200).await["access_token"].as_str().unwrap().to_owned();

    // The member's live stream, through nginx.
    let mut stream = client
        .get(url("/api/messaging/v1/member/stream"))
        .bearer_auth(&member)
        .header("origin", SITE)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(allowed_origin(&stream).as_deref(), Some(SITE));
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    let started = client
        .post(url("/api/messaging/v1/member/conversations"))
        .bearer_auth(&member)
        .header("origin", SITE)
        .json(&json!({"body": "Hello from the widget"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&started).as_deref(), Some(SITE));
    let conversation = json_of(started, 201).await["conversation"]["id"].as_str().unwrap().to_owned();
    let replied_at = Instant::now();
    json_of(
        client
            .post(url(&format!("/api/messaging/v1/conversations/{conversation}/messages")))
            .bearer_auth(&admin)
            .json(&json!({"body": "Hello Alice, staff here"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let mut seen = String::new();
    while !seen.contains("Hello Alice, staff here") {
        let left = Duration::from_secs(1).saturating_sub(replied_at.elapsed());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("the reply did not reach the member within a second; the stream so far: {seen}"))
            .unwrap()
            .expect("the stream is open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: ready") && seen.contains("event: message"), "{seen}");

    // The same token from another site is refused.
    let lifted = client
        .get(url("/api/messaging/v1/member/conversations"))
        .bearer_auth(&member)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(lifted, 403).await["code"], "origin_not_allowed");
    stack.clean_up().await;
}

/// A 1x1 PNG.
fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    v.extend_from_slice(b"\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82");
    v
}

/// The tenant's widget set up for [`SITE`], identity required; its new secret.
async fn set_up_widget(stack: &Stack, admin: &str) -> String {
    let client = &stack.client;
    let settings = json!({
        "allowed_origins": [SITE], "identity_required": true, "greeting": "Hello! How can we help?",
        "accent_colour": "#7a1fa2", "notify_email_on_reply": false, "reply_mail_url": null,
    });
    let put = client.put(stack.gateway.url("/api/identity/v1/widget")).bearer_auth(admin).json(&settings);
    json_of(put.send().await.unwrap(), 200).await;
    let rotate = client.post(stack.gateway.url("/api/identity/v1/widget/secret")).bearer_auth(admin);
    json_of(rotate.send().await.unwrap(), 200).await["secret"].as_str().unwrap().to_owned()
}

/// Member tokens for `identifiers`, as the widget gets them from the page's origin.
async fn members(stack: &Stack, admin: &str, identifiers: &[&str]) -> Vec<String> {
    let secret = set_up_widget(stack, admin).await;
    let mut tokens = Vec::new();
    for identifier in identifiers {
        let body = json!({
            "tenant_id": stack.admin.tenant_id, "identifier": identifier,
            "identifier_hash": hmac_hex(secret.as_bytes(), identifier.as_bytes()),
        });
        let issued = stack.client.post(stack.gateway.url("/api/identity/v1/widget/token")).header("origin", SITE);
        tokens.push(
            json_of(issued.json(&body).send().await.unwrap(), 200).await["access_token"].as_str().unwrap().to_owned(),
        );
    }
    tokens
}

#[tokio::test]
async fn a_members_picture_reaches_staff_and_a_staff_file_reaches_only_that_member() {
    let stack = Stack::start_with(Options { messaging: true, ..Options::default() }).await;
    let client = &stack.client;
    let admin = stack.admin_token().await;
    let tokens = members(&stack, &admin, &["alice", "bob"]).await;
    let (alice, bob) = (&tokens[0], &tokens[1]);
    let url = |path: &str| stack.gateway.url(path);
    let as_member = |method: Method, path: &str, token: &str| {
        client.request(method, url(path)).bearer_auth(token).header("origin", SITE)
    };

    // Alice attaches a picture, as the widget does: ask, send the file to the presigned link from her page, complete.
    let picture = png();
    let pending = json_of(
        as_member(Method::POST, "/api/messaging/v1/member/attachments", alice)
            .json(&json!({"file_name": "photo.png", "content_type": "image/png", "size_bytes": picture.len()}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let object = pending["object_id"].as_str().unwrap().to_owned();
    let mut put = client.put(pending["upload"]["url"].as_str().unwrap()).header("origin", SITE).body(picture.clone());
    for (name, value) in pending["upload"]["headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    let sent = put.send().await.unwrap();
    assert!(sent.status().is_success(), "{}", sent.status());
    assert_eq!(allowed_origin(&sent).as_deref(), Some(SITE), "a page may send its file to a presigned link");
    let completed =
        as_member(Method::POST, &format!("/api/messaging/v1/member/attachments/{object}/complete"), alice).send();
    assert_eq!(json_of(completed.await.unwrap(), 200).await["content_type"], "image/png");
    // A type members may not send is refused before any upload.
    let refused = as_member(Method::POST, "/api/messaging/v1/member/attachments", alice)
        .json(&json!({"file_name": "report.csv", "content_type": "text/csv", "size_bytes": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(refused, 422).await["code"], "content_type_not_allowed");

    let started = as_member(Method::POST, "/api/messaging/v1/member/conversations", alice)
        .json(&json!({"body": "Here is the photo", "attachments": [object]}))
        .send()
        .await
        .unwrap();
    let started = json_of(started, 201).await;
    let conversation = started["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(started["message"]["attachments"][0]["file_name"], "photo.png");

    // Staff read it by a short-lived link.
    let link = client
        .get(url(&format!("/api/messaging/v1/conversations/{conversation}/attachments/{object}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let link = json_of(link, 200).await;
    let bytes = client.get(link["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), picture.as_slice());

    // Bob can neither attach Alice's file nor read it, by its conversation or through storage.
    let stolen = as_member(Method::POST, "/api/messaging/v1/member/conversations", bob)
        .json(&json!({"attachments": [object]}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(stolen, 422).await["errors"][0]["field"], "attachments[0]");
    let peek = as_member(
        Method::GET,
        &format!("/api/messaging/v1/member/conversations/{conversation}/attachments/{object}"),
        bob,
    );
    assert_eq!(json_of(peek.send().await.unwrap(), 404).await["code"], "not_found");
    let direct =
        client.get(url(&format!("/api/storage/v1/objects/{object}/link"))).bearer_auth(bob).send().await.unwrap();
    assert_eq!(direct.status(), 404);

    // Staff reply with a file of their own: Alice may read it, Bob may not.
    let staff_file = json_of(
        client
            .post(url("/api/storage/v1/uploads"))
            .bearer_auth(&admin)
            .json(&json!({"filename": "receipt.png", "content_type": "image/png", "size_bytes": picture.len(), "purpose": "conversation_attachment"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let staff_object = staff_file["object"]["id"].as_str().unwrap().to_owned();
    let mut put = client.put(staff_file["upload_url"].as_str().unwrap()).body(picture.clone());
    for (name, value) in staff_file["upload_headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    assert!(put.send().await.unwrap().status().is_success());
    let complete = client.post(url(&format!("/api/storage/v1/uploads/{staff_object}/complete"))).bearer_auth(&admin);
    json_of(complete.send().await.unwrap(), 200).await;
    let before = client.get(url(&format!("/api/storage/v1/objects/{staff_object}/link"))).bearer_auth(alice).send();
    assert_eq!(before.await.unwrap().status(), 404, "a staff file is not a member's until it is sent to them");
    let reply = client
        .post(url(&format!("/api/messaging/v1/conversations/{conversation}/messages")))
        .bearer_auth(&admin)
        .json(&json!({"body": "Your receipt", "attachments": [staff_object]}))
        .send()
        .await
        .unwrap();
    json_of(reply, 201).await;
    let hers = as_member(
        Method::GET,
        &format!("/api/messaging/v1/member/conversations/{conversation}/attachments/{staff_object}"),
        alice,
    );
    let hers = json_of(hers.send().await.unwrap(), 200).await;
    let bytes = client.get(hers["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), picture.as_slice());
    let not_bobs = client.get(url(&format!("/api/storage/v1/objects/{staff_object}/link"))).bearer_auth(bob).send();
    assert_eq!(not_bobs.await.unwrap().status(), 404);
    stack.clean_up().await;
}

/// What a live client saw: the ids of the messages it was sent (in order, repeats kept) and how many connections
/// it made.
type Seen = std::sync::Arc<std::sync::Mutex<(Vec<String>, u32)>>;

/// A live-stream client as the widget and the inbox are: it reconnects by itself (500 ms after its stream ends or
/// fails) with the last id it received, and keeps every message id it was sent and how many connections it made.
fn live_client(
    client: reqwest::Client,
    url: String,
    token: String,
    origin: Option<&'static str>,
) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = std::sync::Arc::default();
    let task = tokio::spawn({
        let seen = seen.clone();
        async move {
            let mut last: Option<String> = None;
            loop {
                let mut request = client.get(&url).bearer_auth(&token);
                if let Some(origin) = origin {
                    request = request.header("origin", origin);
                }
                if let Some(id) = &last {
                    request = request.header("last-event-id", id);
                }
                if let Ok(mut response) = request.send().await
                    && response.status() == 200
                {
                    seen.lock().unwrap().1 += 1;
                    let mut buffer = String::new();
                    while let Ok(Some(chunk)) = response.chunk().await {
                        buffer.push_str(&String::from_utf8_lossy(&chunk));
                        while let Some(end) = buffer.find("\n\n") {
                            let frame: String = buffer.drain(..end + 2).collect();
                            let id = frame.lines().find_map(|l| l.strip_prefix("id: ")).map(str::to_owned);
                            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
                            let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                            if frame.contains("event: message") {
                                let message = data["message"]["id"].as_str().unwrap_or_default().to_owned();
                                seen.lock().unwrap().0.push(message);
                            }
                            if id.is_some() {
                                last = id;
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    (seen, task)
}

#[tokio::test]
async fn messaging_restarted_mid_conversation_loses_nothing_and_clients_reconnect_by_themselves() {
    let mut stack = Stack::start_with(Options { messaging: true, ..Options::default() }).await;
    let client = stack.client.clone();
    let admin = stack.admin_token().await;
    let member = members(&stack, &admin, &["alice"]).await.remove(0);
    let (widget, widget_task) =
        live_client(client.clone(), stack.gateway.url("/api/messaging/v1/member/stream"), member.clone(), Some(SITE));
    let (inbox, inbox_task) =
        live_client(client.clone(), stack.gateway.url("/api/messaging/v1/conversations/stream"), admin.clone(), None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = client
        .post(stack.gateway.url("/api/messaging/v1/member/conversations"))
        .bearer_auth(&member)
        .header("origin", SITE)
        .json(&json!({"body": "before the restart", "client_message_id": "m-0"}))
        .send()
        .await
        .unwrap();
    let conversation = json_of(started, 201).await["conversation"]["id"].as_str().unwrap().to_owned();

    // Member and staff write in turn, each message retried with its client id until it is accepted, as the widget
    // and the inbox do; messaging restarts in the middle.
    let writer = tokio::spawn({
        let (client, member, admin, conversation) =
            (client.clone(), member.clone(), admin.clone(), conversation.clone());
        let (member_url, staff_url) = (
            stack.gateway.url(&format!("/api/messaging/v1/member/conversations/{conversation}/messages")),
            stack.gateway.url(&format!("/api/messaging/v1/conversations/{conversation}/messages")),
        );
        async move {
            let mut ids = Vec::new();
            for n in 1..=30 {
                let body = json!({"body": format!("message {n}"), "client_message_id": format!("m-{n}")});
                loop {
                    let request = if n % 2 == 0 {
                        client.post(&staff_url).bearer_auth(&admin)
                    } else {
                        client.post(&member_url).bearer_auth(&member).header("origin", SITE)
                    };
                    if let Ok(response) = request.json(&body).send().await
                        && response.status().is_success()
                    {
                        let answer: Value = response.json().await.unwrap();
                        ids.push(answer["message"]["id"].as_str().unwrap().to_owned());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            ids
        }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    stack.restart_messaging().await;
    let mut written = writer.await.unwrap();
    written.sort();
    written.dedup();
    assert_eq!(written.len(), 30, "every message was accepted once");

    // Both clients end up with every message exactly once, having reconnected by themselves.
    let deadline = Instant::now() + Duration::from_secs(20);
    for (name, seen) in [("widget", &widget), ("inbox", &inbox)] {
        loop {
            let (messages, connections) = seen.lock().unwrap().clone();
            let mut unique = messages.clone();
            unique.sort();
            unique.dedup();
            if written.iter().all(|id| unique.contains(id)) {
                assert_eq!(unique.len(), messages.len(), "{name} got a message twice");
                assert!(connections >= 2, "{name} reconnected after the restart ({connections} connections)");
                break;
            }
            assert!(Instant::now() < deadline, "{name} is missing messages after the restart: has {}", unique.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let messages = json_of(
        client
            .get(stack.gateway.url(&format!("/api/messaging/v1/conversations/{conversation}/messages")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 31, "nothing lost, nothing twice");
    widget_task.abort();
    inbox_task.abort();
    stack.clean_up().await;
}

#[test]
fn hmac_matches_rfc_4231_test_case_2() {
    assert_eq!(
        hmac_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
