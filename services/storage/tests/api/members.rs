//! Chat widget members' files, with the member's own token as messaging forwards it: uploads under the member
//! limits, the member's own files and those staff shared with them and nothing else (any other is 404, as an
//! unknown id), what a member may never do, the member limits in the policy, and `object_grants` under row-level
//! security.

use crate::helpers::*;
use serde_json::{Value, json};
use uuid::Uuid;

const MIB: usize = 1024 * 1024;

/// Every route that reads one object.
fn read_paths(id: &str) -> [String; 4] {
    [
        format!("/v1/objects/{id}"),
        format!("/v1/objects/{id}/link"),
        format!("/v1/objects/{id}/download"),
        format!("/v1/objects/{id}/content"),
    ]
}

/// Asserts that `token` reaches none of the object's read routes (404, exactly as an unknown id) and does not
/// find it in its list.
async fn assert_hidden(app: &TestApp, token: &str, id: &str) {
    let unknown =
        assert_problem(app.get(&format!("/v1/objects/{}", Uuid::new_v4()), token).await, 404, "not_found").await;
    for path in read_paths(id) {
        let problem = assert_problem(app.get(&path, token).await, 404, "not_found").await;
        assert_eq!(problem["detail"], unknown["detail"], "{path}: the same answer as for an unknown id");
    }
    let listed: Value = app.get("/v1/objects", token).await.json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().iter().all(|o| o["id"] != id), "{listed}");
}

/// Asserts that `token` reads the object through every read route, and finds it in its list; the metadata.
async fn assert_readable(app: &TestApp, token: &str, id: &str, bytes: &[u8]) -> Value {
    let response = app.get(&format!("/v1/objects/{id}"), token).await;
    assert_eq!(response.status(), 200);
    let object: Value = response.json().await.unwrap();
    let link: Value = app.get(&format!("/v1/objects/{id}/link"), token).await.json().await.unwrap();
    let file = app.client.get(link["url"].as_str().expect("a link")).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), bytes);
    assert_eq!(app.get(&format!("/v1/objects/{id}/download"), token).await.status(), 302);
    let content = app.get(&format!("/v1/objects/{id}/content"), token).await;
    assert_eq!(content.status(), 200);
    assert_eq!(content.headers().get("x-sha256").unwrap().to_str().unwrap(), sha256_hex(bytes));
    assert_eq!(content.bytes().await.unwrap().as_ref(), bytes);
    let listed: Value = app.get("/v1/objects", token).await.json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().iter().any(|o| o["id"] == id), "{listed}");
    object
}

#[tokio::test]
async fn a_member_uploads_a_picture_within_the_member_limits_and_reads_it_back() {
    let app = spawn_app().await;
    let alice = app.member_token("member:alice");
    let bytes = png();
    let upload = app.create_upload_as(&alice, "photo.png", "image/png", bytes.len()).await;
    assert_eq!(upload["object"]["owner_subject"], "member:alice");
    let id = upload["object"]["id"].as_str().unwrap();
    assert_eq!(app.put_file(&upload, bytes.clone()).await.status(), 200);
    let response = app.complete_as(&alice, id).await;
    assert_eq!(response.status(), 200);
    let stored: Value = response.json().await.unwrap();
    assert_eq!((stored["status"].as_str(), stored["owner_subject"].as_str()), (Some("stored"), Some("member:alice")));

    let object = assert_readable(&app, &alice, id, &bytes).await;
    assert_eq!(object["owner_subject"], "member:alice");
    let listed: Value = app.get("/v1/objects", &alice).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    // Staff see who uploaded it, and own what they upload themselves.
    let seen: Value = app.get(&format!("/v1/objects/{id}"), &app.token()).await.json().await.unwrap();
    assert_eq!(seen["owner_subject"], "member:alice");
    let staff = app.store_file("a.csv", "text/csv", &csv(2)).await;
    assert_eq!(staff["owner_subject"], "api_key:test");
    let listed: Value = app.get("/v1/objects", &alice).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "staff's file is not the member's: {listed}");
}

#[tokio::test]
async fn the_member_limits_refuse_what_the_tenant_would_take_from_staff() {
    let app = spawn_app().await;
    let alice = app.member_token("member:alice");

    let problem =
        assert_problem(app.start_upload_as(&alice, "a.csv", "text/csv", 10).await, 422, "content_type_not_allowed")
            .await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("member limit") && detail.contains("image/png"), "{problem}");
    assert_eq!(app.start_upload("a.csv", "text/csv", 10).await.status(), 201, "the tenant allows it from staff");

    let problem =
        assert_problem(app.start_upload_as(&alice, "big.png", "image/png", 10 * MIB + 1).await, 422, "file_too_large")
            .await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("member limit") && detail.contains(&(10 * MIB).to_string()), "{problem}");
    assert_eq!(app.start_upload("big.png", "image/png", 10 * MIB + 1).await.status(), 201);
    assert_eq!(app.start_upload_as(&alice, "ok.png", "image/png", 10 * MIB).await.status(), 201);

    // The tenant's own member limits.
    app.set_policy(&json!({"member_content_types": ["text/csv"], "member_max_size_bytes": 1000})).await;
    assert_eq!(app.start_upload_as(&alice, "a.csv", "text/csv", 1000).await.status(), 201);
    assert_problem(app.start_upload_as(&alice, "a.csv", "text/csv", 1001).await, 422, "file_too_large").await;
    assert_problem(app.start_upload_as(&alice, "a.png", "image/png", 10).await, 422, "content_type_not_allowed").await;

    // A refusal by the tenant's own policy says so, not the member limit.
    app.set_policy(&json!({"allowed_content_types": ["image/png"]})).await;
    let problem = assert_problem(
        app.start_upload_as(&alice, "a.pdf", "application/pdf", 10).await,
        422,
        "content_type_not_allowed",
    )
    .await;
    assert!(!problem["detail"].as_str().unwrap().contains("member"), "{problem}");

    // Members' uploads count against the tenant's quota like any other.
    app.set_policy(&json!({"quota_bytes": 100})).await;
    assert_problem(app.start_upload_as(&alice, "a.png", "image/png", 10).await, 409, "quota_exceeded").await;
}

#[tokio::test]
async fn another_member_finds_nothing_of_a_members_files() {
    let app = spawn_app().await;
    let alice = app.member_token("member:alice");
    let bob = app.member_token("member:bob");
    let visitor = app.member_token(&format!("visitor:{}", Uuid::new_v4()));
    let bytes = png();
    let object = app.store_file_as(&alice, "photo.png", "image/png", &bytes).await;
    let id = object["id"].as_str().unwrap();
    let pending = app.create_upload_as(&alice, "later.png", "image/png", bytes.len()).await;
    let pending_id = pending["object"]["id"].as_str().unwrap();

    for other in [&bob, &visitor] {
        assert_hidden(&app, other, id).await;
        assert_problem(app.get(&format!("/v1/objects/{pending_id}"), other).await, 404, "not_found").await;
        assert_problem(app.complete_as(other, pending_id).await, 404, "not_found").await;
    }
    assert_eq!(app.put_file(&pending, bytes.clone()).await.status(), 200);
    assert_problem(app.complete_as(&bob, pending_id).await, 404, "not_found").await;
    assert_eq!(app.complete_as(&alice, pending_id).await.status(), 200, "still alice's to complete");
    let listed: Value = app.get("/v1/objects", &alice).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert_readable(&app, &alice, id, &bytes).await;

    // A member's Idempotency-Key is theirs alone: bob's request with alice's key is not her upload replayed.
    let body = json!({"filename": "p.png", "content_type": "image/png", "size_bytes": 10, "purpose": "import"});
    let send = |token: &str| {
        app.client.post(app.url("/v1/uploads")).bearer_auth(token).header("idempotency-key", "k-1").json(&body).send()
    };
    let first: Value = send(&alice).await.unwrap().json().await.unwrap();
    let again = send(&alice).await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["object"]["id"], first["object"]["id"]);
    let bobs = send(&bob).await.unwrap();
    assert_eq!(bobs.status(), 201);
    assert!(bobs.headers().get("idempotent-replayed").is_none());
    let bobs: Value = bobs.json().await.unwrap();
    assert_ne!(bobs["object"]["id"], first["object"]["id"]);
    assert_eq!(bobs["object"]["owner_subject"], "member:bob");
}

#[tokio::test]
async fn a_staff_file_is_hidden_from_a_member_until_staff_share_it() {
    let app = spawn_app().await;
    let alice = app.member_token("member:alice");
    let bob = app.member_token("member:bob");
    let bytes = png();
    let object = app.store_file("receipt.png", "image/png", &bytes).await;
    let id = object["id"].as_str().unwrap();
    assert_hidden(&app, &alice, id).await;

    let response = app.grant(id, "member:alice").await;
    assert_eq!(response.status(), 201);
    let grant: Value = response.json().await.unwrap();
    assert_eq!(
        (&grant["object_id"], &grant["subject"], &grant["granted_by"]),
        (&json!(id), &json!("member:alice"), &json!("api_key:test"))
    );
    assert_eq!(grant.as_object().unwrap().len(), 4, "{grant}");
    let response = app.grant(id, "member:alice").await;
    assert_eq!(response.status(), 200, "already shared");
    assert_eq!(response.json::<Value>().await.unwrap(), grant);

    let seen = assert_readable(&app, &alice, id, &bytes).await;
    assert!(seen["owner_subject"].is_null(), "who shared it is not the member's to see: {seen}");
    let listed: Value = app.get("/v1/objects", &alice).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_hidden(&app, &bob, id).await;

    // A member's file shared with another member: the other reads it, but not whose it is.
    let alices = app.store_file_as(&alice, "mine.png", "image/png", &bytes).await;
    let alices_id = alices["id"].as_str().unwrap();
    assert_eq!(app.grant(alices_id, "member:bob").await.status(), 201);
    let seen = assert_readable(&app, &bob, alices_id, &bytes).await;
    assert!(seen["owner_subject"].is_null(), "{seen}");
    let own: Value = app.get(&format!("/v1/objects/{alices_id}"), &alice).await.json().await.unwrap();
    assert_eq!(own["owner_subject"], "member:alice");

    // A visitor, named in any case, is kept as identity writes it.
    let visitor = Uuid::new_v4();
    let response = app.grant(id, &format!("visitor:{}", visitor.to_string().to_uppercase())).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.json::<Value>().await.unwrap()["subject"], format!("visitor:{visitor}"));
    assert_readable(&app, &app.member_token(&format!("visitor:{visitor}")), id, &bytes).await;

    // Staff list the grants, newest first, a page at a time.
    let grants: Value = app.get(&format!("/v1/objects/{id}/grants"), &app.token()).await.json().await.unwrap();
    let subjects: Vec<&str> =
        grants["data"].as_array().unwrap().iter().map(|g| g["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, [format!("visitor:{visitor}").as_str(), "member:alice"]);
    let first: Value = app.get(&format!("/v1/objects/{id}/grants?limit=1"), &app.token()).await.json().await.unwrap();
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second: Value =
        app.get(&format!("/v1/objects/{id}/grants?limit=1&cursor={cursor}"), &app.token()).await.json().await.unwrap();
    assert_eq!(second["data"][0]["subject"], "member:alice");
    assert!(second["next_cursor"].is_null());

    // A deleted object's grants go with it.
    assert_eq!(app.delete(&format!("/v1/objects/{id}"), &app.token()).await.status(), 204);
    assert_problem(app.get(&format!("/v1/objects/{id}"), &alice).await, 404, "not_found").await;
    assert_problem(app.get(&format!("/v1/objects/{id}/grants"), &app.token()).await, 404, "not_found").await;
    let pool = almoner_db::Pool::new(&app.settings.database, storage::db::SCHEMA).unwrap();
    let tx = pool.tenant_tx(app.tenant).await.unwrap();
    let id = Uuid::parse_str(id).unwrap();
    assert!(tx.query("SELECT 1 FROM object_grants WHERE object_id = $1", &[&id]).await.unwrap().is_empty());
    assert_eq!(tx.query("SELECT 1 FROM object_grants", &[]).await.unwrap().len(), 1, "bob's grant stays");
}

#[tokio::test]
async fn a_grant_names_a_member_and_a_stored_object() {
    let app = spawn_app().await;
    let object = app.store_file("a.png", "image/png", &png()).await;
    let id = object["id"].as_str().unwrap();
    let pending = app.create_upload("b.png", "image/png", 10).await;
    for target in [Uuid::new_v4().to_string(), pending["object"]["id"].as_str().unwrap().to_owned(), "x".to_owned()] {
        assert_problem(app.grant(&target, "member:alice").await, 404, "not_found").await;
    }
    let long = format!("member:{}", "a".repeat(201));
    for bad in [
        json!({}),
        json!({"subject": null}),
        json!({"subject": ""}),
        json!({"subject": "alice"}),
        json!({"subject": "staff:1"}),
        json!({"subject": "member:"}),
        json!({"subject": "member:a\u{7}b"}),
        json!({"subject": long}),
        json!({"subject": "visitor:not-a-uuid"}),
        json!({"subject": 7}),
    ] {
        let response = app.post_json(&format!("/v1/objects/{id}/grants"), &app.token(), &bad).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "subject", "{bad}: {problem}");
    }
    let longest = format!("member:{}", "é".repeat(200));
    assert_eq!(app.grant(id, &longest).await.status(), 201);

    // Idempotency-Key as on every POST.
    let send = |subject: &str| {
        app.client
            .post(app.url(&format!("/v1/objects/{id}/grants")))
            .bearer_auth(app.token())
            .header("idempotency-key", "share-1")
            .json(&json!({"subject": subject}))
            .send()
    };
    let first = send("member:carol").await.unwrap();
    assert_eq!(first.status(), 201);
    let replayed = send("member:carol").await.unwrap();
    assert_eq!((replayed.status().as_u16(), replayed.headers().get("idempotent-replayed").is_some()), (201, true));
    assert_problem(send("member:dave").await.unwrap(), 409, "idempotency_key_reused").await;
}

#[tokio::test]
async fn a_member_cannot_delete_stream_share_or_see_the_policy() {
    let app = spawn_app().await;
    let alice = app.member_token("member:alice");
    let object = app.store_file_as(&alice, "photo.png", "image/png", &png()).await;
    let id = object["id"].as_str().unwrap();

    assert_problem(app.delete(&format!("/v1/objects/{id}"), &alice).await, 403, "forbidden").await;
    let streamed = app
        .client
        .post(app.url("/v1/objects?filename=a.png&purpose=import"))
        .bearer_auth(&alice)
        .header("content-type", "image/png")
        .body(png())
        .send()
        .await
        .unwrap();
    assert_problem(streamed, 403, "forbidden").await;
    let shared = app.post_json(&format!("/v1/objects/{id}/grants"), &alice, &json!({"subject": "member:bob"})).await;
    assert_problem(shared, 403, "forbidden").await;
    assert_problem(app.get(&format!("/v1/objects/{id}/grants"), &alice).await, 403, "forbidden").await;
    assert_problem(app.get("/v1/policy", &alice).await, 403, "forbidden").await;
    assert_problem(app.put_policy(&alice, &json!({"member_max_size_bytes": 1})).await, 403, "forbidden").await;
    assert_eq!(app.get(&format!("/v1/objects/{id}"), &alice).await.status(), 200, "still there");

    // A token with neither storage:member nor a staff scope (a widget token from before storage:member), and one
    // with storage:member whose subject is no member's, reach nothing.
    let widget_only = app.issuer.member_token(app.tenant, "alice", "https://charity.example");
    let not_a_member = app.issuer.token_as(app.tenant, "api_key:x", &["storage:member"]);
    for token in [&widget_only, &not_a_member] {
        assert_problem(app.get(&format!("/v1/objects/{id}"), token).await, 403, "forbidden").await;
        assert_problem(app.get("/v1/objects", token).await, 403, "forbidden").await;
        assert_problem(app.start_upload_as(token, "a.png", "image/png", 10).await, 403, "forbidden").await;
        assert_problem(app.complete_as(token, id).await, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn the_policy_keeps_member_limits_within_the_tenants_own() {
    let app = spawn_app().await;
    let policy: Value = app.get("/v1/policy", &app.token()).await.json().await.unwrap();
    assert_eq!(policy["member_max_size_bytes"], 10 * MIB);
    assert_eq!(
        policy["member_content_types"],
        json!(["application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"])
    );

    for (bad, field) in [
        (
            json!({"allowed_content_types": ["image/png", "text/csv"], "member_content_types": ["image/png", "application/pdf"]}),
            "member_content_types.1",
        ),
        (json!({"member_content_types": ["image/svg+xml"]}), "member_content_types.0"),
        (json!({"max_size_bytes": 1000, "member_max_size_bytes": 1001}), "member_max_size_bytes"),
        (json!({"member_max_size_bytes": 25 * MIB + 1}), "member_max_size_bytes"),
        (json!({"member_max_size_bytes": 0}), "member_max_size_bytes"),
    ] {
        let problem = assert_problem(app.put_policy(&app.token(), &bad).await, 422, "validation_failed").await;
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, [field], "{bad}: {problem}");
    }

    let set = app
        .set_policy(&json!({"allowed_content_types": ["text/csv", "image/png"], "max_size_bytes": 5000,
            "member_content_types": ["text/csv"], "member_max_size_bytes": 5000}))
        .await;
    assert_eq!((&set["member_content_types"], &set["member_max_size_bytes"]), (&json!(["text/csv"]), &json!(5000)));
    assert_eq!(
        (&set["own"]["member_content_types"], &set["own"]["member_max_size_bytes"]),
        (&json!(["text/csv"]), &json!(5000))
    );
    let got: Value = app.get("/v1/policy", &app.token()).await.json().await.unwrap();
    assert_eq!(got, set);

    // The defaults, cut down to what the tenant allows anyone.
    let cut =
        app.set_policy(&json!({"allowed_content_types": ["text/csv", "image/png"], "max_size_bytes": 1000})).await;
    assert_eq!((&cut["member_content_types"], &cut["member_max_size_bytes"]), (&json!(["image/png"]), &json!(1000)));
    assert!(cut["own"]["member_content_types"].is_null() && cut["own"]["member_max_size_bytes"].is_null());
}

#[tokio::test]
async fn another_tenants_member_sees_nothing() {
    let app = spawn_app().await;
    let alice = app.member_token("member:alice");
    let bytes = png();
    let own = app.store_file_as(&alice, "photo.png", "image/png", &bytes).await;
    let shared = app.store_file("receipt.png", "image/png", &bytes).await;
    assert_eq!(app.grant(shared["id"].as_str().unwrap(), "member:alice").await.status(), 201);
    let pending = app.create_upload_as(&alice, "later.png", "image/png", bytes.len()).await;

    // The same member identifier in another tenant is another member.
    let elsewhere = app.member_token_for(Uuid::new_v4(), "member:alice");
    for object in [&own, &shared] {
        assert_hidden(&app, &elsewhere, object["id"].as_str().unwrap()).await;
    }
    assert_problem(app.complete_as(&elsewhere, pending["object"]["id"].as_str().unwrap()).await, 404, "not_found")
        .await;
    let listed: Value = app.get("/v1/objects", &elsewhere).await.json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().is_empty());
}

/// `object_grants` is tenant data like `objects`: without a tenant the service's own role sees none of it, and a
/// tenant can neither see nor write another's.
#[tokio::test]
async fn object_grants_are_under_forced_row_level_security() {
    let app = spawn_app().await;
    let object = app.store_file("a.png", "image/png", &png()).await;
    let id = Uuid::parse_str(object["id"].as_str().unwrap()).unwrap();
    assert_eq!(app.grant(&id.to_string(), "member:alice").await.status(), 201);
    let pool = almoner_db::Pool::new(&app.settings.database, storage::db::SCHEMA).unwrap();

    let client = pool.get().await.unwrap();
    assert!(client.query("SELECT 1 FROM storage.object_grants", &[]).await.unwrap().is_empty());
    let row = client
        .query_one(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class \
             WHERE oid = 'storage.object_grants'::regclass",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (true, true));
    drop(client);

    let tx = pool.tenant_tx(app.tenant).await.unwrap();
    assert_eq!(tx.query("SELECT 1 FROM object_grants", &[]).await.unwrap().len(), 1);
    tx.commit().await.unwrap();

    let other = Uuid::new_v4();
    let tx = pool.tenant_tx(other).await.unwrap();
    assert!(tx.query("SELECT 1 FROM object_grants", &[]).await.unwrap().is_empty());
    let written = tx
        .execute(
            "INSERT INTO object_grants (tenant_id, object_id, subject, granted_by) VALUES ($1, $2, 'member:x', 'x')",
            &[&app.tenant, &id],
        )
        .await;
    assert!(written.is_err(), "another tenant's row cannot be written");
}
