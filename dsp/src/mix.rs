//! Channel downmix: every model in Ember takes one channel.
//!
//! Channels are averaged (not summed) so a full-scale stereo file stays within
//! ±1.0 and a mono file duplicated to stereo comes back unchanged.

/// Averages interleaved frames (`L R L R …`) into a new mono buffer.
pub fn downmix_interleaved(samples: &[f32], channels: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(samples.len() / channels.max(1));
    downmix_interleaved_into(samples, channels, &mut out);
    out
}

/// Appends the mono average of interleaved frames to `out`, so a decode loop can
/// reuse one buffer. A trailing partial frame is dropped; `channels == 0` appends nothing.
pub fn downmix_interleaved_into(samples: &[f32], channels: usize, out: &mut Vec<f32>) {
    match channels {
        0 => {}
        1 => out.extend_from_slice(samples),
        2 => out.extend(samples.chunks_exact(2).map(|f| (f[0] + f[1]) * 0.5)),
        n => {
            let scale = 1.0 / n as f32;
            out.extend(
                samples
                    .chunks_exact(n)
                    .map(|f| f.iter().sum::<f32>() * scale),
            );
        }
    }
}

/// Averages planar channels (one slice per channel) into mono; the result is as
/// long as the shortest channel.
pub fn downmix_planar(planes: &[&[f32]]) -> Vec<f32> {
    match planes {
        [] => Vec::new(),
        [mono] => mono.to_vec(),
        _ => {
            let frames = planes.iter().map(|p| p.len()).min().unwrap_or(0);
            let scale = 1.0 / planes.len() as f32;
            (0..frames)
                .map(|i| planes.iter().map(|p| p[i]).sum::<f32>() * scale)
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_interleaved_is_averaged() {
        let mixed = downmix_interleaved(&[1.0, 0.0, 0.5, 0.5, -1.0, 1.0, 0.25], 2);
        assert_eq!(mixed, vec![0.5, 0.5, 0.0]);
    }

    #[test]
    fn mono_and_zero_channels() {
        assert_eq!(downmix_interleaved(&[0.1, 0.2], 1), vec![0.1, 0.2]);
        assert!(downmix_interleaved(&[0.1, 0.2], 0).is_empty());
    }

    #[test]
    fn many_channels_interleaved() {
        let mixed = downmix_interleaved(&[0.3, 0.6, 0.9, 0.0, 0.0, 0.0], 3);
        assert_eq!(mixed.len(), 2);
        assert!((mixed[0] - 0.6).abs() < 1e-6);
        assert_eq!(mixed[1], 0.0);
    }

    #[test]
    fn planar_matches_interleaved() {
        let left = [1.0, 0.2, -0.4];
        let right = [0.0, 0.4, 0.4, 9.0];
        let mixed = downmix_planar(&[&left, &right]);
        assert_eq!(mixed.len(), 3);
        let expected = downmix_interleaved(&[1.0, 0.0, 0.2, 0.4, -0.4, 0.4], 2);
        for (a, b) in mixed.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6);
        }
        assert!(downmix_planar(&[]).is_empty());
    }
}
