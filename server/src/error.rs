//! `ApiError`: the only type that knows HTTP. Every failure of every layer is turned into
//! the one error envelope of PROTOCOL §1.3 here, with `retry-after` on 429/503 and
//! `x-should-retry: false` on 5xx that would fail again (§1.4).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ember_dsp::DspError;
use ember_models::ModelError;
use ember_protocol::{ErrorBody, ErrorCode, FieldError};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<String>,
    /// Seconds the client should wait before retrying (429/503).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            retry_after_secs: match code {
                ErrorCode::Overloaded => Some(1),
                ErrorCode::NotReady => Some(5),
                _ => None,
            },
        }
    }

    /// A 400 naming the offending parameter.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        let mut error = Self::new(ErrorCode::InvalidRequest, message);
        error.param = Some(param.to_string());
        error
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The wire envelope of this error (also used inside SSE streams).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            message: self.message.clone(),
            param: self.param.clone(),
            code: self.code,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = self.code.as_str(), message = %self.message, "request failed");
        } else {
            tracing::info!(code = self.code.as_str(), message = %self.message, "request rejected");
        }
        let mut response = (status, axum::Json(self.body().to_json())).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after_secs {
            headers.insert("retry-after", HeaderValue::from(secs));
        }
        if status.is_server_error() && !self.code.retryable() {
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        response
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        Self::invalid_param(&error.param.clone(), error.message)
    }
}

impl From<DspError> for ApiError {
    fn from(error: DspError) -> Self {
        match error {
            DspError::Io(io) => Self::internal(format!("reading the upload failed: {io}")),
            DspError::TooLong { .. } => Self::invalid_param("file", error.to_string()),
            other => {
                let mut api = Self::new(ErrorCode::UnsupportedAudio, other.to_string());
                api.param = Some("file".into());
                api
            }
        }
    }
}

impl From<ModelError> for ApiError {
    fn from(error: ModelError) -> Self {
        let message = error.to_string();
        match error {
            ModelError::UnknownModel { .. } => {
                let mut api = Self::new(ErrorCode::NotFound, message);
                api.param = Some("model".into());
                api
            }
            ModelError::Unsupported(_) => Self::new(ErrorCode::InvalidRequest, message),
            ModelError::Overloaded(ember_models::SubmitError::Full { .. }) => {
                Self::new(ErrorCode::Overloaded, format!("{message}; retry later"))
            }
            ModelError::Overloaded(ember_models::SubmitError::Closed { .. }) => {
                Self::new(ErrorCode::NotReady, message)
            }
            ModelError::Cancelled => Self::new(ErrorCode::Timeout, message),
            ModelError::DeadlineExceeded => Self::new(ErrorCode::Timeout, message),
            ModelError::Load { .. } | ModelError::Inference(_) => Self::internal(message),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn overload_has_retry_after_and_429() {
        let response = ApiError::new(ErrorCode::Overloaded, "full").into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "1");
    }

    #[test]
    fn deterministic_server_errors_say_do_not_retry() {
        let response = ApiError::internal("decoder broke").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-should-retry"], "false");
    }

    #[test]
    fn audio_errors_are_400_on_file() {
        let api: ApiError = DspError::Empty.into();
        assert_eq!(api.code.status(), 400);
        assert_eq!(api.param.as_deref(), Some("file"));
    }
}
