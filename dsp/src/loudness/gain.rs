//! The dynamic gain: per-frame gains that bring each neighbourhood of the audio toward
//! the preset's loudness target, and their application to the samples.
//!
//! From the K-weighted loudness of 100 ms frames ([`super::meter`]):
//! 1. Frames at or below the silence gate are inactive: they add nothing to any level
//!    estimate.
//! 2. The local level of frame k is the gaussian-weighted mean *energy* of the active
//!    frames around it (σ = `smoothing_sigma_ms`, kernel ±3σ). Averaging energy, not
//!    dB, keeps short pauses and breaths from dragging the estimate down.
//! 3. The raw gain is `strength` × (target − local level) + (1 − `strength`) ×
//!    (target − integrated loudness), capped at `max_gain_db`.
//! 4. A backward pass lets gain reductions start `attack_ms` ahead of a loud onset
//!    (look-ahead, on top of the non-causal gaussian, which already sees it coming),
//!    a forward pass lets gain increases follow with the slower `release_ms`. Both
//!    passes only ever lower the gain, so the cap of 3. still holds.
//! 5. Where few frames around k are active, the gain fades toward the fallback (0 dB,
//!    or the global cut for a loud file): silence and an isolated noise floor are
//!    never boosted. The fade comes after 4. so a phrase after a pause starts at its
//!    full gain instead of ramping up from 0 dB with the release.
//!
//! The frame gains are then interpolated linearly (in amplitude) between frame centres
//! and multiplied into the samples in place.

use super::meter::{FrameLevels, FRAME_MS};
use super::PresetParams;

/// Share (gaussian-weighted) of active frames in a neighbourhood from which the full
/// gain applies; below it the gain fades toward the fallback. With σ = 300 ms a silent
/// pause up to ~0.7 s inside speech keeps the speech's gain, the middle of a 1.5 s
/// pause gets 5 % of the boost (in dB), a longer one none.
const ACTIVE_SHARE_FOR_FULL_GAIN: f64 = 0.25;

/// Half-width of the gaussian kernel in standard deviations (the weight beyond is
/// < 1.1 % of the peak).
const KERNEL_SIGMAS: f64 = 3.0;

/// BS.1770's offset between mean-square energy and LUFS.
const LUFS_OFFSET: f64 = -0.691;

/// Gain in dB for each frame of `levels` under `params` (steps 1–5 above). O(frames ×
/// kernel) time, O(frames) memory.
pub fn gain_curve(levels: &FrameLevels, params: &PresetParams) -> Vec<f64> {
    let n = levels.frame_lufs.len();
    let energy: Vec<f64> = levels
        .frame_lufs
        .iter()
        .map(|&l| {
            if l > params.gate_lufs {
                lufs_to_energy(l)
            } else {
                0.0
            }
        })
        .collect();

    let frame_ms = f64::from(FRAME_MS);
    let sigma = f64::from(params.smoothing_sigma_ms) / frame_ms;
    let radius = if sigma > 0.0 {
        (KERNEL_SIGMAS * sigma).ceil() as usize
    } else {
        0
    };
    let kernel: Vec<f64> = (0..=radius)
        .map(|d| {
            if radius == 0 {
                1.0
            } else {
                (-0.5 * (d as f64 / sigma).powi(2)).exp()
            }
        })
        .collect();

    let global_gain = levels.integrated_lufs.map(|l| params.target_lufs - l);
    // Where nothing is active: never a boost, but a loud file's global cut still applies
    // so its noise floor does not stand out between the turned-down passages.
    let fallback = global_gain.map_or(0.0, |g| g.min(0.0));

    // Steps 2–3, and each frame's share of active frames around it.
    let mut level_gains: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut presence: Vec<f64> = Vec::with_capacity(n);
    for k in 0..n {
        let lo = k.saturating_sub(radius);
        let hi = (k + radius).min(n - 1);
        let (mut w_all, mut w_active, mut w_energy) = (0.0, 0.0, 0.0);
        for (j, &e) in energy.iter().enumerate().take(hi + 1).skip(lo) {
            let w = kernel[j.abs_diff(k)];
            w_all += w;
            if e > 0.0 {
                w_active += w;
                w_energy += w * e;
            }
        }
        level_gains.push((w_active > 0.0).then(|| {
            let local_gain = params.target_lufs - energy_to_lufs(w_energy / w_active);
            match global_gain {
                Some(global) => params.strength * local_gain + (1.0 - params.strength) * global,
                None => local_gain,
            }
            .min(params.max_gain_db)
        }));
        presence.push((w_active / w_all / ACTIVE_SHARE_FOR_FULL_GAIN).min(1.0));
    }
    // Frames with nothing active in reach borrow the nearest level-driven gain; step 5
    // fades them to the fallback anyway, but the ramps of step 4 must not start from
    // the fallback, or every phrase after a pause would begin under-boosted.
    let mut gains = fill_gaps(&level_gains, fallback);

    // Step 4. Look-ahead attack: walking backward from a turned-down frame, the gain
    // recovers with the attack constant, so forward in time it falls before the onset.
    let attack = smoothing_coeff(frame_ms, f64::from(params.attack_ms));
    for k in (0..n.saturating_sub(1)).rev() {
        let next = gains[k + 1];
        if gains[k] > next {
            gains[k] = next + attack * (gains[k] - next);
        }
    }
    // Release: after a loud passage the gain comes back up slowly.
    let release = smoothing_coeff(frame_ms, f64::from(params.release_ms));
    for k in 1..n {
        let prev = gains[k - 1];
        if gains[k] > prev {
            gains[k] = prev + release * (gains[k] - prev);
        }
    }

    // Step 5: fade toward the fallback where few frames are active.
    for (gain, &share) in gains.iter_mut().zip(&presence) {
        *gain = fallback + (*gain - fallback) * share;
    }
    gains
}

/// `known` with each `None` replaced by the nearest earlier value (the first known
/// value for leading gaps); all `fallback` when nothing is known.
fn fill_gaps(known: &[Option<f64>], fallback: f64) -> Vec<f64> {
    let first = known.iter().flatten().next().copied().unwrap_or(fallback);
    let mut last = first;
    known
        .iter()
        .map(|value| {
            if let Some(v) = value {
                last = *v;
            }
            last
        })
        .collect()
}

/// Multiplies the samples by the frame gains (dB), linearly interpolated in amplitude
/// between frame centres and held before the first and after the last centre. Returns
/// the largest absolute sample afterwards, so the caller can skip the limiter.
pub fn apply_curve(samples: &mut [f32], gains_db: &[f64], hop: usize) -> f32 {
    let linear: Vec<f32> = gains_db
        .iter()
        .map(|&g| db_to_amplitude(g) as f32)
        .collect();
    let (Some(&first), Some(&last)) = (linear.first(), linear.last()) else {
        return peak(samples);
    };
    let hop = hop.max(1);
    let half = hop / 2;
    let mut peak_abs = 0.0f32;

    let head_end = half.min(samples.len());
    let (head, mut rest) = samples.split_at_mut(head_end);
    peak_abs = peak_abs.max(scale(head, first));
    for pair in linear.windows(2) {
        if rest.is_empty() {
            break;
        }
        let (segment, tail) = rest.split_at_mut(hop.min(rest.len()));
        let (from, to) = (pair[0], pair[1]);
        let step = (to - from) / hop as f32;
        for (i, sample) in segment.iter_mut().enumerate() {
            *sample *= from + step * i as f32;
            peak_abs = peak_abs.max(sample.abs());
        }
        rest = tail;
    }
    peak_abs.max(scale(rest, last))
}

fn scale(samples: &mut [f32], gain: f32) -> f32 {
    let mut peak_abs = 0.0f32;
    for sample in samples.iter_mut() {
        *sample *= gain;
        peak_abs = peak_abs.max(sample.abs());
    }
    peak_abs
}

fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0.0f32, |m, s| m.max(s.abs()))
}

/// One-pole coefficient for a time constant of `tau_ms` at a step of `step_ms`
/// (1 = follow at once).
fn smoothing_coeff(step_ms: f64, tau_ms: f64) -> f64 {
    if tau_ms <= 0.0 {
        1.0
    } else {
        1.0 - (-step_ms / tau_ms).exp()
    }
}

fn lufs_to_energy(lufs: f64) -> f64 {
    10f64.powf((lufs - LUFS_OFFSET) / 10.0)
}

fn energy_to_lufs(energy: f64) -> f64 {
    LUFS_OFFSET + 10.0 * energy.log10()
}

/// dB to an amplitude factor.
pub fn db_to_amplitude(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loudness::LoudnessPreset;

    fn params() -> PresetParams {
        LoudnessPreset::Dynamic
            .params()
            .unwrap_or_else(|| panic!("dynamic has params"))
    }

    fn levels(frame_lufs: Vec<f64>, integrated_lufs: Option<f64>) -> FrameLevels {
        FrameLevels {
            hop: 1_600,
            frame_lufs,
            integrated_lufs,
        }
    }

    #[test]
    fn steady_level_goes_to_the_target() {
        let p = params();
        let gains = gain_curve(&levels(vec![-40.0; 100], Some(-40.0)), &p);
        for g in &gains {
            assert!((g - (p.target_lufs + 40.0)).abs() < 1e-6, "{g}");
        }
    }

    #[test]
    fn boost_is_capped() {
        let p = params();
        let gains = gain_curve(&levels(vec![-59.0; 50], Some(-59.0)), &p);
        assert!(gains.iter().all(|&g| (g - p.max_gain_db).abs() < 1e-9));
    }

    #[test]
    fn silence_and_gated_frames_get_no_boost() {
        let p = params();
        let gains = gain_curve(&levels(vec![f64::NEG_INFINITY; 30], None), &p);
        assert!(gains.iter().all(|&g| g == 0.0));
        let gains = gain_curve(&levels(vec![-75.0; 30], None), &p);
        assert!(gains.iter().all(|&g| g == 0.0));
        // Quiet speech, then 6 s of sub-gate noise: the middle of the gap is not boosted.
        let mut frames = vec![-45.0; 40];
        frames.extend(vec![-72.0; 60]);
        frames.extend(vec![-45.0; 40]);
        let gains = gain_curve(&levels(frames, Some(-45.0)), &p);
        assert!((gains[20] - 25.0).abs() < 0.1, "{}", gains[20]);
        assert!(gains[70].abs() < 0.5, "{}", gains[70]);
    }

    #[test]
    fn gain_falls_before_a_loud_onset_and_recovers_slowly() {
        let p = params();
        // 10 s at −50 LUFS, then 10 s at −20 LUFS, then 10 s at −50 LUFS.
        let mut frames = vec![-50.0; 100];
        frames.extend(vec![-20.0; 100]);
        frames.extend(vec![-50.0; 100]);
        let gains = gain_curve(&levels(frames, Some(-21.0)), &p);
        assert!((gains[50] - 30.0).abs() < 0.1);
        assert!((gains[150] - 0.0).abs() < 0.1);
        // Look-ahead: the gain is mostly down half a second before the onset and within
        // 3 dB of the loud passage's gain when it arrives (measured: 10.4 and 2.0 dB).
        assert!(gains[95] < 15.0, "{}", gains[95]);
        assert!(gains[100] < 3.0, "{}", gains[100]);
        // Attack faster than release: the rise after the loud passage lags the mirror
        // image of the fall before it (e.g. 5.5 dB 0.5 s after vs 10.4 dB 0.5 s before).
        for d in 1..=10 {
            assert!(
                gains[199 + d] < gains[100 - d],
                "{d}: {} vs {}",
                gains[199 + d],
                gains[100 - d]
            );
        }
        assert!(gains[250] > 29.0, "never recovered: {}", gains[250]);
    }

    #[test]
    fn gain_is_interpolated_between_frame_centres() {
        let mut x = vec![1.0f32; 4_000];
        let peak = apply_curve(&mut x, &[0.0, 20.0], 1_600);
        assert_eq!(x[0], 1.0);
        assert_eq!(x[799], 1.0);
        assert!((x[800 + 800] - 5.5).abs() < 1e-3, "{}", x[1_600]);
        assert!((x[2_400] - 10.0).abs() < 1e-4);
        assert!((x[3_999] - 10.0).abs() < 1e-4);
        assert!((peak - 10.0).abs() < 1e-4);
        // Tiny inputs and empty curves do not panic.
        let mut tiny = vec![0.5f32; 3];
        assert_eq!(apply_curve(&mut tiny, &[6.0], 1_600), tiny[0]);
        assert_eq!(apply_curve(&mut [], &[], 1_600), 0.0);
    }
}
