//! Server-side loudness preprocessing: the Fireworks `preprocessing` parameter
//! (`none`, `dynamic`, `soft_dynamic`, `bass_dynamic`; PROTOCOL.md §2 field table).
//!
//! Runs on the 16 kHz mono samples after resampling, in place, with side buffers of
//! O(frames) (100 ms frames) and O(look-ahead) only. The chain per preset:
//!
//! 1. `bass_dynamic` only: an RBJ low shelf ([`biquad`]).
//! 2. One EBU R128 pass ([`meter`]): K-weighted loudness of each 100 ms frame and the
//!    integrated loudness.
//! 3. The dynamic gain ([`gain`]): each neighbourhood toward the target loudness,
//!    silence never boosted, look-ahead attack and slower release.
//! 4. A look-ahead peak limiter ([`limiter`]) at [`LIMITER_CEILING_DBFS`], skipped when
//!    no sample is above it.
//! 5. A second EBU R128 pass measures the true peak (4× oversampled) and output
//!    loudness; if the true peak is above [`TRUE_PEAK_CEILING_DBTP`] one global trim
//!    brings it under. The output never exceeds −1 dBTP.

pub mod biquad;
pub mod gain;
pub mod limiter;
pub mod meter;

use biquad::Biquad;

/// The ceiling every preset guarantees on the output's true peak (EBU R128's
/// recommended maximum), so nothing downstream ever sees a clipped sample.
pub const TRUE_PEAK_CEILING_DBTP: f64 = -1.0;

/// The limiter's sample-peak ceiling: 0.5 dB under [`TRUE_PEAK_CEILING_DBTP`] to leave
/// room for the inter-sample overshoot of band-limited speech, so the global trim
/// stays a rare backstop.
pub const LIMITER_CEILING_DBFS: f64 = -1.5;

/// Limiter look-ahead (= gain ramp length): 5 ms ramps are inaudible on speech and
/// short enough not to duck the syllable before a transient.
pub const LIMITER_LOOKAHEAD_MS: f64 = 5.0;

/// Limiter release time constant: 80 ms recovers between syllables without the
/// distortion of a release shorter than a pitch period.
pub const LIMITER_RELEASE_MS: f64 = 80.0;

/// How far under the ceiling the global trim aims, so float rounding cannot land a
/// trimmed peak a hair above it.
const TRIM_MARGIN_DB: f64 = 0.05;

/// A wire `preprocessing` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoudnessPreset {
    /// Samples pass through bit-exact.
    #[default]
    None,
    /// Arbitrary audio with variable loudness: full dynamic normalisation.
    Dynamic,
    /// Already mastered speech (podcasts, voice-overs): the same engine, gentler.
    SoftDynamic,
    /// A low-shelf bass boost, then `Dynamic`.
    BassDynamic,
}

impl LoudnessPreset {
    /// Every preset, in wire order.
    pub const ALL: [Self; 4] = [
        Self::None,
        Self::Dynamic,
        Self::SoftDynamic,
        Self::BassDynamic,
    ];

    /// The wire name (for logs and bench ids).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Dynamic => "dynamic",
            Self::SoftDynamic => "soft_dynamic",
            Self::BassDynamic => "bass_dynamic",
        }
    }

    /// The processing parameters; `None` for [`LoudnessPreset::None`].
    pub fn params(self) -> Option<PresetParams> {
        // Shared by `dynamic` and `bass_dynamic`.
        let dynamic = PresetParams {
            // Between broadcast (−23) and podcast (−16…−19) targets: ~19 dB of peak
            // headroom to −1 dBTP, more than speech's usual peak-to-loudness ratio, so
            // the limiter only catches outliers.
            target_lufs: -20.0,
            // Variable-loudness audio: every neighbourhood all the way to the target.
            strength: 1.0,
            // ±0.9 s of context (3σ): bridges the pauses between words, yet follows a
            // change of speaker or microphone distance within about a second.
            smoothing_sigma_ms: 300,
            // Gain is already down when a loud onset arrives…
            attack_ms: 100,
            // …and comes back up more slowly after it (τ 0.4 s), so a loud word does
            // not leave the next syllables pumping.
            release_ms: 400,
            // Lifts speech down to −55 LUFS (30 dB quieter than normal) to the target.
            max_gain_db: 35.0,
            // Below −60 LUFS (≈ −60 dBFS RMS of broadband noise) a frame is treated as
            // silence: it never sets the level and is never boosted on its own.
            gate_lufs: -60.0,
            bass_shelf: None,
        };
        match self {
            Self::None => None,
            Self::Dynamic => Some(dynamic),
            Self::SoftDynamic => Some(PresetParams {
                // Same target: mastered speech should come out as loud as `dynamic`'s.
                target_lufs: -20.0,
                // Half global normalisation, half local: a mastered programme keeps half
                // of its loudness variation (in dB).
                strength: 0.5,
                // ±6 s of context: follows segments (a guest's turn), not sentences;
                // on shorter stretches it acts like one global gain.
                smoothing_sigma_ms: 2_000,
                // Slower ramps both ways: a master's own dynamics are intended.
                attack_ms: 300,
                release_ms: 1_500,
                // Enough to bring a quiet master (−40 LUFS) to the target, while a
                // smaller cap than `dynamic`'s keeps room tone and music beds down.
                max_gain_db: 20.0,
                // Same silence gate as `dynamic`.
                gate_lufs: -60.0,
                bass_shelf: None,
            }),
            Self::BassDynamic => Some(PresetParams {
                bass_shelf: Some(BassShelf {
                    // Midpoint of the shelf: the 60–200 Hz voice fundamentals and chest
                    // resonance get +5.6…+8 dB, 500 Hz +0.5 dB, 1 kHz and up < 0.05 dB.
                    freq_hz: 250.0,
                    // Clearly audible, but +8 dB on the bass of a full-scale input is
                    // still well inside what the dynamic stage and limiter absorb.
                    gain_db: 8.0,
                    // The cookbook's steepest slope without a bump above the corner.
                    slope: 1.0,
                }),
                ..dynamic
            }),
        }
    }
}

/// The knobs of the dynamic engine (see [`gain`] for how each is used).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PresetParams {
    /// Loudness each neighbourhood is steered toward, in LUFS.
    pub target_lufs: f64,
    /// 1 = every neighbourhood to the target (full dynamic range normalisation);
    /// 0 = one global gain from the integrated loudness; in between, a mix in dB.
    pub strength: f64,
    /// Standard deviation of the gaussian that averages frame energies into the
    /// local level, in ms (the kernel spans ±3σ).
    pub smoothing_sigma_ms: u32,
    /// Time constant with which the gain falls ahead of a louder passage, in ms.
    pub attack_ms: u32,
    /// Time constant with which the gain rises after a louder passage, in ms.
    pub release_ms: u32,
    /// The largest boost ever applied, in dB.
    pub max_gain_db: f64,
    /// Frames at or below this K-weighted loudness (LUFS) count as silence.
    pub gate_lufs: f64,
    /// The low shelf applied before everything else (`bass_dynamic`).
    pub bass_shelf: Option<BassShelf>,
}

/// An RBJ low shelf (see [`Biquad::low_shelf`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BassShelf {
    /// Shelf midpoint in Hz (gain there is half of `gain_db`).
    pub freq_hz: f64,
    /// Gain well below `freq_hz`, in dB.
    pub gain_db: f64,
    /// Cookbook shelf slope S (1 = steepest without overshoot).
    pub slope: f64,
}

/// What preprocessing did, for the debug log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoudnessReport {
    /// Integrated loudness (LUFS) the dynamic stage measured (after the bass shelf for
    /// `bass_dynamic`); `None` for `none`, silence, or input shorter than 400 ms.
    pub input_lufs: Option<f64>,
    /// Integrated loudness of the output (LUFS).
    pub output_lufs: Option<f64>,
    /// True peak of the output (dBTP), ≤ [`TRUE_PEAK_CEILING_DBTP`]; `None` for silence.
    pub output_true_peak_dbtp: Option<f64>,
    /// Largest dynamic gain applied to any frame, in dB (before limiter and trim).
    pub max_gain_db_applied: f64,
    /// Smallest dynamic gain applied to any frame, in dB.
    pub min_gain_db_applied: f64,
    /// Deepest gain reduction of the peak limiter, in dB (0 = it did nothing).
    pub limiter_max_reduction_db: f64,
    /// Global gain of the final true-peak trim, in dB (0 = none was needed).
    pub trim_db: f64,
}

/// Applies `preset` in place to mono `samples` at `sample_rate`; `None` leaves the
/// samples bit-exact untouched, as does an empty slice. At a rate the meter cannot
/// handle (below 16 Hz) the samples are left untouched and a warning logged.
pub fn apply_preset(
    preset: LoudnessPreset,
    samples: &mut [f32],
    sample_rate: u32,
) -> LoudnessReport {
    match preset.params() {
        Some(params) => apply_params(&params, samples, sample_rate),
        None => LoudnessReport::default(),
    }
}

/// [`apply_preset`] with explicit parameters (for tuning and tests).
pub fn apply_params(
    params: &PresetParams,
    samples: &mut [f32],
    sample_rate: u32,
) -> LoudnessReport {
    if samples.is_empty() {
        return LoudnessReport::default();
    }
    match process(params, samples, sample_rate) {
        Ok(report) => report,
        Err(err) => {
            tracing::warn!(%err, sample_rate, "loudness preprocessing skipped");
            LoudnessReport::default()
        }
    }
}

fn process(
    params: &PresetParams,
    samples: &mut [f32],
    sample_rate: u32,
) -> Result<LoudnessReport, ebur128::Error> {
    // Both meters first: an unsupported rate fails here, before any sample changes.
    let frame_meter = meter::frame_meter(sample_rate)?;
    let output_meter = meter::output_meter(sample_rate)?;

    if let Some(shelf) = params.bass_shelf {
        Biquad::low_shelf(sample_rate, shelf.freq_hz, shelf.gain_db, shelf.slope)
            .process_in_place(samples);
    }

    let levels = meter::frame_levels(frame_meter, samples)?;
    let gains = gain::gain_curve(&levels, params);
    let peak = gain::apply_curve(samples, &gains, levels.hop);

    let rate = f64::from(sample_rate);
    let ceiling = gain::db_to_amplitude(LIMITER_CEILING_DBFS) as f32;
    let limiter_min_gain = if peak > ceiling {
        let lookahead = (LIMITER_LOOKAHEAD_MS * rate / 1000.0).round() as usize;
        let release = 1.0 - (-1000.0 / (LIMITER_RELEASE_MS * rate)).exp();
        limiter::limit_in_place(samples, ceiling, lookahead, release).min_gain
    } else {
        1.0
    };

    let (true_peak, output_lufs) = meter::output_levels(output_meter, samples)?;
    let trim_db = match true_peak {
        Some(tp) if tp > TRUE_PEAK_CEILING_DBTP => {
            let trim_db = TRUE_PEAK_CEILING_DBTP - TRIM_MARGIN_DB - tp;
            let trim = gain::db_to_amplitude(trim_db) as f32;
            samples.iter_mut().for_each(|s| *s *= trim);
            trim_db
        }
        _ => 0.0,
    };

    Ok(LoudnessReport {
        input_lufs: levels.integrated_lufs,
        output_lufs: output_lufs.map(|l| l + trim_db),
        output_true_peak_dbtp: true_peak.map(|tp| tp + trim_db),
        max_gain_db_applied: gains.iter().copied().reduce(f64::max).unwrap_or(0.0),
        min_gain_db_applied: gains.iter().copied().reduce(f64::min).unwrap_or(0.0),
        limiter_max_reduction_db: if limiter_min_gain < 1.0 {
            -20.0 * limiter_min_gain.log10()
        } else {
            0.0
        },
        trim_db,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_has_no_params_and_the_others_do() {
        assert_eq!(LoudnessPreset::None.params(), None);
        for preset in &LoudnessPreset::ALL[1..] {
            let p = preset
                .params()
                .unwrap_or_else(|| panic!("{} has params", preset.as_str()));
            assert!(p.max_gain_db > 0.0 && p.target_lufs < 0.0 && p.gate_lufs < p.target_lufs);
        }
        let soft = LoudnessPreset::SoftDynamic.params();
        let dynamic = LoudnessPreset::Dynamic.params();
        assert!(matches!((soft, dynamic), (Some(s), Some(d))
            if s.max_gain_db < d.max_gain_db && s.strength < d.strength
               && s.smoothing_sigma_ms > d.smoothing_sigma_ms));
        assert!(LoudnessPreset::BassDynamic
            .params()
            .is_some_and(|p| p.bass_shelf.is_some()));
    }

    #[test]
    fn unsupported_rate_leaves_samples_untouched() {
        let mut x = vec![0.5f32; 100];
        let report = apply_preset(LoudnessPreset::Dynamic, &mut x, 8);
        assert!(x.iter().all(|&v| v == 0.5));
        assert_eq!(report, LoudnessReport::default());
    }
}
