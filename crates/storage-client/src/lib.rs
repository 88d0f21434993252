//! The storage service's API, as the other services call it: fundraising keeps its files there (Gift Aid
//! schedules) and reads the files clients uploaded (import CSVs); messaging keeps conversations' attachments.
//! Every request carries the caller's own bearer token, forwarded as it came, so storage checks the tenant and the
//! scopes itself (`storage:read`, `storage:write`, a widget member's `storage:member`): no service reads storage's
//! tables or holds a token of its own for it. Each request has its own timeout and the trace context
//! (`traceparent`); callers make none while a database transaction is open.
//!
//! What a refusal means to the caller's client depends on the request: [`StorageError`] only says which kind it
//! is, and [`StorageError::problem`] gives the answer that fits most; the routes decide the rest (an unknown
//! object named by an import is the import's `422`).

use actix_web::HttpRequest;
use almoner_http::{ApiError, ErrorCode};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// The scope storage asks for to read a file or its link.
pub const READ_SCOPE: &str = "storage:read";
/// The scope storage asks for to store a file.
pub const WRITE_SCOPE: &str = "storage:write";

/// The caller's bearer token, to be forwarded to storage unchanged.
#[derive(Clone)]
pub struct CallerToken(SecretString);

impl CallerToken {
    /// The request's `Authorization: Bearer` token. The `Principal` extractor has already verified it; this only
    /// takes it again to pass it on.
    pub fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        req.headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| Self(SecretString::from(token.trim().to_owned())))
            .ok_or_else(|| ApiError::unauthorized("send a bearer token in the Authorization header"))
    }
}

/// An object's metadata as storage shows it (`ObjectView`).
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct StoredObject {
    pub id: Uuid,
    /// `pending` until its upload is completed, then `stored`.
    pub status: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Lower-case hex SHA-256 of the stored bytes; none while pending.
    pub sha256: Option<String>,
    pub purpose: String,
    pub owner_reference: Option<String>,
    /// The token subject that uploaded it (`staff:<id>`, `member:<identifier>`...); none for files from before
    /// storage recorded it.
    #[serde(default)]
    pub owner_subject: Option<String>,
}

/// A pending upload: where to send the file (`UploadView`).
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct PendingUpload {
    pub object: StoredObject,
    pub upload_url: String,
    pub upload_method: String,
    pub upload_headers: std::collections::BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// A file about to be uploaded (`UploadInput`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewUpload<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size_bytes: i64,
    /// What it is for (`conversation_attachment`): lower-case letters, digits and `_`.
    pub purpose: &'a str,
    /// What it belongs to, in the caller's terms.
    pub owner_reference: Option<&'a str>,
}

/// A one-minute presigned download link.
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// A file to store.
pub struct NewObject<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    /// What it is for (`gift_aid_claim`): lower-case letters, digits and `_`.
    pub purpose: &'a str,
    /// What it belongs to, in fundraising's terms (the claim's id).
    pub owner_reference: &'a str,
}

/// Why storage did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No such object, or another tenant's (storage does not tell them apart).
    #[error("storage has no such object")]
    NotFound,
    /// The object is a pending upload: its file has not arrived, or the upload was not completed.
    #[error("the object's upload has not been completed")]
    UploadMissing,
    /// storage did not accept the token (401): expired meanwhile, or not one storage trusts.
    #[error("storage refused the token: {0}")]
    Unauthorized(String),
    /// The token lacks a storage scope (403).
    #[error("storage refused the request: {0}")]
    Forbidden(String),
    /// Any other refusal, as storage's problem said it (`quota_exceeded`, `file_too_large`...).
    #[error("storage refused the request ({status} {code}): {detail}")]
    Refused { status: u16, code: String, detail: String },
    /// storage could not be reached, took too long, or answered 5xx: worth trying again.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// An answer that is not what storage promises (not its JSON, bytes that do not match their hash).
    #[error("storage's answer cannot be used: {0}")]
    Unusable(String),
}

impl StorageError {
    /// The answer for fundraising's client when the request needed `scope` of storage: a missing scope is the
    /// client's `403` saying which, storage away a `503`, storage's own refusals of the file keep their code, and
    /// anything else is fundraising's fault (`500`, cause logged). [`StorageError::NotFound`] and
    /// [`StorageError::UploadMissing`] get a generic answer here; a route that can say more does so first.
    pub fn problem(self, scope: &str) -> ApiError {
        match self {
            StorageError::NotFound => ApiError::not_found("object in storage"),
            StorageError::UploadMissing => ApiError::new(
                ErrorCode::UploadMissing,
                "the object's upload has not been completed: send its file, then complete the upload",
            ),
            StorageError::Forbidden(detail) => ApiError::forbidden(format!(
                "the storage service refused the request: the token needs the scope {scope} as well \
                 (storage said: {detail})"
            )),
            StorageError::Unauthorized(detail) => {
                ApiError::unauthorized(format!("the storage service refused the token: {detail}"))
            }
            StorageError::Refused { status, code, detail } => match code.as_str() {
                "quota_exceeded" => ApiError::new(ErrorCode::QuotaExceeded, detail),
                "file_too_large" => ApiError::new(ErrorCode::FileTooLarge, detail),
                "content_type_not_allowed" => ApiError::new(ErrorCode::ContentTypeNotAllowed, detail),
                "size_mismatch" => ApiError::new(ErrorCode::SizeMismatch, detail),
                "content_mismatch" => ApiError::new(ErrorCode::ContentMismatch, detail),
                "upload_expired" => ApiError::new(ErrorCode::UploadExpired, detail),
                "validation_failed" => ApiError::new(ErrorCode::ValidationFailed, detail),
                "rate_limited" => {
                    ApiError::new(ErrorCode::ServiceUnavailable, "the storage service is busy; retry shortly")
                        .with_header("retry-after", "2".to_owned())
                }
                _ => ApiError::unexpected(anyhow::anyhow!("storage refused the request: {status} {code}: {detail}")),
            },
            StorageError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable");
                ApiError::new(ErrorCode::ServiceUnavailable, "the storage service is unavailable; retry shortly")
                    .with_header("retry-after", "2".to_owned())
            }
            StorageError::Unusable(cause) => ApiError::unexpected(anyhow::anyhow!("storage's answer: {cause}")),
        }
    }
}

/// The file's bytes on their way from storage (`GET /v1/objects/{id}/content`), not yet read.
pub struct Content {
    /// The file's content type, as stored.
    pub content_type: String,
    /// Its size, from `Content-Length`.
    pub size_bytes: Option<u64>,
    /// Lower-case hex SHA-256 storage recorded (`x-sha256`).
    sha256: String,
    response: reqwest::Response,
}

/// Why a file could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the file is over {max} bytes")]
    TooLarge { max: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Content {
    /// Reads the file into one buffer as it arrives (at most `max` bytes), hashing it on the way, and checks its
    /// length and SHA-256 against what storage said.
    pub async fn read_all(mut self, max: u64) -> Result<Vec<u8>, ReadError> {
        if self.size_bytes.is_some_and(|size| size > max) {
            return Err(ReadError::TooLarge { max });
        }
        let capacity = usize::try_from(self.size_bytes.unwrap_or(0)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(capacity);
        let mut hasher = Sha256::new();
        loop {
            let chunk = self
                .response
                .chunk()
                .await
                .map_err(|e| StorageError::Unavailable(format!("the file was cut short: {}", e.without_url())))?;
            let Some(chunk) = chunk else { break };
            if bytes.len() as u64 + chunk.len() as u64 > max {
                return Err(ReadError::TooLarge { max });
            }
            hasher.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        if self.size_bytes.is_some_and(|size| size != bytes.len() as u64) {
            return Err(StorageError::Unusable(format!(
                "{} bytes arrived of the {} announced",
                bytes.len(),
                self.size_bytes.unwrap_or(0)
            ))
            .into());
        }
        let sha256 = hex(&hasher.finalize());
        if !sha256.eq_ignore_ascii_case(&self.sha256) {
            return Err(StorageError::Unusable(format!(
                "the bytes' SHA-256 is {sha256}, but storage recorded {:?}",
                self.sha256
            ))
            .into());
        }
        Ok(bytes)
    }
}

/// Lower-case hex, as storage writes SHA-256s.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A client of the storage service's `/v1` API. Cheap to clone: one connection pool.
#[derive(Debug, Clone)]
pub struct StorageClient {
    http: reqwest::Client,
    base_url: reqwest::Url,
}

impl StorageClient {
    /// A client of storage at `url` (without `/v1`), each request taking at most `timeout`, reading the answer
    /// included.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // storage's `/download` redirects; callers only ask for `/link`, and must never follow a redirect with
            // the caller's token.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let mut base_url = reqwest::Url::parse(url.trim_end_matches('/'))?;
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Ok(Self { http, base_url })
    }

    fn url(&self, path: &str) -> reqwest::Url {
        // `path` is relative (`v1/objects/...`) and built from ids only, so joining cannot leave the base.
        self.base_url.join(path).expect("a relative path joins the base URL")
    }

    fn request(&self, method: reqwest::Method, url: reqwest::Url, token: &CallerToken) -> reqwest::RequestBuilder {
        let mut headers = reqwest::header::HeaderMap::new();
        almoner_telemetry::inject_http(&mut headers);
        self.http.request(method, url).headers(headers).bearer_auth(token.0.expose_secret())
    }

    async fn send(request: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response, StorageError> {
        let response =
            request.send().await.map_err(|e| StorageError::Unavailable(format!("{what}: {}", e.without_url())))?;
        if response.status().is_success() { Ok(response) } else { Err(refusal(response, what).await) }
    }

    /// `POST /v1/objects`: stores `bytes` as one file and checks that storage kept exactly them (its size and
    /// SHA-256 are those of `bytes`).
    #[tracing::instrument(skip_all, fields(purpose = file.purpose, size_bytes = bytes.len(), object_id))]
    pub async fn store(
        &self,
        token: &CallerToken,
        file: &NewObject<'_>,
        bytes: Vec<u8>,
    ) -> Result<StoredObject, StorageError> {
        let sha256 = hex(&Sha256::digest(&bytes));
        let size = bytes.len() as i64;
        let mut url = self.url("v1/objects");
        url.query_pairs_mut()
            .append_pair("filename", file.filename)
            .append_pair("purpose", file.purpose)
            .append_pair("owner_reference", file.owner_reference);
        let request = self
            .request(reqwest::Method::POST, url, token)
            .header(reqwest::header::CONTENT_TYPE, file.content_type)
            .body(bytes);
        let object: StoredObject = json(Self::send(request, "storing a file").await?, "storing a file").await?;
        tracing::Span::current().record("object_id", tracing::field::display(object.id));
        if object.size_bytes != size || object.sha256.as_deref() != Some(sha256.as_str()) {
            return Err(StorageError::Unusable(format!(
                "object {} holds {} bytes with SHA-256 {:?}; {size} bytes with SHA-256 {sha256} were sent",
                object.id, object.size_bytes, object.sha256
            )));
        }
        Ok(object)
    }

    /// `POST /v1/uploads`: a pending upload and the presigned link its file goes to, checked by storage against
    /// the tenant's policy (and a widget member's limits).
    #[tracing::instrument(skip_all, fields(purpose = upload.purpose, size_bytes = upload.size_bytes))]
    pub async fn create_upload(
        &self,
        token: &CallerToken,
        upload: &NewUpload<'_>,
    ) -> Result<PendingUpload, StorageError> {
        let request = self.request(reqwest::Method::POST, self.url("v1/uploads"), token).json(upload);
        json(Self::send(request, "an upload").await?, "an upload").await
    }

    /// `POST /v1/uploads/{id}/complete`: storage checks the file that arrived and keeps it.
    #[tracing::instrument(skip_all, fields(object_id = %id))]
    pub async fn complete_upload(&self, token: &CallerToken, id: Uuid) -> Result<StoredObject, StorageError> {
        let request = self.request(reqwest::Method::POST, self.url(&format!("v1/uploads/{id}/complete")), token);
        json(Self::send(request, "completing an upload").await?, "completing an upload").await
    }

    /// `GET /v1/objects/{id}`: an object's metadata, if the token may see it.
    #[tracing::instrument(skip_all, fields(object_id = %id))]
    pub async fn object(&self, token: &CallerToken, id: Uuid) -> Result<StoredObject, StorageError> {
        let request = self.request(reqwest::Method::GET, self.url(&format!("v1/objects/{id}")), token);
        json(Self::send(request, "an object").await?, "an object").await
    }

    /// `POST /v1/objects/{id}/grants`: lets `subject` (a widget member) read the object too.
    #[tracing::instrument(skip_all, fields(object_id = %id))]
    pub async fn grant(&self, token: &CallerToken, id: Uuid, subject: &str) -> Result<(), StorageError> {
        let url = self.url(&format!("v1/objects/{id}/grants"));
        let request = self.request(reqwest::Method::POST, url, token).json(&serde_json::json!({"subject": subject}));
        Self::send(request, "granting an object").await?;
        Ok(())
    }

    /// `GET /v1/objects/{id}/link`: a presigned download link, valid for a minute.
    #[tracing::instrument(skip_all, fields(object_id = %id))]
    pub async fn link(&self, token: &CallerToken, id: Uuid) -> Result<Link, StorageError> {
        let request = self.request(reqwest::Method::GET, self.url(&format!("v1/objects/{id}/link")), token);
        json(Self::send(request, "a download link").await?, "a download link").await
    }

    /// `GET /v1/objects/{id}/content`: the file's bytes, streamed through storage; read them with
    /// [`Content::read_all`].
    #[tracing::instrument(skip_all, fields(object_id = %id))]
    pub async fn content(&self, token: &CallerToken, id: Uuid) -> Result<Content, StorageError> {
        let request = self.request(reqwest::Method::GET, self.url(&format!("v1/objects/{id}/content")), token);
        let response = Self::send(request, "reading a file").await?;
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = header("content-type").unwrap_or_default();
        let sha256 = header("x-sha256")
            .filter(|h| h.len() == 64)
            .ok_or_else(|| StorageError::Unusable("the file came without its x-sha256".to_owned()))?;
        let size_bytes = response.content_length();
        Ok(Content { content_type, size_bytes, sha256, response })
    }

    /// `DELETE /v1/objects/{id}`, for a file stored in vain (its record could not be kept). Best effort: a
    /// failure is logged, and the file stays in storage under its owner reference.
    #[tracing::instrument(skip_all, fields(object_id = %id))]
    pub async fn delete_quietly(&self, token: &CallerToken, id: Uuid) {
        let request = self.request(reqwest::Method::DELETE, self.url(&format!("v1/objects/{id}")), token);
        match Self::send(request, "deleting a file").await {
            Ok(_) | Err(StorageError::NotFound) => {}
            Err(e) => tracing::warn!(object_id = %id, error = %e, "could not delete a file stored in vain"),
        }
    }
}

async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response, what: &str) -> Result<T, StorageError> {
    let body = response
        .bytes()
        .await
        .map_err(|e| StorageError::Unavailable(format!("{what}: the answer was cut short: {}", e.without_url())))?;
    serde_json::from_slice(&body).map_err(|e| StorageError::Unusable(format!("{what}: {e}")))
}

/// The error an unsuccessful answer stands for, from its status and problem document.
async fn refusal(response: reqwest::Response, what: &str) -> StorageError {
    #[derive(Deserialize, Default)]
    struct Problem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        detail: String,
    }
    let status = response.status().as_u16();
    let problem: Problem = response.json().await.unwrap_or_default();
    match (status, problem.code.as_str()) {
        (404, _) => StorageError::NotFound,
        (409, "upload_missing") => StorageError::UploadMissing,
        (401, _) => StorageError::Unauthorized(problem.detail),
        (403, _) => StorageError::Forbidden(problem.detail),
        (500..=599, _) => StorageError::Unavailable(format!("{what}: {status} {}", problem.code)),
        _ => StorageError::Refused { status, code: problem.code, detail: problem.detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_keeps_its_path_and_takes_relative_paths() {
        let timeout = Duration::from_secs(5);
        let client = StorageClient::new("http://127.0.0.1:8084", timeout).unwrap();
        assert_eq!(client.url("v1/objects").as_str(), "http://127.0.0.1:8084/v1/objects");
        let client = StorageClient::new("https://gateway.example/api/storage/", timeout).unwrap();
        assert_eq!(client.url("v1/objects/x/link").as_str(), "https://gateway.example/api/storage/v1/objects/x/link");
    }

    #[test]
    fn a_missing_scope_names_it() {
        let problem = StorageError::Forbidden("this requires the scope storage:write".into()).problem(WRITE_SCOPE);
        assert_eq!(problem.code, ErrorCode::Forbidden);
        assert!(problem.detail.contains("storage:write"), "{}", problem.detail);
        let problem = StorageError::Unavailable("connection refused".into()).problem(READ_SCOPE);
        assert_eq!(problem.code, ErrorCode::ServiceUnavailable);
        assert!(!problem.detail.contains("refused"), "no internals: {}", problem.detail);
    }
}
