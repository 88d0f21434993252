//! Contact imports: a dry run that writes nothing but says what each row would do, then a commit in chunks that
//! decides each row again.

use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

const CSV: &str = "Mobile Number,First Name,Surname,Email,Tags,Branch\n\
07700 900001,Ada,Lovelace,ada@example.org,Volunteer; Gala,York\n\
07700 900002,Alan,Turing,,,Leeds\n\
+44 7700 900001,Ada,Again,,,\n\
020 7946 0018,Land,Line,,,\n\
07700 900003,Bad,Email,not-an-email,,\n\
07700 900004,Listed,Person,,,\n\
07700 900005,Known,Unchanged,,spring appeal,\n\
\n\
,No,Number,,,\n";

async fn seed(app: &crate::helpers::TestApp) {
    // A contact the file updates, one it leaves as it is, and a number on the list.
    app.post_ok("/v1/contacts", &json!({"phone": "07700900002", "first_name": "Alan"}), 201).await;
    app.post_ok(
        "/v1/contacts",
        &json!({"phone": "07700900005", "first_name": "Known", "last_name": "Unchanged", "tags": ["spring appeal"],
                "consent_source": "website", "consented_at": "2024-01-01"}),
        201,
    )
    .await;
    app.post_ok("/v1/do-not-contact", &json!({"phone": "07700900004"}), 201).await;
}

fn request() -> Value {
    json!({"csv": CSV, "consent_source": "gala sign-up sheet", "consented_at": "2025-04-06", "tags": ["Spring appeal"],
           "mapping": {"Branch": "attribute:branch"}})
}

#[tokio::test]
async fn a_dry_run_says_what_each_row_would_do_and_writes_nothing() {
    let app = spawn_app().await;
    seed(&app).await;
    let import = app.post_ok("/v1/contact-imports", &request(), 201).await;
    assert_eq!(import["status"], "dry_run");
    assert_eq!(import["rows_total"], 8, "the blank line is no row");
    assert_eq!(
        import["summary"],
        json!({"create": 1, "update": 1, "unchanged": 1, "duplicate_in_file": 1, "invalid": 2, "invalid_number": 1,
               "do_not_contact": 1})
    );
    assert_eq!(import["options"]["default_country"], "GB");
    assert_eq!(import["options"]["ignored_columns"], json!([]));
    let id = import["id"].as_str().unwrap();
    let rows = app.get_ok(import["rows_href"].as_str().unwrap()).await;
    let outcomes: Vec<(i64, &str)> = rows["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_i64().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (2, "create"),
            (3, "update"),
            (4, "duplicate_in_file"),
            (5, "invalid_number"),
            (6, "invalid"),
            (7, "do_not_contact"),
            (8, "unchanged"),
            (10, "invalid")
        ]
    );
    assert_eq!(rows["data"][2]["detail"], "the same number as line 2");
    assert!(rows["data"][3]["detail"].as_str().unwrap().contains("UK mobile"));
    assert_eq!(rows["data"][3]["phone"], "020 7946 0018");
    let filtered = app.get_ok(&format!("/v1/contact-imports/{id}/rows?outcome=invalid")).await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 2);
    let paged = app.get_ok(&format!("/v1/contact-imports/{id}/rows?limit=3")).await;
    let next = app
        .get_ok(&format!("/v1/contact-imports/{id}/rows?limit=3&cursor={}", paged["next_cursor"].as_str().unwrap()))
        .await;
    assert_eq!(next["data"][0]["line"], 5);

    // Nothing written: still the two seeded contacts, untouched.
    let contacts = app.get_ok("/v1/contacts").await;
    assert_eq!(contacts["data"].as_array().unwrap().len(), 2);
    let listed = app.get_ok("/v1/contact-imports").await;
    assert_eq!(listed["data"][0]["id"], import["id"]);
}

#[tokio::test]
async fn a_commit_writes_the_rows_deciding_each_again_and_a_second_run_changes_nothing() {
    let app = spawn_app().await;
    seed(&app).await;
    let import = app.post_ok("/v1/contact-imports", &request(), 201).await;
    let id = import["id"].as_str().unwrap();
    // Between the dry run and the commit, Ada texts STOP (here: staff list her number).
    app.post_ok("/v1/do-not-contact", &json!({"phone": "07700900001"}), 201).await;

    let accepted = app.post(&format!("/v1/contact-imports/{id}/commit"), &app.token(), &json!({})).await;
    assert_eq!(accepted.status(), 202);
    let committed = app.wait_committed(id).await;
    assert_eq!((committed["rows_done"].as_i64(), committed["rows_total"].as_i64()), (Some(8), Some(8)));
    assert_eq!(
        committed["summary"],
        json!({"create": 0, "update": 1, "unchanged": 1, "duplicate_in_file": 1, "invalid": 2, "invalid_number": 1,
               "do_not_contact": 2})
    );
    problem(app.post(&format!("/v1/contact-imports/{id}/commit"), &app.token(), &json!({})).await, 409, "conflict")
        .await;

    let alan = app.get_ok("/v1/contacts?q=alan").await;
    let alan = &alan["data"][0];
    assert_eq!(alan["last_name"], "Turing");
    assert_eq!(alan["tags"], json!(["spring appeal"]));
    assert_eq!(alan["attributes"], json!({"branch": "Leeds"}));
    assert_eq!(alan["consent_source"], "gala sign-up sheet");
    assert_eq!(alan["revision"], 2);
    let rows = app.get_ok(&format!("/v1/contact-imports/{id}/rows?outcome=update")).await;
    assert_eq!(rows["data"][0]["contact_id"], alan["id"]);
    let ada = app.get_ok("/v1/contacts?q=ada").await;
    assert!(ada["data"].as_array().unwrap().is_empty(), "a number listed after the dry run is not imported");

    // The same file again: everything it can write is there already.
    let again = app.post_ok("/v1/contact-imports", &request(), 201).await;
    assert_eq!(again["summary"]["create"], 0);
    assert_eq!(again["summary"]["update"], 0);
    assert_eq!(again["summary"]["unchanged"], 2);
}

#[tokio::test]
async fn a_file_of_2500_rows_is_committed_in_chunks_with_its_progress() {
    let app = spawn_app().await;
    let mut csv = String::from("phone,first_name\n");
    for i in 0..2500 {
        csv.push_str(&format!("07700{i:06},Person {i}\n"));
    }
    let import = app.post_ok("/v1/contact-imports", &json!({"csv": csv, "consent_source": "newsletter"}), 201).await;
    assert_eq!(import["summary"]["create"], 2500);
    let id = import["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/v1/contact-imports/{id}/commit"), &app.token(), &json!({})).await.status(), 202);
    let committed = app.wait_committed(id).await;
    assert_eq!(committed["rows_done"], 2500);
    assert_eq!(committed["summary"]["create"], 2500);
    let admin = app.db.admin_client().await;
    let n: i64 = admin.query_one("SELECT count(*) FROM messaging.contacts", &[]).await.unwrap().get(0);
    assert_eq!(n, 2500);
    let queued: i64 =
        admin.query_one("SELECT count(*) FROM messaging.pending_contact_imports", &[]).await.unwrap().get(0);
    assert_eq!(queued, 0, "taken off the queue");
}

#[tokio::test]
async fn bad_files_and_options_are_named() {
    let app = spawn_app().await;
    let token = app.token();
    let body = problem(app.post("/v1/contact-imports", &token, &json!({})).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["consent_source", "csv"]);
    let body = problem(
        app.post(
            "/v1/contact-imports",
            &token,
            &json!({"csv": "Name,Email\nAda,a@example.org\n", "consent_source": "x"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["csv"]);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("phone"), "{body}");
    let body = problem(
        app.post(
            "/v1/contact-imports",
            &token,
            &json!({"csv": "Phone\n07700900123\n", "consent_source": " ", "default_country": "FR",
                    "mapping": {"Phone": "telephone"}, "tags": [""], "consented_at": "soon"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["consent_source", "consented_at", "default_country", "mapping.Phone", "tags"]);
    let body = problem(
        app.post(
            "/v1/contact-imports",
            &token,
            &json!({"csv": "Phone\n07700900123\n", "consent_source": "x", "mapping": {"Mobile": "phone"}}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["mapping"]);
    problem(app.get("/v1/contact-imports?status=done", &token).await, 422, "validation_failed").await;
    problem(
        app.get("/v1/contact-imports/00000000-0000-0000-0000-000000000000/rows?outcome=x", &token).await,
        422,
        "validation_failed",
    )
    .await;
    problem(app.get("/v1/contact-imports/00000000-0000-0000-0000-000000000000", &token).await, 404, "not_found").await;
    problem(app.post("/v1/contact-imports", &app.reader_token(), &json!({})).await, 403, "forbidden").await;
    // Larger than the service's usual body limit, within the import's own.
    let mut csv = String::from("phone\n");
    for i in 0..8000 {
        csv.push_str(&format!("07700{i:06}\n"));
    }
    assert!(csv.len() > 64 * 1024);
    app.post_ok("/v1/contact-imports", &json!({"csv": csv, "consent_source": "x"}), 201).await;
}
