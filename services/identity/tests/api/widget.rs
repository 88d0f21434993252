//! The chat widget's member identity: its settings and secret (staff), the member tokens its pages exchange a
//! signed identifier for (origin-bound, CORS for allowed origins only, failures rate-limited), anonymous visitors
//! where identity is not required, and the mail telling a member a reply is waiting.

use crate::helpers::{Options, TestApp, fields, problem, spawn_app, spawn_app_with};
use almoner_events::Envelope;
use almoner_events::messaging::ConversationReplyWaitingV1;
use almoner_testkit::smtp::SmtpSink;
use base64::Engine;
use hmac::{Hmac, Mac};
use identity::configuration::WidgetSettings;
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;
use uuid::Uuid;

const SITE: &str = "https://charity.example";

/// What the host site's server computes: lower-case hex of HMAC-SHA256(key = the secret's text, identifier).
fn sign(secret: &str, identifier: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(identifier.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The claims of a JWT, unverified.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// An identity:read-only token of the app's tenant.
async fn reader_token(app: &TestApp, admin: &str) -> String {
    let created: Value =
        app.create_api_key(admin, &json!({"name": "Reader", "scopes": ["identity:read"]})).await.json().await.unwrap();
    app.token_for(created["key"].as_str().unwrap()).await
}

/// The app's tenant with its widget on [`SITE`] and a secret; returns the admin token and the secret.
async fn widget_on_site(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    app.allow_origins(&admin, &[SITE], true).await;
    let secret = app.new_widget_secret(&admin).await;
    (admin, secret)
}

fn token_request(tenant: Uuid, identifier: &str, hash: Option<&str>) -> Value {
    match hash {
        Some(hash) => json!({"tenant_id": tenant, "identifier": identifier, "identifier_hash": hash}),
        None => json!({"tenant_id": tenant, "identifier": identifier}),
    }
}

#[tokio::test]
async fn widget_settings_start_as_the_defaults_and_an_admin_replaces_them() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let response = app.get_widget(&admin).await;
    assert_eq!(response.status(), 200);
    let defaults: Value = response.json().await.unwrap();
    assert_eq!(
        defaults,
        json!({
            "has_secret": false,
            "secret_rotated_at": null,
            "allowed_origins": [],
            "identity_required": true,
            "greeting": "Hello! Send us a message and we will reply as soon as we can.",
            "accent_colour": "#1f6feb",
            "notify_email_on_reply": true,
            "reply_mail_url": null,
            "revision": 0,
            "updated_at": null,
        })
    );

    let response = app
        .put_widget(
            &admin,
            &json!({
                "allowed_origins": ["HTTPS://Charity.Example:443", "https://charity.example", "http://localhost:5173",
                    "https://shop.charity.example:8443"],
                "identity_required": false,
                "greeting": "  Hi! How can we help?  ",
                "accent_colour": "#AA00FF",
                "notify_email_on_reply": false,
                "reply_mail_url": "https://Charity.Example/messages?from=mail",
            }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(
        changed["allowed_origins"],
        json!(["https://charity.example", "http://localhost:5173", "https://shop.charity.example:8443"])
    );
    assert_eq!(changed["identity_required"], false);
    assert_eq!(changed["greeting"], "Hi! How can we help?");
    assert_eq!(changed["accent_colour"], "#aa00ff");
    assert_eq!(changed["notify_email_on_reply"], false);
    assert_eq!(changed["reply_mail_url"], "https://charity.example/messages?from=mail");
    assert_eq!(changed["revision"], 1);
    assert!(changed["updated_at"].is_string());
    assert_eq!(app.get_widget(&admin).await.json::<Value>().await.unwrap(), changed);

    // A replacement: reply_mail_url left out is none.
    let again = app.allow_origins(&admin, &[SITE], true).await;
    assert_eq!((again["revision"].clone(), again["reply_mail_url"].clone()), (json!(2), Value::Null));
    assert_eq!(again["allowed_origins"], json!([SITE]));
}

#[tokio::test]
async fn invalid_widget_settings_are_named_field_by_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let body = problem(
        app.put_widget(
            &admin,
            &json!({
                "allowed_origins": ["https://ok.example", "https://charity.example/", "http://charity.example",
                    "https://user@charity.example", "charity.example"],
                "identity_required": true,
                "greeting": "   ",
                "accent_colour": "blue",
                "notify_email_on_reply": true,
                "reply_mail_url": "http://charity.example/messages",
            }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        fields(&body),
        [
            "allowed_origins[1]",
            "allowed_origins[2]",
            "allowed_origins[3]",
            "allowed_origins[4]",
            "greeting",
            "accent_colour",
            "reply_mail_url"
        ]
    );

    let body = problem(app.put_widget(&admin, &json!({})).await, 422, "validation_failed").await;
    assert_eq!(
        fields(&body),
        ["allowed_origins", "identity_required", "greeting", "accent_colour", "notify_email_on_reply"]
    );

    let many: Vec<String> = (0..21).map(|i| format!("https://s{i}.example")).collect();
    let body = problem(
        app.put_widget(
            &admin,
            &json!({"allowed_origins": many, "identity_required": true, "greeting": "x".repeat(281),
                "accent_colour": "#12345", "notify_email_on_reply": true, "reply_mail_url": "/messages"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["allowed_origins", "greeting", "accent_colour", "reply_mail_url"]);

    let unknown = app.put_widget(&admin, &json!({"secret": "mine"})).await;
    problem(unknown, 422, "validation_failed").await;
    // Nothing was stored.
    assert_eq!(app.get_widget(&admin).await.json::<Value>().await.unwrap()["revision"], 0);
}

#[tokio::test]
async fn only_admins_change_the_widget_and_its_secret() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reader = reader_token(&app, &admin).await;

    assert_eq!(app.get_widget(&reader).await.status(), 200);
    let body = json!({"allowed_origins": [SITE], "identity_required": true, "greeting": "Hi",
        "accent_colour": "#000000", "notify_email_on_reply": true});
    problem(app.put_widget(&reader, &body).await, 403, "forbidden").await;
    problem(app.rotate_widget_secret(&reader, None).await, 403, "forbidden").await;
    problem(app.get("/v1/widget", None).await, 401, "unauthorized").await;
    assert_eq!(app.get_widget(&admin).await.json::<Value>().await.unwrap()["has_secret"], false);
}

#[tokio::test]
async fn the_member_scope_cannot_be_given_to_an_api_key() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let response = app.create_api_key(&admin, &json!({"name": "Sneaky", "scopes": ["conversations:member"]})).await;
    assert_eq!(fields(&problem(response, 422, "validation_failed").await), ["scopes[0]"]);
    let response = app
        .post_token(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &app.admin.api_key),
            ("scope", "conversations:member"),
        ])
        .await;
    assert_eq!(problem(response, 400, "malformed_request").await["error"], "invalid_scope");
}

#[tokio::test]
async fn a_rotated_secret_is_shown_once_and_never_again() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let response = app.rotate_widget_secret(&admin, Some("rotate-1")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let rotated: Value = response.json().await.unwrap();
    let secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{secret}");

    let text = app.get_widget(&admin).await.text().await.unwrap();
    assert!(!text.contains(&secret), "GET shows the secret: {text}");
    let settings: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(settings["has_secret"], true);
    assert_eq!(settings["secret_rotated_at"], rotated["rotated_at"]);
    assert_eq!(settings["revision"], 1);

    // A retry with the same key: the same rotation, without the secret, which is not stored in clear.
    let replay = app.rotate_widget_secret(&admin, Some("rotate-1")).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(header(&replay, "idempotent-replayed"), Some("true"));
    assert_eq!(header(&replay, "cache-control"), Some("no-store"));
    assert_eq!(replay.json::<Value>().await.unwrap(), json!({"rotated_at": rotated["rotated_at"]}));
    assert_eq!(app.get_widget(&admin).await.json::<Value>().await.unwrap()["revision"], 1);

    // Stored sealed: neither the secret nor its hex is in the row.
    let row =
        app.db.admin_client().await.query_one("SELECT secret_sealed FROM identity.widget_settings", &[]).await.unwrap();
    let sealed: Vec<u8> = row.get(0);
    assert!(!hex::encode(&sealed).contains(&secret) && !sealed.windows(64).any(|w| w == secret.as_bytes()));

    let next = app.new_widget_secret(&admin).await;
    assert_ne!(next, secret);
    assert_eq!(app.get_widget(&admin).await.json::<Value>().await.unwrap()["revision"], 2);
}

#[tokio::test]
async fn a_correctly_signed_identifier_gets_a_member_token_bound_to_the_page_origin() {
    let app = spawn_app().await;
    let (_, secret) = widget_on_site(&app).await;
    let tenant = app.admin.tenant_id;
    let identifier = "member:42 Zoë@example.org";

    let response =
        app.widget_token(&token_request(tenant, identifier, Some(&sign(&secret, identifier))), Some(SITE)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(header(&response, "access-control-allow-origin"), Some(SITE));
    assert_eq!(header(&response, "vary"), Some("Origin"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["subject"], format!("member:{identifier}"));

    let token = body["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["sub"], format!("member:{identifier}"));
    assert_eq!(claims["scope"], "conversations:member storage:member");
    assert_eq!(claims["tid"], tenant.to_string());
    assert_eq!(claims["origin"], SITE);
    assert_eq!(claims["iss"], "almoner-identity");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 1800);

    // Services verify it against the JWKS like any other token; it opens nothing of identity's.
    let jwks: almoner_http::Jwks = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
    let verifier = almoner_http::TokenVerifier::with_keys("almoner-identity", Duration::ZERO, &jwks);
    let principal = verifier.verify(token).await.unwrap();
    assert_eq!(principal.origin.as_deref(), Some(SITE));
    assert_eq!(principal.scopes, ["conversations:member", "storage:member"]);
    problem(app.get("/v1/widget", Some(token)).await, 403, "forbidden").await;
    problem(app.get("/v1/tenant", Some(token)).await, 403, "forbidden").await;

    // The origin claim is the page's origin as normalised, whatever its spelling.
    let response = app
        .widget_token(
            &token_request(tenant, identifier, Some(&sign(&secret, identifier))),
            Some("https://Charity.Example:443"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(claims_of(body["access_token"].as_str().unwrap())["origin"], SITE);

    // The config the widget renders, for the same page.
    let response = app.widget_config(&tenant.to_string(), Some(SITE)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(SITE));
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"tenant_id": tenant, "identity_required": true,
            "greeting": "Hello! Send us a message and we will reply as soon as we can.", "accent_colour": "#1f6feb"})
    );
}

#[tokio::test]
async fn forged_foreign_stale_malformed_or_missing_hashes_are_all_unverified() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tenant = app.admin.tenant_id;
    app.allow_origins(&admin, &[SITE], true).await;
    let member = "member-42";

    // No secret yet: a hash cannot verify, and the answer is the same as for a wrong one.
    let unverified = |response: reqwest::Response| async move {
        assert_eq!(header(&response, "access-control-allow-origin"), Some(SITE), "the page may read why");
        let body = problem(response, 401, "identity_unverified").await;
        assert_eq!(body["title"], "The member's identity could not be verified");
        body
    };
    let no_secret =
        unverified(app.widget_token(&token_request(tenant, member, Some(&sign("guess", member))), Some(SITE)).await)
            .await;

    let old = app.new_widget_secret(&admin).await;
    let stale = sign(&old, member);
    assert_eq!(app.widget_token(&token_request(tenant, member, Some(&stale)), Some(SITE)).await.status(), 200);
    let secret = app.new_widget_secret(&admin).await;
    let good = sign(&secret, member);

    let forged = hex::encode(rand::random::<[u8; 32]>());
    let for_another = sign(&secret, "member-43");
    let upper_other: String = sign(&secret, "Member-42");
    for hash in [
        forged.as_str(),
        for_another.as_str(),
        stale.as_str(),
        upper_other.as_str(),
        &good[..63],
        &format!("{good}00"),
        "zz",
        "",
        &"g".repeat(64),
    ] {
        let body = unverified(app.widget_token(&token_request(tenant, member, Some(hash)), Some(SITE)).await).await;
        assert_eq!(body, no_secret, "hash {hash:?} got another answer");
    }
    // Missing, where identity is required (the default).
    let body = unverified(app.widget_token(&token_request(tenant, member, None), Some(SITE)).await).await;
    assert_eq!(body, no_secret);
    let body = unverified(
        app.widget_token(&json!({"tenant_id": tenant, "identifier": member, "identifier_hash": null}), Some(SITE))
            .await,
    )
    .await;
    assert_eq!(body, no_secret);
    // The hash is over the identifier exactly: not trimmed.
    unverified(app.widget_token(&token_request(tenant, " member-42", Some(&good)), Some(SITE)).await).await;

    assert_eq!(app.widget_token(&token_request(tenant, member, Some(&good)), Some(SITE)).await.status(), 200);
    // Either case of hex is the same hash.
    let upper = good.to_ascii_uppercase();
    assert_eq!(app.widget_token(&token_request(tenant, member, Some(&upper)), Some(SITE)).await.status(), 200);
}

#[tokio::test]
async fn pages_of_other_origins_are_refused() {
    let app = spawn_app().await;
    let (_, secret) = widget_on_site(&app).await;
    let tenant = app.admin.tenant_id;
    let request = token_request(tenant, "member-1", Some(&sign(&secret, "member-1")));

    for origin in [
        Some("https://evil.example"),
        Some("http://charity.example"),
        Some("https://charity.example:8443"),
        Some("null"),
        None,
    ] {
        let response = app.widget_token(&request, origin).await;
        assert!(header(&response, "access-control-allow-origin").is_none(), "{origin:?}");
        assert_eq!(header(&response, "vary"), Some("Origin"));
        let body = problem(response, 403, "origin_not_allowed").await;
        assert_eq!(body["type"], "https://almoner.org/problems/origin_not_allowed");
        let response = app.widget_config(&tenant.to_string(), origin).await;
        assert!(header(&response, "access-control-allow-origin").is_none(), "{origin:?}");
        problem(response, 403, "origin_not_allowed").await;
    }

    // An unknown tenant: the config says so; the token endpoint answers as for a tenant that allows no origin.
    let nobody = Uuid::new_v4();
    problem(app.widget_config(&nobody.to_string(), Some(SITE)).await, 404, "not_found").await;
    let response =
        app.widget_token(&token_request(nobody, "member-1", Some(&sign(&secret, "member-1"))), Some(SITE)).await;
    problem(response, 403, "origin_not_allowed").await;
    let other = app.other_tenant().await;
    problem(app.widget_config(&other.tenant_id.to_string(), Some(SITE)).await, 403, "origin_not_allowed").await;

    // Field errors, with CORS for an allowed page so its developer can read them.
    let response = app.widget_token(&json!({"tenant_id": tenant, "identifier": "a\u{7}b"}), Some(SITE)).await;
    assert_eq!(header(&response, "access-control-allow-origin"), Some(SITE));
    assert_eq!(fields(&problem(response, 422, "validation_failed").await), ["identifier"]);
    let response = app.widget_token(&json!({"tenant_id": "nope", "identifier": "x".repeat(201)}), Some(SITE)).await;
    assert_eq!(fields(&problem(response, 422, "validation_failed").await), ["tenant_id", "identifier"]);
    let response = app.widget_token(&json!({}), Some(SITE)).await;
    assert_eq!(fields(&problem(response, 422, "validation_failed").await), ["tenant_id", "identifier"]);
    let response = app.widget_config("nope", Some(SITE)).await;
    assert_eq!(fields(&problem(response, 422, "validation_failed").await), ["tenant_id"]);
}

#[tokio::test]
async fn preflights_let_pages_send_json_and_the_request_itself_decides() {
    let app = spawn_app().await;
    let preflight = |path: &'static str, origin: Option<&'static str>| {
        let mut request = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let response = preflight("/v1/widget/token", Some("https://anywhere.example")).await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "access-control-allow-origin"), Some("https://anywhere.example"));
    assert_eq!(header(&response, "access-control-allow-methods"), Some("POST"));
    assert_eq!(header(&response, "access-control-allow-headers"), Some("content-type"));
    assert_eq!(header(&response, "access-control-max-age"), Some("600"));
    assert_eq!(header(&response, "vary"), Some("Origin"));
    let response = preflight("/v1/widget/config", Some("http://localhost:3000")).await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "access-control-allow-methods"), Some("GET"));
    for origin in [None, Some("null"), Some("http://evil.example")] {
        let response = preflight("/v1/widget/token", origin).await.unwrap();
        assert_eq!(response.status(), 204);
        assert!(header(&response, "access-control-allow-origin").is_none(), "{origin:?}");
        assert!(header(&response, "access-control-allow-methods").is_none(), "{origin:?}");
    }
    // No CORS anywhere else: the staff API is the gateway's business.
    let response = app
        .client
        .get(app.url("/v1/widget"))
        .bearer_auth(app.admin_token().await)
        .header("origin", "https://anywhere.example")
        .send()
        .await
        .unwrap();
    assert!(header(&response, "access-control-allow-origin").is_none());
    let response = app.client.request(reqwest::Method::OPTIONS, app.url("/v1/widget")).send().await.unwrap();
    problem(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn another_tenants_secret_does_not_work_here() {
    let app = spawn_app().await;
    let (_, secret) = widget_on_site(&app).await;
    let other = app.other_tenant().await;
    let other_admin = app.token_for(&other.api_key).await;
    app.allow_origins(&other_admin, &[SITE], true).await;
    let other_secret = app.new_widget_secret(&other_admin).await;
    let member = "member-7";

    let theirs = sign(&other_secret, member);
    problem(
        app.widget_token(&token_request(app.admin.tenant_id, member, Some(&theirs)), Some(SITE)).await,
        401,
        "identity_unverified",
    )
    .await;
    let body: Value = app
        .widget_token(&token_request(other.tenant_id, member, Some(&theirs)), Some(SITE))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(claims_of(body["access_token"].as_str().unwrap())["tid"], other.tenant_id.to_string());
    problem(
        app.widget_token(&token_request(other.tenant_id, member, Some(&sign(&secret, member))), Some(SITE)).await,
        401,
        "identity_unverified",
    )
    .await;

    // Their sealed secret copied into this tenant's row does not open here: it is sealed for its own tenant.
    let admin_db = app.db.admin_client().await;
    admin_db
        .execute(
            "UPDATE identity.widget_settings SET secret_sealed = (SELECT secret_sealed FROM identity.widget_settings \
             WHERE tenant_id = $2) WHERE tenant_id = $1",
            &[&app.admin.tenant_id, &other.tenant_id],
        )
        .await
        .unwrap();
    problem(
        app.widget_token(&token_request(app.admin.tenant_id, member, Some(&theirs)), Some(SITE)).await,
        401,
        "identity_unverified",
    )
    .await;
}

#[tokio::test]
async fn anonymous_visitors_get_tokens_only_where_identity_is_not_required() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let tenant = app.admin.tenant_id;
    let visitor = Uuid::new_v4().to_string();
    app.allow_origins(&admin, &[SITE], true).await;
    problem(app.widget_token(&token_request(tenant, &visitor, None), Some(SITE)).await, 401, "identity_unverified")
        .await;

    app.allow_origins(&admin, &[SITE], false).await;
    let config: Value = app.widget_config(&tenant.to_string(), Some(SITE)).await.json().await.unwrap();
    assert_eq!(config["identity_required"], false);
    let response = app.widget_token(&token_request(tenant, &visitor, None), Some(SITE)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["subject"], format!("visitor:{visitor}"));
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], format!("visitor:{visitor}"));
    assert_eq!(
        (claims["scope"].as_str(), claims["origin"].as_str()),
        (Some("conversations:member storage:member"), Some(SITE))
    );

    // The UUID is the visitor's only secret: it must be a random one the widget made.
    for made_up in ["visitor-1", "00000000-0000-0000-0000-000000000000", &Uuid::now_v7().to_string()] {
        let response = app.widget_token(&token_request(tenant, made_up, None), Some(SITE)).await;
        assert_eq!(fields(&problem(response, 422, "validation_failed").await), ["identifier"], "{made_up}");
    }
    // A member the host vouches for is still a member.
    let secret = app.new_widget_secret(&admin).await;
    let body: Value = app
        .widget_token(&token_request(tenant, "member-9", Some(&sign(&secret, "member-9"))), Some(SITE))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["subject"], "member:member-9");
}

#[tokio::test]
async fn without_a_secrets_key_no_secret_is_made_or_checked() {
    let app = spawn_app_with(Options { widget: Some(WidgetSettings::default()), ..Options::default() }).await;
    let admin = app.admin_token().await;
    let tenant = app.admin.tenant_id;
    app.allow_origins(&admin, &[SITE], false).await;

    let body = problem(app.rotate_widget_secret(&admin, None).await, 503, "widget_secrets_unconfigured").await;
    assert!(body["detail"].as_str().unwrap().contains("widget.secrets_key"), "{body}");
    let response = app.widget_token(&token_request(tenant, "member-1", Some(&sign("x", "member-1"))), Some(SITE)).await;
    assert_eq!(header(&response, "access-control-allow-origin"), Some(SITE));
    problem(response, 503, "widget_secrets_unconfigured").await;
    // Anonymous visitors need no secret.
    let visitor = Uuid::new_v4().to_string();
    assert_eq!(app.widget_token(&token_request(tenant, &visitor, None), Some(SITE)).await.status(), 200);
}

#[tokio::test]
async fn repeated_unverified_attempts_are_rate_limited_per_tenant_and_address() {
    let app = spawn_app_with(Options {
        widget: Some(WidgetSettings {
            secrets_key: Some(crate::helpers::WIDGET_SECRETS_KEY.to_owned().into()),
            max_failures_per_client: 3,
            ..WidgetSettings::default()
        }),
        ..Options::default()
    })
    .await;
    let (_, secret) = widget_on_site(&app).await;
    let tenant = app.admin.tenant_id;
    let good = token_request(tenant, "member-1", Some(&sign(&secret, "member-1")));
    let wrong = token_request(tenant, "member-1", Some(&sign("guess", "member-1")));

    // Successes do not count.
    for _ in 0..4 {
        assert_eq!(app.widget_token(&good, Some(SITE)).await.status(), 200);
    }
    for _ in 0..3 {
        problem(app.widget_token(&wrong, Some(SITE)).await, 401, "identity_unverified").await;
    }
    // Locked for a while, even with the right hash: guessing gains nothing.
    let response = app.widget_token(&good, Some(SITE)).await;
    let retry_after: u64 = header(&response, "retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&response, "access-control-allow-origin"), Some(SITE));
    assert_eq!(header(&response, "access-control-expose-headers"), Some("Retry-After"));
    problem(response, 429, "rate_limited").await;

    // Another tenant's widget, from the same address, is not held up.
    let other = app.other_tenant().await;
    let other_admin = app.token_for(&other.api_key).await;
    app.allow_origins(&other_admin, &[SITE], true).await;
    let other_secret = app.new_widget_secret(&other_admin).await;
    let response = app
        .widget_token(&token_request(other.tenant_id, "member-1", Some(&sign(&other_secret, "member-1"))), Some(SITE))
        .await;
    assert_eq!(response.status(), 200);
}

fn reply_waiting(
    tenant: Uuid,
    conversation_id: Uuid,
    message_id: Uuid,
    email: &str,
) -> Envelope<ConversationReplyWaitingV1> {
    Envelope::new(
        tenant,
        "messaging",
        ConversationReplyWaitingV1 {
            conversation_id,
            message_id,
            member_identifier: "member-42".into(),
            member_email: email.into(),
            member_name: Some("Zoë Smith".into()),
            replied_at: chrono::Utc::now(),
        },
    )
}

/// Waits until identity has handled `event_id` (recorded in its processed_events).
async fn wait_handled(app: &TestApp, event_id: Uuid) {
    let client = app.db.admin_client().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let n: i64 = client
            .query_one("SELECT count(*) FROM identity.processed_events WHERE event_id = $1", &[&event_id])
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "event {event_id} not handled in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_waiting_reply_is_mailed_once_without_anything_of_the_conversation() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Options { mail_port: Some(sink.port()), ..Options::default() }).await;
    let admin = app.admin_token().await;
    let mut settings = app.allow_origins(&admin, &[SITE], true).await;
    settings["reply_mail_url"] = json!("https://charity.example/messages");
    for member in ["has_secret", "secret_rotated_at", "revision", "updated_at"] {
        settings.as_object_mut().unwrap().remove(member);
    }
    assert_eq!(app.put_widget(&admin, &settings).await.status(), 200);

    let tenant = app.admin.tenant_id;
    let (conversation, message) = (Uuid::new_v4(), Uuid::new_v4());
    let first = reply_waiting(tenant, conversation, message, "zoe@example.org");
    app.publish(&first).await;
    // Delivered twice, and sent again under another event id: one mail.
    app.publish(&first).await;
    let again = reply_waiting(tenant, conversation, message, "zoe@example.org");
    app.publish(&again).await;

    let mail = sink.wait_for("zoe@example.org", Duration::from_secs(15)).await;
    assert_eq!(mail.subject(), "Test Charity replied to your message");
    let text = mail.body_text();
    assert!(text.starts_with("Hello Zoë Smith,\n\nTest Charity replied to your message."), "{text}");
    assert!(text.contains("https://charity.example/messages"), "{text}");
    for private in [conversation.to_string(), message.to_string(), "member-42".to_owned()] {
        assert!(!text.contains(&private) && !mail.subject().contains(&private), "{private} in {text}");
    }
    wait_handled(&app, again.id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1, "mailed more than once");

    // Another message of the conversation is another mail.
    let next = reply_waiting(tenant, conversation, Uuid::new_v4(), "zoe@example.org");
    app.publish(&next).await;
    wait_handled(&app, next.id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.messages().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no second mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn no_reply_mail_when_the_tenant_turned_them_off_or_no_relay_is_configured() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Options { mail_port: Some(sink.port()), ..Options::default() }).await;
    let admin = app.admin_token().await;
    let body = json!({"allowed_origins": [SITE], "identity_required": true, "greeting": "Hi",
        "accent_colour": "#000000", "notify_email_on_reply": false});
    assert_eq!(app.put_widget(&admin, &body).await.status(), 200);
    let event = reply_waiting(app.admin.tenant_id, Uuid::new_v4(), Uuid::new_v4(), "zoe@example.org");
    app.publish(&event).await;
    wait_handled(&app, event.id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.messages().is_empty(), "mailed though the tenant turned reply mails off");

    // No relay at all: handled (acknowledged) without a mail.
    let app = spawn_app().await;
    let event = reply_waiting(app.admin.tenant_id, Uuid::new_v4(), Uuid::new_v4(), "zoe@example.org");
    app.publish(&event).await;
    wait_handled(&app, event.id).await;
    let mailed: i64 =
        app.db.admin_client().await.query_one("SELECT count(*) FROM identity.reply_mails", &[]).await.unwrap().get(0);
    assert_eq!(mailed, 0);
}
