//! ember-protocol: the wire types of Ember and nothing else (DESIGN §1).
//!
//! Lenient form parsing (PROTOCOL §2.1), typed batch requests, the `Transcript` model
//! with integer-ms times, the json/text/srt/vtt/verbose_json renderers (PROTOCOL §2.3),
//! OpenAI SSE events (PROTOCOL §2.5) and the error-code table with the error envelope
//! (PROTOCOL §1.3). No I/O, no HTTP types: the server maps these onto axum.

pub mod base64;
pub mod chat;
pub mod embeddings;
pub mod error;
pub mod form;
pub mod language;
pub mod prompt_schema;
pub mod realtime;
pub mod render;
pub mod request;
pub mod sse;
pub mod stream;
pub mod tool_stream;
pub mod transcript;

pub use error::{ErrorBody, ErrorCode, FieldError};
pub use form::FormFields;
pub use language::{language_code, language_name, parse_language};
pub use render::{render, RenderOptions, Rendered, CONTENT_TYPE_JSON, CONTENT_TYPE_TEXT};
pub use request::{
    AlignmentModel, AudioRequest, Granularities, Preprocessing, ResponseFormat, Task, VadModel,
};
pub use sse::{delta_event, done_event, error_event, CONTENT_TYPE_SSE};
pub use transcript::{Segment, Transcript, Word};
