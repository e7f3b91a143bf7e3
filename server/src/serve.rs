//! `ember serve`: bind, load models in the background (so `/health` answers 503 until
//! ready), serve until SIGTERM/Ctrl-C, then drain in-flight requests.

use std::net::SocketAddr;

use anyhow::Context;

use crate::auth::ApiKeys;
use crate::config::ServeArgs;
use crate::engine::load_models;
use crate::state::{AppState, Limits};

/// Runs the server on a fresh multi-threaded runtime until shutdown.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ember-http")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing::info!(config = ?redacted(&args), "effective configuration");
    let keys = ApiKeys::new(&args.api_keys);
    if keys.is_open() {
        tracing::warn!(
            "EMBER_API_KEYS is not set: the server accepts requests WITHOUT authentication"
        );
    }
    let state = AppState::new(Limits::from_args(&args), keys, args.decode_concurrency)
        .with_stream_config(args.stream.to_config());
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "listening");
    println!("ember listening on http://{local}");

    let loading_state = state.clone();
    let asr = args.asr.clone();
    let loader = tokio::task::spawn_blocking(move || load_models(&asr));
    tokio::spawn(async move {
        match loader.await {
            Ok(Ok(models)) => {
                loading_state.set_models(models);
                tracing::info!("models loaded; ready");
            }
            Ok(Err(error)) => {
                tracing::error!(error = %format!("{error:#}"), "could not load models; the server stays unhealthy (503). Run `ember models install`");
            }
            Err(error) => tracing::error!(%error, "model loading task failed"),
        }
    });

    let streams = state.streams.clone();
    let grace = std::time::Duration::from_secs(args.stream.shutdown_grace_secs);
    let (streams_done_tx, streams_done_rx) = tokio::sync::oneshot::channel::<()>();
    let stream_shutdown = {
        let streams = streams.clone();
        async move {
            shutdown_signal().await;
            // Live sockets are not drained by axum: flush them and close with 1001 first.
            streams.shutdown(grace).await;
            let _ = streams_done_tx.send(());
        }
    };
    axum::serve(listener, crate::app(state))
        .with_graceful_shutdown(stream_shutdown)
        .await
        .context("serving HTTP")?;
    let _ = streams_done_rx.await;
    tracing::info!("shut down");
    Ok(())
}

/// The config as logged: API keys are replaced by their count.
fn redacted(args: &ServeArgs) -> ServeArgs {
    let mut shown = args.clone();
    shown.api_keys = vec![format!("<{} keys>", args.api_keys.len())];
    shown
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining requests");
}
