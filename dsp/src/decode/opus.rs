//! Opus decoding shared by the Ogg and WebM paths: the `OpusHead` header and a
//! packet decoder that runs `opus-rs` at 16 kHz, so no resampling is needed.
//!
//! Opus timestamps count 48 kHz samples whatever the decode rate (RFC 7845 §4), so
//! pre-skip and the end trim are converted to 16 kHz here.

use opus_rs::multistream::{ChannelMappingTable, MultistreamDecoder};
use opus_rs::OpusDecoder;

use crate::decode::sink::MonoSink;
use crate::decode::PacketStats;
use crate::error::DspError;
use crate::SAMPLE_RATE;

/// Opus's timestamp clock.
const OPUS_CLOCK: u64 = 48_000;
/// Longest Opus packet: 120 ms, in samples per channel at 16 kHz.
const MAX_PACKET_FRAMES: usize = 1920;
/// Frame size assumed for concealment before any packet decoded (20 ms).
const DEFAULT_FRAME: usize = 320;

/// The identification header (RFC 7845 §5.1).
#[derive(Debug, Clone)]
pub(crate) struct OpusHead {
    pub channels: u8,
    /// Samples at 48 kHz to drop from the start of the decoded stream.
    pub pre_skip: u16,
    /// The encoder's input rate: informational, reported as the source rate.
    pub input_rate: u32,
    /// Output gain in Q7.8 dB.
    pub output_gain: i16,
    pub mapping: Option<ChannelMappingTable>,
}

impl OpusHead {
    /// Parses `OpusHead` packet bytes (also WebM's `CodecPrivate`).
    pub(crate) fn parse(data: &[u8]) -> Result<Self, DspError> {
        if data.len() < 19 || &data[..8] != b"OpusHead" {
            return Err(DspError::corrupt("missing or short OpusHead header"));
        }
        if data[8] >> 4 != 0 {
            return Err(DspError::unsupported(format!(
                "opus header version {}",
                data[8]
            )));
        }
        let channels = data[9];
        if channels == 0 {
            return Err(DspError::corrupt("OpusHead declares zero channels"));
        }
        let family = data[18];
        let mapping = if family == 0 {
            if channels > 2 {
                return Err(DspError::corrupt(
                    "OpusHead mapping family 0 with more than 2 channels",
                ));
            }
            None
        } else {
            let table = ChannelMappingTable::parse(family, channels, &data[19..])
                .ok_or_else(|| DspError::corrupt("truncated Opus channel mapping table"))?;
            Some(table)
        };
        Ok(Self {
            channels,
            pre_skip: u16::from_le_bytes([data[10], data[11]]),
            input_rate: u32::from_le_bytes([data[12], data[13], data[14], data[15]]),
            output_gain: i16::from_le_bytes([data[16], data[17]]),
            mapping,
        })
    }

    /// A header for a WebM track without `CodecPrivate`: mono/stereo, family 0.
    pub(crate) fn plain(channels: u8, pre_skip: u16) -> Self {
        Self {
            channels: channels.clamp(1, 2),
            pre_skip,
            input_rate: 0,
            output_gain: 0,
            mapping: None,
        }
    }
}

enum Inner {
    Single(Box<OpusDecoder>),
    Multi(Box<MultistreamDecoder>),
}

/// Decodes the packets of one Opus stream into a [`MonoSink`].
pub(crate) struct OpusStream {
    inner: Inner,
    channels: usize,
    source_rate: u32,
    pcm: Vec<f32>,
    /// 16 kHz samples of pre-skip not yet dropped.
    skip_left: u64,
    pre_skip_48k: u64,
    gain: f32,
    /// 16 kHz samples handed to the sink (after pre-skip).
    emitted: u64,
    last_frame: usize,
    pub stats: PacketStats,
}

impl OpusStream {
    pub(crate) fn new(head: &OpusHead) -> Result<Self, DspError> {
        let rate = SAMPLE_RATE as i32;
        let inner = match &head.mapping {
            None => Inner::Single(Box::new(
                OpusDecoder::new(rate, usize::from(head.channels)).map_err(DspError::corrupt)?,
            )),
            Some(table) => Inner::Multi(Box::new(
                MultistreamDecoder::new(rate, table.clone()).map_err(DspError::corrupt)?,
            )),
        };
        let channels = usize::from(head.channels);
        let pre_skip_48k = u64::from(head.pre_skip);
        Ok(Self {
            inner,
            channels,
            source_rate: if head.input_rate == 0 {
                OPUS_CLOCK as u32
            } else {
                head.input_rate
            },
            pcm: vec![0.0; MAX_PACKET_FRAMES * channels],
            skip_left: to_16k(pre_skip_48k),
            pre_skip_48k,
            gain: 10f32.powf(f32::from(head.output_gain) / (20.0 * 256.0)),
            emitted: 0,
            last_frame: DEFAULT_FRAME,
            stats: PacketStats::default(),
        })
    }

    /// The encoder's input rate, reported as the file's source rate.
    pub(crate) fn source_rate(&self) -> u32 {
        self.source_rate
    }

    /// Decodes one packet. `end_granule` is the 48 kHz granule position at which
    /// the stream ends (from the last Ogg page); output past it is encoder padding.
    pub(crate) fn decode_packet(
        &mut self,
        packet: &[u8],
        end_granule: Option<u64>,
        sink: &mut MonoSink,
    ) -> Result<(), DspError> {
        let frames = match self.decode_raw(packet, MAX_PACKET_FRAMES) {
            Ok(frames) => {
                self.stats.good += 1;
                if frames > 0 {
                    self.last_frame = frames;
                }
                frames
            }
            Err(e) => {
                // Conceal the lost frame so later audio keeps its timestamps.
                self.stats.failed += 1;
                tracing::debug!(error = e, "skipping undecodable Opus packet");
                self.decode_raw(&[], self.last_frame).unwrap_or(0)
            }
        };
        let mut start = 0usize;
        if self.skip_left > 0 {
            let skip = usize::try_from(self.skip_left)
                .unwrap_or(usize::MAX)
                .min(frames);
            self.skip_left -= skip as u64;
            start = skip;
        }
        let mut end = frames;
        if let Some(granule) = end_granule {
            let total = to_16k(granule.saturating_sub(self.pre_skip_48k));
            let allowed = total.saturating_sub(self.emitted);
            end = end.min(start + usize::try_from(allowed).unwrap_or(usize::MAX));
        }
        if end <= start {
            return Ok(());
        }
        self.emitted += (end - start) as u64;
        let ch = self.channels;
        let slice = &mut self.pcm[start * ch..end * ch];
        if self.gain != 1.0 {
            slice.iter_mut().for_each(|s| *s *= self.gain);
        }
        sink.push_interleaved(slice, ch, SAMPLE_RATE)
    }

    fn decode_raw(&mut self, packet: &[u8], frame_size: usize) -> Result<usize, &'static str> {
        let frame_size = frame_size.min(MAX_PACKET_FRAMES);
        match &mut self.inner {
            Inner::Single(d) => d.decode(packet, frame_size, &mut self.pcm),
            Inner::Multi(d) => {
                // The multistream wrapper has no packet-loss path: conceal with silence.
                if packet.is_empty() {
                    self.pcm[..frame_size * self.channels].fill(0.0);
                    return Ok(frame_size);
                }
                d.decode(packet, frame_size, &mut self.pcm)
            }
        }
    }
}

/// 48 kHz sample count → 16 kHz, rounded.
fn to_16k(samples_48k: u64) -> u64 {
    (samples_48k * u64::from(SAMPLE_RATE) + OPUS_CLOCK / 2) / OPUS_CLOCK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_bytes(channels: u8, family: u8, tail: &[u8]) -> Vec<u8> {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, channels]);
        head.extend_from_slice(&312u16.to_le_bytes());
        head.extend_from_slice(&44_100u32.to_le_bytes());
        head.extend_from_slice(&(-256i16).to_le_bytes());
        head.push(family);
        head.extend_from_slice(tail);
        head
    }

    #[test]
    fn parses_family_0_header() {
        let head = OpusHead::parse(&head_bytes(2, 0, &[])).expect("valid header");
        assert_eq!(head.channels, 2);
        assert_eq!(head.pre_skip, 312);
        assert_eq!(head.input_rate, 44_100);
        assert_eq!(head.output_gain, -256);
        assert!(head.mapping.is_none());
        let stream = OpusStream::new(&head).expect("decoder");
        assert_eq!(stream.skip_left, 104);
        assert!((stream.gain - 10f32.powf(-1.0 / 20.0)).abs() < 1e-6);
    }

    #[test]
    fn parses_mapping_table_and_rejects_bad_headers() {
        let head = OpusHead::parse(&head_bytes(3, 1, &[2, 1, 0, 1, 2])).expect("valid header");
        assert_eq!(head.mapping.as_ref().map(|m| m.stream_count), Some(2));
        assert!(OpusStream::new(&head).is_ok());
        assert!(OpusHead::parse(&head_bytes(3, 1, &[2])).is_err());
        assert!(OpusHead::parse(&head_bytes(3, 0, &[])).is_err());
        assert!(OpusHead::parse(&head_bytes(0, 0, &[])).is_err());
        assert!(OpusHead::parse(b"OpusHead").is_err());
        assert!(OpusHead::parse(&head_bytes(1, 0, &[])[..18]).is_err());
    }

    #[test]
    fn converts_48k_counts() {
        assert_eq!(to_16k(312), 104);
        assert_eq!(to_16k(960), 320);
        assert_eq!(to_16k(1), 0);
        assert_eq!(to_16k(2), 1);
    }
}
