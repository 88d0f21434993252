//! Files through the gateway, kept by the storage service: a CSV far over the import route's 10 MiB body limit,
//! uploaded to S3 with a presigned link (the gateway's `/s3/`) and imported by naming the object; and a Gift Aid
//! schedule whose download redirects to a link that gives the very bytes the claim records.

use crate::faults::mix;
use crate::stack::Stack;
use chrono::{Days, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt::Write;
use std::time::Duration;
use tokio::time::Instant;

/// The file's size: three times what the import route takes in a body.
const CSV_BYTES: usize = 30 * 1024 * 1024;
const DONORS: usize = 20_000;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A wide export such as an old CRM writes (every donor's details on each of its gifts), and what each kind of row
/// should come to.
struct BigSample {
    csv: String,
    rows: usize,
    bad: usize,
    duplicates: usize,
    refunds: usize,
    gifts: usize,
    donors: usize,
}

/// Deterministic rows until the file reaches [`CSV_BYTES`]: every 37th is bad (an amount that is no amount, or no
/// surname), every 23rd repeats an earlier gift of the same donor, every 29th refunds half of an earlier gift (each
/// at most once); the rest are gifts of [`DONORS`] donors.
fn big_sample() -> BigSample {
    const TITLES: [&str; 4] = ["Mr", "Mrs", "Ms", "Dr"];
    const STREETS: [&str; 5] = ["Station Road", "Church Lane", "Victoria Street", "Mill Lane", "The Crescent"];
    const TOWNS: [(&str, &str, &str); 4] = [
        ("Leeds", "West Yorkshire", "LS1 4AP"),
        ("London", "Greater London", "SW1A 1AA"),
        ("Manchester", "Greater Manchester", "M1 1AE"),
        ("Bala", "Gwynedd", "LL23 7AA"),
    ];
    const CAMPAIGNS: [&str; 3] = ["Spring Appeal 2024", "Christmas Appeal", "Summer Fete"];
    const METHODS: [&str; 3] = ["Direct Debit", "Cheque", "Card"];
    const NOTES: [&str; 3] = [
        "Thank-you letter sent; prefers post; no phone calls please",
        "Gave at the summer fete; asked about legacy giving",
        "Standing order moved to direct debit in 2023; keep informed",
    ];
    let mut csv = String::with_capacity(CSV_BYTES + 1024);
    csv.push_str(
        "Supporter ID,Title,First Name,Surname,Email,Phone,Address 1,Address 2,Town,County,Postcode,Gift Ref,Amount,\
         Date,Campaign,Payment Method,Notes,Refund Of\n",
    );
    let today = Utc::now().date_naive();
    let (mut rows, mut bad, mut duplicates, mut refunds) = (0, 0, 0, 0);
    // (reference, donor, amount) of each gift, and the next one not yet refunded.
    let mut gifts: Vec<(String, usize, u64)> = Vec::new();
    let mut next_refund = 0;
    let mut donors = HashSet::new();
    while csv.len() < CSV_BYTES {
        let i = rows;
        rows += 1;
        let r = mix(i);
        let mut donor = (r % DONORS as u64) as usize;
        let mut date = (today - Days::new(1 + r % 900)).format("%d/%m/%Y").to_string();
        let mut amount = 100 + (r >> 16) % 20_000;
        let (reference, refund_of, surname) = if i % 37 == 36 {
            bad += 1;
            (format!("B{i}"), String::new(), if i % 2 == 0 { format!("Family{}", donor % 997) } else { String::new() })
        } else if i % 23 == 22 && !gifts.is_empty() {
            duplicates += 1;
            let (reference, of, original) = gifts[(r as usize >> 3) % gifts.len()].clone();
            (donor, amount) = (of, original);
            (reference, String::new(), format!("Family{}", donor % 997))
        } else if i % 29 == 28 && next_refund < gifts.len() {
            refunds += 1;
            let (reference, of, original) = gifts[next_refund].clone();
            next_refund += 1;
            (donor, amount) = (of, original / 2);
            // Refunded today: never before the gift.
            date = today.format("%Y-%m-%d").to_string();
            (format!("R{i}"), reference, format!("Family{}", donor % 997))
        } else {
            donors.insert(donor);
            gifts.push((format!("G{i}"), donor, amount));
            (format!("G{i}"), String::new(), format!("Family{}", donor % 997))
        };
        let pounds = if i % 37 == 36 && i % 2 == 0 {
            "lots".to_owned()
        } else {
            format!("{}.{:02}", amount / 100, amount % 100)
        };
        let (town, county, postcode) = TOWNS[donor % TOWNS.len()];
        writeln!(
            csv,
            "D{donor},{title},Donor{donor},{surname},d{donor}@example.org,0113 496 {phone:04},{house} {street},{flat},\
             {town},{county},{postcode},{reference},{pounds},{date},{campaign},{method},{notes},{refund_of}",
            title = TITLES[donor % TITLES.len()],
            phone = donor % 10_000,
            house = 1 + donor % 200,
            street = STREETS[donor % STREETS.len()],
            flat = if donor.is_multiple_of(3) { format!("Flat {}", 1 + donor % 12) } else { String::new() },
            campaign = CAMPAIGNS[i % CAMPAIGNS.len()],
            method = METHODS[donor % METHODS.len()],
            notes = NOTES[i % NOTES.len()],
        )
        .unwrap();
    }
    BigSample { csv, rows, bad, duplicates, refunds, gifts: gifts.len(), donors: donors.len() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_mib_csv_uploaded_to_storage_through_the_gateway_is_imported_by_naming_its_object() {
    let started = Instant::now();
    let stack = Stack::start().await;
    let token_response: Value = stack
        .client
        .post(stack.gateway.url("/api/identity/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_secret", stack.admin.api_key.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scopes: Vec<&str> = token_response["scope"].as_str().unwrap().split(' ').collect();
    for scope in ["fundraising:write", "storage:read", "storage:write", "storage:admin"] {
        assert!(scopes.contains(&scope), "the admin token carries {scope}: {scopes:?}");
    }
    let token = token_response["access_token"].as_str().unwrap().to_owned();
    let (fundraising, storage) = (stack.gateway.url("/api/fundraising"), stack.gateway.url("/api/storage"));
    let admin = stack.db.admin_client().await;
    let sample = big_sample();
    let generated = started.elapsed();
    assert!(sample.csv.len() >= CSV_BYTES);
    let size = sample.csv.len();
    let sha256 = sha256_hex(sample.csv.as_bytes());

    // Too large for the import route's body, as the gateway says.
    let in_body = json!({"csv": sample.csv, "source": "old_crm"}).to_string();
    let refused = stack
        .client
        .post(format!("{fundraising}/v1/imports"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(in_body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);

    // storage takes files up to 25 MiB unless the tenant's policy says more.
    let policy = stack
        .client
        .put(format!("{storage}/v1/policy"))
        .bearer_auth(&token)
        .json(&json!({"max_size_bytes": 64 * 1024 * 1024}))
        .send()
        .await
        .unwrap();
    assert_eq!(policy.status(), 200, "{}", policy.text().await.unwrap());

    // The browser's way: an upload, the file PUT to the presigned link (the gateway's /s3/), then completed.
    let clock = Instant::now();
    let upload: Value = stack
        .client
        .post(format!("{storage}/v1/uploads"))
        .bearer_auth(&token)
        .json(&json!({"filename": "old-crm-export.csv", "content_type": "text/csv", "size_bytes": size,
                      "purpose": "import"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload_url = upload["upload_url"].as_str().unwrap_or_else(|| panic!("an upload: {upload}"));
    assert!(upload_url.starts_with(&stack.gateway.url("/s3/")), "{upload_url}");
    let mut put = stack.client.put(upload_url).body(sample.csv.clone().into_bytes());
    for (name, value) in upload["upload_headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    let put = put.send().await.unwrap();
    assert!(put.status().is_success(), "PUT through /s3/: {} {}", put.status(), put.text().await.unwrap());
    let object_id = upload["object"]["id"].as_str().unwrap().to_owned();
    let completed: Value = stack
        .client
        .post(format!("{storage}/v1/uploads/{object_id}/complete"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(completed["status"], "stored", "{completed}");
    assert_eq!(completed["sha256"], sha256.as_str());
    let uploaded = clock.elapsed();

    // The dry run reads it from storage and reports every row.
    let clock = Instant::now();
    let response = stack
        .client
        .post(format!("{fundraising}/v1/imports"))
        .bearer_auth(&token)
        .json(&json!({"object_id": object_id, "source": "old_crm"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let dry_run: Value = response.json().await.unwrap();
    let dry_run_took = clock.elapsed();
    assert_eq!(dry_run["object_id"], object_id.as_str());
    assert_eq!(dry_run["rows_total"], sample.rows as i64);
    assert_eq!(
        dry_run["summary"],
        json!({"create_donor": sample.donors, "match_donor": sample.gifts - sample.donors,
               "duplicate_gift": sample.duplicates, "refund": sample.refunds, "error": sample.bad})
    );
    let stored: i64 = admin.query_one("SELECT count(*) FROM fundraising.gifts", &[]).await.unwrap().get(0);
    assert_eq!(stored, 0, "a dry run writes nothing");

    // The commit writes exactly what the dry run said.
    let clock = Instant::now();
    crate::import::commit_import(&stack, &fundraising, &token, &dry_run, Duration::from_secs(240)).await;
    let committed = clock.elapsed();
    let count = |sql: &'static str| {
        let admin = &admin;
        async move { admin.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM fundraising.donors").await, sample.donors as i64);
    assert_eq!(count("SELECT count(*) FROM fundraising.gifts WHERE refund_of IS NULL").await, sample.gifts as i64);
    assert_eq!(
        count("SELECT count(*) FROM fundraising.gifts WHERE refund_of IS NOT NULL").await,
        sample.refunds as i64
    );
    eprintln!(
        "{:.1} MiB import of {} rows: generated in {generated:.1?}, uploaded through the gateway's /s3/ and completed \
         in {uploaded:.1?}, dry run (read from storage) {dry_run_took:.1?}, commit {committed:.1?}; {:.1?} in all",
        size as f64 / (1024.0 * 1024.0),
        sample.rows,
        started.elapsed()
    );

    // The import keeps its own copy; the uploaded file can go, from the bucket too.
    let key = format!("tenants/{}/objects/{object_id}", stack.admin.tenant_id);
    let bucket = almoner_testkit::s3::S3Server::from_env().bucket(&stack.bucket);
    assert!(bucket.object_exists(&key).await.unwrap(), "{key} in the bucket");
    let deleted =
        stack.client.delete(format!("{storage}/v1/objects/{object_id}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(!bucket.object_exists(&key).await.unwrap(), "{key} deleted");
    stack.clean_up().await;
}

#[tokio::test]
async fn a_claim_schedule_downloaded_through_the_gateway_is_the_file_whose_sha256_the_claim_records() {
    let stack = Stack::start().await;
    let token = stack.admin_token().await;
    let base = stack.gateway.url("/api/fundraising");
    let post = |path: String, body: Value| {
        let request = stack.client.post(format!("{base}{path}")).bearer_auth(&token).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {body}");
            body
        }
    };
    let today = Utc::now().date_naive();
    let donor = post(
        "/v1/donors".into(),
        json!({"first_name": "Ann", "last_name": "Giver",
               "address": {"line1": "12 High Street", "town": "Leeds", "postcode": "ls1 4ap"}}),
    )
    .await;
    let donor_id = donor["id"].as_str().unwrap();
    post(
        format!("/v1/donors/{donor_id}/gift-aid-declarations"),
        json!({"method": "online", "start_date": (today - Days::new(365)).to_string(),
               "declaration_text": "I want to Gift Aid my donation and any donations I make in the future or have \
                made in the past 4 years. I am a UK taxpayer."}),
    )
    .await;
    for (days, amount) in [(60, 5000), (30, 2500)] {
        let gift_date = (today - Days::new(days)).to_string();
        post(
            "/v1/gifts".into(),
            json!({"donor_id": donor_id, "amount_minor": amount, "currency": "GBP", "gift_date": gift_date}),
        )
        .await;
    }
    let claim = post("/v1/gift-aid/claims".into(), json!({"up_to": (today - Days::new(1)).to_string()})).await;
    assert_eq!(claim["gifts"], 2, "{claim}");
    let claim_id = claim["id"].as_str().unwrap();
    let files = post(format!("/v1/gift-aid/claims/{claim_id}/exports"), json!({"format": "ods"})).await;
    let file = &files["data"][0];
    let sha256 = file["sha256"].as_str().unwrap();
    assert!(file["object_id"].is_string(), "{file}");

    // The download is a redirect to a one-minute link through the gateway's /s3/...
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let href = format!("{base}{}", file["href"].as_str().unwrap());
    let redirect = no_redirects.get(&href).bearer_auth(&token).send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&stack.gateway.url("/s3/")), "{location}");
    // ... which a client follows as it comes (the gateway drops the bearer token on the way to S3), to the very
    // bytes the claim records.
    let downloaded = stack.client.get(&href).bearer_auth(&token).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert_eq!(downloaded.headers()["content-type"], "application/vnd.oasis.opendocument.spreadsheet");
    let bytes = downloaded.bytes().await.unwrap();
    assert_eq!(sha256_hex(&bytes), sha256);
    assert_eq!(file["size_bytes"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(&bytes[30..38], b"mimetype", "an OpenDocument file");
    stack.clean_up().await;
}
