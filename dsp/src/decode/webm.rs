//! WebM / Matroska Opus: `matroska-demuxer` + [`OpusStream`].
//!
//! This is what browsers' MediaRecorder uploads: live-style files with
//! unknown-size segment and clusters and no Cues, which symphonia's mkv reader
//! rejects (DESIGN §3). Other codecs are handed back so the caller can try
//! symphonia on them.

use std::io::{Read, Seek};

use matroska_demuxer::{Frame, MatroskaFile, TrackType};

use crate::decode::opus::{OpusHead, OpusStream};
use crate::decode::sink::MonoSink;
use crate::decode::PacketStats;
use crate::error::DspError;

/// What the Matroska pass did.
pub(crate) enum Outcome {
    /// The audio track was Opus and has been decoded.
    Decoded(PacketStats),
    /// The audio track uses another codec (e.g. `A_VORBIS`); nothing was pushed.
    NotOpus { codec_id: String },
}

/// Decodes the first audio track if it is Opus.
pub(crate) fn decode<R: Read + Seek>(reader: R, sink: &mut MonoSink) -> Result<Outcome, DspError> {
    let mut mkv =
        MatroskaFile::open(reader).map_err(|e| DspError::corrupt(format!("matroska: {e}")))?;
    let Some(track) = mkv
        .tracks()
        .iter()
        .find(|t| t.track_type() == TrackType::Audio)
    else {
        return Err(DspError::NoAudio);
    };
    if track.codec_id() != "A_OPUS" {
        return Ok(Outcome::NotOpus {
            codec_id: track.codec_id().to_string(),
        });
    }
    let track_number = track.track_number().get();
    let head = match track.codec_private() {
        Some(private) => OpusHead::parse(private)?,
        None => {
            let channels = track
                .audio()
                .map_or(1, |a| u8::try_from(a.channels().get()).unwrap_or(2));
            // CodecDelay is in nanoseconds; pre-skip counts 48 kHz samples.
            let pre_skip = track.codec_delay().unwrap_or(0) * 48_000 / 1_000_000_000;
            OpusHead::plain(channels, u16::try_from(pre_skip).unwrap_or(u16::MAX))
        }
    };
    let declared_secs = mkv
        .info()
        .duration()
        .map(|d| d * mkv.info().timestamp_scale().get() as f64 / 1e9);
    if let Some(secs) = declared_secs {
        sink.declare_duration(secs)?;
    }
    let mut opus = OpusStream::new(&head)?;
    sink.set_source_format(opus.source_rate(), u16::from(head.channels));
    let mut frame = Frame::default();
    loop {
        match mkv.next_frame(&mut frame) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) if opus.stats.good > 0 => {
                tracing::warn!(error = %e, "Matroska stream ends in unreadable data; keeping what decoded");
                break;
            }
            Err(e) => return Err(DspError::corrupt(format!("matroska: {e}"))),
        }
        if frame.track == track_number {
            opus.decode_packet(&frame.data, None, sink)?;
        }
    }
    Ok(Outcome::Decoded(opus.stats))
}
