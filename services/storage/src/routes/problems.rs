//! How the file operations' errors look to clients: each becomes an [`ApiError`] here, and nowhere else.

use crate::app::FileError;
use crate::store::StoreError;
use almoner_http::{ApiError, ErrorCode};

impl From<FileError> for ApiError {
    fn from(error: FileError) -> Self {
        let detail = error.to_string();
        let problem = match error {
            FileError::TypeNotAllowed(..) | FileError::TypeNotAllowedForMembers(..) => {
                ApiError::new(ErrorCode::ContentTypeNotAllowed, detail)
            }
            FileError::TooLarge { .. } | FileError::TooLargeForMembers { .. } => {
                ApiError::new(ErrorCode::FileTooLarge, detail)
            }
            FileError::QuotaExceeded { .. } => ApiError::new(ErrorCode::QuotaExceeded, detail),
            FileError::NotFound => ApiError::not_found("object"),
            FileError::UploadMissing => ApiError::new(ErrorCode::UploadMissing, detail),
            FileError::UploadExpired(_) => ApiError::new(ErrorCode::UploadExpired, detail),
            FileError::SizeMismatch { .. } => ApiError::new(ErrorCode::SizeMismatch, detail),
            FileError::ContentMismatch(_) => ApiError::new(ErrorCode::ContentMismatch, detail),
            FileError::BodyFailed(_) => ApiError::new(ErrorCode::MalformedRequest, detail),
            FileError::Store(StoreError::NotFound) => ApiError::not_found("object's file"),
            FileError::Store(StoreError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "object store unavailable");
                ApiError::new(ErrorCode::ServiceUnavailable, "the object store is unavailable; retry shortly")
                    .with_header("retry-after", "2".to_owned())
            }
            FileError::Db(e) => e.into(),
            FileError::Unexpected(e) => ApiError::unexpected(e),
        };
        if problem.code.status().is_client_error() && problem.code != ErrorCode::NotFound {
            crate::metrics::metrics().refused.with_label_values(&[problem.code.as_str()]).inc();
        }
        problem
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        FileError::Store(error).into()
    }
}
