use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn bad_input_names_every_invalid_field() {
    let app = spawn_app().await;
    let token = app.admin_token().await;

    let body = problem(
        app.create_api_key(&token, &json!({"name": "  ", "scopes": ["identity:read", "root", "x"]})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["name", "scopes[1]", "scopes[2]"]);

    let body = problem(app.create_api_key(&token, &json!({})).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["name", "scopes"]);

    let body = problem(
        app.create_api_key(
            &token,
            &json!({"name": "x", "scopes": ["identity:read"], "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["expires_at"]);

    // Wrong JSON types name the field by path.
    let body =
        problem(app.create_api_key(&token, &json!({"name": 5, "scopes": []})).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["name"]);
    let body = problem(
        app.create_api_key(&token, &json!({"name": "a", "scopes": ["identity:read", 7]})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["scopes[1]"]);
    let body = problem(
        app.create_api_key(&token, &json!({"name": "a", "scopes": [], "colour": "red"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("colour"), "{body}");

    let response = app
        .client
        .post(app.url("/v1/api-keys"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(response, 400, "malformed_request").await;

    let response = app.client.post(app.url("/v1/api-keys")).bearer_auth(&token).body("name=x").send().await.unwrap();
    problem(response, 415, "unsupported_media_type").await;

    let huge = json!({"name": "x".repeat(70_000), "scopes": ["identity:read"]});
    problem(app.create_api_key(&token, &huge).await, 413, "payload_too_large").await;

    problem(app.get("/v1/api-keys?limit=0", Some(&token)).await, 422, "validation_failed").await;
    problem(app.get("/v1/api-keys?cursor=zzz", Some(&token)).await, 422, "validation_failed").await;
    problem(app.get("/v1/api-keys/not-a-uuid", Some(&token)).await, 404, "not_found").await;
}

#[tokio::test]
async fn a_key_cannot_grant_more_than_it_holds() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created: Value = app
        .create_api_key(&admin, &json!({"name": "Key manager", "scopes": ["identity:admin", "identity:read"]}))
        .await
        .json()
        .await
        .unwrap();
    let limited = app.token_for(created["key"].as_str().unwrap()).await;
    problem(
        app.create_api_key(&limited, &json!({"name": "Escalation", "scopes": ["fundraising:write"]})).await,
        403,
        "forbidden",
    )
    .await;
    let reader: Value =
        app.create_api_key(&admin, &json!({"name": "Reader", "scopes": ["identity:read"]})).await.json().await.unwrap();
    let reader = app.token_for(reader["key"].as_str().unwrap()).await;
    problem(app.create_api_key(&reader, &json!({"name": "x", "scopes": ["identity:read"]})).await, 403, "forbidden")
        .await;
}

#[tokio::test]
async fn idempotency_key_replays_without_the_secret_and_refuses_a_different_body() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = json!({"name": "Website", "scopes": ["identity:read"]});
    let send = |body: Value| {
        app.client
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&token)
            .header("idempotency-key", "create-website-key")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert!(first["key"].as_str().unwrap().starts_with("alm_"));

    let replay = send(body.clone()).await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["id"], first["id"]);
    assert!(replay.get("key").is_none(), "the secret is never stored: {replay}");

    let other = send(json!({"name": "Another", "scopes": ["identity:read"]})).await.unwrap();
    problem(other, 409, "idempotency_key_reused").await;

    let page: Value = app.get("/v1/api-keys", Some(&token)).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2, "bootstrap key + one website key: {page}");
}

#[tokio::test]
async fn list_pages_with_a_cursor_and_never_shows_secrets() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for i in 0..4 {
        let response =
            app.create_api_key(&token, &json!({"name": format!("Key {i}"), "scopes": ["identity:read"]})).await;
        assert_eq!(response.status(), 201);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/api-keys?limit=2".to_owned();
    loop {
        let page: Value = app.get(&path, Some(&token)).await.json().await.unwrap();
        for key in page["data"].as_array().unwrap() {
            assert!(key.get("key").is_none() && key.get("secret_hash").is_none());
            seen.push(key["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/api-keys?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["Key 3", "Key 2", "Key 1", "Key 0", "Bootstrap admin key"]);
}
