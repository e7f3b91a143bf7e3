//! A look-ahead peak limiter that works in place with O(look-ahead) memory.
//!
//! For every sample the gain it needs is `ceiling / |x|` (1 below the ceiling). That
//! need is held for `lookahead` samples by a sliding minimum, relaxed toward 1 with a
//! one-pole release, and averaged over the last `lookahead` values; the output is
//! delayed by `lookahead − 1` samples. Each peak therefore sees a smooth gain ramp of
//! `lookahead` samples that ends at or below its need when it arrives, so no sample
//! leaves above the ceiling and no gain step is audible.
//!
//! The delay costs no copy of the signal: sample `n − lookahead + 1` is written at
//! step n, after sample n has been read, and nothing is read twice.

use std::collections::VecDeque;

/// How much limiting happened, for the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterStats {
    /// Lowest gain applied to any sample (1 = untouched).
    pub min_gain: f64,
}

/// Limits `samples` in place to `ceiling` (absolute sample value).
///
/// `lookahead` is the ramp length in samples (at least 1); `release_coeff` is the
/// per-sample one-pole coefficient (0 < c ≤ 1) with which the gain recovers.
pub fn limit_in_place(
    samples: &mut [f32],
    ceiling: f32,
    lookahead: usize,
    release_coeff: f64,
) -> LimiterStats {
    let len = samples.len();
    let lookahead = lookahead.max(1);
    let ceiling = f64::from(ceiling.max(f32::MIN_POSITIVE));
    let release_coeff = release_coeff.clamp(f64::MIN_POSITIVE, 1.0);

    // Sliding minimum of the needed gain over the last `lookahead` steps: (step, gain)
    // with gains increasing from front to back.
    let mut minima: VecDeque<(usize, f64)> = VecDeque::with_capacity(lookahead + 1);
    // The last `lookahead` released gains, their sum (the averaging window) and how
    // many of them are below 1: when none is, the gain is exactly 1 and the running
    // sum is reset, so rounding never touches an unlimited stretch.
    let mut window = vec![1.0f64; lookahead];
    let mut window_sum = lookahead as f64;
    let mut below_one = 0usize;
    let mut released = 1.0f64;
    let mut min_gain = 1.0f64;
    let ceiling_f32 = ceiling as f32;

    for step in 0..len + lookahead - 1 {
        let x = samples.get(step).map_or(0.0, |&s| f64::from(s).abs());
        let need = if x > ceiling { ceiling / x } else { 1.0 };
        while minima.back().is_some_and(|&(_, g)| g >= need) {
            minima.pop_back();
        }
        minima.push_back((step, need));
        while minima.front().is_some_and(|&(i, _)| i + lookahead <= step) {
            minima.pop_front();
        }
        let held = minima.front().map_or(1.0, |&(_, g)| g);

        released = if held < released {
            held
        } else {
            // Snap the last ulps so the gain returns to exactly 1.
            let next = released + release_coeff * (held - released);
            if held - next < 1e-9 {
                held
            } else {
                next
            }
        };
        let slot = step % lookahead;
        below_one = below_one + usize::from(released < 1.0) - usize::from(window[slot] < 1.0);
        window_sum += released - window[slot];
        window[slot] = released;
        if below_one == 0 {
            window_sum = lookahead as f64;
            continue;
        }

        if let Some(out) = (step + 1).checked_sub(lookahead) {
            let gain = (window_sum / lookahead as f64).min(1.0);
            if let Some(sample) = samples.get_mut(out) {
                // The clamp only absorbs rounding in the running sum.
                *sample = ((f64::from(*sample) * gain) as f32).clamp(-ceiling_f32, ceiling_f32);
                min_gain = min_gain.min(gain);
            }
        }
    }
    LimiterStats { min_gain }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peak(x: &[f32]) -> f32 {
        x.iter().fold(0.0f32, |m, s| m.max(s.abs()))
    }

    #[test]
    fn below_the_ceiling_is_bit_exact() {
        let original: Vec<f32> = (0..5_000)
            .map(|i| ((i as f32) * 0.01).sin() * 0.8)
            .collect();
        let mut x = original.clone();
        let stats = limit_in_place(&mut x, 0.85, 80, 0.001);
        assert_eq!(x, original);
        assert_eq!(stats.min_gain, 1.0);
    }

    #[test]
    fn peaks_are_held_to_the_ceiling_with_a_smooth_ramp() {
        let mut x = vec![0.1f32; 2_000];
        x[1_000] = 2.0;
        x[1_001] = -1.5;
        let stats = limit_in_place(&mut x, 0.5, 80, 0.05);
        assert!(peak(&x) <= 0.5, "{}", peak(&x));
        assert!((x[1_000] - 0.5).abs() < 1e-6, "{}", x[1_000]);
        assert!((stats.min_gain - 0.25).abs() < 1e-9);
        // The ramp starts `lookahead` samples before the peak, not earlier.
        assert_eq!(x[1_000 - 81], 0.1);
        assert!(x[1_000 - 40] < 0.1 && x[1_000 - 40] > 0.025);
        // Neighbouring gains never jump by more than one ramp step.
        let steps = x[900..1_000].windows(2).map(|w| (w[1] - w[0]).abs());
        assert!(steps.fold(0.0f32, f32::max) < 0.1 * 0.75 / 80.0 * 1.01);
        // Released (τ = 20 samples) and back to exactly 1 long before the end.
        assert!(x[1_100] > 0.09 && x[1_100] < 0.1, "{}", x[1_100]);
        assert_eq!(x[1_999], 0.1);
    }

    #[test]
    fn sustained_overload_and_edges() {
        let mut x: Vec<f32> = (0..3_000)
            .map(|i| if i % 2 == 0 { 3.0 } else { -3.0 })
            .collect();
        limit_in_place(&mut x, 0.9, 64, 0.01);
        assert!(peak(&x) <= 0.9);
        assert!(x.iter().all(|v| v.abs() > 0.89));
        // A peak in the first and in the last sample is caught too.
        let mut y = vec![4.0f32, 0.0, 0.0, -4.0];
        limit_in_place(&mut y, 1.0, 80, 0.01);
        assert!(peak(&y) <= 1.0);
        let mut empty: [f32; 0] = [];
        limit_in_place(&mut empty, 1.0, 80, 0.01);
        let mut one = [2.0f32];
        limit_in_place(&mut one, 1.0, 1, 1.0);
        assert_eq!(one, [1.0]);
    }
}
