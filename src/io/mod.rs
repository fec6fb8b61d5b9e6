//! Weight files in the [safetensors] format, the format of PyTorch and the Hugging Face hub.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header naming each
//! tensor with its dtype, shape and byte range, and the raw little-endian values. Files written
//! here are read by `safetensors.torch.load_file`, and files written by PyTorch are read here:
//! [`Linear`](crate::nn::Linear), [`Embedding`](crate::nn::Embedding),
//! [`Lstm`](crate::nn::Lstm) and [`Gru`](crate::nn::Gru) use PyTorch's parameter names and
//! shapes, and [`Sequential`](crate::nn::Sequential) names its layers as `nn.Sequential` does,
//! so a `state_dict` moves between the two.
//!
//! - [`save_tensors`] / [`load_tensors`]: named tensors, plus string metadata.
//! - [`save_model`] / [`load_model`]: a [`Module`](crate::nn::Module)'s parameters, by their
//!   dotted names.
//! - [`save_tensors_to_bytes`], [`load_tensors_from_bytes`], [`save_model_to_bytes`],
//!   [`load_model_from_bytes`], [`load_metadata_from_bytes`]: the same in memory, for files
//!   that do not live on disk; the loaders check the bytes as strictly as a file's.
//!
//! Saving is crash-safe: the file is written to a temporary file in the same directory, synced
//! to disk, then renamed over the target, so an interrupted save leaves the previous file whole.
//!
//! Loading never panics on a corrupt, truncated or hostile file: every problem is an
//! [`Error`](crate::Error), and no memory is allocated for a tensor before its declared size has
//! been checked against the bytes actually present. Element types are strict: an `F64` tensor
//! does not load into `Tensor<f32>` (convert explicitly if you mean to).
//!
//! [safetensors]: https://github.com/huggingface/safetensors

mod atomic;
mod safetensors;

pub(crate) use self::safetensors::load_tensors_converted;
pub use self::safetensors::{
    load_metadata, load_metadata_from_bytes, load_model, load_model_from_bytes, load_tensors, load_tensors_from_bytes,
    save_model, save_model_to_bytes, save_tensors, save_tensors_to_bytes,
};
pub(crate) use atomic::write_atomically;
