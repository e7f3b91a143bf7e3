//! `ember transcribe` and `ember models`: the same pipeline as the server, in-process,
//! with a progress bar for long files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ember_models::provision::{self, ModelSet};
use ember_protocol::{render, AudioRequest, FormFields, RenderOptions, Task};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{ModelsCommand, TranscribeArgs};
use crate::engine::load_models;
use crate::longform::TranscribeEvents;
use crate::metrics::StageTimings;
use crate::pipeline::{check_supported, transcribe};
use crate::prepare::{prepare_path, vad_kind, PrepareOptions};

/// Longest file the CLI accepts (it is the operator's own machine: 24 h).
const CLI_MAX_AUDIO: Duration = Duration::from_secs(24 * 3600);

/// Transcribes each file and prints or writes the rendered result.
pub fn transcribe_files(args: TranscribeArgs) -> anyhow::Result<()> {
    let task = match args.task.as_str() {
        "transcribe" => Task::Transcribe,
        "translate" => Task::Translate,
        other => bail!("--task must be `transcribe` or `translate`, got `{other}`"),
    };
    let mut fields = FormFields::default();
    fields.push("response_format", args.format.clone());
    if let Some(model) = &args.model {
        fields.push("model", model.clone());
    }
    if let Some(language) = &args.language {
        fields.push("language", language.clone());
    }
    if let Some(prompt) = &args.prompt {
        fields.push("prompt", prompt.clone());
    }
    fields.push("preprocessing", args.preprocessing.clone());
    // `none` (CLI only, for diagnosis and measurement) sends the whole file to Whisper.
    let skip_vad = args.vad_model == "none";
    if !skip_vad {
        fields.push("vad_model", args.vad_model.clone());
    }
    if args.format == "verbose_json" {
        fields.push("timestamp_granularities", "word,segment");
    }
    let request = AudioRequest::from_fields(task, &fields).map_err(|e| anyhow::anyhow!("{e}"))?;
    let models = load_models(&args.asr)?;
    check_supported(&request, &models).map_err(|e| anyhow::anyhow!("{e}"))?;
    let preparation = PrepareOptions {
        max_duration: CLI_MAX_AUDIO,
        preprocessing: request.preprocessing,
        vad: if skip_vad {
            None
        } else {
            Some(vad_kind(request.vad_model, &models.vad).map_err(|e| anyhow::anyhow!("{e}"))?)
        },
        segmenter: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = RenderOptions::from_request(&request, false);
    for file in &args.files {
        let started = Instant::now();
        let prepared = prepare_path(file, &preparation, &models.vad)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let audio_secs = prepared.duration_ms() as f64 / 1000.0;
        let bar = progress_bar(file, audio_secs);
        let hook_bar = bar.clone();
        let events = TranscribeEvents {
            on_text: None,
            on_progress: Some(Box::new(move |percent| {
                hook_bar.set_position(u64::from(percent.min(100)))
            })),
        };
        let deadline = Instant::now() + CLI_MAX_AUDIO;
        let (transcript, timings): (_, StageTimings) = runtime
            .block_on(transcribe(&models, &request, prepared, deadline, events))
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        bar.finish_and_clear();
        let elapsed = started.elapsed().as_secs_f64();
        tracing::info!(
            file = %file.display(),
            audio_secs,
            elapsed_secs = elapsed,
            real_time_factor = elapsed / audio_secs.max(1e-3),
            timings = %timings.to_json(),
            "transcribed"
        );
        let rendered = render(&transcript, &options);
        write_output(
            args.output.as_deref(),
            file,
            &args.format,
            args.files.len(),
            &rendered.body,
        )?;
    }
    Ok(())
}

fn progress_bar(file: &Path, audio_secs: f64) -> ProgressBar {
    // Only worth drawing for long files; short ones finish before it would show.
    if audio_secs < 60.0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(100);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}% ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(file.display().to_string());
    bar
}

fn write_output(
    output: Option<&Path>,
    input: &Path,
    format: &str,
    inputs: usize,
    body: &str,
) -> anyhow::Result<()> {
    let Some(output) = output else {
        print!("{body}");
        return Ok(());
    };
    let target: PathBuf = if output.is_dir() || inputs > 1 {
        std::fs::create_dir_all(output)?;
        let extension = match format {
            "verbose_json" => "json",
            "text" => "txt",
            other => other,
        };
        let stem = input.file_stem().unwrap_or_default();
        output.join(stem).with_extension(extension)
    } else {
        output.to_path_buf()
    };
    std::fs::write(&target, body).with_context(|| format!("writing {}", target.display()))
}

/// `ember models install|list`.
pub fn models(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Install { set, models_dir } => {
            let set: ModelSet = set.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let dir = models_dir.unwrap_or_else(provision::models_dir_default);
            let report = provision::install(&dir, set, &|line: &str| eprintln!("{line}"))?;
            println!(
                "{} installed, {} already present in {} ({:.1} s)",
                report.installed.len(),
                report.already_installed.len(),
                dir.display(),
                report.elapsed.as_secs_f64()
            );
            Ok(())
        }
        ModelsCommand::List { models_dir } => {
            let dir = models_dir.unwrap_or_else(provision::models_dir_default);
            let manifest = provision::list(&dir)?;
            if manifest.models.is_empty() {
                println!("no models installed in {}", dir.display());
            }
            for model in &manifest.models {
                println!(
                    "{:<14} {:<8} {:>12} bytes  {}",
                    model.id,
                    format!("{:?}", model.kind).to_lowercase(),
                    model.size,
                    model.path.display()
                );
            }
            Ok(())
        }
    }
}
