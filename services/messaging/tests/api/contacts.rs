//! Contacts: created from any form of a mobile number, read, listed, changed by merge patch, deleted; one per
//! number; never another tenant's.

use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn a_contact_is_created_from_a_local_number_read_changed_and_deleted() {
    let app = spawn_app().await;
    let token = app.token();
    let created = app
        .post_ok(
            "/v1/contacts",
            &json!({"phone": "07700 900123", "first_name": " Ada ", "last_name": "Lovelace",
                    "email": "ada@example.org", "tags": ["Volunteers", "volunteers", "Gala"],
                    "attributes": {"level": "gold", "visits": 3},
                    "consent_source": "website sign-up", "consented_at": "2025-04-06T10:00:00Z"}),
            201,
        )
        .await;
    assert_eq!(created["phone"], "+447700900123");
    assert_eq!(created["first_name"], "Ada");
    assert_eq!(created["tags"], json!(["volunteers", "gala"]));
    assert_eq!(created["revision"], 1);
    assert_eq!(created["do_not_contact"], false);
    assert_eq!(created["consented_at"], "2025-04-06T10:00:00Z");
    let id = created["id"].as_str().unwrap();

    // The same number in another form is the same contact: a 409 naming the phone.
    let body =
        problem(app.post("/v1/contacts", &token, &json!({"phone": "+44 7700 900123"})).await, 409, "conflict").await;
    assert_eq!(fields(&body), ["phone"]);

    // A merge patch: attributes key by key, the rest replaced.
    let response = app
        .patch(
            &format!("/v1/contacts/{id}"),
            &token,
            &json!({"attributes": {"level": null, "city": "York"},
            "tags": ["donor"], "first_name": "Augusta"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["attributes"], json!({"visits": 3, "city": "York"}));
    assert_eq!(changed["tags"], json!(["donor"]));
    assert_eq!(changed["first_name"], "Augusta");
    assert_eq!(changed["revision"], 2);
    // Nothing changed: the revision stays.
    let same: Value =
        app.patch(&format!("/v1/contacts/{id}"), &token, &json!({"first_name": "Augusta"})).await.json().await.unwrap();
    assert_eq!(same["revision"], 2);

    let read = app.get_ok(&format!("/v1/contacts/{id}")).await;
    assert_eq!(read, changed);
    assert_eq!(app.delete(&format!("/v1/contacts/{id}"), &token).await.status(), 204);
    problem(app.get(&format!("/v1/contacts/{id}"), &token).await, 404, "not_found").await;
    problem(app.delete(&format!("/v1/contacts/{id}"), &token).await, 404, "not_found").await;
}

#[tokio::test]
async fn bad_fields_are_named_and_landlines_refused() {
    let app = spawn_app().await;
    let token = app.token();
    let body = problem(
        app.post(
            "/v1/contacts",
            &token,
            &json!({"phone": "020 7946 0018", "email": "nope", "tags": [" "], "attributes": {"Bad": 1},
                    "consented_at": "last spring", "first_name": "x".repeat(101)}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["attributes", "consented_at", "email", "first_name", "phone", "tags"]);
    let phone = body["errors"].as_array().unwrap().iter().find(|e| e["field"] == "phone").unwrap();
    assert!(phone["message"].as_str().unwrap().contains("UK mobile"), "{body}");
    let body = problem(app.post("/v1/contacts", &token, &json!({})).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["phone"]);
    problem(
        app.post("/v1/contacts", &token, &json!({"phone": "07700900123", "colour": "red"})).await,
        422,
        "validation_failed",
    )
    .await;
    // A reader may look but not write.
    problem(app.post("/v1/contacts", &app.reader_token(), &json!({"phone": "07700900123"})).await, 403, "forbidden")
        .await;
}

#[tokio::test]
async fn the_tenants_country_decides_how_local_numbers_read() {
    let app = spawn_app().await;
    let token = app.token();
    let settings = app.get_ok("/v1/settings").await;
    assert_eq!(settings["default_country"], "GB");
    assert_eq!(settings["revision"], 1);
    problem(app.post("/v1/contacts", &token, &json!({"phone": "0412 345 678"})).await, 422, "validation_failed").await;
    let response = app.patch("/v1/settings", &token, &json!({"default_country": "au"})).await;
    assert_eq!(response.status(), 200);
    let settings: Value = response.json().await.unwrap();
    assert_eq!((settings["default_country"].as_str(), settings["revision"].as_i64()), (Some("AU"), Some(2)));
    let contact = app.post_ok("/v1/contacts", &json!({"phone": "0412 345 678"}), 201).await;
    assert_eq!(contact["phone"], "+61412345678");
    let body =
        problem(app.patch("/v1/settings", &token, &json!({"default_country": "FR"})).await, 422, "validation_failed")
            .await;
    assert_eq!(fields(&body), ["default_country"]);
}

#[tokio::test]
async fn lists_filter_by_tag_search_and_the_do_not_contact_list_a_page_at_a_time() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for (i, (first, last, tags)) in
        [("Ada", "Lovelace", vec!["gala"]), ("Alan", "Turing", vec!["gala", "donor"]), ("Grace", "Hopper", vec![])]
            .into_iter()
            .enumerate()
    {
        let c = app
            .post_ok(
                "/v1/contacts",
                &json!({"phone": format!("0770090012{i}"), "first_name": first, "last_name": last, "tags": tags}),
                201,
            )
            .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    app.post_ok("/v1/do-not-contact", &json!({"phone": "07700900121"}), 201).await;
    let names = |page: &Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|c| c["first_name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&app.get_ok("/v1/contacts").await), ["Grace", "Alan", "Ada"]);
    assert_eq!(names(&app.get_ok("/v1/contacts?tag=GALA").await), ["Alan", "Ada"]);
    assert_eq!(names(&app.get_ok("/v1/contacts?q=tur").await), ["Alan"]);
    assert_eq!(names(&app.get_ok("/v1/contacts?q=ada%20love").await), ["Ada"]);
    assert_eq!(names(&app.get_ok("/v1/contacts?q=900122").await), ["Grace"]);
    assert_eq!(names(&app.get_ok("/v1/contacts?do_not_contact=true").await), ["Alan"]);
    assert_eq!(names(&app.get_ok("/v1/contacts?do_not_contact=false").await), ["Grace", "Ada"]);
    let alan = app.get_ok(&format!("/v1/contacts/{}", ids[1])).await;
    assert_eq!(alan["do_not_contact"], true);
    let first = app.get_ok("/v1/contacts?limit=2").await;
    assert_eq!(names(&first), ["Grace", "Alan"]);
    let rest = app.get_ok(&format!("/v1/contacts?limit=2&cursor={}", first["next_cursor"].as_str().unwrap())).await;
    assert_eq!(names(&rest), ["Ada"]);
    assert!(rest["next_cursor"].is_null());
    let body =
        problem(app.get("/v1/contacts?do_not_contact=maybe&limit=0", &app.token()).await, 422, "validation_failed")
            .await;
    assert_eq!(fields(&body), ["do_not_contact", "limit"]);
}

#[tokio::test]
async fn another_tenant_sees_nothing_of_the_first() {
    let app = spawn_app().await;
    let contact = app.post_ok("/v1/contacts", &json!({"phone": "07700900123", "first_name": "Ada"}), 201).await;
    let id = contact["id"].as_str().unwrap();
    app.post_ok("/v1/do-not-contact", &json!({"phone": "07700900999"}), 201).await;
    let other = app.token_for(uuid::Uuid::new_v4());
    problem(app.get(&format!("/v1/contacts/{id}"), &other).await, 404, "not_found").await;
    problem(app.patch(&format!("/v1/contacts/{id}"), &other, &json!({"first_name": "X"})).await, 404, "not_found")
        .await;
    problem(app.delete(&format!("/v1/contacts/{id}"), &other).await, 404, "not_found").await;
    problem(app.get("/v1/do-not-contact/%2B447700900999", &other).await, 404, "not_found").await;
    for path in ["/v1/contacts", "/v1/do-not-contact", "/v1/contact-imports"] {
        let page: Value = app.get(path, &other).await.json().await.unwrap();
        assert_eq!(page["data"], json!([]), "{path}");
    }
    // The other tenant may have a contact of the same number: numbers are unique per tenant only.
    let response = app.post("/v1/contacts", &other, &json!({"phone": "07700900123"})).await;
    assert_eq!(response.status(), 201);
}
