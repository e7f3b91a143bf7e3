//! HTTP routes. Handlers stay thin; the pipeline does the work.

pub mod alignments;
pub mod audio;
pub mod chat;
pub mod embeddings;
pub mod images;
pub mod meta;
pub mod page;
pub mod vad;
