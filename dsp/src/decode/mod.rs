//! Upload decoding: any supported file → 16 kHz mono `f32`.
//!
//! The container is sniffed from the bytes ([`crate::sniff()`]), then one demuxer +
//! decoder pair runs packet by packet into a `MonoSink` (`sink.rs`) that
//! downmixes and resamples as it goes, so memory is the output plus a bounded
//! working set even for hour-long files:
//!
//! - WAV, FLAC, MP3, Ogg Vorbis/FLAC, MP4/M4A AAC, ADTS and non-Opus Matroska go
//!   through symphonia (`symphonia_reader.rs`).
//! - Ogg Opus (`ogg_opus.rs`) and WebM/Matroska Opus (`webm.rs`) go through `ogg` /
//!   `matroska-demuxer` + `opus-rs`, decoding at 16 kHz directly: symphonia has
//!   no Opus decoder and its mkv reader fails on MediaRecorder's live-style WebM
//!   (DESIGN §3).
//!
//! A packet that fails to decode is skipped and counted; only a file where every
//! packet fails is [`DspError::Corrupt`]. A truncated file yields what decoded.

mod ogg_opus;
mod opus;
mod sink;
mod symphonia_reader;
mod webm;

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use symphonia::core::io::MediaSource;

use crate::error::DspError;
use crate::sniff::{sniff, Container};
use crate::SAMPLE_RATE;
use sink::MonoSink;

/// Bytes read up front to sniff the container (and find Ogg's first packet).
const HEAD_LEN: usize = 4096;

/// Decoded audio, ready for VAD and ASR. Equality compares the audio and its source
/// format, not how long resampling took.
#[derive(Debug, Clone)]
pub struct DecodedAudio {
    /// Mono samples at [`SAMPLE_RATE`] (16 kHz), nominally within ±1.0.
    pub samples: Vec<f32>,
    /// The sample rate of the source (of its first audio stream), for logs and metrics.
    pub source_sample_rate: u32,
    /// The channel count of the source before downmixing.
    pub source_channels: u16,
    /// Packets that failed to decode and were skipped (0 for a clean file).
    pub skipped_packets: u64,
    /// Time spent downmixing and resampling, inside the decode time (a metrics stage).
    pub resample_time: Duration,
}

impl PartialEq for DecodedAudio {
    fn eq(&self, other: &Self) -> bool {
        self.samples == other.samples
            && self.source_sample_rate == other.source_sample_rate
            && self.source_channels == other.source_channels
            && self.skipped_packets == other.skipped_packets
    }
}

impl DecodedAudio {
    /// Length of the audio in whole milliseconds (the unit used for times inside Ember).
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE)
    }

    /// Length of the audio as a [`Duration`].
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(SAMPLE_RATE))
    }
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Reject audio longer than this with [`DspError::TooLong`], as early as the
    /// container lets us know (declared duration) or as soon as decoding passes it,
    /// so an over-long upload costs little work. `None` = no limit.
    pub max_duration: Option<Duration>,
}

impl DecodeOptions {
    /// Options with a maximum audio duration.
    pub fn with_max_duration(max_duration: Duration) -> Self {
        Self {
            max_duration: Some(max_duration),
        }
    }
}

/// Decodes a file on disk (the server streams uploads to a temp file) with no limits.
pub fn decode_file(path: &Path) -> Result<DecodedAudio, DspError> {
    decode_file_with(path, &DecodeOptions::default())
}

/// Decodes a file on disk with the given limits.
pub fn decode_file_with(path: &Path, options: &DecodeOptions) -> Result<DecodedAudio, DspError> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Err(DspError::Empty);
    }
    decode_source(Box::new(file), options)
}

/// Decodes an in-memory upload with no limits.
pub fn decode_bytes(bytes: Vec<u8>) -> Result<DecodedAudio, DspError> {
    decode_bytes_with(bytes, &DecodeOptions::default())
}

/// Decodes an in-memory upload with the given limits.
pub fn decode_bytes_with(
    bytes: Vec<u8>,
    options: &DecodeOptions,
) -> Result<DecodedAudio, DspError> {
    if bytes.is_empty() {
        return Err(DspError::Empty);
    }
    decode_source(Box::new(Cursor::new(bytes)), options)
}

/// Packet counts of one decode, to tell "corrupt" from "silent" at the end.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PacketStats {
    /// Packets that decoded.
    pub good: u64,
    /// Packets skipped because they failed to decode.
    pub failed: u64,
}

/// Sniffs, picks the decoder, and turns any panic inside a third-party demuxer or
/// codec (malformed input has triggered them before) into `Corrupt`.
fn decode_source(
    source: Box<dyn MediaSource>,
    options: &DecodeOptions,
) -> Result<DecodedAudio, DspError> {
    match catch_unwind(AssertUnwindSafe(|| decode_sniffed(source, options))) {
        Ok(result) => result,
        Err(_) => Err(DspError::corrupt("the decoder failed on malformed data")),
    }
}

fn decode_sniffed(
    mut source: Box<dyn MediaSource>,
    options: &DecodeOptions,
) -> Result<DecodedAudio, DspError> {
    let head = read_head(&mut source)?;
    if head.is_empty() {
        return Err(DspError::Empty);
    }
    let container = sniff(&head);
    let span = tracing::debug_span!("decode", container = %container);
    let _guard = span.enter();
    let mut sink = MonoSink::new(options);
    let stats = match container {
        Container::Unknown => return Err(DspError::unsupported("unknown")),
        Container::Ogg if ogg_opus::is_ogg_opus(&head) => {
            ogg_opus::decode(BufReader::new(source), &mut sink)?
        }
        Container::Matroska => {
            let mut reader = BufReader::new(source);
            match webm::decode(&mut reader, &mut sink)? {
                webm::Outcome::Decoded(stats) => stats,
                webm::Outcome::NotOpus { codec_id } => {
                    // Vorbis/AAC/… in Matroska: symphonia's mkv reader may cope
                    // with a seekable, finalised file.
                    reader.seek(SeekFrom::Start(0))?;
                    symphonia_reader::decode(reader.into_inner(), container, &mut sink).map_err(
                        |e| match e {
                            DspError::Unsupported { .. } | DspError::Corrupt { .. } => {
                                DspError::unsupported(format!("matroska/{codec_id} ({e})"))
                            }
                            other => other,
                        },
                    )?
                }
            }
        }
        _ => symphonia_reader::decode(source, container, &mut sink)?,
    };
    let audio = sink.finish(stats)?;
    tracing::debug!(
        duration_ms = audio.duration_ms(),
        source_rate = audio.source_sample_rate,
        source_channels = audio.source_channels,
        skipped_packets = audio.skipped_packets,
        "decoded"
    );
    Ok(audio)
}

/// Reads up to [`HEAD_LEN`] bytes and rewinds.
fn read_head(source: &mut Box<dyn MediaSource>) -> Result<Vec<u8>, DspError> {
    let mut head = Vec::with_capacity(HEAD_LEN);
    source
        .by_ref()
        .take(HEAD_LEN as u64)
        .read_to_end(&mut head)?;
    source.seek(SeekFrom::Start(0))?;
    Ok(head)
}
