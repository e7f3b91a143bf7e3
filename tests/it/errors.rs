//! Bad input gets the exact status and the error envelope (PROTOCOL §1.3), never a 500.

use std::sync::OnceLock;

use crate::support::{data, form, json, post, server, start, ServerSpec, TestServer};

/// Asserts the envelope shape and returns the inner error object.
fn envelope(status: u16, expected: u16, body: &str) -> serde_json::Value {
    assert_eq!(status, expected, "{body}");
    let v = json(body);
    let error = v["error"].clone();
    assert_eq!(error["object"], "error", "{body}");
    let kind = if expected >= 500 {
        "internal_server_error"
    } else {
        "invalid_request_error"
    };
    assert_eq!(error["type"], kind, "{body}");
    assert!(!error["message"].as_str().unwrap_or_default().is_empty());
    error
}

fn bytes_form(bytes: Vec<u8>, name: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        )
        .text("model", "tiny.en")
}

#[tokio::test]
async fn undecodable_uploads_are_400_on_file() {
    let flac = std::fs::read(data("asterisk_prompts/en/auth-incorrect.flac")).expect("read");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "not audio",
            b"hello, this is a text file and not audio at all".repeat(20),
        ),
        ("empty", Vec::new()),
        ("truncated", flac[..30].to_vec()),
    ];
    for (what, bytes) in cases {
        let (status, headers, body) = post(
            server(),
            "/v1/audio/transcriptions",
            bytes_form(bytes, "a.flac"),
        )
        .await;
        let error = envelope(status, 400, &body);
        assert_eq!(error["param"], "file", "{what}: {body}");
        assert!(headers.contains_key("x-request-id"), "{what}");
    }
}

#[tokio::test]
async fn missing_file_and_bad_fields_name_the_param() {
    let only_text = reqwest::multipart::Form::new().text("model", "base");
    let (status, _, body) = post(server(), "/v1/audio/transcriptions", only_text).await;
    assert_eq!(envelope(status, 400, &body)["param"], "file");

    for (field, value) in [
        ("response_format", "docx"),
        ("preprocessing", "loud"),
        ("temperature", "7"),
        ("vad_model", "whisperx-pyannet"),
    ] {
        let (status, _, body) = post(
            server(),
            "/v1/audio/transcriptions",
            form(&data("jfk/jfk.wav"), &[(field, value)]),
        )
        .await;
        let error = envelope(status, 400, &body);
        assert_eq!(error["param"], field, "{field}={value}: {body}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{body}"
        );
    }
}

#[tokio::test]
async fn fireworks_sdk_defaults_are_accepted() {
    let (status, _, body) = post(
        server(),
        "/v1/audio/transcriptions",
        form(
            &data("jfk/jfk.wav"),
            &[
                ("model", "whisper-v3"),
                ("vad_model", "silero"),
                ("alignment_model", "tdnn_ffn"),
                ("preprocessing", "none"),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn english_only_model_refuses_translation() {
    let (status, _, body) = post(
        server(),
        "/v1/audio/translations",
        form(&data("jfk/jfk.wav"), &[("model", "tiny.en")]),
    )
    .await;
    envelope(status, 400, &body);
}

#[tokio::test]
async fn unknown_route_and_wrong_method() {
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/v1/nope", server().url))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    envelope(status, 404, &response.text().await.expect("body"));

    let response = client
        .get(format!("{}/v1/audio/transcriptions", server().url))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    envelope(status, 405, &response.text().await.expect("body"));
}

fn small_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        start(ServerSpec {
            default_model: "tiny.en",
            api_keys: vec!["secret-key".into()],
            max_upload_bytes: 100_000,
            asr_queue: 1,
            beam_size: 1,
            ..ServerSpec::default()
        })
    })
}

#[tokio::test]
async fn api_keys_in_every_form() {
    let server = small_server();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/audio/transcriptions", server.url);
    let audio = data("pocketsphinx_commands/goforward.wav");

    let response = client
        .post(&url)
        .multipart(form(&audio, &[]))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    assert!(response.headers().contains_key("x-request-id"));
    envelope(status, 401, &response.text().await.expect("body"));

    let response = client
        .post(&url)
        .header("authorization", "Bearer wrong")
        .multipart(form(&audio, &[]))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    envelope(status, 401, &response.text().await.expect("body"));

    for (header, value, query) in [
        ("authorization", "Bearer secret-key", ""),
        ("authorization", "secret-key", ""),
        ("x-api-key", "secret-key", ""),
        ("x-ignored", "", "?Authorization=Bearer%20secret-key"),
        ("x-ignored", "", "?api_key=secret-key"),
    ] {
        let response = client
            .post(format!("{url}{query}"))
            .header(header, value)
            .multipart(form(&audio, &[]))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 200, "{header}{query}");
    }
    // Health needs no key.
    let response = client
        .get(format!("{}/health", server.url))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn upload_over_limit_is_413() {
    let server = small_server();
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/v1/audio/transcriptions", server.url))
        .header("authorization", "Bearer secret-key")
        .multipart(form(&data("jfk/jfk.wav"), &[]))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    envelope(status, 413, &response.text().await.expect("body"));
}

#[tokio::test]
async fn full_queue_is_429_with_retry_after() {
    let server = small_server();
    // Small enough for the 100 kB upload limit of this server.
    let audio = data("praat_north_wind/digit_1_b.wav");
    let requests = (0..8).map(|_| {
        let url = format!("{}/v1/audio/transcriptions", server.url);
        let form = form(&audio, &[]);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("authorization", "Bearer secret-key")
                .multipart(form)
                .send()
                .await
                .expect("send");
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            (status, retry_after, response.text().await.expect("body"))
        }
    });
    let results = futures_util::future::join_all(requests).await;
    let rejected: Vec<_> = results.iter().filter(|(s, _, _)| *s == 429).collect();
    assert!(
        !rejected.is_empty(),
        "no 429 among {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(results.iter().all(|(s, _, _)| *s == 200 || *s == 429));
    for (status, retry_after, body) in rejected {
        envelope(*status, 429, body);
        assert!(retry_after.is_some());
    }
}
