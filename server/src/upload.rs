//! Reads a multipart upload: the `file` part is streamed to a spool file (never held
//! whole in RAM), every other part becomes a text field for lenient parsing
//! (PROTOCOL §2.1). Size limits are enforced while streaming.

use std::path::{Path, PathBuf};

use axum::extract::multipart::{Field, Multipart, MultipartError};
use axum::http::StatusCode;
use ember_protocol::{ErrorCode, FormFields};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;

/// The audio of a request, spooled to disk, plus the text fields.
pub struct Upload {
    /// Deleted when dropped.
    pub file: tempfile::TempPath,
    /// Bytes received for `file`.
    pub size_bytes: u64,
    /// The client's filename (`upload` for SDKs sending raw bytes).
    pub file_name: Option<String>,
    pub fields: FormFields,
}

/// Longest text field kept (prompts and alignment texts are well below this).
const MAX_TEXT_FIELD_BYTES: usize = 1 << 20;

/// Consumes the multipart body. `max_file_bytes` bounds the audio; fields are bounded too.
pub async fn read_upload(
    mut multipart: Multipart,
    spool_dir: &Path,
    max_file_bytes: u64,
) -> Result<Upload, ApiError> {
    let mut fields = FormFields::default();
    let mut file: Option<(tempfile::TempPath, u64, Option<String>)> = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        // A `file` part is audio when it has a filename (httpx sends `upload` for raw
        // bytes) or a non-text content type; a plain text `file` may be a URL (§2.1.2).
        let is_binary = field.file_name().is_some()
            || field
                .content_type()
                .is_some_and(|ct| !ct.starts_with("text/plain"));
        if name == "file" && is_binary && file.is_none() {
            let file_name = field.file_name().map(str::to_string);
            let (path, size) = spool_field(field, spool_dir, max_file_bytes).await?;
            file = Some((path, size, file_name));
        } else {
            let value = read_text_field(field, &name).await?;
            fields.push(name, value);
        }
    }
    let Some((file, size_bytes, file_name)) = file else {
        if let Some(value) = fields.get("file") {
            if value.starts_with("http://") || value.starts_with("https://") {
                return Err(url_not_supported());
            }
        }
        return Err(ApiError::invalid_param(
            "file",
            "missing `file`: send the audio as a multipart file part named `file`",
        ));
    };
    Ok(Upload {
        file,
        size_bytes,
        file_name,
        fields,
    })
}

/// The answer when a client asks the server to fetch audio by URL (PROTOCOL §2.1.2).
pub fn url_not_supported() -> ApiError {
    ApiError::invalid_param(
        "file",
        "fetching audio from a URL is not enabled on this server; upload the audio bytes instead",
    )
}

async fn spool_field(
    mut field: Field<'_>,
    spool_dir: &Path,
    max_bytes: u64,
) -> Result<(tempfile::TempPath, u64), ApiError> {
    let temp = tempfile::Builder::new()
        .prefix("ember-upload-")
        .tempfile_in(spool_dir)
        .map_err(|e| spool_error(spool_dir, e))?;
    let (std_file, path) = temp.into_parts();
    let mut out = tokio::fs::File::from_std(std_file);
    let mut size: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        size += chunk.len() as u64;
        if size > max_bytes {
            return Err(too_large(max_bytes));
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| spool_error(spool_dir, e))?;
    }
    out.flush().await.map_err(|e| spool_error(spool_dir, e))?;
    Ok((path, size))
}

async fn read_text_field(mut field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > MAX_TEXT_FIELD_BYTES {
            return Err(ApiError::invalid_param(
                name,
                format!("field `{name}` is longer than {MAX_TEXT_FIELD_BYTES} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn too_large(max_bytes: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the upload is larger than the limit of {max_bytes} bytes"),
    )
}

fn spool_error(dir: &Path, error: std::io::Error) -> ApiError {
    ApiError::internal(format!(
        "could not spool the upload to {}: {error}",
        dir.display()
    ))
}

/// Body-limit hits surface as multipart errors: those become 413, the rest 400.
fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge, error.body_text())
    } else {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("malformed multipart body: {}", error.body_text()),
        )
    }
}

/// The spool directory to use.
pub fn spool_dir(configured: Option<&PathBuf>) -> PathBuf {
    configured.cloned().unwrap_or_else(std::env::temp_dir)
}
