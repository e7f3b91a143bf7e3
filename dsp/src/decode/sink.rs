//! The common back end of every decoder: downmix, resample, enforce the length limit.
//!
//! Decoders push interleaved PCM at whatever rate and channel count their stream
//! has; the sink keeps one [`Resampler16k`] per run of equal rates (a chained Ogg
//! may change rate mid-file) and appends 16 kHz mono to the single output buffer.

use std::time::{Duration, Instant};

use crate::decode::{DecodeOptions, DecodedAudio, PacketStats};
use crate::error::DspError;
use crate::mix::downmix_interleaved_into;
use crate::resample::Resampler16k;
use crate::SAMPLE_RATE;

/// Accumulates 16 kHz mono output from decoded packets.
pub(crate) struct MonoSink {
    out: Vec<f32>,
    resampler: Option<Resampler16k>,
    mono: Vec<f32>,
    max_duration: Option<Duration>,
    max_samples: Option<usize>,
    source_rate: u32,
    source_channels: u16,
    resample_time: Duration,
}

impl MonoSink {
    pub(crate) fn new(options: &DecodeOptions) -> Self {
        let max_samples = options
            .max_duration
            .map(|d| (d.as_secs_f64() * f64::from(SAMPLE_RATE)).ceil() as usize);
        Self {
            out: Vec::new(),
            resampler: None,
            mono: Vec::new(),
            max_duration: options.max_duration,
            max_samples,
            source_rate: 0,
            source_channels: 0,
            resample_time: Duration::ZERO,
        }
    }

    /// Takes the container's declared duration: rejects an over-long file before
    /// decoding anything and reserves the output once (no doubling of a huge Vec).
    pub(crate) fn declare_duration(&mut self, secs: f64) -> Result<(), DspError> {
        if !secs.is_finite() || secs <= 0.0 {
            return Ok(());
        }
        if let Some(max) = self.max_duration {
            if secs > max.as_secs_f64() {
                return Err(self.too_long(secs));
            }
        }
        // A small margin covers rounding and codec padding; capped so a lying
        // header cannot make us allocate much more than the limit allows.
        let wanted = (secs * f64::from(SAMPLE_RATE)) as usize + SAMPLE_RATE as usize;
        let wanted = self.max_samples.map_or(wanted, |m| wanted.min(m + 1));
        self.out
            .reserve_exact(wanted.saturating_sub(self.out.len()));
        Ok(())
    }

    /// Records the source format when the decoder knows better than the PCM it
    /// pushes (Opus decodes at 16 kHz but was recorded at its header's input rate).
    pub(crate) fn set_source_format(&mut self, rate: u32, channels: u16) {
        if self.source_rate == 0 {
            self.source_rate = rate;
            self.source_channels = channels;
        }
    }

    /// Appends interleaved PCM with `channels` channels at `rate` Hz.
    pub(crate) fn push_interleaved(
        &mut self,
        samples: &[f32],
        channels: usize,
        rate: u32,
    ) -> Result<(), DspError> {
        if samples.is_empty() || channels == 0 {
            return Ok(());
        }
        if self.source_rate == 0 {
            self.source_rate = rate;
            self.source_channels = u16::try_from(channels).unwrap_or(u16::MAX);
        }
        let started = Instant::now();
        if self.resampler.as_ref().map(Resampler16k::input_rate) != Some(rate) {
            if let Some(mut old) = self.resampler.take() {
                old.finish_into(&mut self.out);
            }
            self.resampler = Some(Resampler16k::new(rate)?);
        }
        self.mono.clear();
        downmix_interleaved_into(samples, channels, &mut self.mono);
        if let Some(resampler) = self.resampler.as_mut() {
            resampler.process_into(&self.mono, &mut self.out);
        }
        self.resample_time += started.elapsed();
        self.check_length()
    }

    /// Flushes the resampler and decides between audio, `NoAudio` and `Corrupt`.
    pub(crate) fn finish(mut self, stats: PacketStats) -> Result<DecodedAudio, DspError> {
        if let Some(mut resampler) = self.resampler.take() {
            resampler.finish_into(&mut self.out);
        }
        self.check_length()?;
        if stats.good == 0 && stats.failed > 0 {
            // Concealment may have produced samples, but none of them are real audio.
            return Err(DspError::corrupt(format!(
                "none of the {} audio packets could be decoded",
                stats.failed
            )));
        }
        if self.out.is_empty() {
            return Err(DspError::NoAudio);
        }
        if stats.failed > 0 {
            tracing::warn!(
                skipped = stats.failed,
                decoded = stats.good,
                "skipped undecodable packets"
            );
        }
        self.out.shrink_to_fit();
        Ok(DecodedAudio {
            samples: self.out,
            source_sample_rate: self.source_rate,
            source_channels: self.source_channels,
            skipped_packets: stats.failed,
            resample_time: self.resample_time,
        })
    }

    fn check_length(&self) -> Result<(), DspError> {
        match self.max_samples {
            Some(max) if self.out.len() > max => {
                Err(self.too_long(self.out.len() as f64 / f64::from(SAMPLE_RATE)))
            }
            _ => Ok(()),
        }
    }

    fn too_long(&self, got_secs: f64) -> DspError {
        DspError::TooLong {
            max_secs: self.max_duration.map_or(0.0, |d| d.as_secs_f64()),
            got_secs,
        }
    }
}
