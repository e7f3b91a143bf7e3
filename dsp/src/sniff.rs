//! Container detection from the first bytes of an upload.
//!
//! Clients send files with missing or wrong names and content types (PROTOCOL §2.1),
//! so the bytes decide. The result picks the demuxer and gives symphonia's probe a
//! hint; it is never trusted blindly (the probe still checks the stream).

use std::fmt;

/// How many leading bytes [`sniff`] looks at; callers read at least this much.
pub const SNIFF_LEN: usize = 64;

/// The container families Ember tells apart before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// RIFF/WAVE.
    Wav,
    /// Native FLAC (`fLaC`).
    Flac,
    /// MPEG audio, with or without an ID3v2 tag.
    Mp3,
    /// Ogg (Vorbis, Opus, FLAC inside).
    Ogg,
    /// Matroska / WebM (EBML), what browsers' MediaRecorder writes.
    Matroska,
    /// ISO base media (MP4 / M4A / MOV, `ftyp` box).
    Mp4,
    /// Raw AAC in ADTS frames.
    Aac,
    /// None of the above.
    Unknown,
}

impl Container {
    /// A file extension for symphonia's probe hint, `None` when we have no guess.
    pub fn extension_hint(self) -> Option<&'static str> {
        match self {
            Self::Wav => Some("wav"),
            Self::Flac => Some("flac"),
            Self::Mp3 => Some("mp3"),
            Self::Ogg => Some("ogg"),
            Self::Matroska => Some("mkv"),
            Self::Mp4 => Some("m4a"),
            Self::Aac => Some("aac"),
            Self::Unknown => None,
        }
    }

    /// A short lower-case name for logs and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Flac => "flac",
            Self::Mp3 => "mp3",
            Self::Ogg => "ogg",
            Self::Matroska => "matroska",
            Self::Mp4 => "mp4",
            Self::Aac => "aac",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Identifies the container from its magic bytes; pass at least [`SNIFF_LEN`] bytes
/// when the file has them.
pub fn sniff(head: &[u8]) -> Container {
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        return Container::Wav;
    }
    if head.starts_with(b"fLaC") {
        return Container::Flac;
    }
    if head.starts_with(b"OggS") {
        return Container::Ogg;
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Container::Matroska;
    }
    if head.len() >= 8 && &head[4..8] == b"ftyp" {
        return Container::Mp4;
    }
    if head.starts_with(b"ID3") {
        return Container::Mp3;
    }
    if head.len() >= 2 && head[0] == 0xFF {
        // ADTS: 12-bit sync, then MPEG id, layer bits 00 (0xFFF1 / 0xFFF9).
        if head[1] & 0xF6 == 0xF0 {
            return Container::Aac;
        }
        // MPEG audio: 11-bit sync and a layer other than the reserved 00.
        if head[1] & 0xE0 == 0xE0 && head[1] & 0x06 != 0 {
            return Container::Mp3;
        }
    }
    Container::Unknown
}

/// Whether the "file" is really a URL: the Fireworks SDK sends a URL string as the
/// file part's bytes (PROTOCOL §2.1.2), and the server fetches it instead.
pub fn looks_like_url(head: &[u8]) -> bool {
    const MAX_URL_LEN: usize = 8192;
    if head.len() > MAX_URL_LEN {
        return false;
    }
    let text = trim_ascii(head);
    let lower_starts = |prefix: &[u8]| {
        text.len() > prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    (lower_starts(b"http://") || lower_starts(b"https://"))
        && text.iter().all(|b| b.is_ascii_graphic())
}

/// The bytes without leading/trailing ASCII whitespace (a trailing newline is common).
fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_magic() {
        assert_eq!(sniff(b"RIFF\x24\x00\x00\x00WAVEfmt "), Container::Wav);
        assert_eq!(sniff(b"RIFF\x24\x00\x00\x00AVI LIST"), Container::Unknown);
        assert_eq!(sniff(b"fLaC\x00\x00\x00\x22"), Container::Flac);
        assert_eq!(sniff(b"ID3\x04\x00\x00"), Container::Mp3);
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Container::Mp3);
        assert_eq!(sniff(&[0xFF, 0xF3, 0x48, 0xC4]), Container::Mp3);
        assert_eq!(sniff(&[0xFF, 0xF1, 0x50, 0x80]), Container::Aac);
        assert_eq!(sniff(&[0xFF, 0xF9, 0x50, 0x80]), Container::Aac);
        assert_eq!(sniff(b"OggS\x00\x02"), Container::Ogg);
        assert_eq!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]), Container::Matroska);
        assert_eq!(sniff(b"\x00\x00\x00\x20ftypM4A "), Container::Mp4);
        assert_eq!(sniff(b""), Container::Unknown);
        assert_eq!(sniff(&[0xFF]), Container::Unknown);
        assert_eq!(sniff(b"hello world, not audio"), Container::Unknown);
    }

    #[test]
    fn extension_hints() {
        assert_eq!(Container::Mp4.extension_hint(), Some("m4a"));
        assert_eq!(Container::Unknown.extension_hint(), None);
        assert_eq!(Container::Matroska.to_string(), "matroska");
    }

    #[test]
    fn urls_are_recognised() {
        assert!(looks_like_url(b"https://example.com/a.mp3"));
        assert!(looks_like_url(b"HTTP://example.com/a.wav\n"));
        assert!(!looks_like_url(b"https://"));
        assert!(!looks_like_url(b"ftp://example.com/a.wav"));
        assert!(!looks_like_url(b"https://example.com/a b.wav"));
        assert!(!looks_like_url(b"RIFF\x24\x00\x00\x00WAVE"));
        let long = [b"https://x/".as_slice(), &[b'a'; 9000]].concat();
        assert!(!looks_like_url(&long));
    }
}
