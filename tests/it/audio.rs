//! Builds test recordings from the shared clips: speech separated by known silences,
//! gain changes, and a 16 kHz WAV writer to upload the result.

use std::path::Path;

/// Sample rate of everything built here.
pub const RATE: usize = 16_000;

/// Decodes a shared clip to 16 kHz mono.
pub fn load(path: &Path) -> Vec<f32> {
    ember_dsp::decode_file(path)
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()))
        .samples
}

/// `secs` of digital silence.
pub fn silence(secs: f64) -> Vec<f32> {
    vec![0.0; (secs * RATE as f64) as usize]
}

/// The samples scaled by `db` decibels.
pub fn gain(samples: &[f32], db: f32) -> Vec<f32> {
    let factor = 10f32.powf(db / 20.0);
    samples.iter().map(|s| s * factor).collect()
}

/// A piece of a composed recording and where it landed (seconds).
#[derive(Debug, Clone)]
pub struct Placed {
    pub start: f64,
    pub end: f64,
}

/// Concatenates parts and returns the audio with each part's span.
pub fn concat(parts: &[Vec<f32>]) -> (Vec<f32>, Vec<Placed>) {
    let mut out = Vec::new();
    let mut spans = Vec::new();
    for part in parts {
        let start = out.len() as f64 / RATE as f64;
        out.extend_from_slice(part);
        spans.push(Placed {
            start,
            end: out.len() as f64 / RATE as f64,
        });
    }
    (out, spans)
}

/// 16-bit PCM WAV bytes of 16 kHz mono samples (clipped to ±1).
pub fn wav_16k(samples: &[f32]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&(RATE as u32).to_le_bytes());
    out.extend_from_slice(&(RATE as u32 * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A multipart form uploading `samples` as a WAV file.
pub fn wav_form(samples: &[f32], fields: &[(&str, &str)]) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(wav_16k(samples)).file_name("composed.wav"),
    );
    for (key, value) in fields {
        form = form.text(key.to_string(), value.to_string());
    }
    form
}
