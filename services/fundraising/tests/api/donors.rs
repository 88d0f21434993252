use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

fn ann() -> Value {
    json!({
        "title": "Ms",
        "first_name": "Ann",
        "last_name": "Smith",
        "email": "ann@Example.ORG",
        "phone": "07700 900123",
        "address": {"line1": "1 High St", "town": "London", "postcode": "sw1a1aa"},
        "external_ids": {"legacy_crm": "D-1001"},
        "communication_preferences": {"email": true}
    })
}

#[tokio::test]
async fn a_donor_is_created_read_changed_and_deleted() {
    let app = spawn_app().await;
    let token = app.token();
    let created = app.create_donor(&ann()).await;
    assert_eq!(created["revision"], 1);
    assert_eq!(created["email"], "ann@example.org");
    assert_eq!(created["phone"], "+447700900123");
    assert_eq!(created["address"]["postcode"], "SW1A 1AA");
    assert_eq!(created["external_ids"]["legacy_crm"], "D-1001");
    assert_eq!(
        created["communication_preferences"],
        json!({"email": true, "sms": false, "post": false, "phone": false})
    );
    let id = created["id"].as_str().unwrap();

    let read: Value = app.get(&format!("/v1/donors/{id}"), &token).await.json().await.unwrap();
    assert_eq!(read, created);

    // Partial update: absent fields stay, null clears, nested objects merge.
    let response = app
        .patch(
            &format!("/v1/donors/{id}"),
            &token,
            &json!({"title": null, "phone": null, "address": {"town": "Leeds"}, "external_ids": {"stripe": "cus_1"}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["revision"], 2);
    assert!(changed["title"].is_null() && changed["phone"].is_null());
    assert_eq!(changed["first_name"], "Ann");
    assert_eq!(changed["address"]["town"], "Leeds");
    assert_eq!(changed["address"]["postcode"], "SW1A 1AA");
    assert_eq!(changed["external_ids"], json!({"legacy_crm": "D-1001", "stripe": "cus_1"}));

    // A patch that changes nothing keeps the revision.
    let same: Value =
        app.patch(&format!("/v1/donors/{id}"), &token, &json!({"first_name": "Ann"})).await.json().await.unwrap();
    assert_eq!(same["revision"], 2);

    // The required last name cannot be cleared.
    let body = problem(
        app.patch(&format!("/v1/donors/{id}"), &token, &json!({"last_name": null})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["last_name"]);

    let response = app.delete(&format!("/v1/donors/{id}"), &token).await;
    assert_eq!(response.status(), 204);
    problem(app.get(&format!("/v1/donors/{id}"), &token).await, 404, "not_found").await;
}

#[tokio::test]
async fn a_donor_with_gifts_cannot_be_deleted() {
    let app = spawn_app().await;
    let donor = app.create_donor(&ann()).await;
    let id = donor["id"].as_str().unwrap();
    let gift = app.create_gift(id, 1000).await;
    problem(app.delete(&format!("/v1/donors/{id}"), &app.token()).await, 409, "conflict").await;
    // Once the gift is deleted, the donor can be.
    assert_eq!(app.delete(&format!("/v1/gifts/{}", gift["id"].as_str().unwrap()), &app.token()).await.status(), 204);
    assert_eq!(app.delete(&format!("/v1/donors/{id}"), &app.token()).await.status(), 204);
}

#[tokio::test]
async fn external_ids_are_unique_per_tenant_and_source() {
    let app = spawn_app().await;
    app.create_donor(&ann()).await;
    let body = problem(
        app.post("/v1/donors", &app.token(), &json!({"last_name": "Jones", "external_ids": {"legacy_crm": "D-1001"}}))
            .await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(fields(&body), ["external_ids.legacy_crm"]);
    // The same id from another source is fine.
    app.create_donor(&json!({"last_name": "Jones", "external_ids": {"other_crm": "D-1001"}})).await;
}

#[tokio::test]
async fn validation_names_every_bad_field() {
    let app = spawn_app().await;
    let body = problem(
        app.post(
            "/v1/donors",
            &app.token(),
            &json!({"email": "not-an-email", "phone": "12", "address": {"postcode": "90210"}}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["address.postcode", "email", "last_name", "phone"]);
    // The one email rule, for a donor as for an import row and a search.
    for bad in ["ann@example,org", "ann@exa_mple.org", "ann@example..org", "ann@-example.org", "ann.@example.org"] {
        let body = problem(
            app.post("/v1/donors", &app.token(), &json!({"last_name": "Doe", "email": bad})).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(fields(&body), ["email"], "{bad}: {body}");
        let body =
            problem(app.get(&format!("/v1/donors?email={bad}"), &app.token()).await, 422, "validation_failed").await;
        assert_eq!(fields(&body), ["email"], "search {bad}: {body}");
    }
    // Outside the UK any postal code goes.
    let donor = app.create_donor(&json!({"last_name": "Doe", "address": {"postcode": "90210", "country": "us"}})).await;
    assert_eq!(donor["address"]["country"], "US");
    assert_eq!(donor["address"]["postcode"], "90210");
}

#[tokio::test]
async fn donors_are_found_by_name_email_postcode_and_external_id() {
    let app = spawn_app().await;
    let token = app.token();
    let ann = app.create_donor(&ann()).await;
    let bob = app
        .create_donor(&json!({"first_name": "Bob", "last_name": "Annan", "email": "bob@example.org",
            "address": {"postcode": "M1 1AE"}, "external_ids": {"legacy_crm": "D-2"}}))
        .await;
    app.create_donor(&json!({"first_name": "Cara", "last_name": "Jones"})).await;

    let ids = |page: Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
    };
    let search = |query: &'static str| {
        let app = &app;
        let token = token.clone();
        async move { app.get(&format!("/v1/donors?{query}"), &token).await.json::<Value>().await.unwrap() }
    };
    let (ann_id, bob_id) = (ann["id"].as_str().unwrap().to_owned(), bob["id"].as_str().unwrap().to_owned());
    // "ann" is Ann's first name and a prefix of Bob's last name; newest first.
    assert_eq!(ids(search("q=ANN").await), [bob_id.as_str(), ann_id.as_str()]);
    assert_eq!(ids(search("q=ann%20sm").await), [ann_id.as_str()]);
    assert_eq!(ids(search("q=smi").await), [ann_id.as_str()]);
    assert_eq!(ids(search("q=%25").await), Vec::<String>::new(), "LIKE wildcards match literally");
    assert_eq!(ids(search("email=ANN@example.org").await), [ann_id.as_str()]);
    assert_eq!(ids(search("postcode=m11ae").await), [bob_id.as_str()]);
    assert_eq!(ids(search("external_id=legacy_crm:D-1001").await), [ann_id.as_str()]);
    assert_eq!(ids(search("q=ann&postcode=M1%201AE").await), [bob_id.as_str()]);
    let body = problem(app.get("/v1/donors?external_id=nocolon&limit=0", &token).await, 422, "validation_failed").await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["external_id", "limit"]);
}

#[tokio::test]
async fn donor_lists_page_with_a_cursor() {
    let app = spawn_app().await;
    let token = app.token();
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            app.create_donor(&json!({"last_name": format!("Donor {i}")})).await["id"].as_str().unwrap().to_owned(),
        );
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut path = "/v1/donors?limit=2".to_owned();
    loop {
        let page: Value = app.get(&path, &token).await.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/donors?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);
    problem(app.get("/v1/donors?cursor=garbage!", &token).await, 422, "validation_failed").await;
}

#[tokio::test]
async fn idempotency_key_replays_and_refuses_reuse() {
    let app = spawn_app().await;
    let token = app.token();
    let first = app.post_with_key("/v1/donors", &token, "key-1", &ann()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = app.post_with_key("/v1/donors", &token, "key-1", &ann()).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let page: Value = app.get("/v1/donors", &token).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "the retry created nothing");
    problem(
        app.post_with_key("/v1/donors", &token, "key-1", &json!({"last_name": "Other"})).await,
        409,
        "idempotency_key_reused",
    )
    .await;
}

#[tokio::test]
async fn scopes_are_required() {
    let app = spawn_app().await;
    let read_only = app.issuer.token(app.tenant_id, &["fundraising:read"]);
    problem(app.post("/v1/donors", &read_only, &ann()).await, 403, "forbidden").await;
    let none = app.issuer.token(app.tenant_id, &[]);
    problem(app.get("/v1/donors", &none).await, 403, "forbidden").await;
    let response = app.client.get(app.url("/v1/donors")).send().await.unwrap();
    problem(response, 401, "unauthorized").await;
}

/// Gift entry's duplicate prompt: the import's rules, best first, within the tenant only.
#[tokio::test]
async fn likely_matches_are_found_by_email_or_by_name_with_postcode_or_phone() {
    let app = spawn_app().await;
    let token = app.token();
    let ann = app.create_donor(&ann()).await;
    // Another Ann Smith at the same postcode but with no email or phone, and an unrelated donor.
    let twin = app
        .create_donor(&json!({"first_name": "ann", "last_name": "smith", "address": {"postcode": "SW1A 1AA"}}))
        .await;
    app.create_donor(&json!({"first_name": "Bob", "last_name": "Smithers", "address": {"postcode": "SW1A 1AA"}})).await;
    let matches = |body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            let response = app.post("/v1/donors/matches", &token, &body).await;
            assert_eq!(response.status(), 200);
            let page: Value = response.json().await.unwrap();
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["donor"]["id"].as_str().unwrap().to_owned(), m["matched_by"].clone()))
                .collect::<Vec<_>>()
        }
    };
    let id = |d: &Value| d["id"].as_str().unwrap().to_owned();

    let found = matches(json!({"first_name": "ANN", "last_name": " Smith ", "email": "ANN@example.org",
        "postcode": "sw1a 1aa", "phone": "+44 7700 900123"}))
    .await;
    assert_eq!(
        found,
        vec![(id(&ann), json!(["email", "name_postcode", "name_phone"])), (id(&twin), json!(["name_postcode"])),]
    );
    assert_eq!(matches(json!({"email": "ann@example.org"})).await, vec![(id(&ann), json!(["email"]))]);
    assert_eq!(
        matches(json!({"first_name": "Ann", "last_name": "Smith", "phone": "07700900123"})).await,
        vec![(id(&ann), json!(["name_phone"]))]
    );
    assert!(matches(json!({"first_name": "Anne", "last_name": "Smith", "postcode": "SW1A1AA"})).await.is_empty());

    // Another tenant's staff find nothing of this one.
    let other = app
        .post("/v1/donors/matches", &app.token_for(uuid::Uuid::new_v4()), &json!({"email": "ann@example.org"}))
        .await;
    let other: Value = other.json().await.unwrap();
    assert!(other["data"].as_array().unwrap().is_empty());

    let nothing = app.post("/v1/donors/matches", &token, &json!({"last_name": "Smith"})).await;
    assert_eq!(fields(&problem(nothing, 422, "validation_failed").await), ["email"]);
    let bad = app.post("/v1/donors/matches", &token, &json!({"email": "not an email", "phone": "12"})).await;
    assert_eq!(fields(&problem(bad, 422, "validation_failed").await), ["email", "phone"]);
    let get = app.get("/v1/donors/matches", &token).await;
    assert_eq!(get.status(), 405, "another method on the path is not a donor lookup");
}
