//! Image classification: any ONNX classifier described by a small manifest (input
//! size, crop, channel order and layout, mean/std, labels), shipped with Yahoo's
//! open_nsfw (DESIGN §2). Images are decoded with the `image` crate (PNG, JPEG, WebP)
//! under size limits, preprocessed per the manifest and run on a bounded worker pool.
//!
//! Operators add classifiers as `<models>/classifiers/<name>/manifest.json` with the
//! model path relative to that folder.
//!
//! Resizing and the optional JPEG round trip reproduce Pillow (with libjpeg-turbo)
//! exactly, because classifier references are Python code built on it.

mod jpeg_round_trip;
mod pillow_resize;

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use image::{DynamicImage, ImageReader};
use ort::session::Session;
use ort::value::Tensor;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use self::jpeg_round_trip::libjpeg_round_trip;
use self::pillow_resize::pil_resize_bilinear;
use crate::error::ModelError;
use crate::onnx::{self, SessionConfig};
use crate::pool::{Priority, WorkerPool};

/// Folder of operator-installed classifiers inside the models directory.
pub const CLASSIFIERS_DIR: &str = "classifiers";
/// Manifest id of the shipped open_nsfw model (see `packages::MODELS`).
pub const OPEN_NSFW_ID: &str = "open-nsfw";

/// Largest image side accepted (pixels) and largest decoded size (bytes): a 20k × 20k
/// PNG is a few KB on the wire and 1.6 GB decoded.
pub const MAX_IMAGE_SIDE: u32 = 8_192;
const MAX_DECODED_BYTES: u64 = 256 << 20;

/// Tensor layout of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nhwc,
    Nchw,
}

/// Channel order of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    Rgb,
    Bgr,
}

/// How a classifier wants its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierManifest {
    pub name: String,
    pub model: PathBuf,
    #[serde(default = "default_input")]
    pub input: String,
    #[serde(default = "default_output")]
    pub output: String,
    pub layout: Layout,
    pub channels: Channels,
    /// Resize to `[width, height]` first (Pillow's bilinear, aspect ratio not kept).
    pub resize: [u32; 2],
    /// Then centre-crop to `[width, height]`.
    pub crop: [u32; 2],
    /// Pixel values are `value * scale` (0–255 input: 1.0; 0–1 input: 1/255) …
    #[serde(default = "one")]
    pub scale: f32,
    /// … minus `mean`, divided by `std`, per channel in the model's channel order.
    pub mean: [f32; 3],
    #[serde(default = "ones")]
    pub std: [f32; 3],
    /// Re-encode as JPEG at this quality before cropping (open_nsfw was trained on
    /// JPEG-decoded images and its reference pipeline does this).
    #[serde(default)]
    pub jpeg_quality: Option<u8>,
    /// The output is logits: apply softmax.
    #[serde(default)]
    pub softmax: bool,
    pub labels: Vec<String>,
}

fn default_input() -> String {
    "input".to_string()
}
fn default_output() -> String {
    "output".to_string()
}
fn one() -> f32 {
    1.0
}
fn ones() -> [f32; 3] {
    [1.0; 3]
}

impl ClassifierManifest {
    /// open_nsfw as its package's reference pipeline runs it.
    pub fn open_nsfw(model: PathBuf) -> Self {
        Self {
            name: "open_nsfw".to_string(),
            model,
            // The names the package's ONNX export gave its tensors.
            input: "input_0".to_string(),
            output: "4195".to_string(),
            layout: Layout::Nhwc,
            channels: Channels::Bgr,
            resize: [256, 256],
            crop: [224, 224],
            scale: 1.0,
            mean: [104.0, 117.0, 123.0],
            std: ones(),
            jpeg_quality: Some(75),
            softmax: false,
            labels: vec!["sfw".to_string(), "nsfw".to_string()],
        }
    }

    /// Reads `<dir>/manifest.json`, resolving the model path against `dir`.
    pub fn read(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("manifest.json");
        let load_error = |detail: String| ModelError::Load {
            id: "classifier".to_string(),
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| load_error(e.to_string()))?;
        let mut manifest: Self =
            serde_json::from_str(&text).map_err(|e| load_error(e.to_string()))?;
        if manifest.model.is_relative() {
            manifest.model = dir.join(&manifest.model);
        }
        if manifest.labels.is_empty() || manifest.crop.contains(&0) || manifest.resize.contains(&0)
        {
            return Err(load_error(
                "labels, resize and crop must be non-empty".into(),
            ));
        }
        Ok(manifest)
    }

    /// Every classifier in `<models>/classifiers/*/manifest.json`; broken ones are logged.
    pub fn read_installed(models_dir: &Path) -> Vec<Self> {
        let Ok(entries) = std::fs::read_dir(models_dir.join(CLASSIFIERS_DIR)) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("manifest.json").is_file())
            .filter_map(|dir| {
                Self::read(&dir)
                    .map_err(|e| tracing::warn!(error = %e, "skipping classifier manifest"))
                    .ok()
            })
            .collect()
    }
}

/// One label and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

/// Why an image was refused (the server answers 400).
fn bad_image(detail: impl std::fmt::Display) -> ModelError {
    ModelError::Unsupported(format!("`image` could not be used: {detail}"))
}

/// Decodes PNG/JPEG/WebP (and the other formats the `image` crate knows) under the
/// size limits, checking the header's dimensions before allocating pixels.
pub fn decode_image(bytes: &[u8]) -> Result<DynamicImage, ModelError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(bad_image)?;
    if reader.format().is_none() {
        return Err(bad_image("not a PNG, JPEG, WebP or other known image"));
    }
    let (width, height) = reader.into_dimensions().map_err(bad_image)?;
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width == 0 || height == 0 {
        return Err(bad_image(format!(
            "it is {width}×{height} pixels; the limit is {MAX_IMAGE_SIDE} per side"
        )));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(bad_image)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    reader.decode().map_err(bad_image)
}

/// The model input for one image: `[1, …]` values in the manifest's layout.
pub fn preprocess(image: &DynamicImage, m: &ClassifierManifest) -> Result<Vec<f32>, ModelError> {
    let rgb = image.to_rgb8();
    let resized = pil_resize_bilinear(&rgb, m.resize[0], m.resize[1]);
    let resized = match m.jpeg_quality {
        Some(quality) => libjpeg_round_trip(&resized, quality),
        None => resized,
    };
    let (cw, ch) = (m.crop[0].min(m.resize[0]), m.crop[1].min(m.resize[1]));
    let (x0, y0) = ((m.resize[0] - cw) / 2, (m.resize[1] - ch) / 2);
    let order: [usize; 3] = match m.channels {
        Channels::Rgb => [0, 1, 2],
        Channels::Bgr => [2, 1, 0],
    };
    let (w, h) = (cw as usize, ch as usize);
    let mut out = vec![0f32; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let pixel = resized.get_pixel(x0 + x as u32, y0 + y as u32).0;
            for (c, &source) in order.iter().enumerate() {
                let value = (f32::from(pixel[source]) * m.scale - m.mean[c]) / m.std[c];
                let index = match m.layout {
                    Layout::Nhwc => (y * w + x) * 3 + c,
                    Layout::Nchw => c * w * h + y * w + x,
                };
                out[index] = value;
            }
        }
    }
    Ok(out)
}

struct ClassifyJob {
    classifier: Arc<ClassifierManifest>,
    image: Vec<u8>,
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<LabelScore>, ModelError>>,
}

/// Installed classifiers plus their workers.
pub struct ClassifyEngine {
    classifiers: HashMap<String, Arc<ClassifierManifest>>,
    default: String,
    pool: WorkerPool<ClassifyJob>,
}

impl ClassifyEngine {
    /// Starts the workers; the first classifier is the default.
    pub fn new(
        classifiers: Vec<ClassifierManifest>,
        workers: usize,
        queue_capacity: usize,
    ) -> Result<Self, ModelError> {
        let default = classifiers
            .first()
            .map(|c| c.name.clone())
            .ok_or_else(|| ModelError::Inference("no image classifier installed".into()))?;
        let classifiers = classifiers
            .into_iter()
            .map(|c| (c.name.clone(), Arc::new(c)))
            .collect();
        let pool = WorkerPool::spawn(
            "classify",
            workers.max(1),
            queue_capacity.max(1),
            |_| {
                crate::pool::lower_thread_priority();
                HashMap::<String, Session>::new()
            },
            |sessions: &mut HashMap<String, Session>, job: ClassifyJob| {
                if job.reply.is_closed() {
                    return;
                }
                crate::pool::yield_to_live_audio();
                let result = if Instant::now() >= job.deadline {
                    Err(ModelError::DeadlineExceeded)
                } else {
                    classify(sessions, &job.classifier, &job.image)
                };
                let _ = job.reply.send(result);
            },
        )
        .map_err(|e| ModelError::Inference(format!("could not start classifier workers: {e}")))?;
        Ok(Self {
            classifiers,
            default,
            pool,
        })
    }

    /// Names of the installed classifiers, default first.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.classifiers.keys().cloned().collect();
        names.sort_by_key(|n| (n != &self.default, n.clone()));
        names
    }

    /// Queues an image (encoded bytes); the receiver yields every label's score, best first.
    pub fn submit(
        &self,
        model: Option<&str>,
        image: Vec<u8>,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Result<Vec<LabelScore>, ModelError>>, ModelError> {
        let name = model.unwrap_or(&self.default);
        let classifier =
            self.classifiers
                .get(name)
                .cloned()
                .ok_or_else(|| ModelError::UnknownModel {
                    requested: name.to_string(),
                    installed: self.names().join(", "),
                })?;
        let (reply, receiver) = oneshot::channel();
        self.pool.try_submit_with(
            Priority::Batch,
            ClassifyJob {
                classifier,
                image,
                deadline,
                reply,
            },
        )?;
        Ok(receiver)
    }
}

fn classify(
    sessions: &mut HashMap<String, Session>,
    m: &ClassifierManifest,
    bytes: &[u8],
) -> Result<Vec<LabelScore>, ModelError> {
    let image = decode_image(bytes)?;
    let input = preprocess(&image, m)?;
    let session = match sessions.entry(m.name.clone()) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(onnx::session(&m.name, &m.model, &SessionConfig::default())?)
        }
    };
    let inference = |e: ort::Error| ModelError::Inference(format!("classifier: {e}"));
    let (w, h) = (m.crop[0] as usize, m.crop[1] as usize);
    let shape = match m.layout {
        Layout::Nhwc => [1, h, w, 3],
        Layout::Nchw => [1, 3, h, w],
    };
    let tensor = Tensor::from_array((shape, input)).map_err(inference)?;
    let outputs = session
        .run(ort::inputs![m.input.as_str() => &tensor])
        .map_err(inference)?;
    let value = outputs
        .get(&m.output)
        .ok_or_else(|| ModelError::Inference(format!("classifier gave no `{}`", m.output)))?;
    let (_, scores) = value.try_extract_tensor::<f32>().map_err(inference)?;
    let mut scores: Vec<f32> = scores.iter().take(m.labels.len()).copied().collect();
    if m.softmax {
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = scores.iter().map(|s| (s - max).exp()).sum();
        scores.iter_mut().for_each(|s| *s = (*s - max).exp() / sum);
    }
    let mut labelled: Vec<LabelScore> = m
        .labels
        .iter()
        .zip(scores)
        .map(|(label, score)| LabelScore {
            label: label.clone(),
            score,
        })
        .collect();
    labelled.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(labelled)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use image::RgbImage;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb8(image)
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn bad_images_are_refused_before_decoding() {
        assert!(decode_image(b"not an image at all").is_err());
        let good = png(40, 30);
        assert!(decode_image(&good).is_ok());
        assert!(decode_image(&good[..good.len() / 2]).is_err());
        // A header that claims 100k × 100k pixels.
        let mut huge = png(1, 1);
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = decode_image(&huge).unwrap_err().to_string();
        assert!(err.contains("limit") || err.contains("could not"), "{err}");
    }

    #[test]
    fn preprocessing_follows_the_manifest() {
        let mut m = ClassifierManifest::open_nsfw(PathBuf::from("x.onnx"));
        m.jpeg_quality = None;
        let image =
            DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 200, image::Rgb([10, 20, 30])));
        let input = preprocess(&image, &m).unwrap();
        assert_eq!(input.len(), 224 * 224 * 3);
        // BGR minus the means, NHWC.
        assert_eq!(&input[..3], &[30.0 - 104.0, 20.0 - 117.0, 10.0 - 123.0]);
        m.layout = Layout::Nchw;
        m.channels = Channels::Rgb;
        let input = preprocess(&image, &m).unwrap();
        assert_eq!(input[0], 10.0 - 104.0);
        assert_eq!(input[224 * 224], 20.0 - 117.0);
    }
}
