//! Builds the engines from the installed models: reads the provisioning manifest,
//! picks one ggml file per Whisper model (q8_0 or f16, as configured), adds
//! operator-dropped ggml files, initialises ONNX Runtime for Silero VAD, loads everything.

use std::collections::BTreeMap;

use anyhow::Context;
use ember_models::ggml::GgmlType;
use ember_models::provision::{self, InstalledModel, Manifest};
use ember_models::{
    AlignEngine, AlignerManifest, AsrConfig, AsrEngine, GuardConfig, ModelRegistry, VadEngine,
    WhisperModelSpec,
};

use crate::config::{AsrArgs, WeightType, WorkerArgs};
use crate::state::Models;
use ember_models::classify::{self, ClassifierManifest, ClassifyEngine};
use ember_models::embed::{self, EmbedConfig, EmbedEngine};
use ember_models::llm::{self, LlmConfig, LlmEngine};

/// Loads every installed model (seconds); used by `serve`, `transcribe` and tests.
pub fn load_models(args: &AsrArgs) -> anyhow::Result<Models> {
    let dir = args.models_dir();
    let manifest = provision::list(&dir)
        .with_context(|| format!("reading the model manifest in {}", dir.display()))?;
    let vad = load_vad(&manifest, args)?;
    let asr = load_asr(&manifest, args)?;
    let align = load_aligners(&manifest, args)?;
    let embed = load_embedder(&manifest, &args.workers)?;
    let classify = load_classifiers(&manifest, args)?;
    let llm = load_llm(&manifest, &args.workers)?;
    let guard = args.hallucination_guard.then(GuardConfig::default);
    if guard.is_none() {
        tracing::warn!(
            "the hallucination guard is off: text decoded over non-speech is returned as is"
        );
    }
    Ok(Models {
        asr,
        vad,
        guard,
        align,
        embed,
        classify,
        llm,
    })
}

/// SmolLM2 when its Q8_0 GGUF and tokenizer are installed.
fn load_llm(manifest: &Manifest, args: &WorkerArgs) -> anyhow::Result<Option<LlmEngine>> {
    let (Some(model), Some(tokenizer)) = (
        manifest.find(llm::SMOLLM2_ID),
        manifest.find(llm::SMOLLM2_TOKENIZER_ID),
    ) else {
        tracing::warn!("no chat model is installed: /v1/chat/completions answers 404");
        return Ok(None);
    };
    let config = LlmConfig {
        max_active: args.llm_max_active.max(1),
        queue_capacity: args.llm_queue.max(1),
        prompt_schemas: args.llm_prompt_schemas,
        auto_tool_text: args.llm_auto_tool_text,
    };
    let engine = LlmEngine::load(llm::SMOLLM2_ID, &model.path, &tokenizer.path, config)?;
    tracing::info!(
        model = engine.id(),
        context = engine.context_length(),
        "chat model ready"
    );
    Ok(Some(engine))
}

/// all-MiniLM-L6-v2 when its model and tokenizer are installed (needs ONNX Runtime).
fn load_embedder(manifest: &Manifest, args: &WorkerArgs) -> anyhow::Result<Option<EmbedEngine>> {
    let (Some(model), Some(tokenizer)) = (
        manifest.find(embed::MINILM_MODEL_ID),
        manifest.find(embed::MINILM_TOKENIZER_ID),
    ) else {
        tracing::warn!("no embedding model is installed: /v1/embeddings answers 404");
        return Ok(None);
    };
    if !ember_models::onnx::is_initialized() {
        return Ok(None);
    }
    let config = EmbedConfig {
        max_tokens: args.embed_max_tokens.max(2),
        truncate: args.embed_truncate,
        batch_tokens: args.embed_batch_tokens,
        max_wait: std::time::Duration::from_millis(args.embed_max_wait_ms),
        queue_capacity: args.embed_queue.max(1),
        threads: args.embed_threads.max(1),
    };
    let engine = EmbedEngine::load(embed::MINILM_MODEL_ID, &model.path, &tokenizer.path, config)?;
    tracing::info!(model = engine.id(), "embedder ready");
    Ok(Some(engine))
}

/// open_nsfw when installed, plus operator classifiers in `<models>/classifiers/`.
fn load_classifiers(manifest: &Manifest, args: &AsrArgs) -> anyhow::Result<Option<ClassifyEngine>> {
    if !ember_models::onnx::is_initialized() {
        return Ok(None);
    }
    let mut classifiers: Vec<ClassifierManifest> = manifest
        .find(classify::OPEN_NSFW_ID)
        .map(|m| ClassifierManifest::open_nsfw(m.path.clone()))
        .into_iter()
        .collect();
    classifiers.extend(ClassifierManifest::read_installed(&args.models_dir()));
    if classifiers.is_empty() {
        tracing::warn!("no image classifier is installed: /v1/images/classifications answers 404");
        return Ok(None);
    }
    let engine = ClassifyEngine::new(
        classifiers,
        args.workers.classify_workers,
        args.workers.classify_queue,
    )?;
    tracing::info!(classifiers = ?engine.names(), "image classifiers ready");
    Ok(Some(engine))
}

/// `tdnn_ffn` from the installed `hama` files plus operator manifests in
/// `<models>/aligners/`; they need ONNX Runtime (initialised by [`load_vad`]).
fn load_aligners(manifest: &Manifest, args: &AsrArgs) -> anyhow::Result<Option<AlignEngine>> {
    if !ember_models::onnx::is_initialized() {
        tracing::warn!("ONNX Runtime is not installed: words are timed by Whisper DTW only");
        return Ok(None);
    }
    let mut aligners: Vec<AlignerManifest> =
        AlignerManifest::tdnn_ffn(manifest)?.into_iter().collect();
    for installed in AlignerManifest::read_installed(&args.models_dir()) {
        if aligners.iter().any(|a| a.name == installed.name) {
            tracing::warn!(name = %installed.name, "an installed aligner shadows a built-in one; keeping the built-in");
            continue;
        }
        aligners.push(installed);
    }
    if aligners.is_empty() {
        tracing::warn!("no CTC aligner is installed: words are timed by Whisper DTW (run `ember models install`)");
        return Ok(None);
    }
    let engine = AlignEngine::new(aligners, args.align_workers, args.align_queue)?;
    tracing::info!(aligners = ?engine.names(), "aligners ready");
    Ok(Some(engine))
}

/// Silero when both it and ONNX Runtime are installed; webrtc always.
fn load_vad(manifest: &Manifest, args: &AsrArgs) -> anyhow::Result<VadEngine> {
    let silero = match (manifest.find("silero-vad"), manifest.find("onnxruntime")) {
        (Some(model), Some(runtime)) => {
            ember_models::onnx::init(&runtime.path)
                .with_context(|| format!("loading ONNX Runtime from {}", runtime.path.display()))?;
            Some(model.path.clone())
        }
        _ => {
            tracing::warn!("Silero VAD or ONNX Runtime is not installed: only `vad_model=webrtc` is available (run `ember models install`)");
            None
        }
    };
    let engine = VadEngine::new(silero, args.vad_sessions)?;
    tracing::info!(installed = ?engine.installed(), "VAD ready");
    Ok(engine)
}

fn load_asr(manifest: &Manifest, args: &AsrArgs) -> anyhow::Result<AsrEngine> {
    let dir = args.models_dir();
    let specs = pick_weights(manifest.whisper_models(), args.weight_type);
    if specs.is_empty() {
        anyhow::bail!(
            "no Whisper model is installed in {}: run `ember models install`",
            dir.display()
        );
    }
    let registry = ModelRegistry::new(specs, &args.default_model, args.strict_models)?
        .with_custom_dir(&dir.join("custom"));
    let config = AsrConfig {
        workers: args.asr_workers.max(1),
        threads_per_worker: args.threads_per_worker(),
        queue_capacity: args.asr_queue.max(1),
        beam_size: args.beam_size.max(1),
        flash_attention: args.flash_attention,
    };
    tracing::info!(?config, models = ?registry.models().map(|m| (&m.id, &m.path)).collect::<Vec<_>>(), "loading ASR engine");
    Ok(AsrEngine::load(registry, config)?)
}

/// One spec per model: the manifest lists each weight type as its own entry
/// (`base`, `base-q8_0`); clients name the model (`base`), the operator the weight type.
fn pick_weights<'a>(
    installed: impl Iterator<Item = &'a InstalledModel>,
    preferred: WeightType,
) -> Vec<WhisperModelSpec> {
    let wanted = match preferred {
        WeightType::Q8_0 => GgmlType::Q8_0,
        WeightType::F16 => GgmlType::F16,
    };
    let mut chosen: BTreeMap<String, &InstalledModel> = BTreeMap::new();
    for model in installed {
        let name = model
            .id
            .strip_suffix(&format!("-{}", GgmlType::Q8_0.as_str()))
            .unwrap_or(&model.id)
            .to_string();
        let better = match chosen.get(&name) {
            None => true,
            Some(current) => current.ggml_type != Some(wanted) && model.ggml_type == Some(wanted),
        };
        if better {
            chosen.insert(name, model);
        }
    }
    chosen
        .into_iter()
        .map(|(name, model)| WhisperModelSpec {
            english_only: model.multilingual == Some(false) || name.ends_with(".en"),
            id: name,
            path: model.path.clone(),
        })
        .collect()
}
