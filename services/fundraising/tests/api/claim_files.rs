//! Gift Aid schedule files kept in the storage service: exported there with the caller's token, downloaded through
//! a redirect to a one-minute link, files exported before moved there on first download, tenants kept apart.

use crate::gift_aid::{TEXT, days_ago, declare, gift, post_claim, uk_donor};
use crate::helpers::{TestApp, fields, problem, spawn_app, spawn_app_with_storage};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A claim of two gifts from one declared donor; its path.
async fn claim_with_gifts(app: &TestApp) -> String {
    let donor = uk_donor(app).await;
    declare(app, &donor, json!({"method": "online", "declaration_text": TEXT, "start_date": days_ago(365)})).await;
    gift(app, &donor, json!({"gift_date": days_ago(60), "amount_minor": 5000})).await;
    gift(app, &donor, json!({"gift_date": days_ago(30), "amount_minor": 2500})).await;
    let claim = post_claim(app, &days_ago(1)).await;
    format!("/v1/gift-aid/claims/{}", claim["id"].as_str().unwrap())
}

/// A client that does not follow redirects, to see them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `GET` a claim file's download as `token` without following the redirect.
async fn download(app: &TestApp, href: &str, token: &str) -> reqwest::Response {
    no_redirects().get(app.url(href)).bearer_auth(token).send().await.unwrap()
}

/// The bytes behind a download redirect, fetched as a browser would: no bearer token.
async fn follow(response: reqwest::Response) -> (String, Vec<u8>) {
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap_or_default());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let link = response.headers()["location"].to_str().unwrap().to_owned();
    let file = reqwest::get(&link).await.unwrap();
    assert_eq!(file.status(), 200, "{link}");
    let content_type = file.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, file.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn an_export_is_an_object_in_storage_with_the_claims_sha256_and_its_download_redirects_to_those_bytes() {
    let app = spawn_app_with_storage().await;
    let token = app.files_token();
    let claim_path = claim_with_gifts(&app).await;
    let claim_id = claim_path.rsplit('/').next().unwrap().to_owned();

    let exported = app.post(&format!("{claim_path}/exports"), &token, &json!({"format": "ods"})).await;
    assert_eq!(exported.status(), 201, "{}", exported.text().await.unwrap());
    let files: Value = exported.json().await.unwrap();
    let file = files["data"][0].clone();
    let object_id = file["object_id"].as_str().expect("the file is an object in storage").to_owned();
    let sha256 = file["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha256.len(), 64);
    assert_eq!(file["size_bytes"], file["bytes"]);

    // In the bucket, under the tenant, with the SHA-256 the claim records; storage's metadata agrees.
    let stored = app.storage().bucket_bytes(app.tenant_id, &object_id).await;
    assert_eq!(sha256_hex(&stored), sha256);
    assert_eq!(file["size_bytes"].as_u64(), Some(stored.len() as u64));
    let object: Value = app
        .client
        .get(app.storage().url(&format!("/v1/objects/{object_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(object["sha256"], sha256.as_str());
    assert_eq!(object["purpose"], "gift_aid_claim");
    assert_eq!(object["owner_reference"], claim_id.as_str());
    assert_eq!(object["content_type"], "application/vnd.oasis.opendocument.spreadsheet");
    assert_eq!(object["filename"], format!("gift-aid-claim-{claim_id}-part-1-of-1.ods"));
    // fundraising keeps no copy of the bytes.
    let admin = app.db.admin_client().await;
    let kept: Option<Vec<u8>> = admin
        .query_one(
            "SELECT content FROM fundraising.gift_aid_claim_files WHERE object_id = $1",
            &[&Uuid::parse_str(&object_id).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, None);

    // The download is a redirect to a link whose bytes are the same.
    let (content_type, bytes) = follow(download(&app, file["href"].as_str().unwrap(), &token).await).await;
    assert_eq!(content_type, "application/vnd.oasis.opendocument.spreadsheet");
    assert_eq!(sha256_hex(&bytes), sha256);
    let listed: Value = app.get(&format!("{claim_path}/files"), &token).await.json().await.unwrap();
    assert_eq!(listed["data"][0]["object_id"], object_id.as_str());
    assert_eq!(listed["data"][0]["sha256"], sha256.as_str());

    // Another tenant finds neither the file nor the object, even with every scope.
    let other = app.files_token_for(Uuid::new_v4());
    problem(download(&app, file["href"].as_str().unwrap(), &other).await, 404, "not_found").await;
    let direct =
        app.client.get(app.storage().url(&format!("/v1/objects/{object_id}/link"))).bearer_auth(&other).send().await;
    problem(direct.unwrap(), 404, "not_found").await;

    // A token without storage's scopes: told which one it lacks.
    let plain = app.token();
    let refused = problem(download(&app, file["href"].as_str().unwrap(), &plain).await, 403, "forbidden").await;
    assert!(refused["detail"].as_str().unwrap().contains("storage:read"), "{refused}");
    let refused =
        problem(app.post(&format!("{claim_path}/exports"), &plain, &json!({"format": "csv"})).await, 403, "forbidden")
            .await;
    assert!(refused["detail"].as_str().unwrap().contains("storage:write"), "{refused}");
    let bad = app.post(&format!("{claim_path}/exports"), &token, &json!({"format": "pdf"})).await;
    assert_eq!(fields(&problem(bad, 422, "validation_failed").await), ["format"]);
}

#[tokio::test]
async fn a_file_exported_before_storage_moves_there_on_its_first_download_by_a_caller_who_may_store_files() {
    let app = spawn_app_with_storage().await;
    let token = app.files_token();
    let claim_path = claim_with_gifts(&app).await;
    let claim_id = Uuid::parse_str(claim_path.rsplit('/').next().unwrap()).unwrap();

    // A file as exports stored them before: its bytes in PostgreSQL, no object.
    let csv = format!(
        "Title,First name,Last name,House,Postcode,Aggregated,Sponsored,Date,Amount\r\n,Ann,Giver,12,LS1 4AP,,,{},50.00\r\n",
        days_ago(60)
    );
    let sha256 = Sha256::digest(csv.as_bytes()).to_vec();
    let file_id = Uuid::now_v7();
    let admin = app.db.admin_client().await;
    admin
        .execute(
            "INSERT INTO fundraising.gift_aid_claim_files \
             (id, tenant_id, claim_id, export_id, format, part, parts, rows, content, sha256) \
             VALUES ($1, $2, $3, $4, 'csv', 1, 1, 1, $5, $6)",
            &[&file_id, &app.tenant_id, &claim_id, &Uuid::now_v7(), &csv.as_bytes(), &sha256],
        )
        .await
        .unwrap();
    let listed: Value = app.get(&format!("{claim_path}/files"), &token).await.json().await.unwrap();
    let file = &listed["data"][0];
    assert_eq!(file["object_id"], Value::Null);
    assert_eq!(file["size_bytes"].as_u64(), Some(csv.len() as u64));
    assert_eq!(file["sha256"], sha256_hex(csv.as_bytes()).as_str());
    let href = file["href"].as_str().unwrap().to_owned();

    // A caller who may not store files gets the bytes as before, and nothing moves.
    let direct = download(&app, &href, &app.token()).await;
    assert_eq!(direct.status(), 200);
    assert_eq!(direct.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(direct.text().await.unwrap(), csv);
    let still: Option<Uuid> = admin
        .query_one("SELECT object_id FROM fundraising.gift_aid_claim_files WHERE id = $1", &[&file_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(still, None);

    // The first download with storage:write moves it: an object with the recorded SHA-256, the bytes cleared here,
    // and the redirect to it.
    let (_, bytes) = follow(download(&app, &href, &token).await).await;
    assert_eq!(bytes, csv.as_bytes());
    let row = admin
        .query_one(
            "SELECT object_id, content, size_bytes FROM fundraising.gift_aid_claim_files WHERE id = $1",
            &[&file_id],
        )
        .await
        .unwrap();
    let object_id: Uuid = row.get::<_, Option<Uuid>>(0).expect("moved to storage");
    assert_eq!(row.get::<_, Option<Vec<u8>>>(1), None, "the bytes are no longer kept here");
    assert_eq!(row.get::<_, Option<i64>>(2), Some(csv.len() as i64));
    let stored = app.storage().bucket_bytes(app.tenant_id, &object_id.to_string()).await;
    assert_eq!(sha256_hex(&stored), sha256_hex(csv.as_bytes()));
    let listed: Value = app.get(&format!("{claim_path}/files"), &token).await.json().await.unwrap();
    assert_eq!(listed["data"][0]["object_id"], object_id.to_string().as_str());
    assert_eq!(listed["data"][0]["size_bytes"], file["size_bytes"]);

    // Later downloads redirect to the same object; none is stored again.
    let (_, again) = follow(download(&app, &href, &token).await).await;
    assert_eq!(again, csv.as_bytes());
    let objects: Value = app
        .client
        .get(app.storage().url(&format!("/v1/objects?owner_reference={claim_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(objects["data"].as_array().unwrap().len(), 1, "{objects}");
    assert_eq!(objects["data"][0]["purpose"], "gift_aid_claim");

    // Now that it is in storage, reading it needs storage:read; another tenant never finds it.
    problem(download(&app, &href, &app.token()).await, 403, "forbidden").await;
    problem(download(&app, &href, &app.files_token_for(Uuid::new_v4())).await, 404, "not_found").await;
}

#[tokio::test]
async fn an_export_while_storage_is_unreachable_is_a_503_and_records_nothing() {
    // No storage runs: fundraising's storage.url points where nothing listens.
    let app = spawn_app().await;
    let claim_path = claim_with_gifts(&app).await;
    let refused = app.post(&format!("{claim_path}/exports"), &app.files_token(), &json!({"format": "csv"})).await;
    assert!(refused.headers().contains_key("retry-after"));
    let body = problem(refused, 503, "service_unavailable").await;
    assert!(!body["detail"].as_str().unwrap().contains("127.0.0.1"), "no internals: {body}");
    let listed: Value = app.get(&format!("{claim_path}/files"), &app.token()).await.json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().is_empty());
}
