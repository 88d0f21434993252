//! The bucket, through `rust-s3`: presigned links (rebased on `s3.public_url` when clients reach the store
//! through the gateway), existence and size checks, the first bytes for sniffing, whole-object reads for hashing
//! and serving, multipart writes for the streaming path, and deletion. Every call names an [`ObjectKey`], so no
//! client text reaches the bucket.

use crate::configuration::S3Settings;
use crate::domain::ObjectKey;
use anyhow::Context;
use futures::{Stream, StreamExt};
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::serde_types::Part;
use s3::{Bucket, BucketConfiguration, Region};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::time::Duration;

/// A failure talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store answered that the object is not there.
    #[error("no such object")]
    NotFound,
    /// The store could not be reached or failed; the caller answers 503.
    #[error("the object store is unavailable: {0}")]
    Unavailable(String),
}

impl From<S3Error> for StoreError {
    fn from(e: S3Error) -> Self {
        match e {
            S3Error::HttpFailWithBody(404, _) => StoreError::NotFound,
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// A readable stream of an object's bytes.
pub type ByteStream = std::pin::Pin<Box<dyn Stream<Item = Result<actix_web::web::Bytes, StoreError>> + Send>>;

#[derive(Clone)]
pub struct ObjectStore {
    bucket: Box<Bucket>,
    /// `scheme://host[:port]` the links are signed for, and the base that replaces it, when clients reach the
    /// store elsewhere.
    rebase: Option<(String, String)>,
}

impl ObjectStore {
    pub fn new(settings: &S3Settings) -> anyhow::Result<Self> {
        let bucket = bucket(settings)?;
        let rebase = settings.public_url.as_ref().map(|public| {
            let signed_base = if settings.path_style {
                settings.endpoint.trim_end_matches('/').to_owned()
            } else {
                format!("{}://{}", bucket.scheme(), bucket.host())
            };
            (signed_base, public.trim_end_matches('/').to_owned())
        });
        Ok(Self { bucket, rebase })
    }

    pub fn bucket_name(&self) -> String {
        self.bucket.name()
    }

    /// Creates the bucket unless it exists (`s3.create_bucket`, for development and tests).
    pub async fn ensure_bucket(settings: &S3Settings) -> anyhow::Result<()> {
        let store = Self::new(settings)?;
        if store.check().await.is_ok() {
            return Ok(());
        }
        let (region, credentials) = (region(settings), credentials(settings)?);
        let created = if settings.path_style {
            Bucket::create_with_path_style(&settings.bucket, region, credentials, BucketConfiguration::private()).await
        } else {
            Bucket::create(&settings.bucket, region, credentials, BucketConfiguration::private()).await
        };
        match created {
            Ok(_) => Ok(()),
            // Created meanwhile by another replica.
            Err(_) if store.check().await.is_ok() => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context(format!("creating bucket {}", settings.bucket))),
        }
    }

    /// For `/ready`: the bucket answers a listing of one key.
    pub async fn check(&self) -> Result<(), String> {
        match self.bucket.list_page(String::new(), None, None, None, Some(1)).await {
            Ok(_) => Ok(()),
            Err(S3Error::HttpFailWithBody(status, body)) => {
                Err(format!("bucket {} answered {status}: {}", self.bucket.name(), first_line(&body)))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// A link to upload exactly `size` bytes of `content_type` with one PUT, for `ttl_secs`: both headers are
    /// signed, so a file of another size or type is refused by the store itself.
    pub async fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        size: i64,
        ttl_secs: u32,
    ) -> Result<String, StoreError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            content_type.parse().map_err(|_| StoreError::Unavailable("unusable content type".into()))?,
        );
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(size));
        let url = self.bucket.presign_put(key.as_str(), ttl_secs, Some(headers), None).await?;
        Ok(self.rebased(url))
    }

    /// A link to download the object for `ttl_secs`, offered as `disposition` with `content_type`.
    pub async fn presign_get(
        &self,
        key: &ObjectKey,
        ttl_secs: u32,
        content_type: &str,
        disposition: &str,
    ) -> Result<String, StoreError> {
        let queries = HashMap::from([
            ("response-content-disposition".to_owned(), disposition.to_owned()),
            ("response-content-type".to_owned(), content_type.to_owned()),
        ]);
        let url = self.bucket.presign_get(key.as_str(), ttl_secs, Some(queries)).await?;
        Ok(self.rebased(url))
    }

    fn rebased(&self, url: String) -> String {
        match &self.rebase {
            Some((signed, public)) if url.starts_with(signed.as_str()) => format!("{public}{}", &url[signed.len()..]),
            _ => url,
        }
    }

    /// The object's size, or [`StoreError::NotFound`].
    pub async fn size(&self, key: &ObjectKey) -> Result<i64, StoreError> {
        let (head, status) = self.bucket.head_object(key.as_str()).await?;
        match status {
            200..=299 => head.content_length.ok_or_else(|| StoreError::Unavailable("HEAD without a length".into())),
            404 => Err(StoreError::NotFound),
            other => Err(StoreError::Unavailable(format!("HEAD answered {other}"))),
        }
    }

    /// Up to the first `len` bytes of the object.
    pub async fn head_bytes(&self, key: &ObjectKey, len: usize) -> Result<Vec<u8>, StoreError> {
        let last = u64::try_from(len.max(1) - 1).unwrap_or(0);
        let response = self.bucket.get_object_range(key.as_str(), 0, Some(last)).await?;
        Ok(response.bytes().to_vec())
    }

    /// The object's bytes as they come from the store.
    pub async fn read(&self, key: &ObjectKey) -> Result<ByteStream, StoreError> {
        let mut response = self.bucket.get_object_stream(key.as_str()).await?;
        if !(200..300).contains(&response.status_code) {
            return Err(match response.status_code {
                404 => StoreError::NotFound,
                other => StoreError::Unavailable(format!("GET answered {other}")),
            });
        }
        let stream = std::mem::replace(response.bytes(), Box::pin(futures::stream::empty()));
        Ok(Box::pin(stream.map(|item| item.map_err(|e| StoreError::Unavailable(e.to_string())))))
    }

    /// Writes a small object in one request.
    pub async fn put(&self, key: &ObjectKey, content: &[u8], content_type: &str) -> Result<(), StoreError> {
        self.bucket.put_object_with_content_type(key.as_str(), content, content_type).await?;
        Ok(())
    }

    pub async fn begin_multipart(&self, key: &ObjectKey, content_type: &str) -> Result<String, StoreError> {
        Ok(self.bucket.initiate_multipart_upload(key.as_str(), content_type).await?.upload_id)
    }

    pub async fn put_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        number: u32,
        part: Vec<u8>,
        content_type: &str,
    ) -> Result<Part, StoreError> {
        Ok(self.bucket.put_multipart_chunk(part, key.as_str(), number, upload_id, content_type).await?)
    }

    pub async fn finish_multipart(&self, key: &ObjectKey, upload_id: &str, parts: Vec<Part>) -> Result<(), StoreError> {
        self.bucket.complete_multipart_upload(key.as_str(), upload_id, parts).await?;
        Ok(())
    }

    /// Abandons a multipart upload; its parts are freed. Best effort: a failure is logged.
    pub async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) {
        if let Err(e) = self.bucket.abort_upload(key.as_str(), upload_id).await {
            tracing::warn!(key = %key, error = %e, "could not abort a multipart upload");
        }
    }

    /// Deletes the object; deleting one that is not there succeeds.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        match self.bucket.delete_object(key.as_str()).await {
            Ok(_) | Err(S3Error::HttpFailWithBody(404, _)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn region(settings: &S3Settings) -> Region {
    Region::Custom { region: settings.region.clone(), endpoint: settings.endpoint.trim_end_matches('/').to_owned() }
}

fn credentials(settings: &S3Settings) -> anyhow::Result<Credentials> {
    Credentials::new(
        Some(settings.access_key.expose_secret()),
        Some(settings.secret_key.expose_secret()),
        None,
        None,
        None,
    )
    .context("S3 credentials")
}

fn bucket(settings: &S3Settings) -> anyhow::Result<Box<Bucket>> {
    let mut bucket = Bucket::new(&settings.bucket, region(settings), credentials(settings)?)
        .with_context(|| format!("S3 bucket {}", settings.bucket))?;
    if settings.path_style {
        bucket.set_path_style();
    } else {
        bucket.set_subdomain_style();
    }
    bucket.set_request_timeout(Some(Duration::from_secs(settings.request_timeout_secs)));
    Ok(bucket)
}

fn first_line(body: &str) -> &str {
    body.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim()
}
