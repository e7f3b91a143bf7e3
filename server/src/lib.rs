//! The Ember server: configuration, the axum app, handlers, the pipeline shared by HTTP
//! and the CLI, and the one HTTP error type.

pub mod align;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod json;
pub mod longform;
pub mod metrics;
pub mod pipeline;
pub mod prepare;
pub mod routes;
pub mod serve;
pub mod state;
pub mod stream;
pub mod telemetry;
pub mod transcript;
pub mod upload;

pub use app::app;
pub use state::{AppState, Limits};
