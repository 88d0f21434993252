//! Chat widget conversations: the member's side and the staff inbox, their live streams (across replicas, after a
//! reconnect, across a restart), who may read what, and the "a reply is waiting" mail event.

use crate::helpers::{TestApp, problem, spawn_app};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

const SITE: &str = "https://members.charity.example";

/// One Server-Sent Events frame.
#[derive(Debug)]
struct Frame {
    id: Option<i64>,
    event: String,
    data: Value,
}

/// A live stream read frame by frame.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(
        app_url: &str,
        client: &reqwest::Client,
        token: &str,
        origin: Option<&str>,
        after: Option<i64>,
    ) -> Self {
        let mut request = client.get(app_url).bearer_auth(token);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(after) = after {
            request = request.header("last-event-id", after.to_string());
        }
        let response = request.send().await.expect("stream opened");
        assert_eq!(response.status(), 200, "{app_url}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next frame (comments skipped), failing the test after `within`.
    async fn next(&mut self, within: Duration) -> Frame {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if data.is_empty() {
                    continue; // a comment (heartbeat) or the retry hint alone
                }
                return Frame { id, event, data: serde_json::from_str(&data).expect("frame data is JSON") };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no frame within {within:?}; so far: {:?}", self.buffer))
                .expect("stream read")
                .expect("stream still open");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// The next frame of `event`, skipping others.
    async fn next_of(&mut self, event: &str, within: Duration) -> Frame {
        let deadline = Instant::now() + within;
        loop {
            let frame = self.next(deadline.saturating_duration_since(Instant::now())).await;
            if frame.event == event {
                return frame;
            }
        }
    }
}

impl TestApp {
    fn member_token(&self, identifier: &str) -> String {
        self.issuer.member_token(self.tenant_id, identifier, SITE)
    }

    async fn member(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(token).header("origin", SITE);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    async fn member_ok(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let response = self.member(method, path, token, body).await;
        let got = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "{path}: {answer}");
        answer
    }

    async fn staff_stream(&self, after: Option<i64>) -> EventStream {
        EventStream::open(&self.url("/v1/conversations/stream"), &self.client, &self.token(), None, after).await
    }

    async fn member_stream(&self, token: &str, after: Option<i64>) -> EventStream {
        EventStream::open(&self.url("/v1/member/stream"), &self.client, token, Some(SITE), after).await
    }

    async fn start_conversation(&self, token: &str, body: &str) -> Value {
        self.member_ok(reqwest::Method::POST, "/v1/member/conversations", token, Some(json!({"body": body})), 201).await
    }
}

const SOON: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_member_and_staff_talk_and_each_sees_the_other_live() {
    let app = spawn_app().await;
    let member = app.member_token("member-1");
    let mut inbox = app.staff_stream(None).await;
    assert_eq!(inbox.next(SOON).await.event, "ready");
    let mut widget = app.member_stream(&member, None).await;
    assert_eq!(widget.next(SOON).await.event, "ready");

    let started = app.start_conversation(&member, "Hello, can I change my monthly gift?").await;
    let id = started["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(started["message"]["seq"], 1);
    assert_eq!(started["message"]["author"], "member");
    assert!(started["message"].get("author_subject").is_none(), "members do not see subjects");

    let seen = inbox.next_of("message", SOON).await;
    assert_eq!(seen.data["message"]["body"], "Hello, can I change my monthly gift?");
    assert_eq!(seen.data["conversation"]["member"]["identifier"], "member-1");
    assert_eq!(seen.data["conversation"]["unread"], 1);
    assert_eq!(seen.data["message"]["author_subject"], "member:member-1");
    let own = widget.next_of("message", SOON).await;
    assert_eq!(own.data["message"]["seq"], 1);

    let summary = app.get_ok("/v1/conversations/summary").await;
    assert_eq!((summary["open"].as_i64(), summary["unread_conversations"].as_i64()), (Some(1), Some(1)));

    let reply = app.post_ok(&format!("/v1/conversations/{id}/messages"), &json!({"body": "Of course."}), 201).await;
    assert_eq!(reply["message"]["seq"], 2);
    assert_eq!(reply["conversation"]["unread"], 0, "replying reads what came before");
    let answered = widget.next_of("message", SOON).await;
    assert_eq!(answered.data["message"]["body"], "Of course.");
    assert_eq!(answered.data["message"]["author"], "staff");
    assert_eq!(answered.data["conversation"]["unread"], 1);

    // The member reads it: staff see the receipt live.
    let read = app
        .member_ok(
            reqwest::Method::POST,
            &format!("/v1/member/conversations/{id}/read"),
            &member,
            Some(json!({"seq": 99})),
            200,
        )
        .await;
    assert_eq!((read["read_seq"].as_i64(), read["unread"].as_i64()), (Some(2), Some(0)), "never past the newest");
    let receipt = inbox.next_of("conversation", SOON).await;
    assert_eq!(receipt.data["conversation"]["member_read_seq"], 2);

    // Assigned and resolved; the member's next message opens it again.
    let me = format!("staff:{}", Uuid::new_v4());
    let response = app
        .patch(&format!("/v1/conversations/{id}"), &app.token(), &json!({"assignee": me, "status": "resolved"}))
        .await;
    assert_eq!(response.status(), 200);
    let changed = inbox.next_of("conversation", SOON).await;
    assert_eq!(
        (changed.data["conversation"]["status"].as_str(), changed.data["conversation"]["assignee"].as_str()),
        (Some("resolved"), Some(me.as_str()))
    );
    let again = app
        .member_ok(
            reqwest::Method::POST,
            &format!("/v1/member/conversations/{id}/messages"),
            &member,
            Some(json!({"body": "One more thing"})),
            201,
        )
        .await;
    assert_eq!(again["conversation"]["status"], "open");

    let messages = app.get_ok(&format!("/v1/conversations/{id}/messages")).await;
    let bodies: Vec<&str> = messages["data"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["Hello, can I change my monthly gift?", "Of course.", "One more thing"]);
    let page = app.get_ok(&format!("/v1/conversations/{id}/messages?after_seq=1&limit=1")).await;
    assert_eq!((page["data"][0]["seq"].as_i64(), page["more"].as_bool()), (Some(2), Some(true)));
}

#[tokio::test]
async fn a_retried_message_with_its_client_id_is_one_message() {
    let app = spawn_app().await;
    let member = app.member_token("m");
    let id = app.start_conversation(&member, "first").await["conversation"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/member/conversations/{id}/messages");
    let body = json!({"body": "sent twice", "client_message_id": "c-1"});
    let first = app.member_ok(reqwest::Method::POST, &path, &member, Some(body.clone()), 201).await;
    let second = app.member_ok(reqwest::Method::POST, &path, &member, Some(body), 200).await;
    assert_eq!(first["message"]["id"], second["message"]["id"]);
    let messages = app.member_ok(reqwest::Method::GET, &format!("{path}?after_seq=0"), &member, None, 200).await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_client_that_reconnects_gets_everything_it_missed_in_order() {
    let app = spawn_app().await;
    let member = app.member_token("m");
    let mut inbox = app.staff_stream(None).await;
    let ready = inbox.next(SOON).await;
    let id = app.start_conversation(&member, "one").await["conversation"]["id"].as_str().unwrap().to_owned();
    let first = inbox.next_of("message", SOON).await;
    assert!(first.id.unwrap() > ready.data["stream_id"].as_i64().unwrap());
    drop(inbox); // the network goes

    for body in ["two", "three", "four"] {
        app.member_ok(
            reqwest::Method::POST,
            &format!("/v1/member/conversations/{id}/messages"),
            &member,
            Some(json!({"body": body})),
            201,
        )
        .await;
    }
    let mut inbox = app.staff_stream(first.id).await;
    assert_eq!(inbox.next(SOON).await.data["stream_id"], first.id.unwrap());
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(inbox.next_of("message", SOON).await.data["message"]["body"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, ["two", "three", "four"]);

    // A number from another stream (say, a restored database) is told to reload.
    let mut lost = app.staff_stream(Some(1_000_000)).await;
    assert_eq!(lost.next(SOON).await.event, "reset");
}

#[tokio::test]
async fn a_member_sees_only_their_own_conversations_and_only_from_their_origin() {
    let app = spawn_app().await;
    let alice = app.member_token("alice");
    let bob = app.member_token("bob");
    let id = app.start_conversation(&alice, "private").await["conversation"]["id"].as_str().unwrap().to_owned();
    app.start_conversation(&bob, "bob's own").await;

    for path in [format!("/v1/member/conversations/{id}"), format!("/v1/member/conversations/{id}/messages")] {
        problem(app.member(reqwest::Method::GET, &path, &bob, None).await, 404, "not_found").await;
    }
    let send = app
        .member(
            reqwest::Method::POST,
            &format!("/v1/member/conversations/{id}/messages"),
            &bob,
            Some(json!({"body": "hi"})),
        )
        .await;
    problem(send, 404, "not_found").await;
    let read = app
        .member(reqwest::Method::POST, &format!("/v1/member/conversations/{id}/read"), &bob, Some(json!({"seq": 1})))
        .await;
    problem(read, 404, "not_found").await;
    let own = app.member_ok(reqwest::Method::GET, "/v1/member/conversations", &bob, None, 200).await;
    assert_eq!(own["data"].as_array().unwrap().len(), 1);
    assert_eq!(own["data"][0]["last_preview"], "bob's own");

    // Bob's live stream carries nothing of Alice's.
    let mut bobs = app.member_stream(&bob, None).await;
    bobs.next(SOON).await;
    app.member_ok(
        reqwest::Method::POST,
        &format!("/v1/member/conversations/{id}/messages"),
        &alice,
        Some(json!({"body": "secret"})),
        201,
    )
    .await;
    let mine = app.start_conversation(&bob, "later").await;
    let frame = bobs.next_of("message", SOON).await;
    assert_eq!(frame.data["message"]["id"], mine["message"]["id"], "Alice's message never reached Bob");

    // The token is bound to its origin.
    let elsewhere = app
        .client
        .get(app.url("/v1/member/conversations"))
        .bearer_auth(&alice)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    problem(elsewhere, 403, "origin_not_allowed").await;
    let nowhere = app.client.get(app.url("/v1/member/conversations")).bearer_auth(&alice).send().await.unwrap();
    problem(nowhere, 403, "origin_not_allowed").await;

    // A member token is no staff token, and the other way round; another tenant sees nothing.
    problem(app.member(reqwest::Method::GET, "/v1/conversations", &alice, None).await, 403, "forbidden").await;
    problem(app.member(reqwest::Method::GET, &format!("/v1/conversations/{id}"), &alice, None).await, 403, "forbidden")
        .await;
    problem(app.member(reqwest::Method::GET, "/v1/member/conversations", &app.token(), None).await, 403, "forbidden")
        .await;
    let other = app.token_for(Uuid::new_v4());
    problem(app.get(&format!("/v1/conversations/{id}"), &other).await, 404, "not_found").await;
    let listed: Value = app.get("/v1/conversations", &other).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
    let stranger = app.issuer.member_token(Uuid::new_v4(), "alice", SITE);
    problem(
        app.member(reqwest::Method::GET, &format!("/v1/member/conversations/{id}"), &stranger, None).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn bad_messages_and_changes_are_named_field_by_field() {
    let app = spawn_app().await;
    let member = app.member_token("m");
    for (body, field) in [
        (json!({}), "body"),
        (json!({"body": "   "}), "body"),
        (json!({"body": "x".repeat(4001)}), "body"),
        (json!({"body": "a\u{7}b"}), "body"),
        (json!({"body": "ok", "client_message_id": "has space"}), "client_message_id"),
        (json!({"body": "ok", "attachments": "x"}), "attachments"),
        (json!({"body": "ok", "attachments": ["not-an-id"]}), "attachments[0]"),
        (json!({"attachments": (0..11).map(|_| Uuid::new_v4()).collect::<Vec<_>>()}), "attachments"),
    ] {
        let response = app.member(reqwest::Method::POST, "/v1/member/conversations", &member, Some(body)).await;
        let answer = problem(response, 422, "validation_failed").await;
        assert_eq!(answer["errors"][0]["field"], field);
    }
    // A file is looked up in storage: with storage away, a clear 503 rather than a message without its file.
    let away = app
        .member(
            reqwest::Method::POST,
            "/v1/member/conversations",
            &member,
            Some(json!({"attachments": [Uuid::new_v4()]})),
        )
        .await;
    problem(away, 503, "service_unavailable").await;
    let id = app.start_conversation(&member, "hi").await["conversation"]["id"].as_str().unwrap().to_owned();
    for (patch, field) in [
        (json!({"status": "closed"}), "status"),
        (json!({"status": null}), "status"),
        (json!({"assignee": "bob"}), "assignee"),
    ] {
        let answer = problem(
            app.patch(&format!("/v1/conversations/{id}"), &app.token(), &patch).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(answer["errors"][0]["field"], field);
    }
    let answer = problem(
        app.post(&format!("/v1/conversations/{id}/read"), &app.token(), &json!({"seq": -1})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(answer["errors"][0]["field"], "seq");
    let answer =
        problem(app.get("/v1/conversations?status=closed&assignee=bob", &app.token()).await, 422, "validation_failed")
            .await;
    assert_eq!(answer["errors"].as_array().unwrap().len(), 2);
    let reader = app.reader_token();
    problem(
        app.post(&format!("/v1/conversations/{id}/messages"), &reader, &json!({"body": "no"})).await,
        403,
        "forbidden",
    )
    .await;
    problem(app.get(&format!("/v1/conversations/{}", Uuid::new_v4()), &app.token()).await, 404, "not_found").await;
}

#[tokio::test]
async fn inbox_filters_find_open_mine_unassigned_and_a_donors_conversations() {
    let app = spawn_app().await;
    let me = format!("staff:{}", Uuid::new_v4());
    let my_token = {
        // A staff token whose subject is `me`.
        let claims_subject = me.clone();
        app.issuer.token_as(app.tenant_id, &claims_subject, &["messaging:read", "messaging:write"])
    };
    let a =
        app.start_conversation(&app.member_token("a"), "a").await["conversation"]["id"].as_str().unwrap().to_owned();
    let b =
        app.start_conversation(&app.member_token("b"), "b").await["conversation"]["id"].as_str().unwrap().to_owned();
    let c =
        app.start_conversation(&app.member_token("c"), "c").await["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.patch(&format!("/v1/conversations/{a}"), &my_token, &json!({"assignee": me})).await.status(), 200);
    assert_eq!(
        app.patch(&format!("/v1/conversations/{c}"), &my_token, &json!({"status": "pending"})).await.status(),
        200
    );

    let ids = |page: Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    let get = |path: &str| {
        let (client, url, token) = (app.client.clone(), app.url(path), my_token.clone());
        async move { client.get(url).bearer_auth(token).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(ids(get("/v1/conversations?status=open").await), [b.as_str(), a.as_str()]);
    assert_eq!(ids(get("/v1/conversations?assignee=me").await), [a.as_str()]);
    assert_eq!(ids(get("/v1/conversations?assignee=none&status=open").await), [b.as_str()]);
    assert_eq!(ids(get(&format!("/v1/conversations?assignee={me}")).await), [a.as_str()]);
    assert_eq!(ids(get("/v1/conversations?limit=2").await).len(), 2);
    let summary = get("/v1/conversations/summary").await;
    assert_eq!(summary["mine_open"], 1);
    assert_eq!(summary["unassigned_open"], 1);
    assert_eq!(summary["pending"], 1);
    assert_eq!(summary["unread_messages"], 3);

    // A member who gives the email of a donor is linked to them.
    let donor = Uuid::new_v4();
    app.db
        .admin_client()
        .await
        .execute(
            "INSERT INTO messaging.donors (tenant_id, donor_id, revision, email, sms_changed_at) VALUES ($1, $2, 1, 'ann@example.org', now())",
            &[&app.tenant_id, &donor],
        )
        .await
        .unwrap();
    let ann = app.member_token("ann");
    let profile = app
        .member_ok(
            reqwest::Method::PUT,
            "/v1/member/profile",
            &ann,
            Some(json!({"name": "Ann", "email": "Ann@Example.org"})),
            200,
        )
        .await;
    assert_eq!(profile["email"], "Ann@example.org", "the domain in lower case");
    let bad =
        app.member(reqwest::Method::PUT, "/v1/member/profile", &ann, Some(json!({"email": "not an email"}))).await;
    problem(bad, 422, "validation_failed").await;
    let hers = app.start_conversation(&ann, "About my gift").await["conversation"]["id"].as_str().unwrap().to_owned();
    let page = get(&format!("/v1/conversations?donor_id={donor}")).await;
    assert_eq!(ids(page.clone()), [hers]);
    assert_eq!(page["data"][0]["member"]["donor_id"], donor.to_string());
}

async fn reply_waiting_events(app: &TestApp) -> i64 {
    app.db
        .admin_client()
        .await
        .query_one(
            "SELECT count(*) FROM messaging.outbox WHERE event_type = 'messaging.conversation.reply_waiting.v1'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_member_away_is_mailed_once_until_they_read_and_not_while_connected() {
    let app = spawn_app().await;
    let member = app.member_token("m");
    app.member_ok(reqwest::Method::PUT, "/v1/member/profile", &member, Some(json!({"email": "m@example.org"})), 200)
        .await;
    let id = app.start_conversation(&member, "question").await["conversation"]["id"].as_str().unwrap().to_owned();
    let reply = |body: &'static str| {
        let (app, id) = (&app, id.clone());
        async move { app.post_ok(&format!("/v1/conversations/{id}/messages"), &json!({"body": body}), 201).await }
    };
    reply("answer").await;
    assert_eq!(reply_waiting_events(&app).await, 1);
    reply("and another thing").await;
    assert_eq!(reply_waiting_events(&app).await, 1, "once until the member reads");
    app.member_ok(
        reqwest::Method::POST,
        &format!("/v1/member/conversations/{id}/read"),
        &member,
        Some(json!({"seq": 3})),
        200,
    )
    .await;
    reply("after reading").await;
    assert_eq!(reply_waiting_events(&app).await, 2);

    // While the widget is open, nothing is mailed.
    app.member_ok(
        reqwest::Method::POST,
        &format!("/v1/member/conversations/{id}/read"),
        &member,
        Some(json!({"seq": 4})),
        200,
    )
    .await;
    let mut widget = app.member_stream(&member, None).await;
    widget.next(SOON).await;
    reply("seen live").await;
    assert_eq!(reply_waiting_events(&app).await, 2);
    assert_eq!(widget.next_of("message", SOON).await.data["message"]["body"], "seen live");
    let payload: Value = app
        .db
        .admin_client()
        .await
        .query_one(
            "SELECT payload FROM messaging.outbox WHERE event_type = 'messaging.conversation.reply_waiting.v1' ORDER BY created_at LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // The outbox keeps the whole envelope.
    assert_eq!(payload["payload"]["member_email"], "m@example.org");
    assert!(!payload.to_string().contains("answer"), "the mail event carries no content: {payload}");
}

#[tokio::test]
async fn a_message_written_on_one_replica_reaches_a_stream_on_another_and_a_restart_loses_nothing() {
    let app = spawn_app().await;
    let (second_url, second_stop) = crate::helpers::replica(&app).await;
    let member = app.member_token("m");
    // The staff inbox is on the second replica; the member writes to the first.
    let mut inbox =
        EventStream::open(&format!("{second_url}/v1/conversations/stream"), &app.client, &app.token(), None, None)
            .await;
    inbox.next(SOON).await;
    let id = app.start_conversation(&member, "across").await["conversation"]["id"].as_str().unwrap().to_owned();
    let frame = inbox.next_of("message", SOON).await;
    assert_eq!(frame.data["message"]["body"], "across");

    // The second replica stops: its stream ends, and the client comes back (here, to the first) with the last id.
    second_stop.cancel();
    let started = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), inbox.response.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(_) => break,
            Err(_) => panic!("the stream did not end when its replica stopped"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    for body in ["while", "away"] {
        app.member_ok(
            reqwest::Method::POST,
            &format!("/v1/member/conversations/{id}/messages"),
            &member,
            Some(json!({"body": body})),
            201,
        )
        .await;
    }
    let mut inbox = app.staff_stream(frame.id).await;
    inbox.next(SOON).await;
    assert_eq!(inbox.next_of("message", SOON).await.data["message"]["body"], "while");
    assert_eq!(inbox.next_of("message", SOON).await.data["message"]["body"], "away");
}

#[tokio::test]
async fn an_export_is_dry_run_then_imported_once_and_its_member_finds_it() {
    let app = spawn_app().await;
    let export = json!([
        {
            "id": "cw-1",
            "member": {"identifier": "ann-7", "name": "Ann", "email": "ann@example.org"},
            "status": "resolved",
            "messages": [
                {"author": "staff", "author_name": "Sam", "body": "You are welcome", "sent_at": "2025-03-01T10:20:00Z"},
                {"author": "member", "body": "Thanks for the receipt", "sent_at": "2025-03-01T10:15:00Z",
                 "attachment_urls": ["https://files.example/receipt.pdf"]},
            ],
        },
        {"id": "cw-2", "member": {"identifier": "bob"}, "messages": [{"author": "robot", "sent_at": "later"}]},
        {"id": "cw-1", "member": {"identifier": "ann-7"}, "messages": [{"author": "member", "body": "again", "sent_at": "2025-03-02T00:00:00Z"}]},
    ]);
    let dry = app.post_ok("/v1/conversation-imports", &json!({"dry_run": true, "conversations": export}), 200).await;
    assert_eq!(
        dry["totals"],
        json!({"conversations": 3, "created": 1, "already_imported": 0, "invalid": 2, "messages": 2})
    );
    assert_eq!(dry["outcomes"][0]["outcome"], "create");
    let fields: Vec<&str> =
        dry["outcomes"][1]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["messages[0].author", "messages[0].sent_at", "messages[0].body"]);
    assert_eq!(dry["outcomes"][2]["errors"][0]["field"], "id", "the same id twice in one export");
    assert_eq!(app.get_ok("/v1/conversations").await["data"].as_array().unwrap().len(), 0, "a dry run writes nothing");

    let done = app.post_ok("/v1/conversation-imports", &json!({"dry_run": false, "conversations": export}), 201).await;
    assert_eq!(done["totals"]["created"], 1);
    let id = done["outcomes"][0]["conversation_id"].as_str().unwrap().to_owned();
    let again = app.post_ok("/v1/conversation-imports", &json!({"dry_run": false, "conversations": export}), 201).await;
    assert_eq!(
        (again["outcomes"][0]["outcome"].as_str(), again["outcomes"][0]["conversation_id"].as_str()),
        (Some("already_imported"), Some(id.as_str()))
    );

    let conversation = app.get_ok(&format!("/v1/conversations/{id}")).await;
    assert_eq!((conversation["status"].as_str(), conversation["unread"].as_i64()), (Some("resolved"), Some(0)));
    assert_eq!(conversation["member"]["email"], "ann@example.org");
    assert_eq!(conversation["created_at"], "2025-03-01T10:15:00Z");
    let messages = app.get_ok(&format!("/v1/conversations/{id}/messages")).await;
    assert_eq!(messages["data"][0]["body"], "Thanks for the receipt\n\nAttachment: https://files.example/receipt.pdf");
    assert_eq!(messages["data"][1]["author_subject"], "import:Sam");
    assert_eq!(messages["data"][1]["created_at"], "2025-03-01T10:20:00Z");

    // The member, signed in through the widget with the same identifier, finds their history.
    let ann = app.member_token("ann-7");
    let own = app.member_ok(reqwest::Method::GET, "/v1/member/conversations", &ann, None, 200).await;
    assert_eq!(own["data"][0]["id"], id.as_str());

    let bad = app.post("/v1/conversation-imports", &app.token(), &json!({"conversations": "x"})).await;
    assert_eq!(problem(bad, 422, "validation_failed").await["errors"].as_array().unwrap().len(), 2);
    let reader =
        app.post("/v1/conversation-imports", &app.reader_token(), &json!({"dry_run": true, "conversations": []})).await;
    problem(reader, 403, "forbidden").await;
}
