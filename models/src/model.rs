//! One loaded ONNX graph: a session created once and reused, with its declared inputs and
//! outputs, and float32 inference that validates inputs before ONNX Runtime sees them.

use crate::error::{Error, Result};
use crate::runtime::runtime;
use ndarray::{ArrayD, ArrayViewD};
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::{TensorElementType, TensorRef, ValueType};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider (always present).
    #[default]
    Cpu,
    /// ONNX Runtime's CUDA execution provider on the given GPU. Loading fails with
    /// [`Error::Provider`] when the loaded runtime has no CUDA support (the PyPI `onnxruntime`
    /// wheel is CPU only; use `onnxruntime-gpu` through `ORT_DYLIB_PATH`).
    Cuda(i32),
}

/// How a session is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// ONNX Runtime intra-op threads. Set explicitly so that ONNX Runtime does not start one
    /// thread per core beside rayon's pool. Default: the number of available cores, at most 4.
    pub intra_threads: usize,
    /// Execution provider.
    pub device: Device,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            intra_threads: std::thread::available_parallelism()
                .map(|n| n.get().min(4))
                .unwrap_or(1),
            device: Device::Cpu,
        }
    }
}

/// A declared graph input or output: name, element type and shape (`None` = dynamic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The graph's name for it.
    pub name: String,
    /// Element type as ONNX Runtime names it (e.g. `"Float32"`), or the non-tensor kind.
    pub dtype: String,
    /// Whether it is a float32 tensor.
    pub is_f32: bool,
    /// Declared dimensions; `None` for a dynamic (symbolic) dimension.
    pub shape: Vec<Option<usize>>,
}

impl TensorSpec {
    fn from_outlet(name: &str, t: &ValueType) -> Self {
        match t {
            ValueType::Tensor { ty, shape, .. } => TensorSpec {
                name: name.to_string(),
                dtype: format!("{ty:?}"),
                is_f32: *ty == TensorElementType::Float32,
                shape: shape
                    .iter()
                    .map(|&d| if d < 0 { None } else { Some(d as usize) })
                    .collect(),
            },
            other => TensorSpec {
                name: name.to_string(),
                dtype: format!("{other:?}"),
                is_f32: false,
                shape: Vec::new(),
            },
        }
    }

    /// The shape as text, `?` for dynamic dimensions, e.g. `[1, 2, ?, ?]`.
    pub fn shape_string(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
            .collect();
        format!("[{}]", dims.join(", "))
    }

    /// Check a concrete shape against the declaration.
    pub fn check(&self, got: &[usize]) -> Result<()> {
        let ok = self.shape.len() == got.len()
            && self
                .shape
                .iter()
                .zip(got)
                .all(|(d, &g)| d.is_none_or(|d| d == g));
        if !ok || !self.is_f32 {
            return Err(Error::Input {
                name: self.name.clone(),
                expected: format!("{} {} tensor", self.dtype, self.shape_string()),
                got: format!("Float32 {got:?} tensor"),
            });
        }
        Ok(())
    }
}

/// An ONNX graph loaded once into an ONNX Runtime session and reused for every call.
///
/// The session sits behind a mutex (ONNX Runtime sessions need exclusive access per run), so
/// an `OnnxModel` is `Send + Sync` and can be shared; concurrent calls are serialised, and
/// parallelism comes from the session's intra-op threads.
pub struct OnnxModel {
    session: Mutex<Session>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    path: PathBuf,
    options: SessionOptions,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("options", &self.options)
            .finish()
    }
}

impl OnnxModel {
    /// Load the ONNX graph at `path` (finding ONNX Runtime first, see [`crate::runtime`](mod@crate::runtime)).
    ///
    /// Errors: [`Error::RuntimeNotFound`] without a runtime, [`Error::Model`] for a missing or
    /// invalid file, [`Error::Provider`] when CUDA is asked for but absent,
    /// [`Error::InvalidParameter`](sparseinv_solvers::Error::InvalidParameter) for zero threads.
    pub fn load(path: impl AsRef<Path>, options: SessionOptions) -> Result<Self> {
        let path = path.as_ref();
        Self::check_options(options)?;
        if !path.is_file() {
            return Err(Error::Model {
                path: path.to_path_buf(),
                reason: "no such file".to_string(),
            });
        }
        let session = Self::builder(options)?
            .commit_from_file(path)
            .map_err(|e| Error::Model {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(Self::from_session(session, path.to_path_buf(), options))
    }

    /// Load an ONNX graph held in memory (e.g. embedded in the binary with `include_bytes!`).
    /// `name` stands in for the file name in [`path`](Self::path) and in error messages.
    ///
    /// Errors as [`load`](Self::load) (an invalid graph is an [`Error::Model`]).
    pub fn load_from_memory(bytes: &[u8], name: &str, options: SessionOptions) -> Result<Self> {
        Self::check_options(options)?;
        let path = PathBuf::from(name);
        let session = Self::builder(options)?
            .commit_from_memory(bytes)
            .map_err(|e| Error::Model {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self::from_session(session, path, options))
    }

    fn check_options(options: SessionOptions) -> Result<()> {
        if options.intra_threads == 0 {
            return Err(
                sparseinv_solvers::Error::param("intra_threads", "must be at least 1").into(),
            );
        }
        Ok(())
    }

    /// A session builder with the threads, optimisation level and execution provider set.
    fn builder(options: SessionOptions) -> Result<ort::session::builder::SessionBuilder> {
        let rt = runtime()?;
        let mut builder = Session::builder(rt.environment())?
            .with_intra_threads(options.intra_threads)?
            .with_inter_threads(1)?
            .with_optimization_level(GraphOptimizationLevel::Level3)?;
        if let Device::Cuda(id) = options.device {
            if !rt.has_cuda() {
                return Err(Error::Provider {
                    provider: "CUDA".to_string(),
                    reason: format!(
                        "the ONNX Runtime loaded from {} ({}) was built without \
                         CUDAExecutionProvider; install onnxruntime-gpu (with CUDA 12/13 and \
                         cuDNN 9) and point ORT_DYLIB_PATH at its libonnxruntime, or use the CPU",
                        rt.path().display(),
                        rt.source()
                    ),
                });
            }
            let ep = ort::ep::CUDA::default()
                .with_device_id(id)
                .build()
                .error_on_failure();
            builder = builder
                .with_execution_providers([ep])
                .map_err(|e| Error::Provider {
                    provider: "CUDA".to_string(),
                    reason: format!("registration failed: {e} (are the CUDA and cuDNN libraries on the library path?)"),
                })?;
        }
        Ok(builder)
    }

    fn from_session(session: Session, path: PathBuf, options: SessionOptions) -> Self {
        let inputs = session
            .inputs()
            .iter()
            .map(|o| TensorSpec::from_outlet(o.name(), o.dtype()))
            .collect();
        let outputs = session
            .outputs()
            .iter()
            .map(|o| TensorSpec::from_outlet(o.name(), o.dtype()))
            .collect();
        OnnxModel {
            session: Mutex::new(session),
            inputs,
            outputs,
            path,
            options,
        }
    }

    /// The graph's declared inputs.
    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }
    /// The graph's declared outputs.
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }
    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The options it was loaded with.
    pub fn options(&self) -> SessionOptions {
        self.options
    }

    /// Run the graph on float32 inputs, given in the graph's input order, and return every
    /// output as a float32 array.
    ///
    /// Each input is checked against its declaration first: count, element type (float32),
    /// rank and every fixed dimension; a mismatch is an [`Error::Input`] naming the input, the
    /// declared shape and the given one. Non-float32 outputs are an [`Error::Contract`].
    pub fn run(&self, inputs: &[ArrayViewD<'_, f32>]) -> Result<Vec<ArrayD<f32>>> {
        if inputs.len() != self.inputs.len() {
            let names: Vec<&str> = self.inputs.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::Contract(format!(
                "{} takes {} input(s) {names:?}, {} given",
                self.path.display(),
                self.inputs.len(),
                inputs.len()
            )));
        }
        for (spec, x) in self.inputs.iter().zip(inputs) {
            spec.check(x.shape())?;
        }
        if let Some(o) = self.outputs.iter().find(|o| !o.is_f32) {
            return Err(Error::Contract(format!(
                "output `{}` is {}, only Float32 outputs are supported",
                o.name, o.dtype
            )));
        }
        let contiguous: Vec<_> = inputs.iter().map(|x| x.as_standard_layout()).collect();
        let mut feed: Vec<(Cow<'_, str>, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(inputs.len());
        for (spec, x) in self.inputs.iter().zip(&contiguous) {
            let t = TensorRef::from_array_view(x.view())?;
            feed.push((Cow::<str>::Owned(spec.name.clone()), t.into()));
        }
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Runtime("session lock poisoned by an earlier panic".into()))?;
        let outputs = session.run(feed)?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for spec in &self.outputs {
            let v = outputs.get(spec.name.as_str()).ok_or_else(|| {
                Error::Runtime(format!("output `{}` missing from the results", spec.name))
            })?;
            result.push(v.try_extract_array::<f32>()?.to_owned());
        }
        Ok(result)
    }
}
