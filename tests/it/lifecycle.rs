//! Request lifecycle: a client that hangs up has its ASR job skipped or aborted, and the
//! worker is free again (DESIGN §1: "Client gone").

use std::time::{Duration, Instant};

use crate::support::{data, form, json, server};

async fn health() -> serde_json::Value {
    let body = reqwest::get(format!("{}/health", server().url))
        .await
        .expect("health")
        .text()
        .await
        .expect("body");
    json(&body)
}

#[tokio::test]
async fn disconnected_client_cancels_its_job() {
    let before = health().await["asr_cancelled"].as_u64().expect("counter");
    // 73 s of speech through base with beam 5 takes many seconds; hang up after 1.5 s.
    let result = reqwest::Client::new()
        .post(format!("{}/v1/audio/transcriptions", server().url))
        .timeout(Duration::from_millis(1500))
        .multipart(form(
            &data("asterisk_prompts/en/demo-instruct.flac"),
            &[("model", "base")],
        ))
        .send()
        .await;
    assert!(
        result.is_err(),
        "the request should have been cut off by the client"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = health().await;
        if now["asr_cancelled"].as_u64().expect("counter") > before {
            break;
        }
        assert!(Instant::now() < deadline, "job was never cancelled: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
