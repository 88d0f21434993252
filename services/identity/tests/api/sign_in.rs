//! Staff sign-in: a mailed link used once within its lifetime opens a session (an access token with the role's
//! scopes, a refresh token in an HttpOnly cookie that rotates and is revoked at sign-out); asking is rate-limited
//! and answers the same for any address.

use crate::helpers::{Options, TestApp, fields, problem, spawn_app_with};
use almoner_testkit::smtp::SmtpSink;
use identity::configuration::SignInSettings;
use serde_json::{Value, json};
use std::time::Duration;

const CONSOLE: &str = "https://console.charity.example";

async fn spawn_with_mail() -> (TestApp, SmtpSink) {
    spawn_with(SignInSettings { console_url: format!("{CONSOLE}/"), ..SignInSettings::default() }).await
}

async fn spawn_with(sign_in: SignInSettings) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app =
        spawn_app_with(Options { mail_port: Some(sink.port()), sign_in: Some(sign_in), ..Options::default() }).await;
    (app, sink)
}

async fn add_staff(app: &TestApp, admin_token: &str, email: &str, role: &str) -> Value {
    let response = app
        .client
        .post(app.url("/v1/staff"))
        .bearer_auth(admin_token)
        .json(&json!({"email": email, "name": "Zoë \"Z\" Smith, Esq.", "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn ask_for_link(app: &TestApp, email: &str) -> reqwest::Response {
    app.client.post(app.url("/v1/sign-in/links")).json(&json!({"email": email})).send().await.unwrap()
}

/// The link in the next mail to `email`, and its token.
async fn next_link(sink: &SmtpSink, email: &str) -> (String, String) {
    let mail = sink.wait_for(email, Duration::from_secs(10)).await;
    let text = mail.body_text();
    let url = text.split_whitespace().find(|w| w.starts_with("https://")).expect("a link in the mail").to_owned();
    let token = url.split_once("#token=").expect("the token in the fragment").1.to_owned();
    (url, token)
}

async fn use_token(app: &TestApp, token: &str) -> reqwest::Response {
    app.client.post(app.url("/v1/sign-in/tokens")).json(&json!({"token": token})).send().await.unwrap()
}

async fn with_cookie(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.client.post(app.url(path)).header("cookie", cookie).send().await.unwrap()
}

/// `almoner_session=<value>` from a response's Set-Cookie, checking its attributes.
fn session_cookie(response: &reqwest::Response) -> String {
    let header = response.headers().get("set-cookie").expect("a Set-Cookie header").to_str().unwrap().to_owned();
    let mut parts = header.split("; ");
    let pair = parts.next().unwrap().to_owned();
    assert!(pair.starts_with("almoner_session=") && pair.len() > 60, "{header}");
    let attributes: Vec<&str> = parts.collect();
    for expected in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/identity/v1/session"] {
        assert!(attributes.contains(&expected), "{expected} missing: {header}");
    }
    let max_age: i64 = attributes.iter().find_map(|a| a.strip_prefix("Max-Age=")).unwrap().parse().unwrap();
    assert!((12 * 3600 - 60..=12 * 3600).contains(&max_age), "{header}");
    pair
}

fn clears_cookie(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("almoner_session=;") && v.contains("Max-Age=0"))
}

#[tokio::test]
async fn a_mailed_link_signs_staff_in_once_with_their_roles_scopes() {
    let (app, sink) = spawn_with_mail().await;
    let admin = app.admin_token().await;
    let member = add_staff(&app, &admin, "zoe@example.org", "viewer").await;

    let response = ask_for_link(&app, " Zoe@Example.ORG ").await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "sent"}));

    let mail = sink.wait_for("zoe@example.org", Duration::from_secs(10)).await;
    assert_eq!(mail.subject(), "Sign in to Test Charity on Almoner");
    let text = mail.body_text();
    assert!(text.contains("within 15 minutes"), "{text}");
    let url = text.split_whitespace().find(|w| w.starts_with("https://")).unwrap();
    // The token rides in the fragment, which browsers never send to a server or in a Referer.
    assert!(url.starts_with(&format!("{CONSOLE}/sign-in/callback#token=")), "{url}");
    let token = url.split_once("#token=").unwrap().1;

    let response = use_token(&app, token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let cookie = session_cookie(&response);
    assert!(!cookie.contains(token), "the refresh token is not the link's");
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 900);
    assert_eq!(session["staff"]["id"], member["id"]);
    assert_eq!(session["staff"]["email"], "zoe@example.org");
    assert_eq!(session["staff"]["role"], "viewer");
    assert_eq!(session["staff"]["tenant_name"], "Test Charity");
    assert_eq!(session["staff"]["tenant_id"], app.admin.tenant_id.to_string());
    assert_eq!(session["scopes"], member["scopes"]);

    // The token is the viewer's: it reads, and the services refuse a change.
    let access = session["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/tenant", Some(access)).await.status(), 200);
    let refused = app
        .client
        .post(app.url("/v1/staff"))
        .bearer_auth(access)
        .json(&json!({"email": "eve@example.org", "name": "Eve", "role": "admin"}))
        .send()
        .await
        .unwrap();
    problem(refused, 403, "forbidden").await;

    // Once only.
    problem(use_token(&app, token).await, 401, "sign_in_link_invalid").await;
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_no_mail() {
    let (app, sink) = spawn_with_mail().await;
    let admin = app.admin_token().await;
    add_staff(&app, &admin, "known@example.org", "fundraiser").await;

    let unknown = ask_for_link(&app, "nobody@example.org").await;
    assert_eq!(unknown.status(), 202);
    let unknown_body: Value = unknown.json().await.unwrap();
    let known = ask_for_link(&app, "known@example.org").await;
    assert_eq!(known.status(), 202);
    assert_eq!(known.json::<Value>().await.unwrap(), unknown_body);

    next_link(&sink, "known@example.org").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let recipients: Vec<Vec<String>> = sink.messages().into_iter().map(|m| m.to).collect();
    assert_eq!(recipients, [["known@example.org"]]);
}

#[tokio::test]
async fn an_expired_or_made_up_link_is_refused() {
    let (app, sink) = spawn_with_mail().await;
    let admin = app.admin_token().await;
    add_staff(&app, &admin, "late@example.org", "admin").await;
    ask_for_link(&app, "late@example.org").await;
    let (_, token) = next_link(&sink, "late@example.org").await;

    let tx = app.pool.tenant_tx(app.admin.tenant_id).await.unwrap();
    tx.execute("UPDATE sign_in_links SET expires_at = now() - interval '1 second'", &[]).await.unwrap();
    tx.commit().await.unwrap();
    let expired = problem(use_token(&app, &token).await, 401, "sign_in_link_invalid").await;
    assert_eq!(expired["title"], "The sign-in link has expired or was already used");

    // Well formed but never issued, issued for another tenant's id, or not a token at all: the same answer.
    let (tenant, secret) = token.split_once('.').unwrap();
    let other_tenant = app.other_tenant().await;
    for forged in [
        format!("{tenant}.{}", "A".repeat(43)),
        format!("{}.{secret}", other_tenant.tenant_id.simple()),
        "not-a-token".to_owned(),
        format!("{token}{token}"),
    ] {
        problem(use_token(&app, &forged).await, 401, "sign_in_link_invalid").await;
    }
    let missing = app.client.post(app.url("/v1/sign-in/tokens")).json(&json!({})).send().await.unwrap();
    assert_eq!(fields(&problem(missing, 422, "validation_failed").await), ["token"]);
    let form = app.client.post(app.url("/v1/sign-in/tokens")).form(&[("token", &token)]).send().await.unwrap();
    problem(form, 415, "unsupported_media_type").await;
    let bad_address = ask_for_link(&app, "not an address").await;
    assert_eq!(fields(&problem(bad_address, 422, "validation_failed").await), ["email"]);
}

#[tokio::test]
async fn a_refresh_rotates_the_cookie_and_a_replayed_one_ends_the_session() {
    let (app, sink) = spawn_with_mail().await;
    let admin = app.admin_token().await;
    let member = add_staff(&app, &admin, "ann@example.org", "viewer").await;
    ask_for_link(&app, "ann@example.org").await;
    let (_, token) = next_link(&sink, "ann@example.org").await;
    let first = session_cookie(&use_token(&app, &token).await);

    // Refreshed: a new access token and a new cookie; the role is read afresh, so a change applies now.
    let patched = app
        .client
        .patch(app.url(&format!("/v1/staff/{}", member["id"].as_str().unwrap())))
        .bearer_auth(&admin)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"role": "fundraiser"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let response = with_cookie(&app, "/v1/session/refresh", &first).await;
    assert_eq!(response.status(), 200);
    let second = session_cookie(&response);
    assert_ne!(second, first);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["staff"]["role"], "fundraiser");
    assert!(session["scopes"].as_array().unwrap().iter().any(|s| s == "fundraising:write"), "{session}");

    // The replaced cookie again (stolen, say): refused, and the session ends for the current cookie too.
    let replay = with_cookie(&app, "/v1/session/refresh", &first).await;
    assert!(clears_cookie(&replay));
    problem(replay, 401, "unauthorized").await;
    problem(with_cookie(&app, "/v1/session/refresh", &second).await, 401, "unauthorized").await;

    // No cookie, or a broken one.
    let none = app.client.post(app.url("/v1/session/refresh")).send().await.unwrap();
    problem(none, 401, "unauthorized").await;
    problem(with_cookie(&app, "/v1/session/refresh", "almoner_session=junk; other=1").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn sign_out_ends_the_session_and_a_removed_member_cannot_refresh() {
    let (app, sink) = spawn_with_mail().await;
    let admin = app.admin_token().await;
    let member = add_staff(&app, &admin, "bo@example.org", "messenger").await;

    ask_for_link(&app, "bo@example.org").await;
    let (_, token) = next_link(&sink, "bo@example.org").await;
    let cookie = session_cookie(&use_token(&app, &token).await);
    let out = with_cookie(&app, "/v1/session/sign-out", &format!("theme=dark; {cookie}")).await;
    assert_eq!(out.status(), 204);
    assert!(clears_cookie(&out));
    problem(with_cookie(&app, "/v1/session/refresh", &cookie).await, 401, "unauthorized").await;
    // Signing out again, or with no session at all, is not an error.
    assert_eq!(with_cookie(&app, "/v1/session/sign-out", &cookie).await.status(), 204);
    assert_eq!(app.client.post(app.url("/v1/session/sign-out")).send().await.unwrap().status(), 204);

    ask_for_link(&app, "bo@example.org").await;
    let (_, token) = next_link(&sink, "bo@example.org").await;
    let cookie = session_cookie(&use_token(&app, &token).await);
    let removed = app
        .client
        .delete(app.url(&format!("/v1/staff/{}", member["id"].as_str().unwrap())))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    problem(with_cookie(&app, "/v1/session/refresh", &cookie).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_member_of_two_tenants_gets_a_link_for_each_that_opens_only_its_own() {
    let (app, sink) = spawn_with_mail().await;
    add_staff(&app, &app.admin_token().await, "both@example.org", "admin").await;
    let other = app.other_tenant().await;
    add_staff(&app, &app.token_for(&other.api_key).await, "both@example.org", "viewer").await;

    ask_for_link(&app, "both@example.org").await;
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let (_, token) = next_link(&sink, "both@example.org").await;
        let session: Value = use_token(&app, &token).await.json().await.unwrap();
        sessions.push((session["staff"]["tenant_name"].as_str().unwrap().to_owned(), session));
    }
    sessions.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = sessions.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Other Charity", "Test Charity"]);
    assert_eq!(sessions[0].1["staff"]["tenant_id"], other.tenant_id.to_string());
    assert_eq!(sessions[0].1["staff"]["role"], "viewer");
    assert_eq!(sessions[1].1["staff"]["role"], "admin");

    // Each token sees its own tenant only.
    for (name, session) in &sessions {
        let tenant: Value =
            app.get("/v1/tenant", Some(session["access_token"].as_str().unwrap())).await.json().await.unwrap();
        assert_eq!(&tenant["name"], name);
    }
}

#[tokio::test]
async fn asking_for_links_is_rate_limited_per_address_whether_or_not_it_is_staff() {
    let (app, _sink) = spawn_with(SignInSettings { max_links_per_address: 3, ..SignInSettings::default() }).await;
    for address in ["nobody@example.org", "Somebody@Example.org"] {
        for _ in 0..3 {
            assert_eq!(ask_for_link(&app, address).await.status(), 202);
        }
        let limited = problem(ask_for_link(&app, &address.to_uppercase()).await, 429, "rate_limited").await;
        assert!(limited["detail"].is_string());
    }
    assert_eq!(ask_for_link(&app, "third@example.org").await.status(), 202, "other addresses still ask");
}
