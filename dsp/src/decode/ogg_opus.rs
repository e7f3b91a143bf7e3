//! Ogg Opus (RFC 7845): `ogg` demuxes, [`OpusStream`] decodes at 16 kHz.
//!
//! Only the first Opus logical stream is decoded; other multiplexed streams are
//! ignored. The end-of-stream page's granule position trims the encoder's padding
//! (without it a file gains ~216 samples, DESIGN §3).

use std::io::{Read, Seek};

use ogg::PacketReader;

use crate::decode::opus::{OpusHead, OpusStream};
use crate::decode::sink::MonoSink;
use crate::decode::PacketStats;
use crate::error::DspError;

/// Whether the first Ogg page's first packet is an `OpusHead` (vs Vorbis/FLAC,
/// which symphonia decodes).
pub(crate) fn is_ogg_opus(head: &[u8]) -> bool {
    let Some(&segments) = head.get(26) else {
        return false;
    };
    let start = 27 + usize::from(segments);
    head.get(start..start + 8) == Some(b"OpusHead".as_slice())
}

/// Decodes the first Opus stream of an Ogg file into `sink`.
pub(crate) fn decode<R: Read + Seek>(
    reader: R,
    sink: &mut MonoSink,
) -> Result<PacketStats, DspError> {
    let mut packets = PacketReader::new(reader);
    let mut stream: Option<(u32, OpusStream)> = None;
    let mut tags_pending = false;
    loop {
        let packet = match packets.read_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(e) => match &stream {
                Some((_, s)) if s.stats.good > 0 => {
                    tracing::warn!(error = %e, "Ogg stream ends in unreadable data; keeping what decoded");
                    break;
                }
                _ => return Err(DspError::corrupt(format!("ogg: {e}"))),
            },
        };
        match &mut stream {
            None => {
                if packet.data.starts_with(b"OpusHead") {
                    let head = OpusHead::parse(&packet.data)?;
                    let opus = OpusStream::new(&head)?;
                    sink.set_source_format(opus.source_rate(), u16::from(head.channels));
                    stream = Some((packet.stream_serial(), opus));
                    tags_pending = true;
                }
            }
            Some((serial, opus)) => {
                if packet.stream_serial() != *serial {
                    continue;
                }
                if tags_pending {
                    // The second packet is OpusTags (metadata), not audio.
                    tags_pending = false;
                    if packet.data.starts_with(b"OpusTags") {
                        continue;
                    }
                }
                let end = packet.last_in_stream().then(|| packet.absgp_page());
                opus.decode_packet(&packet.data, end, sink)?;
                if packet.last_in_stream() {
                    break;
                }
            }
        }
    }
    match stream {
        Some((_, opus)) => Ok(opus.stats),
        None => Err(DspError::NoAudio),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_opus_from_vorbis() {
        let mut page = b"OggS\x00\x02".to_vec();
        page.resize(26, 0);
        page.push(1); // one segment
        page.push(19);
        let mut opus = page.clone();
        opus.extend_from_slice(b"OpusHead\x01\x01");
        let mut vorbis = page;
        vorbis.extend_from_slice(b"\x01vorbis\x00\x00");
        assert!(is_ogg_opus(&opus));
        assert!(!is_ogg_opus(&vorbis));
        assert!(!is_ogg_opus(b"OggS"));
    }
}
