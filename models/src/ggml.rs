//! CTranslate2 → whisper.cpp ggml converter. The Whisper weights in our pinned registry packages
//! are CTranslate2 exports, whisper.cpp loads only its own ggml file, and no registry ships the
//! latter (DESIGN §2), so we write it ourselves, byte-compatible with whisper.cpp's
//! `convert-pt-to-ggml.py` (and, for q8_0, with its `quantize` example).
//!
//! File layout: magic `ggml`, 11 i32 hparams (the last is the ftype), the mel filterbank
//! (`n_mel`, `n_fft` bins, f32 data), the byte-level vocabulary (count, then length + bytes per
//! token), then tensors (n_dims, name length, ggml type, dims innermost first, name, data) until
//! EOF. whisper.cpp rejects unknown tensor names, wrong shapes, wrong byte sizes and a wrong
//! tensor count, so every rule below follows DESIGN §3's verified conversion facts.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ct2::{read_vocabulary, Ct2Model};

/// `ggml` in ASCII, read as a little-endian u32 (whisper.cpp's `GGML_FILE_MAGIC`).
const GGML_MAGIC: u32 = 0x6767_6d6c;
/// ggml's quantization format version; stored as `ftype + 1000 * version` for quantized files.
const GGML_QNT_VERSION: i32 = 2;
/// Multiplier of the quantization version in the stored ftype (`GGML_QNT_VERSION_FACTOR`).
const GGML_QNT_VERSION_FACTOR: i32 = 1000;
/// Elements per q8_0 block (`QK8_0`).
pub const QK8_0: usize = 32;
/// Bytes per q8_0 block: an f16 scale and 32 signed bytes.
pub const Q8_0_BLOCK_BYTES: usize = 2 + QK8_0;
/// Whisper's STFT size; the filterbank has `N_FFT / 2 + 1` columns.
const N_FFT: usize = 400;
/// Whisper's sample rate.
const SAMPLE_RATE: f64 = 16_000.0;
/// Vocabulary entries written to the file (ids 0..=50256).
const N_BPE_TOKENS: usize = 50257;
/// Scalar CTranslate2 settings that are not weights (DESIGN §3); matched on the last path part.
const SETTING_SUFFIXES: &[&str] = &[
    "num_heads",
    "activation",
    "alibi",
    "alibi_use_positive_positions",
    "scale_alibi",
    "pre_norm",
    "scale_embeddings",
    "start_from_zero_embedding",
    "alignment_heads",
    "alignment_layer",
];

/// Why a CTranslate2 model could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Reading the input or writing the output failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `model.bin` is not a well-formed CTranslate2 file.
    #[error("invalid CTranslate2 model: {0}")]
    Format(String),
    /// The spec is not Whisper (only `WhisperSpec` maps onto whisper.cpp).
    #[error("CTranslate2 spec `{0}` is not WhisperSpec")]
    NotWhisper(String),
    /// A variable has a type the converter cannot turn into floats (e.g. an int8 export).
    #[error(
        "variable `{name}` has unsupported type {dtype} (export the model as float16/float32)"
    )]
    UnsupportedDType { name: String, dtype: String },
    /// A variable whisper.cpp needs is absent.
    #[error("CTranslate2 model has no variable `{0}`")]
    MissingVariable(String),
    /// A weight whisper.cpp has no tensor for; converting anyway would silently drop it.
    #[error("CTranslate2 variable `{0}` has no whisper.cpp counterpart")]
    UnexpectedVariable(String),
    /// A variable's shape does not fit the model's hyperparameters.
    #[error("variable `{name}`: {detail}")]
    Shape { name: String, detail: String },
    /// The vocabulary is unreadable or lacks `<|endoftext|>`.
    #[error("vocabulary: {0}")]
    Vocabulary(String),
}

/// Output weight type. whisper.cpp stores the big matrices in this type and everything else
/// as f16/f32, so this is the only knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GgmlType {
    /// f16 matrices, as `convert-pt-to-ggml.py` writes.
    F16,
    /// 8-bit blocks (32 values + f16 scale): ~half the size, faster encoder on CPU (DESIGN §3).
    Q8_0,
}

impl GgmlType {
    /// Lower-case name as in whisper.cpp file names (`ggml-base-q8_0.bin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
        }
    }

    /// The header ftype whisper.cpp reads: `GGML_FTYPE_MOSTLY_F16` = 1, or
    /// `GGML_FTYPE_MOSTLY_Q8_0` = 7 plus the quantization version times 1000.
    fn header_ftype(self) -> i32 {
        match self {
            Self::F16 => 1,
            Self::Q8_0 => 7 + GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR,
        }
    }
}

/// whisper.cpp's hyperparameters, derived from the CTranslate2 shapes (its config.json has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WhisperHparams {
    /// Embedding rows; 51865 or more means multilingual to whisper.cpp.
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
}

impl WhisperHparams {
    /// Same rule as whisper.cpp's `is_multilingual`.
    pub fn multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }
}

/// What a conversion produced, for logs and the provisioning report.
#[derive(Debug, Clone)]
pub struct ConvertStats {
    pub hparams: WhisperHparams,
    pub ty: GgmlType,
    /// Tensors written (245 for base).
    pub n_tensors: usize,
    /// Of those, how many were quantized to q8_0.
    pub n_quantized: usize,
    /// Vocabulary entries written (50257: ids 0..=50256).
    pub n_tokens: usize,
    /// Output file size.
    pub bytes: u64,
    pub elapsed: Duration,
}

/// How a tensor is stored in the ggml file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Always f32: 1-D tensors, positional embeddings, conv biases.
    F32,
    /// Always f16: conv weights (whisper.cpp's quantizer only touches 2-D tensors).
    F16,
    /// A 2-D matrix stored in the chosen [`GgmlType`].
    Matrix,
}

/// One whisper.cpp tensor and where its values come from in the CTranslate2 model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorPlan {
    /// whisper.cpp name, e.g. `encoder.blocks.0.attn.query.weight`.
    pub name: String,
    /// CTranslate2 variable (or alias) name.
    pub source: String,
    /// Slice of the source's outermost dimension (fused QKV / KV splits); `None` = all of it.
    pub rows: Option<(usize, usize)>,
    /// Shape, outermost first (numpy order; the file stores it reversed).
    pub shape: Vec<usize>,
    pub storage: Storage,
}

/// Converts the CTranslate2 Whisper model in `ct2_dir` (`model.bin` + `vocabulary.{json,txt}`)
/// into a whisper.cpp ggml file at `out`. Writes a temporary file beside `out` and renames it,
/// so readers never see a half-written model.
pub fn convert_ct2_dir(
    ct2_dir: &Path,
    out: &Path,
    ty: GgmlType,
) -> Result<ConvertStats, ConvertError> {
    let start = Instant::now();
    let model = Ct2Model::read(&ct2_dir.join("model.bin"))?;
    let vocab = read_vocabulary(ct2_dir)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConvertError::Io { path, source }
    };
    let tmp = tempfile::Builder::new()
        .prefix(".ggml-")
        .suffix(".part")
        .tempfile_in(&parent)
        .map_err(io_err(&parent))?;
    let mut w = BufWriter::with_capacity(4 << 20, tmp.as_file());
    let summary = write_whisper_ggml(&model, &vocab, ty, &mut w).map_err(|e| match e {
        ConvertError::Io { path, source } if path.as_os_str().is_empty() => ConvertError::Io {
            path: tmp.path().to_path_buf(),
            source,
        },
        other => other,
    })?;
    w.flush().map_err(io_err(tmp.path()))?;
    drop(w);
    tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
    let file: File = tmp.persist(out).map_err(|e| ConvertError::Io {
        path: out.to_path_buf(),
        source: e.error,
    })?;
    let bytes = file.metadata().map_err(io_err(out))?.len();
    let stats = ConvertStats {
        hparams: summary.hparams,
        ty,
        n_tensors: summary.n_tensors,
        n_quantized: summary.n_quantized,
        n_tokens: summary.n_tokens,
        bytes,
        elapsed: start.elapsed(),
    };
    tracing::info!(
        out = %out.display(),
        ty = ty.as_str(),
        tensors = stats.n_tensors,
        bytes,
        elapsed_ms = stats.elapsed.as_millis() as u64,
        "converted CTranslate2 Whisper model to ggml"
    );
    Ok(stats)
}

/// Counts of what [`write_whisper_ggml`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct WriteSummary {
    pub hparams: WhisperHparams,
    pub n_tensors: usize,
    pub n_quantized: usize,
    pub n_tokens: usize,
}

/// Writes the whole ggml file for `model` to `w` (no temp-file handling; see
/// [`convert_ct2_dir`]). I/O errors carry an empty path for the caller to fill in.
pub fn write_whisper_ggml(
    model: &Ct2Model,
    vocab: &[String],
    ty: GgmlType,
    w: &mut impl Write,
) -> Result<WriteSummary, ConvertError> {
    let (hp, plans) = plan_whisper_tensors(model)?;
    let io = |source| ConvertError::Io {
        path: PathBuf::new(),
        source,
    };
    let put = |w: &mut dyn Write, v: usize| -> Result<(), ConvertError> {
        let v = i32::try_from(v).map_err(|_| ConvertError::Format(format!("{v} overflows i32")))?;
        w.write_all(&v.to_le_bytes()).map_err(io)
    };

    w.write_all(&GGML_MAGIC.to_le_bytes()).map_err(io)?;
    for v in [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
    ] {
        put(w, v)?;
    }
    w.write_all(&ty.header_ftype().to_le_bytes()).map_err(io)?;

    let n_bins = N_FFT / 2 + 1;
    put(w, hp.n_mels)?;
    put(w, n_bins)?;
    let filters = mel_filters(SAMPLE_RATE, N_FFT, hp.n_mels);
    w.write_all(&f32_bytes(&filters)).map_err(io)?;

    let tokens = token_table(vocab)?;
    put(w, tokens.len())?;
    for t in &tokens {
        put(w, t.len())?;
        w.write_all(t).map_err(io)?;
    }

    let mut n_quantized = 0;
    for plan in &plans {
        let var = model.require(&plan.source)?;
        let all = var.to_f32(&plan.source)?;
        let values = match plan.rows {
            None => &all[..],
            Some((r0, r1)) => {
                let row_len = all.len() / var.shape.first().copied().unwrap_or(1).max(1);
                &all[r0 * row_len..r1 * row_len]
            }
        };
        if values.len() != plan.shape.iter().product::<usize>() {
            return Err(ConvertError::Shape {
                name: plan.source.clone(),
                detail: format!("{} values do not fill {:?}", values.len(), plan.shape),
            });
        }
        let (ttype, data) = match (plan.storage, ty) {
            (Storage::F32, _) => (0i32, f32_bytes(values)),
            (Storage::F16, _) | (Storage::Matrix, GgmlType::F16) => (1, f16_bytes(values)),
            (Storage::Matrix, GgmlType::Q8_0) => {
                let row = plan.shape.last().copied().unwrap_or(0);
                if row % QK8_0 != 0 {
                    return Err(ConvertError::Shape {
                        name: plan.name.clone(),
                        detail: format!("row length {row} is not a multiple of {QK8_0} (q8_0)"),
                    });
                }
                n_quantized += 1;
                (8, quantize_q8_0(values))
            }
        };
        put(w, plan.shape.len())?;
        put(w, plan.name.len())?;
        w.write_all(&ttype.to_le_bytes()).map_err(io)?;
        for &d in plan.shape.iter().rev() {
            put(w, d)?;
        }
        w.write_all(plan.name.as_bytes()).map_err(io)?;
        w.write_all(&data).map_err(io)?;
    }
    Ok(WriteSummary {
        hparams: hp,
        n_tensors: plans.len(),
        n_quantized,
        n_tokens: tokens.len(),
    })
}

/// Maps every CTranslate2 Whisper variable onto whisper.cpp's tensor names and derives the
/// hyperparameters. Errors on missing variables, shapes that disagree with the hyperparameters
/// and leftover weights, so a model whisper.cpp would reject never gets written.
pub fn plan_whisper_tensors(
    model: &Ct2Model,
) -> Result<(WhisperHparams, Vec<TensorPlan>), ConvertError> {
    if model.spec != "WhisperSpec" {
        return Err(ConvertError::NotWhisper(model.spec.clone()));
    }
    let dims =
        |name: &str| -> Result<Vec<usize>, ConvertError> { Ok(model.require(name)?.shape.clone()) };
    let conv1 = dims("encoder/conv1/weight")?;
    let emb = dims("decoder/embeddings/weight")?;
    let enc_pos = dims("encoder/position_encodings/encodings")?;
    let dec_pos = dims("decoder/position_encodings/encodings")?;
    let bad = |name: &str, detail: String| ConvertError::Shape {
        name: name.to_string(),
        detail,
    };
    let [n_audio_state, n_mels, 3] = conv1[..] else {
        return Err(bad(
            "encoder/conv1/weight",
            format!("expected [state, mels, 3], got {conv1:?}"),
        ));
    };
    let [n_vocab, n_text_state] = emb[..] else {
        return Err(bad(
            "decoder/embeddings/weight",
            format!("expected 2-D, got {emb:?}"),
        ));
    };
    let [n_audio_ctx, _] = enc_pos[..] else {
        return Err(bad(
            "encoder/position_encodings/encodings",
            format!("expected 2-D, got {enc_pos:?}"),
        ));
    };
    let [n_text_ctx, _] = dec_pos[..] else {
        return Err(bad(
            "decoder/position_encodings/encodings",
            format!("expected 2-D, got {dec_pos:?}"),
        ));
    };
    let heads = |side: &str, state: usize| -> usize {
        model
            .get(&format!("{side}/num_heads"))
            .and_then(|v| v.scalar_int())
            .and_then(|h| usize::try_from(h).ok())
            .filter(|&h| h > 0)
            // Every Whisper size uses 64-wide heads; old exports lack `num_heads`.
            .unwrap_or(state / 64)
    };
    let hp = WhisperHparams {
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head: heads("encoder", n_audio_state),
        n_audio_layer: count_layers(model, "encoder"),
        n_text_ctx,
        n_text_state,
        n_text_head: heads("decoder", n_text_state),
        n_text_layer: count_layers(model, "decoder"),
        n_mels,
    };

    let mut plans = Vec::new();
    let mut add =
        |name: String, source: String, rows: Option<(usize, usize)>, shape: Vec<usize>, storage| {
            plans.push(TensorPlan {
                name,
                source,
                rows,
                shape,
                storage,
            });
        };

    let (a, t) = (hp.n_audio_state, hp.n_text_state);
    add(
        "encoder.conv1.weight".into(),
        "encoder/conv1/weight".into(),
        None,
        vec![a, hp.n_mels, 3],
        Storage::F16,
    );
    add(
        "encoder.conv1.bias".into(),
        "encoder/conv1/bias".into(),
        None,
        vec![a, 1],
        Storage::F32,
    );
    add(
        "encoder.conv2.weight".into(),
        "encoder/conv2/weight".into(),
        None,
        vec![a, a, 3],
        Storage::F16,
    );
    add(
        "encoder.conv2.bias".into(),
        "encoder/conv2/bias".into(),
        None,
        vec![a, 1],
        Storage::F32,
    );
    add(
        "encoder.positional_embedding".into(),
        "encoder/position_encodings/encodings".into(),
        None,
        vec![hp.n_audio_ctx, a],
        Storage::F32,
    );
    for i in 0..hp.n_audio_layer {
        let src = format!("encoder/layer_{i}");
        let dst = format!("encoder.blocks.{i}");
        self_attention(&mut add, &src, &dst, a);
        layer_norm(
            &mut add,
            &format!("{src}/self_attention/layer_norm"),
            &format!("{dst}.attn_ln"),
            a,
        );
        mlp(&mut add, &src, &dst, a);
    }
    layer_norm(&mut add, "encoder/layer_norm", "encoder.ln_post", a);

    add(
        "decoder.token_embedding.weight".into(),
        "decoder/embeddings/weight".into(),
        None,
        vec![hp.n_vocab, t],
        Storage::Matrix,
    );
    add(
        "decoder.positional_embedding".into(),
        "decoder/position_encodings/encodings".into(),
        None,
        vec![hp.n_text_ctx, t],
        Storage::F32,
    );
    for i in 0..hp.n_text_layer {
        let src = format!("decoder/layer_{i}");
        let dst = format!("decoder.blocks.{i}");
        self_attention(&mut add, &src, &dst, t);
        layer_norm(
            &mut add,
            &format!("{src}/self_attention/layer_norm"),
            &format!("{dst}.attn_ln"),
            t,
        );
        // Cross-attention: linear_0 = query, linear_1 = fused key/value (key first), linear_2 = out.
        let x = format!("{src}/attention");
        let y = format!("{dst}.cross_attn");
        linear(
            &mut add,
            &format!("{x}/linear_0"),
            &format!("{y}.query"),
            None,
            t,
            t,
            true,
        );
        linear(
            &mut add,
            &format!("{x}/linear_1"),
            &format!("{y}.key"),
            Some((0, t)),
            t,
            t,
            false,
        );
        linear(
            &mut add,
            &format!("{x}/linear_1"),
            &format!("{y}.value"),
            Some((t, 2 * t)),
            t,
            t,
            true,
        );
        linear(
            &mut add,
            &format!("{x}/linear_2"),
            &format!("{y}.out"),
            None,
            t,
            t,
            true,
        );
        layer_norm(
            &mut add,
            &format!("{x}/layer_norm"),
            &format!("{dst}.cross_attn_ln"),
            t,
        );
        mlp(&mut add, &src, &dst, t);
    }
    layer_norm(&mut add, "decoder/layer_norm", "decoder.ln", t);

    check_plans(model, &plans)?;
    Ok((hp, plans))
}

type AddFn<'a> = dyn FnMut(String, String, Option<(usize, usize)>, Vec<usize>, Storage) + 'a;

/// Fused self-attention QKV (`linear_0`, rows q|k|v) and output (`linear_1`). The key bias is
/// dropped: whisper.cpp has no `attn.key.bias`, and a key bias shifts every score of a query by
/// the same amount, which softmax ignores.
fn self_attention(add: &mut AddFn<'_>, src: &str, dst: &str, n: usize) {
    let qkv = format!("{src}/self_attention/linear_0");
    linear(
        add,
        &qkv,
        &format!("{dst}.attn.query"),
        Some((0, n)),
        n,
        n,
        true,
    );
    linear(
        add,
        &qkv,
        &format!("{dst}.attn.key"),
        Some((n, 2 * n)),
        n,
        n,
        false,
    );
    linear(
        add,
        &qkv,
        &format!("{dst}.attn.value"),
        Some((2 * n, 3 * n)),
        n,
        n,
        true,
    );
    linear(
        add,
        &format!("{src}/self_attention/linear_1"),
        &format!("{dst}.attn.out"),
        None,
        n,
        n,
        true,
    );
}

fn mlp(add: &mut AddFn<'_>, src: &str, dst: &str, n: usize) {
    layer_norm(
        add,
        &format!("{src}/ffn/layer_norm"),
        &format!("{dst}.mlp_ln"),
        n,
    );
    linear(
        add,
        &format!("{src}/ffn/linear_0"),
        &format!("{dst}.mlp.0"),
        None,
        4 * n,
        n,
        true,
    );
    linear(
        add,
        &format!("{src}/ffn/linear_1"),
        &format!("{dst}.mlp.2"),
        None,
        n,
        4 * n,
        true,
    );
}

fn layer_norm(add: &mut AddFn<'_>, src: &str, dst: &str, n: usize) {
    add(
        format!("{dst}.weight"),
        format!("{src}/gamma"),
        None,
        vec![n],
        Storage::F32,
    );
    add(
        format!("{dst}.bias"),
        format!("{src}/beta"),
        None,
        vec![n],
        Storage::F32,
    );
}

fn linear(
    add: &mut AddFn<'_>,
    src: &str,
    dst: &str,
    rows: Option<(usize, usize)>,
    out_dim: usize,
    in_dim: usize,
    with_bias: bool,
) {
    add(
        format!("{dst}.weight"),
        format!("{src}/weight"),
        rows,
        vec![out_dim, in_dim],
        Storage::Matrix,
    );
    if with_bias {
        add(
            format!("{dst}.bias"),
            format!("{src}/bias"),
            rows,
            vec![out_dim],
            Storage::F32,
        );
    }
}

/// Highest `layer_N` index under `side/` plus one (`layer_norm` is not a layer).
fn count_layers(model: &Ct2Model, side: &str) -> usize {
    let prefix = format!("{side}/layer_");
    model
        .variables
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('/').next()?.parse::<usize>().ok())
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

/// Every plan's source exists with the right element count, and every CTranslate2 weight is used.
fn check_plans(model: &Ct2Model, plans: &[TensorPlan]) -> Result<(), ConvertError> {
    let mut used = BTreeSet::new();
    for p in plans {
        let var = model.require(&p.source)?;
        let outer = var.shape.first().copied().unwrap_or(1);
        let want: usize = p.shape.iter().product();
        let have = match p.rows {
            None => var.numel(),
            Some((r0, r1)) if r1 <= outer && outer > 0 => var.numel() / outer * (r1 - r0),
            Some((_, r1)) => {
                return Err(ConvertError::Shape {
                    name: p.source.clone(),
                    detail: format!("needs {r1} rows, has {outer} (shape {:?})", var.shape),
                })
            }
        };
        if have != want {
            return Err(ConvertError::Shape {
                name: p.source.clone(),
                detail: format!(
                    "shape {:?} does not give `{}` {:?}",
                    var.shape, p.name, p.shape
                ),
            });
        }
        let target = model.aliases.get(&p.source).unwrap_or(&p.source);
        used.insert(target.as_str());
    }
    for (name, var) in &model.variables {
        let setting = var.shape.is_empty()
            || name
                .rsplit('/')
                .next()
                .is_some_and(|last| SETTING_SUFFIXES.contains(&last));
        if !setting && !used.contains(name.as_str()) {
            return Err(ConvertError::UnexpectedVariable(name.clone()));
        }
    }
    Ok(())
}

/// Vocabulary entries whisper.cpp reads: ids 0..=50256 (GPT-2's BPE ranks plus its
/// end-of-text slot; multilingual id 50256 is an empty token) as raw bytes, like the files
/// `convert-pt-to-ggml.py` writes. whisper.cpp adds the other special tokens itself.
pub fn token_table(vocab: &[String]) -> Result<Vec<Vec<u8>>, ConvertError> {
    if vocab.len() < N_BPE_TOKENS {
        return Err(ConvertError::Vocabulary(format!(
            "{} tokens, a Whisper vocabulary has at least {N_BPE_TOKENS}",
            vocab.len()
        )));
    }
    let decoder = byte_decoder();
    vocab[..N_BPE_TOKENS]
        .iter()
        .enumerate()
        .map(|(id, tok)| {
            tok.chars()
                .map(|c| decoder.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| {
                    ConvertError::Vocabulary(format!(
                        "token {id} {tok:?} has a character outside the GPT-2 byte alphabet"
                    ))
                })
        })
        .collect()
}

/// Inverse of GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other
/// 68 bytes to U+0100.. in byte order.
pub fn byte_decoder() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next = 256u32;
    let mut map = HashMap::with_capacity(256);
    for b in 0..=255u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or(char::REPLACEMENT_CHARACTER);
            next += 1;
            c
        };
        map.insert(c, b);
    }
    map
}

/// Whisper's mel filterbank (`n_mels` × `n_fft/2+1`, row-major), computed as
/// `librosa.filters.mel(sr, n_fft, n_mels)` with the Slaney mel scale and Slaney area
/// normalisation, which is what whisper's `mel_filters.npz` holds.
pub fn mel_filters(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|i| i as f64 * (sample_rate / 2.0) / (n_bins - 1) as f64)
        .collect();
    let (mel_min, mel_max) = (hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0f32; n_mels * n_bins];
    for m in 0..n_mels {
        let (lo_width, hi_width) = (mel_f[m + 1] - mel_f[m], mel_f[m + 2] - mel_f[m + 1]);
        let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - mel_f[m]) / lo_width;
            let upper = (mel_f[m + 2] - f) / hi_width;
            // librosa stores the triangle in f32, then scales it in f64 and rounds again.
            let tri = lower.min(upper).max(0.0) as f32;
            out[m * n_bins + k] = (f64::from(tri) * enorm) as f32;
        }
    }
    out
}

const MEL_F_SP: f64 = 200.0 / 3.0;
const MEL_MIN_LOG_HZ: f64 = 1000.0;
const MEL_MIN_LOG_MEL: f64 = MEL_MIN_LOG_HZ / MEL_F_SP;

fn mel_logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Slaney mel scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MEL_MIN_LOG_HZ {
        MEL_MIN_LOG_MEL + (hz / MEL_MIN_LOG_HZ).ln() / mel_logstep()
    } else {
        hz / MEL_F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MEL_MIN_LOG_MEL {
        MEL_MIN_LOG_HZ * (mel_logstep() * (mel - MEL_MIN_LOG_MEL)).exp()
    } else {
        mel * MEL_F_SP
    }
}

/// ggml's reference q8_0 quantizer: per block of 32, scale `d = max|x| / 127` stored as f16,
/// values `round(x / d)` as i8. A trailing partial block is zero-padded.
pub fn quantize_q8_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len().div_ceil(QK8_0) * Q8_0_BLOCK_BYTES);
    for block in x.chunks(QK8_0) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        for j in 0..QK8_0 {
            let q = block.get(j).map_or(0.0, |v| (v * id).round());
            out.push(q as i8 as u8);
        }
    }
    out
}

/// Inverse of [`quantize_q8_0`] (first `n` values), used to bound the quantization error.
pub fn dequantize_q8_0(blocks: &[u8], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    for b in blocks.chunks_exact(Q8_0_BLOCK_BYTES) {
        let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
        out.extend(b[2..].iter().map(|&q| f32::from(q as i8) * d));
    }
    out.truncate(n);
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ct2::tests::Ct2Builder;

    /// A 1-layer Whisper-shaped CTranslate2 model with state 32 (q8_0 needs rows of 32).
    fn tiny_model() -> Vec<u8> {
        let n = 32;
        let (mels, vocab, actx, tctx) = (4, 6, 5, 3);
        let ramp =
            |len: usize, k: f32| -> Vec<f32> { (0..len).map(|i| ((i as f32) * k).sin()).collect() };
        let mut b = Ct2Builder::new()
            .f16(
                "encoder/conv1/weight",
                &[n, mels, 3],
                &ramp(n * mels * 3, 0.1),
            )
            .f16("encoder/conv1/bias", &[n], &ramp(n, 0.2))
            .f16("encoder/conv2/weight", &[n, n, 3], &ramp(n * n * 3, 0.3))
            .f16("encoder/conv2/bias", &[n], &ramp(n, 0.4))
            .f16(
                "encoder/position_encodings/encodings",
                &[actx, n],
                &ramp(actx * n, 0.5),
            )
            .f16(
                "decoder/embeddings/weight",
                &[vocab, n],
                &ramp(vocab * n, 0.6),
            )
            .f16(
                "decoder/position_encodings/encodings",
                &[tctx, n],
                &ramp(tctx * n, 0.7),
            )
            .i16_scalar("encoder/num_heads", 2)
            .i16_scalar("decoder/num_heads", 2)
            .i16_scalar("decoder/alignment_layer", -1)
            .alias("decoder/projection/weight", "decoder/embeddings/weight");
        let ln = |b: Ct2Builder, p: &str| {
            b.f32(&format!("{p}/gamma"), &[n], &vec![1.0; n]).f32(
                &format!("{p}/beta"),
                &[n],
                &vec![0.0; n],
            )
        };
        let lin = |b: Ct2Builder, p: &str, o: usize, i: usize| {
            b.f16(&format!("{p}/weight"), &[o, i], &ramp(o * i, 0.01))
                .f16(&format!("{p}/bias"), &[o], &ramp(o, 0.02))
        };
        for side in ["encoder", "decoder"] {
            let l = format!("{side}/layer_0");
            // Fused QKV: rows 0..n = q, n..2n = k, 2n..3n = v; the k-bias part is zero.
            let qkv_w: Vec<f32> = (0..3 * n * n).map(|i| (i / (n * n)) as f32 + 0.5).collect();
            let mut qkv_b = vec![1.0; 3 * n];
            qkv_b[n..2 * n].fill(0.0);
            b = b
                .f16(
                    &format!("{l}/self_attention/linear_0/weight"),
                    &[3 * n, n],
                    &qkv_w,
                )
                .f16(
                    &format!("{l}/self_attention/linear_0/bias"),
                    &[3 * n],
                    &qkv_b,
                );
            b = lin(b, &format!("{l}/self_attention/linear_1"), n, n);
            b = ln(b, &format!("{l}/self_attention/layer_norm"));
            b = lin(b, &format!("{l}/ffn/linear_0"), 4 * n, n);
            b = lin(b, &format!("{l}/ffn/linear_1"), n, 4 * n);
            b = ln(b, &format!("{l}/ffn/layer_norm"));
            b = ln(b, &format!("{side}/layer_norm"));
        }
        let l = "decoder/layer_0/attention";
        b = lin(b, &format!("{l}/linear_0"), n, n);
        b = lin(b, &format!("{l}/linear_1"), 2 * n, n);
        b = lin(b, &format!("{l}/linear_2"), n, n);
        b = ln(b, &format!("{l}/layer_norm"));
        b.build()
    }

    /// 50257 BPE tokens (the first three distinctive) plus a few specials.
    fn vocab() -> Vec<String> {
        let mut v: Vec<String> = ["a", "Ġb", ""].iter().map(|s| s.to_string()).collect();
        v.resize(N_BPE_TOKENS, "zz".into());
        v.extend(["<|endoftext|>", "<|startoftranscript|>"].map(String::from));
        v
    }

    #[test]
    fn maps_and_splits_ct2_names() {
        let model = Ct2Model::parse(tiny_model().as_slice()).unwrap();
        let (hp, plans) = plan_whisper_tensors(&model).unwrap();
        assert_eq!(hp.n_audio_layer, 1);
        assert_eq!(hp.n_text_layer, 1);
        assert_eq!(hp.n_audio_head, 2);
        assert_eq!(hp.n_mels, 4);
        assert_eq!(hp.n_vocab, 6);
        assert!(!hp.multilingual());
        // 7 + 15 per encoder layer + 4 + 24 per decoder layer (245 for base's 6 + 6 layers).
        assert_eq!(plans.len(), 7 + 15 + 4 + 24);
        let get = |n: &str| plans.iter().find(|p| p.name == n).unwrap();
        let k = get("encoder.blocks.0.attn.key.weight");
        assert_eq!(k.source, "encoder/layer_0/self_attention/linear_0/weight");
        assert_eq!(k.rows, Some((32, 64)));
        assert_eq!(
            get("decoder.blocks.0.cross_attn.value.bias").rows,
            Some((32, 64))
        );
        assert_eq!(get("encoder.conv1.bias").shape, vec![32, 1]);
        assert_eq!(get("encoder.conv1.bias").storage, Storage::F32);
        assert_eq!(get("encoder.conv1.weight").storage, Storage::F16);
        assert_eq!(get("decoder.positional_embedding").storage, Storage::F32);
        assert_eq!(
            get("decoder.token_embedding.weight").storage,
            Storage::Matrix
        );
        assert!(!plans.iter().any(|p| p.name.ends_with("key.bias")));
    }

    /// Parses our own output back: header, tensors and the split values.
    #[test]
    fn writes_a_whisper_cpp_file() {
        let model = Ct2Model::parse(tiny_model().as_slice()).unwrap();
        for ty in [GgmlType::F16, GgmlType::Q8_0] {
            let mut out = Vec::new();
            let s = write_whisper_ggml(&model, &vocab(), ty, &mut out).unwrap();
            assert_eq!(s.n_tokens, N_BPE_TOKENS);
            let mut r = Reader(&out, 0);
            assert_eq!(r.i32() as u32, GGML_MAGIC);
            let hp: Vec<i32> = (0..11).map(|_| r.i32()).collect();
            assert_eq!(hp[..10], [6, 5, 32, 2, 1, 3, 32, 2, 1, 4]);
            assert_eq!(hp[10], if ty == GgmlType::F16 { 1 } else { 2007 });
            assert_eq!((r.i32(), r.i32()), (4, 201));
            r.1 += 4 * 4 * 201;
            assert_eq!(r.i32() as usize, N_BPE_TOKENS);
            let toks: Vec<Vec<u8>> = (0..N_BPE_TOKENS)
                .map(|_| {
                    let n = r.i32() as usize;
                    r.bytes(n).to_vec()
                })
                .collect();
            assert_eq!(
                toks[..4],
                [b"a".to_vec(), b" b".to_vec(), vec![], b"zz".to_vec()]
            );
            let mut names = Vec::new();
            while r.1 < out.len() {
                let (n_dims, len, ttype) = (r.i32(), r.i32() as usize, r.i32());
                let dims: Vec<usize> = (0..n_dims).map(|_| r.i32() as usize).collect();
                let name = String::from_utf8(r.bytes(len).to_vec()).unwrap();
                let n: usize = dims.iter().product();
                let size = match ttype {
                    0 => 4 * n,
                    1 => 2 * n,
                    8 => n / 32 * 34,
                    t => panic!("type {t}"),
                };
                let data = r.bytes(size);
                if name == "encoder.blocks.0.attn.value.weight" {
                    assert_eq!(dims, vec![32, 32]);
                    let vals = if ttype == 8 {
                        dequantize_q8_0(data, n)
                    } else {
                        data.chunks(2)
                            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                            .collect()
                    };
                    assert!(vals.iter().all(|&v| (v - 2.5).abs() < 0.02), "value rows");
                }
                if name == "encoder.conv1.bias" {
                    assert_eq!((&dims[..], ttype), (&[1, 32][..], 0));
                }
                if name == "decoder.token_embedding.weight" || name.ends_with("mlp.0.weight") {
                    assert_eq!(ttype, if ty == GgmlType::F16 { 1 } else { 8 });
                }
                if name == "encoder.conv2.weight" {
                    assert_eq!((&dims[..], ttype), (&[3, 32, 32][..], 1));
                }
                names.push(name);
            }
            assert_eq!(names.len(), s.n_tensors);
        }
    }

    struct Reader<'a>(&'a [u8], usize);
    impl Reader<'_> {
        fn i32(&mut self) -> i32 {
            let v = i32::from_le_bytes(self.0[self.1..self.1 + 4].try_into().unwrap());
            self.1 += 4;
            v
        }
        fn bytes(&mut self, n: usize) -> &[u8] {
            self.1 += n;
            &self.0[self.1 - n..self.1]
        }
    }

    #[test]
    fn leftover_weights_and_wrong_spec_are_errors() {
        let mut model = Ct2Model::parse(tiny_model().as_slice()).unwrap();
        let extra = model.variables["encoder/conv1/bias"].clone();
        model
            .variables
            .insert("encoder/mystery/weight".into(), extra);
        assert!(matches!(
            plan_whisper_tensors(&model),
            Err(ConvertError::UnexpectedVariable(n)) if n == "encoder/mystery/weight"
        ));
        model.spec = "TransformerSpec".into();
        assert!(matches!(
            plan_whisper_tensors(&model),
            Err(ConvertError::NotWhisper(_))
        ));
    }

    #[test]
    fn q8_0_round_trip_error_is_bounded() {
        let x: Vec<f32> = (0..1000)
            .map(|i| ((i as f32) * 0.37).sin() * (1.0 + i as f32 / 100.0))
            .collect();
        let q = quantize_q8_0(&x);
        assert_eq!(q.len(), 1000usize.div_ceil(32) * 34);
        let y = dequantize_q8_0(&q, x.len());
        for (block_x, block_y) in x.chunks(32).zip(y.chunks(32)) {
            let amax = block_x.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, b) in block_x.iter().zip(block_y) {
                // Half a quantization step, plus the f16 rounding of the scale.
                assert!(
                    (a - b).abs() <= amax / 127.0 * 0.5 + amax * 1e-3,
                    "{a} vs {b}"
                );
            }
        }
        assert_eq!(
            dequantize_q8_0(&quantize_q8_0(&[0.0; 32]), 32),
            vec![0.0; 32]
        );
    }

    #[test]
    fn byte_decoder_inverts_gpt2_table() {
        let d = byte_decoder();
        assert_eq!(d.len(), 256);
        assert_eq!(d[&'Ġ'], b' ');
        assert_eq!(d[&'Ċ'], b'\n');
        assert_eq!(d[&'!'], b'!');
        assert_eq!(d[&'\u{0100}'], 0);
        assert_eq!(d[&'ÿ'], 0xFF);
        assert!(token_table(&["x".into()]).is_err());
    }

    /// Reference values of whisper's `mel_filters.npz` (80 mels) at a few points, as
    /// `librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)` gives them.
    #[test]
    fn mel_filterbank_matches_librosa() {
        let f = mel_filters(16_000.0, 400, 80);
        assert_eq!(f.len(), 80 * 201);
        let at = |m: usize, k: usize| f[m * 201 + k];
        assert_eq!(at(0, 0), 0.0);
        for (m, k, v) in [
            (0, 1, 0.024_862_594_902_515_41),
            (1, 1, 0.001_990_821_911_022_067),
            (1, 2, 0.022_871_771_827_340_126),
            (79, 190, 0.002_232_054_946_944_117_5),
            (79, 199, 0.000_448_759_004_939_347_5),
        ] {
            assert!(
                (f64::from(at(m, k)) - v).abs() < 1e-9,
                "[{m},{k}] = {}",
                at(m, k)
            );
        }
        // Every row is a non-empty triangle.
        assert!((0..80).all(|m| f[m * 201..(m + 1) * 201].iter().any(|&v| v > 0.0)));
    }
}
