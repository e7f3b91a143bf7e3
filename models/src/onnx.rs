//! The process-wide ONNX Runtime: loading the shared library once, the one environment every
//! ONNX model (Silero VAD, the CTC aligner, embeddings, …) creates its sessions in, and the
//! session settings they share (DESIGN §2: `ort` with `load-dynamic`, library from the
//! `onnxruntime` wheel).
//!
//! Call [`init`] (or [`init_from_manifest`]) once at startup; sessions are then built with
//! [`session`]. Sessions default to one intra-op and one inter-op thread: on a small
//! machine one thread per session beats more (DESIGN §3), and parallelism comes from
//! running several sessions, each owned by one thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::session::builder::SessionBuilder;
use ort::session::Session;

use crate::error::ModelError;
use crate::packages::ModelKind;
use crate::provision::Manifest;

/// Manifest id of the runtime library.
const RUNTIME_ID: &str = "onnxruntime";

struct Runtime {
    /// Kept alive for the whole process: `ort` only holds a weak reference to it.
    environment: Environment,
    library: PathBuf,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serialises first-time initialisation (`OnceLock::get_or_try_init` is unstable).
static INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime from `library` (e.g. `libonnxruntime.so.1.31.1`) and creates the
/// process environment. Idempotent: later calls return `Ok` without loading anything (a
/// different path is ignored with a warning: a process can hold one runtime only).
pub fn init(library: &Path) -> Result<(), ModelError> {
    if let Some(runtime) = RUNTIME.get() {
        warn_if_other(runtime, library);
        return Ok(());
    }
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = RUNTIME.get() {
        warn_if_other(runtime, library);
        return Ok(());
    }
    let load_error = |detail: String| ModelError::Load {
        id: RUNTIME_ID.to_string(),
        path: library.display().to_string(),
        detail,
    };
    // `ort` resolves relative paths against the executable's directory (and panics if it
    // has none); resolve against the working directory like every other path we take.
    let absolute = std::path::absolute(library).map_err(|e| load_error(e.to_string()))?;
    if !absolute.is_file() {
        return Err(load_error(
            "no such file; run `ember models install` to fetch ONNX Runtime".to_string(),
        ));
    }
    let environment = ort::init_from(&absolute)
        .map_err(|e| load_error(e.to_string()))?
        .with_name("ember")
        .with_telemetry(false)
        .with_logger(Arc::new(log_to_tracing))
        .build()
        .map_err(|e| load_error(format!("creating the ONNX Runtime environment: {e}")))?;
    // A custom logger starts at verbose; the callback costs a string per message.
    environment.set_log_level(LogLevel::Warning);
    tracing::info!(library = %absolute.display(), "ONNX Runtime loaded");
    // Cannot fail: we hold the init lock and checked above.
    let _ = RUNTIME.set(Runtime {
        environment,
        library: absolute,
    });
    Ok(())
}

/// [`init`] with the `onnxruntime` library a models directory's manifest lists.
pub fn init_from_manifest(manifest: &Manifest) -> Result<(), ModelError> {
    let runtime = manifest
        .first_of(ModelKind::Runtime)
        .ok_or_else(|| ModelError::Load {
            id: RUNTIME_ID.to_string(),
            path: String::new(),
            detail: "ONNX Runtime is not installed; run `ember models install`".to_string(),
        })?;
    init(&runtime.path)
}

/// Whether [`init`] has succeeded in this process.
pub fn is_initialized() -> bool {
    RUNTIME.get().is_some()
}

/// The library the runtime was loaded from, once initialised.
pub fn library() -> Option<&'static Path> {
    RUNTIME.get().map(|r| r.library.as_path())
}

fn warn_if_other(runtime: &Runtime, requested: &Path) {
    let same = std::path::absolute(requested).is_ok_and(|p| p == runtime.library);
    if !same {
        tracing::warn!(
            loaded = %runtime.library.display(),
            requested = %requested.display(),
            "ONNX Runtime is already loaded; keeping the first library"
        );
    }
}

fn log_to_tracing(level: LogLevel, category: &str, id: &str, location: &str, message: &str) {
    match level {
        LogLevel::Verbose | LogLevel::Info => {
            tracing::debug!(target: "onnxruntime", category, id, location, "{message}")
        }
        LogLevel::Warning => {
            tracing::warn!(target: "onnxruntime", category, id, location, "{message}")
        }
        LogLevel::Error | LogLevel::Fatal => {
            tracing::error!(target: "onnxruntime", category, id, location, "{message}")
        }
    }
}

/// Threading of one ONNX session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Threads inside one operator (matrix products). Default 1.
    pub intra_threads: usize,
    /// Threads running independent graph branches. Default 1 (our graphs are sequential).
    pub inter_threads: usize,
    /// Let idle intra-op threads busy-wait for the next operator. Default off: spinning
    /// threads steal the cores the other workers need (DESIGN §3).
    pub spinning: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            intra_threads: 1,
            inter_threads: 1,
            spinning: false,
        }
    }
}

/// Opens an ONNX model in the process environment. `id` names the model in errors.
pub fn session(id: &str, model: &Path, config: &SessionConfig) -> Result<Session, ModelError> {
    let load_error = |detail: String| ModelError::Load {
        id: id.to_string(),
        path: model.display().to_string(),
        detail,
    };
    let mut builder = builder(config).map_err(|e| match e {
        ModelError::Load { detail, .. } => load_error(detail),
        other => other,
    })?;
    if !model.is_file() {
        return Err(load_error(
            "no such file; run `ember models install`".to_string(),
        ));
    }
    builder
        .commit_from_file(model)
        .map_err(|e| load_error(e.to_string()))
}

/// A session builder in the process environment with `config` applied, for models that
/// need more options than [`session`] sets (finish it with `commit_from_file`).
pub fn builder(config: &SessionConfig) -> Result<SessionBuilder, ModelError> {
    let runtime_error = |detail: String| ModelError::Load {
        id: RUNTIME_ID.to_string(),
        path: library()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        detail,
    };
    let runtime = RUNTIME.get().ok_or_else(|| {
        runtime_error(
            "ONNX Runtime is not loaded (call `ember_models::onnx::init` with the library first)"
                .to_string(),
        )
    })?;
    let ort = |e: ort::Error<SessionBuilder>| runtime_error(e.to_string());
    Session::builder(&runtime.environment)
        .map_err(|e| runtime_error(e.to_string()))?
        .with_intra_threads(config.intra_threads.max(1))
        .map_err(ort)?
        .with_inter_threads(config.inter_threads.max(1))
        .map_err(ort)?
        .with_intra_op_spinning(config.spinning)
        .map_err(ort)?
        .with_inter_op_spinning(config.spinning)
        .map_err(ort)
}

/// `name: type` of each input and output, for error messages about unexpected models.
pub fn describe(session: &Session) -> String {
    let list = |outlets: &[ort::value::Outlet]| {
        outlets
            .iter()
            .map(|o| format!("{}: {}", o.name(), o.dtype()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "inputs [{}], outputs [{}]",
        list(session.inputs()),
        list(session.outputs())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_need_the_runtime_and_bad_libraries_are_errors() {
        // Once another test has loaded the runtime, `init` is a no-op that keeps it.
        match init(Path::new("/nonexistent/libonnxruntime.so")) {
            Err(err) => assert!(err.to_string().contains("ember models install"), "{err}"),
            Ok(()) => assert!(is_initialized()),
        }
        if !is_initialized() {
            let err = session(
                "x",
                Path::new("/nonexistent.onnx"),
                &SessionConfig::default(),
            )
            .expect_err("must fail");
            assert!(err.to_string().contains("not loaded"), "{err}");
        }
    }
}
