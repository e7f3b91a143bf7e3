//! Shared helpers for the decode tests: paths to the shared clips, and writers
//! that build WAV, Ogg Opus and live-style WebM files in memory so no external
//! tool is needed.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

/// A clip under `shared/data` (the repository's test audio, see its README).
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")).join(rel)
}

/// A fixture checked in under `dsp/tests/fixtures` (provenance in its README).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

/// A 16-bit PCM WAV file; `samples` are interleaved.
pub fn wav_i16(samples: &[i16], rate: u32, channels: u16) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
        .collect()
}

pub fn sine(freq: f32, rate: u32, secs: f32, amp: f32) -> Vec<f32> {
    let n = (rate as f32 * secs).round() as usize;
    (0..n)
        .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
        .collect()
}

pub fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// The lag (in samples, `b` relative to `a`) with the highest normalised
/// correlation within `±max_lag`, and that correlation.
pub fn best_lag(a: &[f32], b: &[f32], max_lag: i64) -> (i64, f32) {
    let mut best = (0, f32::MIN);
    for lag in -max_lag..=max_lag {
        let (mut dot, mut ea, mut eb) = (0.0f64, 0.0f64, 0.0f64);
        for (i, x) in a.iter().enumerate() {
            let j = i as i64 + lag;
            if j < 0 || j as usize >= b.len() {
                continue;
            }
            let y = b[j as usize];
            dot += f64::from(*x) * f64::from(y);
            ea += f64::from(*x) * f64::from(*x);
            eb += f64::from(y) * f64::from(y);
        }
        let c = (dot / (ea * eb).sqrt().max(1e-12)) as f32;
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

/// Opus-encodes 16 kHz mono audio in 20 ms packets, returning the packets and
/// the pre-skip (48 kHz samples) a muxer should declare.
pub fn opus_packets(samples: &[f32]) -> (Vec<Vec<u8>>, u16) {
    let mut encoder = opus_rs::OpusEncoder::new(16_000, 1, opus_rs::Application::Audio).unwrap();
    encoder.bitrate_bps = 32_000;
    let mut packets = Vec::new();
    let mut buf = vec![0u8; 1500];
    for chunk in samples.chunks(320) {
        let mut frame = chunk.to_vec();
        frame.resize(320, 0.0);
        let n = encoder.encode(&frame, 320, &mut buf).unwrap();
        packets.push(buf[..n].to_vec());
    }
    // libopus lookahead: 2.5 ms + 4 ms delay compensation = 312 samples at 48 kHz.
    (packets, 312)
}

pub fn opus_head(channels: u8, pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(channels);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&input_rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// An Ogg Opus file whose last granule says the stream is `len_16k` samples long.
pub fn ogg_opus(packets: &[Vec<u8>], pre_skip: u16, len_16k: usize) -> Vec<u8> {
    use ogg::{PacketWriteEndInfo, PacketWriter};
    let mut out = Vec::new();
    {
        let mut writer = PacketWriter::new(&mut out);
        let serial = 0x4543_4d42;
        writer
            .write_packet(
                opus_head(1, pre_skip, 16_000),
                serial,
                PacketWriteEndInfo::EndPage,
                0,
            )
            .unwrap();
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&4u32.to_le_bytes());
        tags.extend_from_slice(b"test");
        tags.extend_from_slice(&0u32.to_le_bytes());
        writer
            .write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)
            .unwrap();
        let final_granule = u64::from(pre_skip) + len_16k as u64 * 3;
        for (i, packet) in packets.iter().enumerate() {
            let last = i + 1 == packets.len();
            let granule = if last {
                final_granule
            } else {
                u64::from(pre_skip) + (i as u64 + 1) * 960
            };
            let end = if last {
                PacketWriteEndInfo::EndStream
            } else if i % 10 == 9 {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            writer
                .write_packet(packet.clone(), serial, end, granule)
                .unwrap();
        }
    }
    out
}

fn ebml_size(len: usize) -> Vec<u8> {
    // 8-byte size field: simple and always valid.
    let mut v = (len as u64 | (1u64 << 56)).to_be_bytes().to_vec();
    v[0] = 0x01;
    v
}

fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend(ebml_size(body.len()));
    out.extend_from_slice(body);
    out
}

fn uint(id: &[u8], v: u64) -> Vec<u8> {
    element(id, &v.to_be_bytes())
}

/// Unknown size, as MediaRecorder writes for Segment and Cluster.
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// A live-style WebM like MediaRecorder's: unknown-size Segment and Clusters, no
/// SeekHead, no Cues, no Duration, SimpleBlocks of 20 ms Opus packets.
pub fn live_webm(packets: &[Vec<u8>], pre_skip: u16) -> Vec<u8> {
    let mut out = element(
        &[0x1A, 0x45, 0xDF, 0xA3],
        &[
            uint(&[0x42, 0x86], 1),
            uint(&[0x42, 0xF7], 1),
            uint(&[0x42, 0xF2], 4),
            uint(&[0x42, 0xF3], 8),
            element(&[0x42, 0x82], b"webm"),
            uint(&[0x42, 0x87], 4),
            uint(&[0x42, 0x85], 2),
        ]
        .concat(),
    );
    out.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
    out.extend_from_slice(&UNKNOWN_SIZE);
    out.extend(element(
        &[0x15, 0x49, 0xA9, 0x66],
        &[
            uint(&[0x2A, 0xD7, 0xB1], 1_000_000),
            element(&[0x4D, 0x80], b"test"),
            element(&[0x57, 0x41], b"test"),
        ]
        .concat(),
    ));
    let audio = element(
        &[0xE1],
        &[element(&[0xB5], &48_000f64.to_be_bytes()), uint(&[0x9F], 1)].concat(),
    );
    let track = element(
        &[0xAE],
        &[
            uint(&[0xD7], 1),
            uint(&[0x73, 0xC5], 0x1234),
            uint(&[0x83], 2),
            element(&[0x86], b"A_OPUS"),
            element(&[0x63, 0xA2], &opus_head(1, pre_skip, 48_000)),
            audio,
        ]
        .concat(),
    );
    out.extend(element(&[0x16, 0x54, 0xAE, 0x6B], &track));
    for (c, cluster) in packets.chunks(25).enumerate() {
        out.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75]);
        out.extend_from_slice(&UNKNOWN_SIZE);
        out.extend(uint(&[0xE7], c as u64 * 500));
        for (i, packet) in cluster.iter().enumerate() {
            let mut block = vec![0x81];
            block.extend_from_slice(&((i as i16) * 20).to_be_bytes());
            block.push(0x80);
            block.extend_from_slice(packet);
            out.extend(element(&[0xA3], &block));
        }
    }
    out
}
