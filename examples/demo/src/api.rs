//! API errors: a status code and a message, rendered as `{"error": "..."}`.

use gluebind::Error;

/// An error answer of the demo API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Human-readable message (the JSON `error` field).
    pub message: String,
}

impl ApiError {
    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// Any status with `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message })
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match &error {
            Error::Unique { column, .. } if column == "email" => {
                Self::new(409, "email already registered")
            }
            // 409 for the other conflicts, 404 for the model layer's NOT_FOUND, else 500.
            _ => Self::new(error.http_status(), error.to_string()),
        }
    }
}
