//! Live streaming over WebSockets with a real client (tokio-tungstenite): the Fireworks
//! dialect of PROTOCOL §3 and the OpenAI realtime session of §4, on real clips.
//!
//! Every transcription message is checked against the protocol invariants (integer
//! ascending ids, never-empty segments, final segments that never change, finals before
//! partials); transcripts are compared by WER with the batch endpoint on the same audio.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use crate::audio::{load, silence, wav_form};
use crate::support::{
    data, json as parse_json, manifest, post, server, start, ServerSpec, TestServer,
};
use crate::wer::{errors, wer};

const CHUNK: usize = 800; // 50 ms, what the cookbook and LiveKit send
const WAIT: Duration = Duration::from_secs(120);

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// A connected client: a sink and the frames received so far, read by a task.
struct Client {
    sink: Sink,
    frames: mpsc::UnboundedReceiver<Message>,
}

fn ws_url(server: &TestServer, path_and_query: &str) -> String {
    format!("{}{path_and_query}", server.url.replacen("http", "ws", 1))
}

async fn connect_with(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            value.parse().expect("header value"),
        );
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    let (sink, mut stream) = socket.split();
    let (tx, frames) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            if tx.send(message).is_err() {
                break;
            }
        }
    });
    Ok(Client { sink, frames })
}

async fn connect(server: &TestServer, query: &str) -> Client {
    connect_with(
        &ws_url(
            server,
            &format!("/v1/audio/transcriptions/streaming?{query}"),
        ),
        &[("authorization", "anything")],
    )
    .await
    .expect("connect")
}

fn pcm(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32_767.0) as i16).to_le_bytes())
        .collect()
}

impl Client {
    /// Sends audio in 50 ms frames, in real time when `paced`.
    async fn send_audio(&mut self, samples: &[f32], paced: bool) {
        let started = Instant::now();
        for (i, chunk) in samples.chunks(CHUNK).enumerate() {
            self.sink
                .send(Message::binary(pcm(chunk)))
                .await
                .expect("send audio");
            if paced {
                let due = started + Duration::from_millis(50 * (i as u64 + 1));
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }

    async fn send_json(&mut self, value: Value) {
        self.sink
            .send(Message::text(value.to_string()))
            .await
            .expect("send control");
    }

    /// Sends `{"checkpoint_id": id}`; the frames up to and including its reply.
    async fn checkpoint(&mut self, id: &str) -> Vec<Value> {
        self.send_json(json!({ "checkpoint_id": id })).await;
        self.until(|v| is_reply(v, "checkpoint_id", id)).await
    }

    /// Text frames (parsed) until one satisfies `done`, which is included.
    async fn until(&mut self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, self.frames.recv())
                .await
                .unwrap_or_else(|_| panic!("no matching frame within {WAIT:?}; got {got:?}"))
                .unwrap_or_else(|| panic!("socket closed; got {got:?}"));
            if let Message::Text(text) = message {
                let value = parse_json(text.as_str());
                let stop = done(&value);
                got.push(value);
                if stop {
                    return got;
                }
            }
        }
    }

    /// The close frame's code (after any other frames).
    async fn close_code(&mut self) -> Option<CloseCode> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.frames.recv()).await {
                Ok(Some(Message::Close(frame))) => return frame.map(|f| f.code),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

/// 16 kHz → 24 kHz by linear interpolation (the client side of the realtime test; the
/// server resamples properly).
fn upsample_3_2(samples: &[f32]) -> Vec<f32> {
    let out_len = samples.len() * 3 / 2;
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * 2.0 / 3.0;
            let j = pos as usize;
            let frac = (pos - j as f64) as f32;
            let a = samples[j.min(samples.len() - 1)];
            let b = samples[(j + 1).min(samples.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

/// The last transcription update among `frames`.
fn last_update(frames: &[Value]) -> Option<&Value> {
    frames.iter().rev().find(|f| f.get("segments").is_some())
}

/// The segment ids of an update.
fn segment_ids(update: &Value) -> Vec<u64> {
    update["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter_map(|s| s["id"].as_u64())
        .collect()
}

fn is_reply(value: &Value, key: &str, id: &str) -> bool {
    value.get(key).and_then(Value::as_str) == Some(id) && value.get("segments").is_none()
}

/// Checks PROTOCOL §3.4 on every update in order; returns the text of the last one.
#[derive(Default)]
struct UpdateChecker {
    finals: HashMap<u64, Value>,
    updates: usize,
    last_text: String,
}

impl UpdateChecker {
    fn check(&mut self, frames: &[Value]) {
        for frame in frames.iter().filter(|f| f.get("segments").is_some()) {
            self.updates += 1;
            assert_eq!(frame["task"], "transcribe", "{frame}");
            assert!(frame["language"].is_string(), "{frame}");
            let segments = frame["segments"].as_array().expect("segments array");
            assert!(!segments.is_empty(), "empty segments: {frame}");
            let mut previous: Option<u64> = None;
            let mut texts = Vec::new();
            for segment in segments {
                let id = segment["id"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("id not an integer: {segment}"));
                assert!(
                    previous.is_none_or(|p| id > p),
                    "ids not ascending: {frame}"
                );
                previous = Some(id);
                let words = segment["words"].as_array().expect("words");
                let mut seen_partial = false;
                for word in words {
                    let is_final = word["is_final"].as_bool().expect("is_final");
                    assert!(
                        !(is_final && seen_partial),
                        "final word after a partial: {segment}"
                    );
                    seen_partial |= !is_final;
                    let text = word["word"].as_str().expect("word");
                    assert!(!text.starts_with(' '), "leading space: {text:?}");
                }
                if !words.is_empty() && !seen_partial {
                    if let Some(before) = self.finals.get(&id) {
                        assert_eq!(before, segment, "a final segment changed");
                    }
                    self.finals.insert(id, segment.clone());
                }
                texts.push(segment["text"].as_str().expect("text").to_string());
            }
            assert_eq!(
                frame["text"].as_str(),
                Some(texts.join(" ").trim()),
                "{frame}"
            );
            self.last_text = frame["text"].as_str().unwrap_or_default().to_string();
        }
    }
}

/// Streams `samples` + 1 s of silence, sends `final`, checks every update; returns the
/// final transcript.
async fn stream_clip(server: &TestServer, query: &str, samples: &[f32], paced: bool) -> String {
    let mut client = connect(server, query).await;
    let mut audio = samples.to_vec();
    audio.extend(silence(1.0));
    client.send_audio(&audio, paced).await;
    let frames = client.checkpoint("final").await;
    let mut checker = UpdateChecker::default();
    checker.check(&frames);
    if let Some(last) = last_update(&frames) {
        for word in last["words"].as_array().expect("words") {
            assert_eq!(word["is_final"], true, "not final after `final`: {last}");
        }
    }
    checker.last_text
}

/// Every English clip, sent as fast as possible through tiny.en: WER within 2 points of
/// the batch endpoint (beam 5) on the same audio.
#[tokio::test]
async fn english_clips_stream_as_well_as_batch() {
    let server = server();
    let (mut stream_errors, mut batch_errors, mut words) = (0, 0, 0);
    for clip in manifest()
        .iter()
        .filter(|c| c.lang.as_deref() == Some("en"))
    {
        let samples = load(&data(&clip.audio));
        let streamed = stream_clip(server, "model=tiny.en&language=en", &samples, false).await;
        let (status, _, body) = post(
            server,
            "/v1/audio/transcriptions",
            wav_form(&samples, &[("model", "tiny.en"), ("language", "en")]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let batch = parse_json(&body)["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (se, n) = errors(&clip.transcript, &streamed);
        let (be, _) = errors(&clip.transcript, &batch);
        println!(
            "stream {se:>3} batch {be:>3} / {n:>3}  {}  | {streamed}",
            clip.audio
        );
        stream_errors += se;
        batch_errors += be;
        words += n;
    }
    let stream_wer = stream_errors as f64 / words as f64;
    let batch_wer = batch_errors as f64 / words as f64;
    println!(
        "stream WER {:.2}% batch WER {:.2}% over {words} words",
        stream_wer * 100.0,
        batch_wer * 100.0
    );
    assert!(
        stream_wer <= batch_wer + 0.02,
        "stream {stream_wer:.3} vs batch {batch_wer:.3}"
    );
}

/// Real-time pacing with timestamps asked for: partials come before the end, finals
/// never change, word times are inside the audio and ascending.
#[tokio::test]
async fn real_time_stream_with_timestamps() {
    let server = server();
    let clip = load(&data("jfk/jfk.wav"));
    let mut client = connect(
        server,
        "model=tiny.en&language=en-US&timestamp_granularities=word&timestamp_granularities=segment",
    )
    .await;
    let mut audio = clip.clone();
    audio.extend(silence(1.5));
    client.send_audio(&audio, true).await;
    client
        .send_json(json!({"event_id": "e1", "object": "stt.input.trace", "trace_id": "final"}))
        .await;
    let frames = client.until(|v| v["object"] == "stt.output.trace").await;
    let reply = frames.last().expect("reply");
    assert_eq!(reply["trace_id"], "final");
    assert_eq!(reply["event_id"], "e1");
    let mut checker = UpdateChecker::default();
    checker.check(&frames);
    assert!(
        checker.updates >= 3,
        "expected partial updates while speaking, got {}",
        checker.updates
    );
    let partials = frames
        .iter()
        .filter(|f| {
            f["words"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w["is_final"] == false))
        })
        .count();
    assert!(partials >= 1, "no partial hypothesis was sent");
    let reference = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
    assert!(
        wer(reference, &checker.last_text) <= 0.15,
        "{}",
        checker.last_text
    );
    let last = last_update(&frames).expect("an update");
    let duration = audio.len() as f64 / 16_000.0;
    let mut previous_start = 0.0;
    for word in last["words"].as_array().expect("words") {
        let (start, end) = (
            word["start"].as_f64().expect("start"),
            word["end"].as_f64().expect("end"),
        );
        assert!(
            start >= previous_start - 0.01 && start <= end && end <= duration,
            "{word}"
        );
        previous_start = start;
    }
    for segment in last["segments"].as_array().expect("segments") {
        assert!(
            segment["start"].is_f64() && segment["end"].is_f64(),
            "{segment}"
        );
    }
    // Final words are re-timed by the English aligner: compare with the silver timings
    // (tdnn_ffn measured 34 ms on this clip in batch, Whisper token times 176 ms).
    let silver = std::fs::read_to_string(data("jfk/jfk.words.pocketsphinx.tsv")).expect("tsv");
    let reference: Vec<(f64, f64)> = silver
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut parts = l.split('\t');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect();
    let words = last["words"].as_array().expect("words");
    if words.len() == reference.len() {
        let errors: Vec<f64> = words
            .iter()
            .zip(&reference)
            .flat_map(|(w, r)| {
                let start = w["start"].as_f64().unwrap_or(0.0);
                let end = w["end"].as_f64().unwrap_or(0.0);
                [(start - r.0).abs(), (end - r.1).abs()]
            })
            .collect();
        let mae_ms = errors.iter().sum::<f64>() / errors.len() as f64 * 1000.0;
        eprintln!("stream final word times vs silver: MAE {mae_ms:.1} ms");
        assert!(mae_ms <= 90.0, "stream word MAE {mae_ms:.1} ms");
    } else {
        eprintln!(
            "stream heard {} words, not {}: times not compared",
            words.len(),
            reference.len()
        );
    }
}

/// A checkpoint sent right after speech (no silence yet, so no endpoint) is answered only
/// after an update that covers all the audio before it (PROTOCOL §3.5 barrier).
#[tokio::test]
async fn checkpoint_waits_for_earlier_audio() {
    let server = server();
    let clip = load(&data("jfk/jfk.wav"));
    let mut client = connect(server, "model=tiny.en&language=en").await;
    client.send_audio(&clip, false).await;
    let frames = client.checkpoint("probe-1").await;
    let covering = last_update(&frames).expect("an update before the checkpoint reply");
    let text = covering["text"].as_str().unwrap_or_default();
    assert!(
        text.to_lowercase().contains("country"),
        "the update before the reply does not cover the end of the audio: {text}"
    );
    // The same context continues after a non-final checkpoint and after `final`.
    let frames = client.checkpoint("final").await;
    let ids_before = last_update(&frames).map(segment_ids).unwrap_or_default();
    client.send_audio(&clip, false).await;
    let frames = client.checkpoint("final").await;
    let last = last_update(&frames).expect("update");
    let max_id = segment_ids(last).into_iter().max();
    assert!(
        max_id > ids_before.iter().copied().max(),
        "no new segment after more audio: {last}"
    );
}

/// `stt.state.clear` drops the context: later updates carry only new segments, with ids
/// that keep increasing (PROTOCOL §3.4 rule 3).
#[tokio::test]
async fn clear_resets_the_context() {
    let server = server();
    let clip = load(&data("jfk/jfk.wav"));
    let mut client = connect(server, "model=tiny.en&language=en").await;
    client.send_audio(&clip, false).await;
    let frames = client.checkpoint("final").await;
    let first_max = frames
        .iter()
        .filter_map(|f| f["segments"].as_array())
        .flatten()
        .filter_map(|s| s["id"].as_u64())
        .max()
        .expect("segments before clear");
    client
        .send_json(json!({"event_id": "c1", "object": "stt.state.clear", "reset_id": "r1"}))
        .await;
    let cleared = client.until(|v| v["object"] == "stt.state.cleared").await;
    assert_eq!(cleared.last().expect("reply")["reset_id"], "r1");
    let other = load(&data("cmu_arctic_slt_a0009/arctic_a0009.wav"));
    client.send_audio(&other, false).await;
    client.send_audio(&silence(1.0), false).await;
    let frames = client.checkpoint("final").await;
    let last = last_update(&frames).expect("update");
    for segment in last["segments"].as_array().expect("segments") {
        assert!(
            segment["id"].as_u64().expect("id") > first_max,
            "old segment after clear: {last}"
        );
    }
    assert!(
        !last["text"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("country"),
        "{last}"
    );
}

/// PROTOCOL §3.6: odd-length and empty frames, junk text frames, oversized frames.
#[tokio::test]
async fn bad_frames_are_handled() {
    let server = server();
    let clip = load(&data("jfk/jfk.wav"));
    let mut client = connect(
        server,
        "model=tiny.en&language=en&vad_kwargs=threshold&skip_vad=False",
    )
    .await;
    let bytes = pcm(&clip);
    client
        .sink
        .send(Message::text("not json"))
        .await
        .expect("junk");
    client
        .sink
        .send(Message::text(r#"{"object":"stt.unknown"}"#))
        .await
        .expect("unknown");
    client
        .sink
        .send(Message::binary(Vec::<u8>::new()))
        .await
        .expect("empty");
    for chunk in bytes.chunks(1601) {
        client
            .sink
            .send(Message::binary(chunk.to_vec()))
            .await
            .expect("odd chunk");
    }
    client.send_audio(&silence(1.0), false).await;
    let frames = client.checkpoint("final").await;
    let mut checker = UpdateChecker::default();
    checker.check(&frames);
    let reference = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
    assert!(
        wer(reference, &checker.last_text) <= 0.15,
        "odd frames garbled the audio: {}",
        checker.last_text
    );
    assert!(
        frames.iter().all(|f| f.get("error").is_none()),
        "{frames:?}"
    );

    let mut big = connect(server, "").await;
    big.sink
        .send(Message::binary(vec![0u8; (1 << 20) + 2]))
        .await
        .expect("big frame");
    assert_eq!(big.close_code().await, Some(CloseCode::Size));
}

/// Refusals happen before the upgrade, as HTTP errors with the JSON body.
#[tokio::test]
async fn upgrade_refusals_are_http_errors() {
    let keyed = start(ServerSpec {
        api_keys: vec!["secret".into()],
        default_model: "tiny.en",
        max_streams: 1,
        ..ServerSpec::default()
    });
    let url = ws_url(&keyed, "/v1/audio/transcriptions/streaming");
    match connect_with(&url, &[]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
            let body =
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains("\"error\""), "{body}");
        }
        other => panic!("expected 401, got {:?}", other.map(|_| "connected")),
    }
    // Query-parameter auth (browsers), with `Bearer `.
    let mut first = connect_with(&format!("{url}?Authorization=Bearer%20secret"), &[])
        .await
        .expect("query auth");
    match connect_with(&url, &[("authorization", "secret")]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429, "second stream over the limit of 1")
        }
        other => panic!("expected 429, got {:?}", other.map(|_| "connected")),
    }
    // A client that disconnects frees its slot at once.
    first.send_audio(&load(&data("jfk/jfk.wav")), false).await;
    first.sink.close().await.expect("close");
    drop(first);
    let freed = Instant::now();
    loop {
        match connect_with(&url, &[("authorization", "secret")]).await {
            Ok(_) => break,
            Err(_) if freed.elapsed() < Duration::from_secs(1) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("slot not freed within 1 s of the disconnect: {e}"),
        }
    }
    // A plain GET is told to upgrade, in JSON.
    let response = reqwest::Client::new()
        .get(format!("{}/v1/audio/transcriptions/streaming", keyed.url))
        .header("authorization", "secret")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 400);
    assert!(response.text().await.expect("body").contains("WebSocket"));
}

/// Server shutdown flushes what was said as final words and closes with 1001.
#[tokio::test]
async fn shutdown_flushes_finals_and_closes_going_away() {
    let server = start(ServerSpec {
        default_model: "tiny.en",
        ..ServerSpec::default()
    });
    let mut client = connect(&server, "language=en").await;
    client.send_audio(&load(&data("jfk/jfk.wav")), false).await;
    // Let the session take the audio in before shutting down.
    client.checkpoint("in").await;
    let streams = server.streams.clone();
    let shutdown = tokio::spawn(async move { streams.shutdown(Duration::from_secs(60)).await });
    let mut last_update = None;
    loop {
        match tokio::time::timeout(WAIT, client.frames.recv())
            .await
            .expect("frames")
        {
            Some(Message::Text(text)) => last_update = Some(parse_json(text.as_str())),
            Some(Message::Close(frame)) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Away));
                break;
            }
            Some(_) => {}
            None => panic!("closed without a close frame"),
        }
    }
    shutdown.await.expect("shutdown");
    let last = last_update.expect("an update before closing");
    for word in last["words"].as_array().expect("words") {
        assert_eq!(word["is_final"], true, "{last}");
    }
}

/// The OpenAI realtime transcription session: 24 kHz base64 audio, server VAD events,
/// deltas and completed transcripts; and a manual commit with `turn_detection: null`.
#[tokio::test]
async fn openai_realtime_transcription() {
    let server = server();
    let clip = load(&data("jfk/jfk.wav"));
    let mut audio = clip.clone();
    audio.extend(silence(1.0));
    let pcm24: Vec<u8> = pcm(&upsample_3_2(&audio));
    for manual in [false, true] {
        let mut client = connect_with(
            &ws_url(server, "/v1/realtime?intent=transcription&model=tiny.en"),
            &[
                ("authorization", "Bearer x"),
                ("openai-beta", "realtime=v1"),
            ],
        )
        .await
        .expect("connect");
        let created = client.until(|v| v["type"].is_string()).await;
        assert_eq!(created[0]["type"], "transcription_session.created");
        let turn_detection = if manual {
            Value::Null
        } else {
            json!({"type": "server_vad"})
        };
        client
            .send_json(json!({"type": "transcription_session.update", "session": {
                "input_audio_transcription": {"model": "whisper-1", "language": "en"},
                "turn_detection": turn_detection}}))
            .await;
        client
            .until(|v| v["type"] == "transcription_session.updated")
            .await;
        for chunk in pcm24.chunks(4_800) {
            let audio = base64::engine::general_purpose::STANDARD.encode(chunk);
            client
                .send_json(json!({"type": "input_audio_buffer.append", "audio": audio}))
                .await;
        }
        if manual {
            client
                .send_json(json!({"type": "input_audio_buffer.commit"}))
                .await;
        } else {
            client.send_json(json!({"type": "no.such.event"})).await;
        }
        let events = if manual {
            client
                .until(|v| v["type"] == "conversation.item.input_audio_transcription.completed")
                .await
        } else {
            // The utterances of the clip, each committed and completed; the last one
            // ends with "country".
            client
                .until(|v| {
                    v["type"] == "conversation.item.input_audio_transcription.completed"
                        && v["transcript"]
                            .as_str()
                            .unwrap_or_default()
                            .to_lowercase()
                            .contains("your country")
                        && !v["transcript"]
                            .as_str()
                            .unwrap_or_default()
                            .to_lowercase()
                            .contains("what your country")
                })
                .await
        };
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        let transcript: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "conversation.item.input_audio_transcription.completed")
            .filter_map(|e| e["transcript"].as_str())
            .collect();
        let transcript = transcript.join(" ");
        let reference = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
        assert!(wer(reference, &transcript) <= 0.2, "{transcript} {kinds:?}");
        assert!(kinds.contains(&"input_audio_buffer.committed"), "{kinds:?}");
        assert!(
            kinds.contains(&"conversation.item.input_audio_transcription.delta"),
            "{kinds:?}"
        );
        if manual {
            assert!(
                !kinds.contains(&"input_audio_buffer.speech_started"),
                "{kinds:?}"
            );
        } else {
            assert!(
                kinds.contains(&"input_audio_buffer.speech_started"),
                "{kinds:?}"
            );
            assert!(
                kinds.contains(&"input_audio_buffer.speech_stopped"),
                "{kinds:?}"
            );
            assert!(
                kinds.contains(&"error"),
                "unknown events get an error event: {kinds:?}"
            );
        }
    }
}
