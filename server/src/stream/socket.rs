//! The WebSocket side of a live session, for any dialect: a receive loop (frames →
//! [`SessionInput`]s, idle timeout, frame limit), the processing loop, and a send loop
//! (outputs → frames, pings). The three live and die together: whichever ends first
//! stops the others, and a client that disconnects cancels its decodes at once.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::session::{process_loop, SessionInput, SessionOutput};
use super::SessionCore;
use crate::metrics;
use crate::state::AppState;

/// Close codes (PROTOCOL §3.5).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
}

/// Inputs buffered between the socket and the processing loop; when full the receive
/// loop stops reading, which back-pressures a client sending faster than real time.
const INPUT_QUEUE: usize = 64;
const OUTPUT_QUEUE: usize = 64;

/// The receiving half of a dialect: client frames to session inputs.
pub trait Inbound: Send + 'static {
    /// A binary frame; `Err` closes the session with that code and reason.
    fn binary(&mut self, data: &[u8]) -> Result<Vec<SessionInput>, (u16, String)>;
    /// A text frame.
    fn text(&mut self, text: &str) -> Result<Vec<SessionInput>, (u16, String)>;
}

/// The sending half of a dialect: session outputs to text frames.
pub trait Outbound: Send + 'static {
    fn render(&mut self, output: SessionOutput) -> Vec<String>;
}

/// Everything a session needs besides the socket.
pub struct SessionParts<I, O> {
    pub inbound: I,
    pub outbound: O,
    pub core: SessionCore,
    /// Frames sent right after the upgrade (OpenAI `session.created`).
    pub greeting: Vec<String>,
}

/// Completes the upgrade and runs the session on the hub's tracker (so shutdown waits
/// for it). The socket's own limit sits above the configured frame limit (×4, which
/// also covers base64 audio), so an oversized frame gets our 1009 close, not a transport
/// error.
pub fn start_session<I: Inbound, O: Outbound>(
    upgrade: WebSocketUpgrade,
    state: AppState,
    parts: SessionParts<I, O>,
) -> Response {
    let limit = state.streams.config().max_frame_bytes.saturating_mul(4);
    let hub = state.streams.clone();
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            hub.spawn(run_session(socket, state, parts));
        })
}

/// Runs a session to its end on an upgraded socket.
pub async fn run_session<I: Inbound, O: Outbound>(
    socket: WebSocket,
    state: AppState,
    parts: SessionParts<I, O>,
) {
    let SessionParts {
        mut inbound,
        mut outbound,
        core:
            SessionCore {
                recognizer,
                endpointer,
                settings,
                permit,
            },
        greeting,
    } = parts;
    let _permit = permit;
    let hub = state.streams.clone();
    let config = hub.config().clone();
    ::metrics::gauge!(metrics::STREAM_SESSIONS).increment(1.0);
    let (mut sink, mut stream) = socket.split();
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let (output_tx, mut output_rx) = mpsc::channel(OUTPUT_QUEUE);
    let stop = CancellationToken::new();
    let shutdown = hub.shutdown_token();

    let process = {
        let stop = stop.clone();
        let state = state.clone();
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                () = process_loop(state, settings, recognizer, endpointer, input_rx, output_tx, shutdown) => {}
                () = stop.cancelled() => {}
            }
            stop.cancel();
        }
    };

    let receive = {
        let stop = stop.clone();
        let idle = config.idle_timeout;
        let max_frame = config.max_frame_bytes;
        async move {
            let outcome =
                receive_loop(&mut stream, &mut inbound, &input_tx, idle, max_frame, &stop).await;
            // Input is over: a clean close ends the session now (pending work is dropped,
            // PROTOCOL §3.5); a protocol violation is reported by the send loop.
            stop.cancel();
            outcome
        }
    };

    let send = {
        let ping = config.ping_interval;
        async move {
            for frame in greeting {
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    return None;
                }
            }
            let mut ticker = tokio::time::interval(ping);
            ticker.tick().await;
            let mut fatal = None;
            loop {
                tokio::select! {
                    output = output_rx.recv() => {
                        let Some(output) = output else { break };
                        if let SessionOutput::Fatal(message) = &output {
                            fatal = Some(message.clone());
                        }
                        for frame in outbound.render(output) {
                            if sink.send(Message::Text(frame.into())).await.is_err() {
                                return None;
                            }
                        }
                        if fatal.is_some() {
                            break;
                        }
                    }
                    _ = ticker.tick() => {
                        if sink.send(Message::Ping(Default::default())).await.is_err() {
                            return None;
                        }
                    }
                }
            }
            Some((sink, fatal))
        }
    };

    let (received, (), sent) = tokio::join!(receive, process, send);
    ::metrics::gauge!(metrics::STREAM_SESSIONS).decrement(1.0);
    let Some((mut sink, fatal)) = sent else {
        return;
    };
    let close_frame = match (received, fatal) {
        (ReceiveEnd::Violation(code, reason), _) => Some((code, reason)),
        (_, Some(_)) => Some((close::INTERNAL, "internal error".to_string())),
        (ReceiveEnd::Idle, _) => Some((close::GOING_AWAY, "idle timeout".to_string())),
        (ReceiveEnd::Stopped, None) if shutdown.is_cancelled() => {
            Some((close::GOING_AWAY, "server shutting down".to_string()))
        }
        (ReceiveEnd::ClientClosed, _) | (ReceiveEnd::Stopped, None) => None,
    };
    if let Some((code, reason)) = close_frame {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from(reason),
            })))
            .await;
    }
    let _ = sink.close().await;
}

/// Why the receive loop ended.
enum ReceiveEnd {
    /// Close frame, end of stream or a transport error.
    ClientClosed,
    /// No frame within the idle timeout.
    Idle,
    /// A frame broke a rule (too large): close with this code.
    Violation(u16, String),
    /// The session ended from the other side (shutdown, fatal error).
    Stopped,
}

async fn receive_loop<I: Inbound>(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    inbound: &mut I,
    inputs: &mpsc::Sender<SessionInput>,
    idle: Duration,
    max_frame: usize,
    stop: &CancellationToken,
) -> ReceiveEnd {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return ReceiveEnd::Stopped,
            next = tokio::time::timeout(idle, stream.next()) => match next {
                Err(_) => return ReceiveEnd::Idle,
                Ok(None) => return ReceiveEnd::ClientClosed,
                Ok(Some(Err(error))) => {
                    let text = error.to_string();
                    tracing::debug!(error = %text, "stream receive error");
                    if text.contains("too long") || text.contains("Space limit") {
                        return ReceiveEnd::Violation(close::TOO_BIG, format!("frame larger than {max_frame} bytes"));
                    }
                    return ReceiveEnd::ClientClosed;
                }
                Ok(Some(Ok(message))) => message,
            }
        };
        let converted = match message {
            Message::Binary(data) if data.len() > max_frame => {
                return ReceiveEnd::Violation(
                    close::TOO_BIG,
                    format!("frame of {} bytes is larger than {max_frame}", data.len()),
                )
            }
            Message::Binary(data) => inbound.binary(&data),
            Message::Text(text) if text.len() > max_frame => {
                return ReceiveEnd::Violation(
                    close::TOO_BIG,
                    format!("frame of {} bytes is larger than {max_frame}", text.len()),
                )
            }
            Message::Text(text) => inbound.text(text.as_str()),
            Message::Close(_) => return ReceiveEnd::ClientClosed,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        match converted {
            Ok(inputs_for_frame) => {
                for input in inputs_for_frame {
                    let sent = tokio::select! {
                        () = stop.cancelled() => return ReceiveEnd::Stopped,
                        sent = inputs.send(input) => sent,
                    };
                    if sent.is_err() {
                        return ReceiveEnd::Stopped;
                    }
                }
            }
            Err((code, reason)) => return ReceiveEnd::Violation(code, reason),
        }
    }
}
