//! Reader for CTranslate2 model directories (`model.bin` + vocabulary), the format the Whisper
//! weights in our pinned registry packages come in (DESIGN §2). It only parses; turning the
//! variables into a whisper.cpp file is [`crate::ggml`]'s job.
//!
//! `model.bin` layout (little endian, DESIGN §3): u32 version, string spec name, u32 revision,
//! u32 variable count, then per variable: string name, u8 rank, u32 dims (outermost first),
//! u8 dtype, u32 byte count, data; then u32 alias count and (alias, target) string pairs.
//! Strings are a u16 length that includes a trailing NUL.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::ggml::ConvertError;

/// Oldest `model.bin` version with explicit dtypes and byte counts (older ones predate
/// every Whisper export).
const MIN_VERSION: u32 = 4;
/// Largest rank accepted; real variables have at most 3 dims, so more means a corrupt file.
const MAX_RANK: u8 = 8;

/// Element type of a CTranslate2 variable (ids as CTranslate2's `DataType` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl Ct2DType {
    /// Maps the on-disk id; `None` for ids this reader does not know.
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// The on-disk id (inverse of [`Ct2DType::from_id`]).
    pub fn id(self) -> u8 {
        match self {
            Self::F32 => 0,
            Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 => 3,
            Self::F16 => 4,
            Self::BF16 => 5,
        }
    }

    /// Bytes per element, used to validate each variable's byte count.
    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One stored variable: shape (outermost first, as numpy), type and raw little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Variable {
    pub shape: Vec<usize>,
    pub dtype: Ct2DType,
    pub data: Vec<u8>,
}

impl Ct2Variable {
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Decodes a floating-point variable to f32 so the writer can re-encode it in any ggml
    /// type; integer variables (settings or int8-quantized weights) are refused.
    pub fn to_f32(&self, name: &str) -> Result<Vec<f32>, ConvertError> {
        let out = match self.dtype {
            Ct2DType::F32 => self
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Ct2DType::F16 => self
                .data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Ct2DType::BF16 => self
                .data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(ConvertError::UnsupportedDType {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        Ok(out)
    }

    /// Reads an integer scalar setting such as `encoder/num_heads` (stored as i8/i16/i32).
    pub fn scalar_int(&self) -> Option<i64> {
        if self.numel() != 1 {
            return None;
        }
        let b = &self.data;
        match self.dtype {
            Ct2DType::I8 => b.first().map(|&v| i64::from(v as i8)),
            Ct2DType::I16 => Some(i64::from(i16::from_le_bytes([*b.first()?, *b.get(1)?]))),
            Ct2DType::I32 => Some(i64::from(i32::from_le_bytes([
                *b.first()?,
                *b.get(1)?,
                *b.get(2)?,
                *b.get(3)?,
            ]))),
            _ => None,
        }
    }
}

/// A parsed `model.bin`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Model {
    /// Format version (6 for current exports).
    pub version: u32,
    /// Model spec, e.g. `WhisperSpec`.
    pub spec: String,
    /// Spec revision.
    pub revision: u32,
    /// Variables by name, sorted (the file stores them sorted too).
    pub variables: BTreeMap<String, Ct2Variable>,
    /// Alias name → target variable name (e.g. `decoder/projection/weight` → the embeddings).
    pub aliases: BTreeMap<String, String>,
}

impl Ct2Model {
    /// Reads and parses a `model.bin` file.
    pub fn read(path: &Path) -> Result<Self, ConvertError> {
        let file = File::open(path).map_err(|source| ConvertError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(BufReader::with_capacity(1 << 20, file)).map_err(|e| match e {
            ConvertError::Io { source, .. } => ConvertError::Io {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        })
    }

    /// Parses `model.bin` bytes from any reader (the path in I/O errors is left empty).
    pub fn parse(mut r: impl Read) -> Result<Self, ConvertError> {
        let version = read_u32(&mut r)?;
        if version < MIN_VERSION {
            return Err(ConvertError::Format(format!(
                "CTranslate2 model.bin version {version} is older than the supported {MIN_VERSION}"
            )));
        }
        let spec = read_string(&mut r)?;
        let revision = read_u32(&mut r)?;
        let count = read_u32(&mut r)?;
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = read_string(&mut r)?;
            let rank = read_u8(&mut r)?;
            if rank > MAX_RANK {
                return Err(ConvertError::Format(format!(
                    "variable `{name}` has rank {rank} (corrupt file?)"
                )));
            }
            let mut shape = Vec::with_capacity(usize::from(rank));
            for _ in 0..rank {
                shape.push(read_u32(&mut r)? as usize);
            }
            let dtype_id = read_u8(&mut r)?;
            let dtype =
                Ct2DType::from_id(dtype_id).ok_or_else(|| ConvertError::UnsupportedDType {
                    name: name.clone(),
                    dtype: format!("id {dtype_id}"),
                })?;
            let n_bytes = read_u32(&mut r)? as usize;
            let expected = shape.iter().product::<usize>() * dtype.size();
            if n_bytes != expected {
                return Err(ConvertError::Format(format!(
                    "variable `{name}` has {n_bytes} bytes, its shape {shape:?} of {dtype:?} needs {expected}"
                )));
            }
            let mut data = vec![0u8; n_bytes];
            r.read_exact(&mut data).map_err(truncated)?;
            variables.insert(name, Ct2Variable { shape, dtype, data });
        }
        let n_aliases = read_u32(&mut r)?;
        let mut aliases = BTreeMap::new();
        for _ in 0..n_aliases {
            let alias = read_string(&mut r)?;
            let target = read_string(&mut r)?;
            aliases.insert(alias, target);
        }
        Ok(Self {
            version,
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// Looks a variable up by name, following aliases.
    pub fn get(&self, name: &str) -> Option<&Ct2Variable> {
        self.variables.get(name).or_else(|| {
            self.aliases
                .get(name)
                .and_then(|target| self.variables.get(target))
        })
    }

    /// Like [`Ct2Model::get`] but a missing variable is a conversion error naming it.
    pub fn require(&self, name: &str) -> Result<&Ct2Variable, ConvertError> {
        self.get(name)
            .ok_or_else(|| ConvertError::MissingVariable(name.to_string()))
    }
}

/// Reads the token list of a CTranslate2 model directory: `vocabulary.json` (a JSON array of
/// strings) or `vocabulary.txt` (one token per line), whichever exists. Tokens are in the
/// GPT-2 byte-to-unicode spelling; index = token id.
pub fn read_vocabulary(dir: &Path) -> Result<Vec<String>, ConvertError> {
    let json = dir.join("vocabulary.json");
    if json.exists() {
        let text = std::fs::read_to_string(&json).map_err(|source| ConvertError::Io {
            path: json.clone(),
            source,
        })?;
        return serde_json::from_str(&text).map_err(|e| {
            ConvertError::Vocabulary(format!(
                "{} is not a JSON string array: {e}",
                json.display()
            ))
        });
    }
    let txt = dir.join("vocabulary.txt");
    let text = std::fs::read_to_string(&txt).map_err(|source| ConvertError::Io {
        path: txt.clone(),
        source,
    })?;
    // A trailing newline ends the last token rather than starting an empty one.
    let body = text.strip_suffix('\n').unwrap_or(&text);
    Ok(body.split('\n').map(str::to_string).collect())
}

fn truncated(e: std::io::Error) -> ConvertError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        ConvertError::Format("model.bin ends early (truncated or wrong concatenation?)".into())
    } else {
        ConvertError::Io {
            path: Default::default(),
            source: e,
        }
    }
}

fn read_u8(r: &mut impl Read) -> Result<u8, ConvertError> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(truncated)?;
    Ok(b[0])
}

fn read_u32(r: &mut impl Read) -> Result<u32, ConvertError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(truncated)?;
    Ok(u32::from_le_bytes(b))
}

fn read_string(r: &mut impl Read) -> Result<String, ConvertError> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).map_err(truncated)?;
    let mut buf = vec![0u8; usize::from(u16::from_le_bytes(len))];
    r.read_exact(&mut buf).map_err(truncated)?;
    if buf.last() == Some(&0) {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| ConvertError::Format("a name is not valid UTF-8".into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// Builds `model.bin` bytes in the CTranslate2 layout, for tests here and in `ggml`.
    pub(crate) struct Ct2Builder {
        vars: Vec<(String, Vec<usize>, Ct2DType, Vec<u8>)>,
        aliases: Vec<(String, String)>,
    }

    fn put_string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&u16::try_from(s.len() + 1).unwrap().to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    impl Ct2Builder {
        pub(crate) fn new() -> Self {
            Self {
                vars: Vec::new(),
                aliases: Vec::new(),
            }
        }

        pub(crate) fn f16(mut self, name: &str, shape: &[usize], values: &[f32]) -> Self {
            assert_eq!(shape.iter().product::<usize>(), values.len());
            let data = values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect();
            self.vars
                .push((name.into(), shape.to_vec(), Ct2DType::F16, data));
            self
        }

        pub(crate) fn f32(mut self, name: &str, shape: &[usize], values: &[f32]) -> Self {
            assert_eq!(shape.iter().product::<usize>(), values.len());
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.vars
                .push((name.into(), shape.to_vec(), Ct2DType::F32, data));
            self
        }

        pub(crate) fn i16_scalar(mut self, name: &str, v: i16) -> Self {
            self.vars
                .push((name.into(), vec![], Ct2DType::I16, v.to_le_bytes().to_vec()));
            self
        }

        pub(crate) fn alias(mut self, alias: &str, target: &str) -> Self {
            self.aliases.push((alias.into(), target.into()));
            self
        }

        pub(crate) fn build(mut self) -> Vec<u8> {
            self.vars.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Vec::new();
            out.extend_from_slice(&6u32.to_le_bytes());
            put_string(&mut out, "WhisperSpec");
            out.extend_from_slice(&3u32.to_le_bytes());
            out.extend_from_slice(&u32::try_from(self.vars.len()).unwrap().to_le_bytes());
            for (name, shape, dtype, data) in &self.vars {
                put_string(&mut out, name);
                out.push(u8::try_from(shape.len()).unwrap());
                for d in shape {
                    out.extend_from_slice(&u32::try_from(*d).unwrap().to_le_bytes());
                }
                out.push(dtype.id());
                out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
                out.extend_from_slice(data);
            }
            out.extend_from_slice(&u32::try_from(self.aliases.len()).unwrap().to_le_bytes());
            for (a, t) in &self.aliases {
                put_string(&mut out, a);
                put_string(&mut out, t);
            }
            out
        }
    }

    #[test]
    fn parses_variables_dtypes_and_aliases() {
        let qkv: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let bytes = Ct2Builder::new()
            .f16(
                "encoder/layer_0/self_attention/linear_0/weight",
                &[6, 2],
                &qkv,
            )
            .f32("encoder/layer_norm/gamma", &[2], &[1.0, -2.5])
            .i16_scalar("encoder/num_heads", 6)
            .alias("decoder/projection/weight", "encoder/layer_norm/gamma")
            .build();
        let m = Ct2Model::parse(bytes.as_slice()).unwrap();
        assert_eq!(m.version, 6);
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.revision, 3);
        assert_eq!(m.variables.len(), 3);
        let w = m
            .require("encoder/layer_0/self_attention/linear_0/weight")
            .unwrap();
        assert_eq!(w.shape, vec![6, 2]);
        assert_eq!(w.dtype, Ct2DType::F16);
        assert_eq!(w.to_f32("w").unwrap(), qkv);
        assert_eq!(
            m.get("decoder/projection/weight")
                .unwrap()
                .to_f32("p")
                .unwrap(),
            vec![1.0, -2.5]
        );
        assert_eq!(m.get("encoder/num_heads").unwrap().scalar_int(), Some(6));
        assert!(m.get("encoder/num_heads").unwrap().to_f32("n").is_err());
        assert!(matches!(
            m.require("nope"),
            Err(ConvertError::MissingVariable(n)) if n == "nope"
        ));
    }

    #[test]
    fn truncated_and_inconsistent_files_are_errors() {
        let bytes = Ct2Builder::new()
            .f32("a", &[4], &[1.0, 2.0, 3.0, 4.0])
            .build();
        let cut = &bytes[..bytes.len() - 10];
        assert!(matches!(
            Ct2Model::parse(cut),
            Err(ConvertError::Format(m)) if m.contains("ends early")
        ));
        let mut old = bytes.clone();
        old[0] = 3;
        assert!(Ct2Model::parse(old.as_slice()).is_err());
    }

    #[test]
    fn reads_both_vocabulary_formats() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("vocabulary.txt"),
            "a\nĠb\n\n<|endoftext|>\n",
        )
        .unwrap();
        assert_eq!(
            read_vocabulary(dir.path()).unwrap(),
            vec!["a", "Ġb", "", "<|endoftext|>"]
        );
        std::fs::write(dir.path().join("vocabulary.json"), r#"["x","Ġy"]"#).unwrap();
        assert_eq!(read_vocabulary(dir.path()).unwrap(), vec!["x", "Ġy"]);
    }
}
