//! Raw PCM from live streams: signed 16-bit little-endian bytes in frames of any size.
//!
//! Clients forward whatever chunks their audio stack produces, odd lengths included
//! (PROTOCOL §3.3), so a sample may straddle two frames: the assembler keeps the odd
//! byte and joins it with the next frame.

/// Converts s16le byte frames to f32 samples in −1..1, carrying an odd trailing byte.
#[derive(Debug, Default, Clone)]
pub struct PcmAssembler {
    carry: Option<u8>,
}

impl PcmAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The samples completed by `bytes` (an empty frame is a no-op).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<f32> {
        let mut samples = Vec::with_capacity(bytes.len().div_ceil(2));
        let mut rest = bytes;
        if let Some(low) = self.carry.take() {
            match rest.split_first() {
                Some((&high, tail)) => {
                    samples.push(sample(low, high));
                    rest = tail;
                }
                None => {
                    self.carry = Some(low);
                    return samples;
                }
            }
        }
        let mut pairs = rest.chunks_exact(2);
        samples.extend(pairs.by_ref().map(|p| sample(p[0], p[1])));
        self.carry = pairs.remainder().first().copied();
        samples
    }

    /// Whether half a sample is waiting for the next frame.
    pub fn has_carry(&self) -> bool {
        self.carry.is_some()
    }
}

fn sample(low: u8, high: u8) -> f32 {
    f32::from(i16::from_le_bytes([low, high])) / 32_768.0
}

/// Decodes a whole s16le buffer (e.g. one base64 `append` of the OpenAI realtime API).
pub fn s16le_to_f32(bytes: &[u8]) -> Vec<f32> {
    PcmAssembler::new().push(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_frames_are_joined_across_boundaries() {
        let values: [i16; 4] = [0, 16_384, -32_768, 32_767];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut whole = PcmAssembler::new();
        let expected = whole.push(&bytes);
        assert_eq!(expected, vec![0.0, 0.5, -1.0, 32_767.0 / 32_768.0]);
        for split in [1usize, 3, 5, 7] {
            let mut a = PcmAssembler::new();
            let mut got = a.push(&bytes[..split]);
            assert!(a.has_carry());
            assert!(a.push(&[]).is_empty());
            got.extend(a.push(&bytes[split..]));
            assert_eq!(got, expected, "split at {split}");
            assert!(!a.has_carry());
        }
        let mut bytewise = PcmAssembler::new();
        let got: Vec<f32> = bytes.iter().flat_map(|b| bytewise.push(&[*b])).collect();
        assert_eq!(got, expected);
    }
}
