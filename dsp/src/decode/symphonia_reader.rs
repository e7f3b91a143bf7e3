//! The symphonia path: WAV, FLAC, MP3, Ogg Vorbis/FLAC, MP4/M4A AAC, ADTS, and
//! whatever Matroska symphonia's own reader can open.
//!
//! Gapless mode is on (else MP3 gains 1,911 samples, DESIGN §3). Symphonia's
//! MP4 reader does not apply the AAC encoder delay, so the 1,024 priming samples
//! are dropped here to keep times aligned with what ffmpeg produces.

use std::io::ErrorKind;

use symphonia::core::audio::{AudioBufferRef, SampleBuffer};
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_AAC, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader, Track};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::decode::sink::MonoSink;
use crate::decode::PacketStats;
use crate::error::DspError;
use crate::sniff::Container;

/// Consecutive demuxer errors after which the rest of the file is given up on.
const MAX_CONSECUTIVE_ERRORS: u32 = 64;

/// AAC-LC encoder delay that MP4 files carry and symphonia 0.5 leaves in.
const AAC_PRIMING_FRAMES: usize = 1024;

/// Decodes the first audio track of `source` into `sink`.
pub(crate) fn decode(
    source: Box<dyn MediaSource>,
    container: Container,
    sink: &mut MonoSink,
) -> Result<PacketStats, DspError> {
    let stream = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = container.extension_hint() {
        hint.with_extension(ext);
    }
    let format_options = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &format_options, &MetadataOptions::default())
        .map_err(|e| open_error(e, container))?;
    let mut reader = probed.format;
    let mut track = select_track(reader.as_ref())?;
    if let Some(secs) = declared_secs(&track) {
        sink.declare_duration(secs)?;
    }
    let mut decoder = make_decoder(&track, container)?;
    let mut prime_left = priming_frames(&track, container);
    let mut stats = PacketStats::default();
    let mut consecutive_errors = 0u32;
    let mut pcm: Option<SampleBuffer<f32>> = None;

    loop {
        let packet = match reader.next_packet() {
            Ok(packet) => packet,
            Err(SymError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => {
                // A new logical stream (chained Ogg): re-read the track list.
                track = select_track(reader.as_ref())?;
                decoder = make_decoder(&track, container)?;
                prime_left = 0;
                continue;
            }
            Err(e) => {
                stats.failed += 1;
                consecutive_errors += 1;
                tracing::debug!(error = %e, "demuxer error");
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS || is_io(&e) {
                    tracing::warn!(error = %e, "stopping at unreadable data");
                    break;
                }
                continue;
            }
        };
        if packet.track_id() != track.id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(decoded) => {
                consecutive_errors = 0;
                stats.good += 1;
                push_decoded(decoded, &mut pcm, &mut prime_left, sink)?;
            }
            Err(SymError::ResetRequired) => {
                stats.failed += 1;
                decoder = make_decoder(&track, container)?;
            }
            Err(e @ (SymError::DecodeError(_) | SymError::IoError(_))) => {
                stats.failed += 1;
                consecutive_errors += 1;
                tracing::debug!(error = %e, "skipping undecodable packet");
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS && stats.good > 0 {
                    tracing::warn!(error = %e, "stopping after repeated decode errors");
                    break;
                }
            }
            Err(SymError::Unsupported(what)) => {
                return Err(DspError::unsupported(format!("{container} ({what})")));
            }
            Err(e) => return Err(DspError::corrupt(e.to_string())),
        }
    }
    Ok(stats)
}

fn is_io(error: &SymError) -> bool {
    matches!(error, SymError::IoError(_))
}

/// Maps a failure to open the stream: a format symphonia does not know is
/// `Unsupported`, a recognised one that breaks is `Corrupt`.
fn open_error(error: SymError, container: Container) -> DspError {
    match error {
        SymError::Unsupported(what) => DspError::unsupported(format!("{container} ({what})")),
        SymError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => {
            DspError::corrupt(format!("the {container} file ends before any audio"))
        }
        SymError::IoError(e) if e.kind() != ErrorKind::InvalidData => DspError::Io(e),
        other => DspError::corrupt(format!("{container}: {other}")),
    }
}

/// The first track with a real codec; symphonia lists only audio tracks it parsed.
fn select_track(reader: &dyn FormatReader) -> Result<Track, DspError> {
    reader
        .default_track()
        .filter(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .or_else(|| {
            reader
                .tracks()
                .iter()
                .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        })
        .cloned()
        .ok_or(DspError::NoAudio)
}

fn make_decoder(track: &Track, container: Container) -> Result<Box<dyn Decoder>, DspError> {
    symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| {
            let codec = symphonia::default::get_codecs()
                .get_codec(track.codec_params.codec)
                .map_or_else(
                    || track.codec_params.codec.to_string(),
                    |d| d.short_name.to_string(),
                );
            match e {
                SymError::Unsupported(_) => {
                    DspError::unsupported(format!("{container} with codec {codec}"))
                }
                other => DspError::corrupt(format!("{codec}: {other}")),
            }
        })
}

/// The duration the container declares, when it does.
fn declared_secs(track: &Track) -> Option<f64> {
    let params = &track.codec_params;
    let frames = params.n_frames?;
    if let Some(tb) = params.time_base {
        let t = tb.calc_time(frames);
        return Some(t.seconds as f64 + t.frac);
    }
    params
        .sample_rate
        .map(|r| frames as f64 / f64::from(r.max(1)))
}

fn priming_frames(track: &Track, container: Container) -> usize {
    let params = &track.codec_params;
    if container == Container::Mp4 && params.codec == CODEC_TYPE_AAC && params.delay.is_none() {
        AAC_PRIMING_FRAMES
    } else {
        0
    }
}

/// Converts one decoded buffer to interleaved f32, drops priming, pushes to the sink.
fn push_decoded(
    decoded: AudioBufferRef<'_>,
    pcm: &mut Option<SampleBuffer<f32>>,
    prime_left: &mut usize,
    sink: &mut MonoSink,
) -> Result<(), DspError> {
    let spec = *decoded.spec();
    let channels = spec.channels.count();
    let frames = decoded.frames();
    if frames == 0 || channels == 0 {
        return Ok(());
    }
    let fits = pcm
        .as_ref()
        .is_some_and(|b| b.capacity() >= decoded.capacity() * channels);
    if !fits {
        *pcm = Some(SampleBuffer::new(decoded.capacity() as u64, spec));
    }
    let Some(buffer) = pcm.as_mut() else {
        return Ok(());
    };
    buffer.copy_interleaved_ref(decoded);
    let samples = buffer.samples();
    let skip = (*prime_left).min(frames);
    *prime_left -= skip;
    sink.push_interleaved(&samples[skip * channels..], channels, spec.rate)
}
