//! EBU R128 / ITU-R BS.1770 measurement through the `ebur128` crate: the frame levels
//! the dynamic gain is computed from, and the true peak and loudness of the result.
//!
//! Both meters are built by the caller before any sample changes, so the only error
//! the crate can report (an unsupported sample rate) surfaces before the audio is
//! touched.

use ebur128::{EbuR128, Mode};

/// Analysis hop of the dynamic stage, in ms: the block step of BS.1770 gating, so the
/// frame levels come straight out of the meter's own K-weighted buffer.
pub const FRAME_MS: u32 = 100;

/// K-weighted loudness of consecutive [`FRAME_MS`] frames, plus the programme's
/// integrated loudness.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameLevels {
    /// Samples per frame.
    pub hop: usize,
    /// Loudness of each frame in LUFS (`-inf` for digital silence); the last frame may
    /// be shorter than `hop`.
    pub frame_lufs: Vec<f64>,
    /// Gated integrated loudness; `None` when the input is shorter than one 400 ms
    /// gating block or entirely below the −70 LUFS absolute gate.
    pub integrated_lufs: Option<f64>,
}

/// Samples per [`FRAME_MS`] frame at `sample_rate` (what `loudness_window(100)` spans).
pub fn hop_len(sample_rate: u32) -> usize {
    (sample_rate as usize * FRAME_MS as usize / 1000).max(1)
}

/// A meter for [`frame_levels`].
pub fn frame_meter(sample_rate: u32) -> Result<EbuR128, ebur128::Error> {
    EbuR128::new(1, sample_rate, Mode::I)
}

/// A meter for [`output_levels`].
pub fn output_meter(sample_rate: u32) -> Result<EbuR128, ebur128::Error> {
    EbuR128::new(1, sample_rate, Mode::I | Mode::TRUE_PEAK)
}

/// Feeds `samples` to a fresh [`frame_meter`] one frame at a time and reads each
/// frame's loudness from the meter's K-weighted history: one pass, O(frames) memory.
pub fn frame_levels(mut meter: EbuR128, samples: &[f32]) -> Result<FrameLevels, ebur128::Error> {
    let rate = meter.rate();
    let hop = hop_len(rate);
    let mut frame_lufs = Vec::with_capacity(samples.len().div_ceil(hop));
    for chunk in samples.chunks(hop) {
        meter.add_frames_f32(chunk)?;
        let window_ms = if chunk.len() == hop {
            FRAME_MS
        } else {
            // A short last frame: measure only its own length (at least 1 ms).
            let ms = chunk.len() as u64 * 1000 / u64::from(rate);
            u32::try_from(ms).unwrap_or(FRAME_MS).clamp(1, FRAME_MS)
        };
        frame_lufs.push(meter.loudness_window(window_ms)?);
    }
    Ok(FrameLevels {
        hop,
        frame_lufs,
        integrated_lufs: finite(meter.loudness_global()?),
    })
}

/// True peak (dBTP, 4× oversampled below 96 kHz) and integrated loudness (LUFS) of
/// `samples`; each `None` for silence.
pub fn output_levels(
    mut meter: EbuR128,
    samples: &[f32],
) -> Result<(Option<f64>, Option<f64>), ebur128::Error> {
    meter.add_frames_f32(samples)?;
    let peak = meter.true_peak(0)?;
    let true_peak_dbtp = (peak > 0.0).then(|| 20.0 * peak.log10());
    Ok((true_peak_dbtp, finite(meter.loudness_global()?)))
}

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sine(freq: f64, amp: f64, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 16_000.0).sin()) as f32)
            .collect()
    }

    #[test]
    fn frames_follow_the_signal_level() {
        // 1 kHz sine at −20 dBFS peak reads −23.0 LUFS (BS.1770: a full-scale 1 kHz sine
        // is −3.01 LUFS); 1 s of it, then 1 s of silence, then 250 ms of it.
        let mut x = sine(1_000.0, 0.1, 16_000);
        x.extend(std::iter::repeat_n(0.0, 16_000));
        x.extend(sine(1_000.0, 0.1, 4_000));
        let levels = frame_levels(frame_meter(16_000).unwrap(), &x).unwrap();
        assert_eq!(levels.hop, 1_600);
        assert_eq!(levels.frame_lufs.len(), 23);
        for l in &levels.frame_lufs[1..10] {
            assert!((l + 23.0).abs() < 0.1, "{l}");
        }
        for l in &levels.frame_lufs[11..20] {
            assert!(*l < -70.0, "{l}");
        }
        // The short last frame (50 ms) is measured over its own length.
        let last = levels.frame_lufs[22];
        assert!((last + 23.0).abs() < 0.5, "{last}");
        // 400 ms gating blocks that straddle the silence pass the −10 LU relative gate
        // and pull the integrated value about 1 LU under the tone's level.
        let integrated = levels.integrated_lufs.unwrap();
        assert!((-25.0..-23.0).contains(&integrated), "{integrated}");
    }

    #[test]
    fn silence_and_short_inputs_have_no_integrated_loudness() {
        let levels = frame_levels(frame_meter(16_000).unwrap(), &[0.0; 20_000]).unwrap();
        assert_eq!(levels.integrated_lufs, None);
        let levels = frame_levels(frame_meter(16_000).unwrap(), &sine(440.0, 0.5, 3)).unwrap();
        assert_eq!(levels.frame_lufs.len(), 1);
        assert_eq!(levels.integrated_lufs, None);
        let (tp, lufs) = output_levels(output_meter(16_000).unwrap(), &[0.0; 100]).unwrap();
        assert_eq!((tp, lufs), (None, None));
    }

    #[test]
    fn true_peak_sees_between_samples() {
        // fs/4 sampled at 45°: every sample is ±0.707 of the true peak (−3 dB).
        let x: Vec<f32> = (0..16_000)
            .map(|i| {
                (0.5 * (std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4).sin())
                    as f32
            })
            .collect();
        let (tp, _) = output_levels(output_meter(16_000).unwrap(), &x).unwrap();
        let tp = tp.unwrap();
        assert!((tp - 20.0 * 0.5f64.log10()).abs() < 0.3, "{tp}");
    }
}
