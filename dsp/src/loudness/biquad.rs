//! The RBJ-cookbook low-shelf biquad that `bass_dynamic` runs before the dynamic stage.
//!
//! One second-order section in transposed direct form II with `f64` state, so a shelf
//! corner far below the sample rate keeps its precision over an hour of audio; samples
//! stay `f32` and are filtered in place.

use std::f64::consts::PI;

/// A second-order IIR section (coefficients normalised so `a0 = 1`) and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Biquad {
    b0: f64,
    b1: f64,
    b2: f64,
    a1: f64,
    a2: f64,
    z1: f64,
    z2: f64,
}

impl Biquad {
    /// Robert Bristow-Johnson's low shelf ("Audio EQ Cookbook"): `gain_db` below
    /// `freq_hz` (the midpoint, where the gain is half of `gain_db`), unity far above.
    /// `slope` is the cookbook's S; 1 is the steepest slope without a bump.
    ///
    /// The corner is clamped below 0.45 × `sample_rate` so an odd rate cannot make the
    /// filter unstable.
    pub fn low_shelf(sample_rate: u32, freq_hz: f64, gain_db: f64, slope: f64) -> Self {
        let rate = f64::from(sample_rate.max(1));
        let freq = freq_hz.clamp(1.0, 0.45 * rate);
        let a = 10f64.powf(gain_db / 40.0);
        let w0 = 2.0 * PI * freq / rate;
        let (sin, cos) = w0.sin_cos();
        let slope = slope.max(1e-3);
        let alpha = sin / 2.0 * ((a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0).max(0.0).sqrt();
        let two_sqrt_a_alpha = 2.0 * a.sqrt() * alpha;
        let b0 = a * ((a + 1.0) - (a - 1.0) * cos + two_sqrt_a_alpha);
        let b1 = 2.0 * a * ((a - 1.0) - (a + 1.0) * cos);
        let b2 = a * ((a + 1.0) - (a - 1.0) * cos - two_sqrt_a_alpha);
        let a0 = (a + 1.0) + (a - 1.0) * cos + two_sqrt_a_alpha;
        let a1 = -2.0 * ((a - 1.0) + (a + 1.0) * cos);
        let a2 = (a + 1.0) + (a - 1.0) * cos - two_sqrt_a_alpha;
        Self {
            b0: b0 / a0,
            b1: b1 / a0,
            b2: b2 / a0,
            a1: a1 / a0,
            a2: a2 / a0,
            z1: 0.0,
            z2: 0.0,
        }
    }

    /// Filters `samples` in place, continuing from the state of the previous call.
    pub fn process_in_place(&mut self, samples: &mut [f32]) {
        let (b0, b1, b2, a1, a2) = (self.b0, self.b1, self.b2, self.a1, self.a2);
        let (mut z1, mut z2) = (self.z1, self.z2);
        for sample in samples.iter_mut() {
            let x = f64::from(*sample);
            let y = b0 * x + z1;
            z1 = b1 * x - a1 * y + z2;
            z2 = b2 * x - a2 * y;
            *sample = y as f32;
        }
        self.z1 = z1;
        self.z2 = z2;
    }

    /// The filter's magnitude response at `freq_hz`, in dB: what the shelf does to a
    /// steady tone (documentation and tests).
    pub fn gain_db_at(&self, freq_hz: f64, sample_rate: u32) -> f64 {
        let w = 2.0 * PI * freq_hz / f64::from(sample_rate.max(1));
        let (s1, c1) = w.sin_cos();
        let (s2, c2) = (2.0 * w).sin_cos();
        // H(e^{jw}) = (b0 + b1 e^{-jw} + b2 e^{-2jw}) / (1 + a1 e^{-jw} + a2 e^{-2jw})
        let num_re = self.b0 + self.b1 * c1 + self.b2 * c2;
        let num_im = -(self.b1 * s1 + self.b2 * s2);
        let den_re = 1.0 + self.a1 * c1 + self.a2 * c2;
        let den_im = -(self.a1 * s1 + self.a2 * s2);
        let num = num_re * num_re + num_im * num_im;
        let den = den_re * den_re + den_im * den_im;
        10.0 * (num / den).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shelf_response_matches_the_cookbook() {
        let shelf = Biquad::low_shelf(16_000, 250.0, 8.0, 1.0);
        // Full gain at DC, half the gain (in dB) at the midpoint, unity near Nyquist.
        assert!((shelf.gain_db_at(0.0, 16_000) - 8.0).abs() < 1e-9);
        assert!((shelf.gain_db_at(250.0, 16_000) - 4.0).abs() < 1e-6);
        assert!(shelf.gain_db_at(4_000.0, 16_000).abs() < 0.1);
        assert!(shelf.gain_db_at(7_999.0, 16_000).abs() < 0.01);
        // Monotonic fall from bass to treble (S = 1: no bump).
        let mut last = f64::INFINITY;
        for f in (20..8_000).step_by(20) {
            let g = shelf.gain_db_at(f64::from(f), 16_000);
            assert!(g <= last + 1e-9, "{f} Hz: {g} after {last}");
            last = g;
        }
    }

    #[test]
    fn filtering_a_tone_gives_the_computed_gain() {
        let rate = 16_000;
        for freq in [60.0f64, 150.0, 250.0, 2_000.0] {
            let mut shelf = Biquad::low_shelf(rate, 250.0, 8.0, 1.0);
            let expected = shelf.gain_db_at(freq, rate);
            let mut x: Vec<f32> = (0..32_000)
                .map(|i| (0.1 * (2.0 * PI * freq * f64::from(i) / 16_000.0).sin()) as f32)
                .collect();
            let rms_in = rms(&x[16_000..]);
            shelf.process_in_place(&mut x);
            let measured = 20.0 * (rms(&x[16_000..]) / rms_in).log10();
            assert!(
                (measured - expected).abs() < 0.05,
                "{freq} Hz: {measured} dB, expected {expected}"
            );
        }
    }

    #[test]
    fn zeros_stay_zero_and_odd_rates_stay_finite() {
        let mut x = vec![0.0f32; 1_000];
        Biquad::low_shelf(16_000, 250.0, 8.0, 1.0).process_in_place(&mut x);
        assert!(x.iter().all(|&v| v == 0.0));
        let mut y = vec![1.0f32; 1_000];
        Biquad::low_shelf(100, 250.0, 8.0, 1.0).process_in_place(&mut y);
        assert!(y.iter().all(|v| v.is_finite()));
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }
}
