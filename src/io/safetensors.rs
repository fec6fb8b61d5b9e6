//! The safetensors weight-file format: saving and loading tensors, a model's parameters and the
//! string metadata, and the parsing and validation of the header and byte ranges. Writing the
//! file to disk is [`write_atomically`]'s job.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};

use super::write_atomically;
use crate::error::{backticked, bare};
use crate::nn::{Module, state_entries, write_state};
use crate::{Element, Error, Result, Tensor};

/// The header key safetensors reserves for the string metadata.
const METADATA_KEY: &str = "__metadata__";
/// Bytes of the header-length prefix.
const PREFIX: usize = 8;

// ---------------------------------------------------------------------------------------------
// Saving
// ---------------------------------------------------------------------------------------------

/// Writes named tensors and string metadata to a safetensors file at `path`.
///
/// Tensors are stored as `F32` or `F64` (from `E`), little-endian, in row-major order with their
/// shapes; views are written as their logical values. The file's tensors are ordered by name,
/// as the safetensors writer does. `metadata` goes into the header's `__metadata__` map; with
/// more than one entry their order in the header (not their content) can differ from one save to
/// the next, since the safetensors crate keeps them in a hash map.
///
/// The write is crash-safe: the bytes go to a temporary file `.<name>.<pid>.tmp` next to the
/// target, which is flushed, synced (`sync_all`) and then renamed over `path`. If anything fails
/// the temporary file is removed and an existing file at `path` is left untouched.
///
/// ```
/// use tensorgrad::{Tensor, io};
///
/// let path = std::env::temp_dir().join(format!("tensorgrad-save-tensors-doc-{}.safetensors", std::process::id()));
/// let embeddings = Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.0], &[2, 2]);
/// let scale = Tensor::scalar(3.0f32);
/// let tensors = vec![("embeddings".to_string(), embeddings), ("scale".to_string(), scale)];
/// io::save_tensors(&path, &tensors, &[("source".to_string(), "example".to_string())])?;
///
/// let loaded = io::load_tensors::<f32>(&path)?;
/// assert_eq!(loaded[0].0, "embeddings");
/// assert_eq!(loaded[0].1.to_vec(), [0.5, -1.0, 2.0, 0.0]);
/// assert_eq!(loaded[1].1.shape(), &[] as &[usize]); // a scalar stays a scalar
///
/// // Two tensors under one name are refused before anything is written.
/// let twice = vec![("w".to_string(), Tensor::<f32>::zeros(&[1])), ("w".to_string(), Tensor::zeros(&[1]))];
/// assert!(io::save_tensors(&path, &twice, &[]).is_err());
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidName`] for a duplicate tensor name or metadata key, or a tensor named
/// `__metadata__`; [`Error::Io`] if the directory does not exist or a write, sync or rename
/// fails.
pub fn save_tensors<E: Element>(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor<E>)],
    metadata: &[(String, String)],
) -> Result<()> {
    let path = path.as_ref();
    let bytes = save_tensors_to_bytes(tensors, metadata)?;
    write_atomically(path, &bytes)
}

/// The bytes of the safetensors file [`save_tensors`] would write.
///
/// ```
/// use tensorgrad::{Tensor, io};
///
/// let tensors = vec![("w".to_string(), Tensor::from_vec(vec![1.0f32, 2.0], &[2]))];
/// let bytes = io::save_tensors_to_bytes(&tensors, &[])?;
/// // An 8-byte little-endian header length, the JSON header, then the 8 bytes of data.
/// let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
/// assert_eq!(bytes.len(), 8 + header_len + 8);
/// assert!(std::str::from_utf8(&bytes[8..8 + header_len]).unwrap().contains("\"dtype\":\"F32\""));
/// assert_eq!(io::load_tensors_from_bytes::<f32>(&bytes)?[0].1.to_vec(), [1.0, 2.0]);
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidName`] for a duplicate tensor name or metadata key, or a tensor named
/// `__metadata__`.
pub fn save_tensors_to_bytes<E: Element>(
    tensors: &[(String, Tensor<E>)],
    metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    serialize(tensors, &[], metadata)
}

/// [`save_tensors_to_bytes`], with the tensors at the positions `counts` says written as `I64`
/// (counting buffers such as `num_batches_tracked`, which PyTorch keeps as integers).
fn serialize<E: Element>(
    tensors: &[(String, Tensor<E>)],
    counts: &[bool],
    metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    let mut seen = HashSet::new();
    for (name, _) in tensors {
        if name == METADATA_KEY {
            return Err(Error::InvalidName {
                kind: "tensor",
                name: name.clone(),
                reason: "the name is reserved for the file's metadata",
            });
        }
        if !seen.insert(name.as_str()) {
            return Err(Error::InvalidName { kind: "tensor", name: name.clone(), reason: "the name is used twice" });
        }
    }
    let mut info = HashMap::with_capacity(metadata.len());
    for (key, value) in metadata {
        if info.insert(key.clone(), value.clone()).is_some() {
            return Err(Error::InvalidName {
                kind: "metadata key",
                name: key.clone(),
                reason: "the key is used twice",
            });
        }
    }
    let views = tensors.iter().enumerate().map(|(i, (name, t))| {
        let dtype = if counts.get(i) == Some(&true) { Dtype::I64 } else { dtype_of::<E>() };
        (name.as_str(), Encoded { tensor: t, dtype })
    });
    let info = (!info.is_empty()).then_some(info);
    // The names are unique and the byte lengths match the shapes, so serialization cannot fail
    // except for a header over safetensors' 100 MB limit.
    safetensors::serialize(views, info).map_err(|e| Error::Format { path: None, reason: e.to_string() })
}

/// A tensor as the safetensors writer sees it: its values are encoded when they are written.
struct Encoded<'a, E: Element> {
    tensor: &'a Tensor<E>,
    dtype: Dtype,
}

impl<E: Element> View for Encoded<'_, E> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        self.tensor.shape()
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        let values = self.tensor.to_vec();
        match self.dtype {
            // A count: whole numbers, saturated to the i64 range.
            Dtype::I64 => {
                values.iter().flat_map(|v| (v.to_f64().unwrap_or(0.0).round() as i64).to_le_bytes()).collect()
            }
            _ => encode(&values),
        }
        .into()
    }

    fn data_len(&self) -> usize {
        let width = if self.dtype == Dtype::I64 { 8 } else { size_of::<E>() };
        self.tensor.numel().saturating_mul(width)
    }
}

/// Writes every parameter of `model` (frozen ones too) and every buffer (batch norm's running
/// statistics) to a safetensors file, under the names of [`Module::state_dict`] — PyTorch's
/// `state_dict` names for PyTorch-style modules (`lstm.weight_ih_l0`, `fc.bias`,
/// `bn1.running_mean`, …); counting buffers are written as `I64`, as PyTorch keeps them. The header metadata is `{"format": "pt"}`, which the
/// Hugging Face loaders expect of PyTorch-layout weights.
///
/// Crash-safe like [`save_tensors`].
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Tensor, io, nn::{Linear, Module}};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let trained = Linear::<f32>::new(3, 2, &mut rng);
/// let path = std::env::temp_dir().join(format!("tensorgrad-doc-save-{}.safetensors", std::process::id()));
/// io::save_model(&trained, &path)?;
///
/// let fresh = Linear::<f32>::new(3, 2, &mut rng);
/// io::load_model(&fresh, &path)?;
/// let x = Tensor::ones(&[1, 3]);
/// assert_eq!(fresh.forward(&x).to_vec(), trained.forward(&x).to_vec());
/// std::fs::remove_file(&path).unwrap();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// As [`save_tensors`]; [`Error::InvalidName`] if two parameters share a name.
pub fn save_model<E: Element, M: Module<E> + ?Sized>(model: &M, path: impl AsRef<Path>) -> Result<()> {
    write_atomically(path.as_ref(), &save_model_to_bytes(model)?)
}

/// The bytes of the safetensors file [`save_model`] would write, to keep in memory, send over a
/// network or write with your own I/O; [`load_model_from_bytes`] reads them back.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Tensor, io, nn::{Linear, Module}};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let trained = Linear::<f32>::new(3, 2, &mut rng);
/// let bytes = io::save_model_to_bytes(&trained)?;
///
/// let fresh = Linear::<f32>::new(3, 2, &mut rng);
/// io::load_model_from_bytes(&fresh, &bytes)?;
/// let x = Tensor::ones(&[1, 3]);
/// assert_eq!(fresh.forward(&x).to_vec(), trained.forward(&x).to_vec());
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidName`] if two parameters share a name.
pub fn save_model_to_bytes<E: Element, M: Module<E> + ?Sized>(model: &M) -> Result<Vec<u8>> {
    let entries = state_entries(model);
    let counts: Vec<bool> = entries.iter().map(|e| e.count).collect();
    let tensors: Vec<(String, Tensor<E>)> = entries.into_iter().map(|e| (e.name, e.tensor)).collect();
    serialize(&tensors, &counts, &[("format".to_string(), "pt".to_string())])
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Reads every tensor of a safetensors file, in the order of their data in the file (for files
/// written by [`save_tensors`] or PyTorch, sorted by name). The tensors are constants; call
/// [`Tensor::requires_grad`] to train them.
///
/// ```
/// use tensorgrad::{Error, Tensor, io};
///
/// // A file PyTorch could have written: safetensors.torch.save_file({"weight": w}, path)
/// let path = std::env::temp_dir().join(format!("tensorgrad-load-tensors-doc-{}.safetensors", std::process::id()));
/// io::save_tensors(&path, &[("weight".to_string(), Tensor::<f64>::ones(&[2, 3]))], &[])?;
///
/// let tensors = io::load_tensors::<f64>(&path)?;
/// let (name, weight) = &tensors[0];
/// assert_eq!((name.as_str(), weight.shape()), ("weight", &[2, 3][..]));
/// assert!(!weight.needs_grad());
///
/// // The element type must match: F64 values do not load as f32.
/// assert!(matches!(io::load_tensors::<f32>(&path), Err(Error::DType { .. })));
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] if it is not a valid safetensors
/// file (truncated, corrupt header, inconsistent or absurd sizes); [`Error::DType`] if a tensor
/// is not stored as `E` (`F32` for `f32`, `F64` for `f64`).
pub fn load_tensors<E: Element>(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor<E>)>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    Parsed::new(&bytes, Some(path))?.tensors()
}

/// [`load_tensors`] from the bytes of a file held in memory.
///
/// ```
/// use tensorgrad::{Tensor, io};
/// let t = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3, 1]);
/// let bytes = io::save_tensors_to_bytes(&[("t".to_string(), t)], &[])?;
/// let back = io::load_tensors_from_bytes::<f64>(&bytes)?;
/// assert_eq!(back[0].1.shape(), &[3, 1]);
/// assert!(io::load_tensors_from_bytes::<f32>(&bytes).is_err()); // stored as F64
/// assert!(io::load_tensors_from_bytes::<f64>(&bytes[..bytes.len() - 1]).is_err());
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// As [`load_tensors`], without [`Error::Io`].
pub fn load_tensors_from_bytes<E: Element>(bytes: &[u8]) -> Result<Vec<(String, Tensor<E>)>> {
    Parsed::new(bytes, None)?.tensors()
}

/// The string metadata of a safetensors file (its header's `__metadata__`), sorted by key.
///
/// ```
/// use tensorgrad::nn::Linear;
/// use tensorgrad::io;
///
/// let path = std::env::temp_dir().join(format!("tensorgrad-metadata-doc-{}.safetensors", std::process::id()));
/// let model: Linear = Linear::new(2, 1, 0);
/// io::save_model(&model, &path)?; // writes {"format": "pt"}, as PyTorch's weights carry
/// assert_eq!(io::load_metadata(&path)?, [("format".to_string(), "pt".to_string())]);
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] if it is not a valid safetensors
/// file.
pub fn load_metadata(path: impl AsRef<Path>) -> Result<Vec<(String, String)>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    Ok(Parsed::new(&bytes, Some(path))?.metadata())
}

/// [`load_metadata`] from the bytes of a file held in memory.
///
/// ```
/// use tensorgrad::{Tensor, io};
///
/// let meta = [("epoch".to_string(), "3".to_string()), ("author".to_string(), "me".to_string())];
/// let bytes = io::save_tensors_to_bytes(&[("w".to_string(), Tensor::<f32>::zeros(&[1]))], &meta)?;
/// let read = io::load_metadata_from_bytes(&bytes)?;
/// assert_eq!(read, [("author".to_string(), "me".to_string()), ("epoch".to_string(), "3".to_string())]);
/// assert!(io::load_metadata_from_bytes(&bytes[..4]).is_err()); // truncated
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Format`] if the bytes are not a valid safetensors file.
pub fn load_metadata_from_bytes(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    Ok(Parsed::new(bytes, None)?.metadata())
}

/// Loads a safetensors file into the parameters and buffers of `model`, matching them by name
/// ([`Module::state_dict`]; a counting buffer may be stored as `I64`, as PyTorch writes it).
///
/// Every name, shape and dtype is checked before anything is written: if the file lacks a
/// parameter, has a tensor the model does not, or differs in a shape or dtype, the call returns
/// [`Error::StateMismatch`] listing all the differences, and the model is unchanged. The values
/// are written in place into the existing parameter tensors (with [`Tensor::update_`]), so an
/// optimizer holding those tensors keeps training them.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Error, io, nn::{Linear, Module}};
///
/// let mut rng = StdRng::seed_from_u64(1);
/// let path = std::env::temp_dir().join(format!("tensorgrad-doc-load-{}.safetensors", std::process::id()));
/// io::save_model(&Linear::<f32>::new(4, 2, &mut rng), &path)?;
///
/// // A model of another shape is refused, and keeps its values.
/// let other = Linear::<f32>::new(4, 3, &mut rng);
/// let before = other.weight().value().to_vec();
/// let err = io::load_model(&other, &path).unwrap_err();
/// assert!(matches!(&err, Error::StateMismatch { mismatched, .. } if mismatched.len() == 2));
/// assert_eq!(other.weight().value().to_vec(), before);
/// std::fs::remove_file(&path).unwrap();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`], [`Error::Format`] as [`load_tensors`]; [`Error::StateMismatch`] as above;
/// [`Error::NotContiguous`] if a parameter is a non-contiguous view (one bound with
/// [`Param::bind`](crate::nn::Param::bind)), which cannot be overwritten in place.
pub fn load_model<E: Element, M: Module<E> + ?Sized>(model: &M, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    load_parsed_model(model, &Parsed::new(&bytes, Some(path))?)
}

/// [`load_model`] from the bytes of a safetensors file held in memory (read from an archive, a
/// network, [`save_model_to_bytes`]), with the same checks: corrupt or hostile bytes are an
/// [`Error::Format`], never a panic, and the model changes only if everything matches.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Error, io, nn::Linear};
///
/// let mut rng = StdRng::seed_from_u64(2);
/// let bytes = io::save_model_to_bytes(&Linear::<f32>::new(4, 2, &mut rng))?;
/// let model = Linear::<f32>::new(4, 2, &mut rng);
/// let err = io::load_model_from_bytes(&model, &bytes[..bytes.len() - 1]).unwrap_err();
/// assert!(matches!(err, Error::Format { path: None, .. }));
/// io::load_model_from_bytes(&model, &bytes)?;
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// As [`load_model`], without [`Error::Io`]; the errors name no file (`path` is `None`).
pub fn load_model_from_bytes<E: Element, M: Module<E> + ?Sized>(model: &M, bytes: &[u8]) -> Result<()> {
    load_parsed_model(model, &Parsed::new(bytes, None)?)
}

/// The shared part of [`load_model`] and [`load_model_from_bytes`]: checks every name, shape
/// and dtype against the model, decodes everything, and only then writes the parameters.
fn load_parsed_model<E: Element, M: Module<E> + ?Sized>(model: &M, parsed: &Parsed<'_>) -> Result<()> {
    let entries = state_entries(model);
    let params: Vec<(String, Tensor<E>)> = entries.iter().map(|e| (e.name.clone(), e.tensor.clone())).collect();
    let file = parsed.meta.tensors();
    let expected = dtype_of::<E>();

    let (mut missing, mut mismatched, mut wrong_dtype) = (Vec::new(), Vec::new(), Vec::new());
    for (entry, (name, t)) in entries.iter().zip(&params) {
        let Some(info) = file.get(name) else {
            missing.push(name.clone());
            continue;
        };
        // A count may be stored as an integer (PyTorch's `num_batches_tracked`) or as `E`.
        let count_ok = entry.count && matches!(info.dtype, Dtype::I64 | Dtype::I32);
        if info.dtype != expected && !count_ok {
            let want = if entry.count { format!("{expected} or I64") } else { expected.to_string() };
            wrong_dtype.push((name.clone(), want, info.dtype.to_string()));
        }
        if info.shape != t.shape() {
            mismatched.push((name.clone(), t.shape().to_vec(), info.shape.clone()));
        }
    }
    let names: HashSet<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    let mut unexpected: Vec<String> = file.keys().filter(|n| !names.contains(n.as_str())).cloned().collect();
    unexpected.sort();
    if !(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty() && wrong_dtype.is_empty()) {
        return Err(Error::StateMismatch {
            path: parsed.path.map(Path::to_path_buf),
            missing,
            unexpected,
            mismatched,
            wrong_dtype,
        });
    }
    if let Some((name, t)) = params.iter().find(|(_, t)| !t.is_contiguous()) {
        return Err(Error::NotContiguous { name: name.clone(), shape: t.shape().to_vec() });
    }

    // Decode everything first, so a failure cannot leave the model half loaded.
    let values = entries
        .iter()
        .map(|e| {
            if e.count {
                parsed.values_converted::<E>(&e.name, file[&e.name])
            } else {
                parsed.values::<E>(&e.name, file[&e.name])
            }
        })
        .collect::<Result<Vec<Vec<E>>>>()?;
    write_state(model, values);
    Ok(())
}

/// Every tensor of a safetensors file as `E`, converting from any float dtype a checkpoint may
/// hold (`F32`, `F64`, `F16`, `BF16`), and the integer counts of PyTorch's buffers (`I64`, `I32`,
/// such as `num_batches_tracked`): for loading pretrained weights, where the file's dtype is the
/// publisher's choice. Checked as strictly as [`load_tensors`]; another dtype (`F8`, `U8`, …) is
/// an [`Error::DType`].
pub(crate) fn load_tensors_converted<E: Element>(path: &Path) -> Result<Vec<(String, Tensor<E>)>> {
    let bytes = read_file(path)?;
    let parsed = Parsed::new(&bytes, Some(path))?;
    let mut entries: Vec<(String, &TensorInfo)> = parsed.meta.tensors().into_iter().collect();
    entries.sort_by(|(a, x), (b, y)| x.data_offsets.cmp(&y.data_offsets).then_with(|| a.cmp(b)));
    entries
        .into_iter()
        .map(|(name, info)| {
            let values = parsed.values_converted::<E>(&name, info)?;
            Ok((name, Tensor::try_from_vec(values, &info.shape)?))
        })
        .collect()
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| Error::Io { op: "read", path: path.to_path_buf(), source })
}

/// A validated safetensors header over the bytes of the whole file.
struct Parsed<'a> {
    /// The data section (everything after the header).
    data: &'a [u8],
    meta: Metadata,
    path: Option<&'a Path>,
}

impl<'a> Parsed<'a> {
    fn new(bytes: &'a [u8], path: Option<&'a Path>) -> Result<Self> {
        let fail = |reason: String| Error::Format { path: path.map(Path::to_path_buf), reason };
        let Some((prefix, rest)) = bytes.split_first_chunk::<PREFIX>() else {
            return Err(fail(format!("{} bytes is too short for the 8-byte header length", bytes.len())));
        };
        let n = u64::from_le_bytes(*prefix);
        let header_len = usize::try_from(n).ok().filter(|&n| n <= rest.len()).ok_or_else(|| {
            fail(format!("the header length {n} is larger than the {} bytes that follow it", rest.len()))
        })?;
        let (header, data) = rest.split_at(header_len);
        check_numbers(header, bytes.len()).map_err(fail)?;
        check_unique_keys(header).map_err(fail)?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| fail(describe(&e, data.len())))?;
        Ok(Parsed { data, meta, path })
    }

    /// The header's string metadata, sorted by key.
    fn metadata(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.meta.metadata().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.sort();
        out
    }

    /// The tensors in data order (ties, which only zero-sized tensors can have, by name).
    fn tensors<E: Element>(&self) -> Result<Vec<(String, Tensor<E>)>> {
        let mut entries: Vec<(String, &TensorInfo)> = self.meta.tensors().into_iter().collect();
        entries.sort_by(|(a, x), (b, y)| x.data_offsets.cmp(&y.data_offsets).then_with(|| a.cmp(b)));
        entries
            .into_iter()
            .map(|(name, info)| {
                let values = self.values::<E>(&name, info)?;
                let t = Tensor::try_from_vec(values, &info.shape)?;
                Ok((name, t))
            })
            .collect()
    }

    /// The values of one float tensor of any of the dtypes `F32`, `F64`, `F16`, `BF16`,
    /// converted to `E`, after the same checks as [`values`](Self::values).
    fn values_converted<E: Element>(&self, name: &str, info: &TensorInfo) -> Result<Vec<E>> {
        let width = match info.dtype {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F16 | Dtype::BF16 => 2,
            other => {
                return Err(Error::DType {
                    path: self.path.map(Path::to_path_buf),
                    name: name.to_string(),
                    found: other.to_string(),
                    expected: "a float dtype (F32, F64, F16 or BF16) or I64/I32".to_string(),
                });
            }
        };
        if info.dtype == dtype_of::<E>() {
            return self.values(name, info);
        }
        let (start, end) = info.data_offsets;
        let needed = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).and_then(|n| n.checked_mul(width));
        let bytes = match self.data.get(start..end) {
            Some(b) if Some(b.len()) == needed => b,
            _ => {
                return Err(Error::Format {
                    path: self.path.map(Path::to_path_buf),
                    reason: format!(
                        "tensor {} of shape {:?} declares bytes {start}..{end}, which do not hold it within the {} data bytes",
                        backticked(name),
                        info.shape,
                        self.data.len()
                    ),
                });
            }
        };
        let two = |c: &[u8]| u16::from_le_bytes([c[0], c[1]]);
        Ok(match info.dtype {
            Dtype::F32 => {
                bytes.chunks_exact(4).map(|c| E::of(f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))).collect()
            }
            Dtype::F64 => {
                bytes.chunks_exact(8).map(|c| E::of(f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))).collect()
            }
            Dtype::BF16 => {
                bytes.chunks_exact(2).map(|c| E::of(f64::from(f32::from_bits(u32::from(two(c)) << 16)))).collect()
            }
            Dtype::I64 => bytes
                .chunks_exact(8)
                .map(|c| E::of(i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64))
                .collect(),
            Dtype::I32 => {
                bytes.chunks_exact(4).map(|c| E::of(f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))).collect()
            }
            _ => bytes.chunks_exact(2).map(|c| E::of(f16_to_f64(two(c)))).collect(),
        })
    }

    /// The values of one tensor, after checking its dtype and that its declared size is exactly
    /// the bytes it covers (before allocating anything).
    fn values<E: Element>(&self, name: &str, info: &TensorInfo) -> Result<Vec<E>> {
        let expected = dtype_of::<E>();
        if info.dtype != expected {
            return Err(Error::DType {
                path: self.path.map(Path::to_path_buf),
                name: name.to_string(),
                found: info.dtype.to_string(),
                expected: expected.to_string(),
            });
        }
        let (start, end) = info.data_offsets;
        let bytes = self.data.get(start..end);
        let needed =
            info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).and_then(|n| n.checked_mul(size_of::<E>()));
        match bytes {
            Some(b) if Some(b.len()) == needed => Ok(decode(b)),
            _ => Err(Error::Format {
                path: self.path.map(Path::to_path_buf),
                reason: format!(
                    "tensor {} of shape {:?} declares bytes {start}..{end}, which do not hold it within the {} data bytes",
                    backticked(name),
                    info.shape,
                    self.data.len()
                ),
            }),
        }
    }
}

/// Rejects any number in the JSON header (outside strings) so large that adding the file length
/// to it would overflow. Shapes and offsets of a real file are far smaller; the check guards
/// against an unchecked addition in `safetensors` 0.8's `read_metadata`, which panics (debug
/// builds) on offsets summing to nearly `usize::MAX`.
fn check_numbers(header: &[u8], file_len: usize) -> Result<(), String> {
    let limit = usize::MAX - file_len;
    let (mut i, mut in_string) = (0, false);
    while i < header.len() {
        let c = header[i];
        i += 1;
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if c == b'"' {
            in_string = true;
        } else if c.is_ascii_digit() {
            let mut v = usize::from(c - b'0');
            while let Some(d) = header.get(i).filter(|d| d.is_ascii_digit()) {
                v = v.checked_mul(10).and_then(|v| v.checked_add(usize::from(d - b'0'))).unwrap_or(usize::MAX);
                i += 1;
            }
            if v > limit {
                return Err("the header declares a size or offset larger than any file can hold".to_string());
            }
        }
    }
    Ok(())
}

/// Rejects a header in which an object names a key twice: two tensors of one name, or a
/// metadata key given twice. Under `safetensors` the JSON is read into hash maps, which would
/// silently keep the last entry (two entries over the same bytes pass every other check). Other
/// problems of the JSON are left to the safetensors parser to report.
fn check_unique_keys(header: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<UniqueKeys>(header) {
        Err(e) if e.classify() == serde_json::error::Category::Data => Err(bare(&e.to_string()).to_string()),
        _ => Ok(()),
    }
}

/// Any JSON value in which no object names a key twice.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<Er: serde::de::Error>(self, _: bool) -> std::result::Result<UniqueKeys, Er> {
        Ok(UniqueKeys)
    }

    fn visit_i64<Er: serde::de::Error>(self, _: i64) -> std::result::Result<UniqueKeys, Er> {
        Ok(UniqueKeys)
    }

    fn visit_u64<Er: serde::de::Error>(self, _: u64) -> std::result::Result<UniqueKeys, Er> {
        Ok(UniqueKeys)
    }

    fn visit_f64<Er: serde::de::Error>(self, _: f64) -> std::result::Result<UniqueKeys, Er> {
        Ok(UniqueKeys)
    }

    fn visit_str<Er: serde::de::Error>(self, _: &str) -> std::result::Result<UniqueKeys, Er> {
        Ok(UniqueKeys)
    }

    fn visit_unit<Er: serde::de::Error>(self) -> std::result::Result<UniqueKeys, Er> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<UniqueKeys, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(serde::de::Error::custom(format_args!("the header names {} twice", backticked(&key))));
            }
            map.next_value::<UniqueKeys>()?;
            seen.insert(key);
        }
        Ok(UniqueKeys)
    }
}

/// A readable reason for a safetensors parse error.
fn describe(e: &SafeTensorError, data_len: usize) -> String {
    match e {
        SafeTensorError::MetadataIncompleteBuffer => format!(
            "the tensors' declared sizes do not add up to the {data_len} data bytes in the file (truncated or corrupt)"
        ),
        SafeTensorError::TensorInvalidInfo => "a tensor's byte range does not match its shape and dtype".to_string(),
        other => bare(&other.to_string()).to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Element encoding
// ---------------------------------------------------------------------------------------------

/// The safetensors dtype of an element type.
fn dtype_of<E: Element>() -> Dtype {
    match E::NAME {
        "f32" => Dtype::F32,
        "f64" => Dtype::F64,
        other => unreachable!("Element is sealed to f32 and f64, got {other}"),
    }
}

/// An IEEE half-precision number's value.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Little-endian bytes of the values (bit-exact, NaN payloads included).
fn encode<E: Element>(values: &[E]) -> Vec<u8> {
    match dtype_of::<E>() {
        Dtype::F32 => values.iter().flat_map(|v| v.to_f32().unwrap_or(f32::NAN).to_le_bytes()).collect(),
        _ => values.iter().flat_map(|v| v.to_f64().unwrap_or(f64::NAN).to_le_bytes()).collect(),
    }
}

/// Values from little-endian bytes; `bytes.len()` is a multiple of the element size.
fn decode<E: Element>(bytes: &[u8]) -> Vec<E> {
    match dtype_of::<E>() {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| {
                let mut a = [0; 4];
                a.copy_from_slice(c);
                E::from_f32(f32::from_le_bytes(a)).unwrap_or_else(E::nan)
            })
            .collect(),
        _ => bytes
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0; 8];
                a.copy_from_slice(c);
                E::of(f64::from_le_bytes(a))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file with the given (name, dtype, shape, little-endian bytes) entries.
    fn file(entries: &[(&str, &str, &[usize], Vec<u8>)]) -> Vec<u8> {
        let (mut header, mut data) = (Vec::new(), Vec::new());
        for (name, dtype, shape, bytes) in entries {
            let start = data.len();
            data.extend_from_slice(bytes);
            header.push(format!(
                "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}",
                data.len()
            ));
        }
        let header = format!("{{{}}}", header.join(","));
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn converted_loading_reads_every_float_dtype() {
        let half: Vec<u8> =
            [0x3c00u16, 0xc000, 0x3800, 0x0001, 0x7c00, 0x3555].iter().flat_map(|h| h.to_le_bytes()).collect();
        let bf16: Vec<u8> =
            [1.5f32, -3.25, 1e-3].iter().flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes()).collect();
        let f64s: Vec<u8> = [0.1f64, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let ints: Vec<u8> = [1i64].iter().flat_map(|x| x.to_le_bytes()).collect();
        let bytes = file(&[("h", "F16", &[6], half), ("b", "BF16", &[3], bf16), ("d", "F64", &[2], f64s)]);
        let path = std::env::temp_dir().join(format!("tensorgrad-converted-{}.safetensors", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let t = load_tensors_converted::<f64>(&path).unwrap();
        assert_eq!(t[0].0, "h");
        let h = t[0].1.to_vec();
        assert_eq!(&h[..5], [1.0, -2.0, 0.5, 2f64.powi(-24), f64::INFINITY]);
        assert!((h[5] - 1.0 / 3.0).abs() < 1e-3);
        assert_eq!(t[1].1.to_vec(), [1.5, -3.25, f64::from(f32::from_bits(1e-3f32.to_bits() & 0xffff_0000))]);
        assert_eq!(t[2].1.to_vec(), [0.1, -2.0]);
        let t = load_tensors_converted::<f32>(&path).unwrap();
        assert_eq!(t[2].1.to_vec(), [0.1f32, -2.0]);
        // Integer counts (PyTorch's `num_batches_tracked`) load as numbers; bytes are not weights;
        // truncated data is a format error.
        std::fs::write(&path, file(&[("i", "I64", &[1], ints)])).unwrap();
        assert_eq!(load_tensors_converted::<f32>(&path).unwrap()[0].1.to_vec(), [1.0]);
        std::fs::write(&path, file(&[("u", "U8", &[2], vec![1, 2])])).unwrap();
        assert!(matches!(load_tensors_converted::<f32>(&path), Err(Error::DType { .. })));
        let mut short = file(&[("h", "F16", &[2], vec![0, 0, 0, 0])]);
        short.pop();
        std::fs::write(&path, short).unwrap();
        assert!(matches!(load_tensors_converted::<f32>(&path), Err(Error::Format { .. })));
        std::fs::remove_file(&path).ok();
    }
}
