use crate::helpers::{fields, problem, spawn_app};
use almoner_http::Claims;
use base64::Engine;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn client_credentials_issue_a_token_that_other_services_can_verify_with_the_jwks() {
    let app = spawn_app().await;
    let key = &app.admin.api_key;
    let id = app.admin.api_key_id.to_string();

    // Form body with client_id and client_secret.
    let response =
        app.post_token(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", key)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();

    // HTTP Basic, narrowed scope.
    let response = app
        .client
        .post(app.url("/v1/oauth/token"))
        .basic_auth(&id, Some(key))
        .form(&[("grant_type", "client_credentials"), ("scope", "identity:read")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "identity:read");

    // JSON body.
    let response = app
        .client
        .post(app.url("/v1/oauth/token"))
        .json(&json!({"grant_type": "client_credentials", "client_secret": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A verifier built only from the published JWKS accepts the token, with the tenant and scopes.
    let jwks: almoner_http::Jwks = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kty, "OKP");
    let verifier = almoner_http::TokenVerifier::with_keys("almoner-identity", std::time::Duration::ZERO, &jwks);
    let principal = verifier.verify(token).await.unwrap();
    assert_eq!(principal.tenant_id.as_uuid(), app.admin.tenant_id);
    assert!(principal.has_scope("fundraising:write"));

    let tenant: Value = app.get("/v1/tenant", Some(token)).await.json().await.unwrap();
    assert_eq!(tenant["name"], "Test Charity");
    assert_eq!(tenant["fiscal_year_start_month"], 4);
}

#[tokio::test]
async fn bad_token_requests_get_oauth_errors_as_problems() {
    let app = spawn_app().await;
    let key = app.admin.api_key.clone();

    let wrong_secret = format!("{}{}", &key[..key.len() - 4], "AAAA");
    let body = problem(
        app.post_token(&[("grant_type", "client_credentials"), ("client_secret", &wrong_secret)]).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(body["error"], "invalid_client");

    let unknown = identity::domain::ApiKeySecret::generate().expose();
    let body = problem(
        app.post_token(&[("grant_type", "client_credentials"), ("client_secret", &unknown)]).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(body["error"], "invalid_client");

    let other_id = Uuid::new_v4().to_string();
    let body = problem(
        app.post_token(&[("grant_type", "client_credentials"), ("client_id", &other_id), ("client_secret", &key)])
            .await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(body["error"], "invalid_client");

    let body =
        problem(app.post_token(&[("grant_type", "password"), ("client_secret", &key)]).await, 400, "malformed_request")
            .await;
    assert_eq!(body["error"], "unsupported_grant_type");
    assert_eq!(fields(&body), ["grant_type"]);

    let body = problem(app.post_token(&[("client_secret", &key)]).await, 400, "malformed_request").await;
    assert_eq!(body["error"], "invalid_request");

    let body = problem(
        app.post_token(&[("grant_type", "client_credentials"), ("client_secret", &key), ("scope", "root")]).await,
        400,
        "malformed_request",
    )
    .await;
    assert_eq!(body["error"], "invalid_scope");
}

async fn signing_key(app: &crate::helpers::TestApp) -> (String, SigningKey) {
    let client = app.db.admin_client().await;
    let row = client.query_one("SELECT kid, private_key FROM identity.signing_keys", &[]).await.unwrap();
    let bytes: Vec<u8> = row.get(1);
    (row.get(0), SigningKey::from_bytes(&bytes.try_into().unwrap()))
}

fn claims(tenant: Uuid, scope: &str, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: "almoner-identity".into(),
        sub: "api_key:test".into(),
        tid: tenant,
        scope: scope.into(),
        iat: now - 1000,
        nbf: now - 1000,
        exp: now + exp_offset,
        jti: Uuid::new_v4(),
        origin: None,
    }
}

#[tokio::test]
async fn wrong_expired_forged_or_missing_tokens_are_refused() {
    let app = spawn_app().await;
    let (kid, key) = signing_key(&app).await;
    let tenant = app.admin.tenant_id;

    problem(app.get("/v1/tenant", None).await, 401, "unauthorized").await;
    problem(app.get("/v1/tenant", Some("not-a-jwt")).await, 401, "unauthorized").await;

    let expired = almoner_http::auth::sign(&claims(tenant, "identity:read", -120), &key, &kid);
    let body = problem(app.get("/v1/tenant", Some(&expired)).await, 401, "unauthorized").await;
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");

    let stranger = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let forged = almoner_http::auth::sign(&claims(tenant, "identity:read", 600), &stranger, &kid);
    problem(app.get("/v1/tenant", Some(&forged)).await, 401, "unauthorized").await;

    let valid = almoner_http::auth::sign(&claims(tenant, "identity:read", 600), &key, &kid);
    let mut parts: Vec<&str> = valid.split('.').collect();
    let escalated = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims(tenant, "identity:read identity:admin", 600)).unwrap());
    parts[1] = &escalated;
    problem(app.get("/v1/tenant", Some(&parts.join("."))).await, 401, "unauthorized").await;

    assert_eq!(app.get("/v1/tenant", Some(&valid)).await.status(), 200);
    let no_scope = almoner_http::auth::sign(&claims(tenant, "fundraising:read", 600), &key, &kid);
    problem(app.get("/v1/tenant", Some(&no_scope)).await, 403, "forbidden").await;
}

#[tokio::test]
async fn a_revoked_key_gets_no_more_tokens() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created: Value = app
        .create_api_key(&admin, &json!({"name": "Website", "scopes": ["identity:read"]}))
        .await
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    app.token_for(&key).await;

    let response = app.client.delete(app.url(&format!("/v1/api-keys/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let revoked: Value = response.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string());

    let body = problem(
        app.post_token(&[("grant_type", "client_credentials"), ("client_secret", &key)]).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(body["error"], "invalid_client");
    // Revoking again is harmless.
    let again = app.client.delete(app.url(&format!("/v1/api-keys/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn an_expired_key_gets_no_more_tokens() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let created: Value = app
        .create_api_key(&admin, &json!({"name": "Short", "scopes": ["identity:read"], "expires_at": soon}))
        .await
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    app.token_for(&key).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    problem(
        app.post_token(&[("grant_type", "client_credentials"), ("client_secret", &key)]).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn repeated_failures_for_a_key_are_rate_limited() {
    let app = spawn_app().await;
    let key = app.admin.api_key.clone();
    let wrong = format!("{}{}", &key[..key.len() - 4], "AAAA");
    for _ in 0..10 {
        let response = app.post_token(&[("grant_type", "client_credentials"), ("client_secret", &wrong)]).await;
        assert_eq!(response.status(), 401);
    }
    // Locked for a while, even with the right secret: guessing gains nothing.
    let response = app.post_token(&[("grant_type", "client_credentials"), ("client_secret", &key)]).await;
    assert!(response.headers().get("retry-after").is_some());
    problem(response, 429, "rate_limited").await;

    // Other keys are unaffected.
    let other = app.other_tenant().await;
    app.token_for(&other.api_key).await;
}
