//! # tensorgrad
//!
//! Strided CPU tensors with reverse-mode automatic differentiation, for training neural
//! networks in pure Rust: no Python, no libtorch.
//!
//! - [`Tensor`]: `f32` (default) or `f64` values over a shared buffer and a [`Layout`]. Transpose,
//!   narrow, broadcast and reshape of contiguous data are views that copy nothing.
//! - Autograd: mark leaves with [`Tensor::requires_grad`], call [`Tensor::backward`] on a scalar,
//!   read [`Gradients::get`]. [`Tensor::backward_with_graph`] records the backward pass so
//!   gradients can be differentiated again (Hessian–vector products, gradient penalties).
//! - [`gradcheck`]: verifies any function's gradients against central differences.
//! - Matrix products run on a packed GEMM whose micro-kernel (AVX-512, AVX2+FMA or portable) and
//!   cache blocking are chosen at run time for the CPU ([`cpu_info`] says what was chosen), read
//!   the operands with their own strides, and split across threads only where that pays; results
//!   are bit-identical whatever the number of threads. A matrix used many times can be packed
//!   once ([`Tensor::pack`], [`Tensor::matmul_packed`]).
//!
//! ```
//! use tensorgrad::Tensor;
//!
//! // One sigmoid neuron: loss = Σ σ(x·W + b) · y
//! let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.1], &[2, 2]);
//! let w = Tensor::from_vec(vec![0.3f32, -0.2], &[2, 1]).requires_grad();
//! let b = Tensor::from_vec(vec![0.1f32], &[1]).requires_grad();
//! let y = Tensor::from_vec(vec![1.0f32, 0.0], &[2, 1]);
//!
//! let loss = ((x.matmul(&w) + &b).sigmoid() * &y).sum();
//! let grads = loss.backward();
//! assert_eq!(grads.get(&w).unwrap().shape(), &[2, 1]);
//! assert_eq!(grads.get(&b).unwrap().shape(), &[1]);
//! ```
//!
//! # A map of the crate
//!
//! The modules build on one another in this order; each section below says what one of them
//! is for and shows it in a few lines. Coming from PyTorch or Keras? The [`guide`] lists the
//! calls you know with their counterparts here, and where this crate differs on purpose.
//!
//! | module | what it holds | PyTorch / Keras counterpart |
//! |---|---|---|
//! | crate root | [`Tensor`], [`Gradients`], [`no_grad`], [`gradcheck`] | `torch.Tensor`, `torch.autograd` |
//! | [`nn`] | layers: [`Linear`](nn::Linear), [`Dense`](nn::Dense), [`Embedding`](nn::Embedding), [`Lstm`](nn::Lstm), [`Gru`](nn::Gru), [`Dropout`](nn::Dropout), [`LayerNorm`](nn::LayerNorm), [`MultiheadAttention`](nn::MultiheadAttention), [`TransformerEncoder`](nn::TransformerEncoder)/[`TransformerDecoder`](nn::TransformerDecoder), activations, [`Sequential`](nn::Sequential); the [`Module`](nn::Module) trait | `torch.nn`, `keras.layers` |
//! | [`loss`] | [`mse`](loss::mse), [`bce`](loss::bce), [`bce_with_logits`](loss::bce_with_logits), [`cross_entropy`](loss::cross_entropy), … | `torch.nn.functional` losses |
//! | [`optim`] | [`Sgd`](optim::Sgd), [`Adam`](optim::Adam), [`AdamW`](optim::AdamW), [`RmsProp`](optim::RmsProp), [`Adagrad`](optim::Adagrad), clipping, learning-rate schedules | `torch.optim` |
//! | [`train`] | [`Trainer`](train::Trainer) (`fit`, `evaluate`, `predict`), [`History`](train::History), metrics, callbacks, checkpoints | `model.compile` + `model.fit` |
//! | [`data`] | [`Tokenizer`](data::Tokenizer), [`pad_sequences`](data::pad_sequences), CSV and labelled-text readers, splits, [`Dataset`](data::Dataset) and [`DataLoader`](data::DataLoader) | `torch.utils.data`, Keras preprocessing |
//! | [`io`] | safetensors weight files: [`save_model`](io::save_model), [`load_model`](io::load_model), … | `safetensors.torch`, `model.save_weights` |
//! | [`models`] | Hugging Face checkpoints: [GPT-2](models::gpt2) with cached generation, [BERT](models::bert) with a classification head | `transformers` `from_pretrained`, `generate` |
//!
//! Every part is also shown at full size in the
//! [`examples/`](https://github.com/tensorgrad/tensorgrad/tree/main/examples) directory of the
//! repository, each on a real data set shipped with it: `text_classification` (an LSTM
//! sentiment classifier, Keras-style), `mlp_digits` (an MLP with cross-entropy),
//! `timeseries_lstm` (forecasting with an LSTM), `logistic_regression` (a hand-written
//! gradient-descent loop) and `explain` (gradients with respect to the input).
//!
//! ## Tensors and autograd
//!
//! A [`Tensor`] is an `f32` (the default) or `f64` array. Operations return new tensors, and
//! record themselves for the backward pass only when an input requires a gradient;
//! [`no_grad`] turns recording off for inference. Dims are `usize` and sizes are `&[usize]`.
//!
//! ```
//! use tensorgrad::{Tensor, no_grad};
//!
//! let x = Tensor::<f32>::arange(6).reshape(&[2, 3]); // a view of the same buffer
//! assert_eq!(x.t().shape(), &[3, 2]);
//! assert_eq!(x.sum_dim(1, false).to_vec(), [3.0, 12.0]); // torch.sum(x, dim=1)
//!
//! let w = Tensor::from_vec(vec![0.5f32, 0.5, 0.5], &[3, 1]).requires_grad();
//! let grads = x.matmul(&w).sum().backward();
//! assert_eq!(grads.get(&w).unwrap().to_vec(), [3.0, 5.0, 7.0]); // column sums of x
//! assert!(!no_grad(|| x.matmul(&w)).needs_grad()); // no graph under no_grad
//! ```
//!
//! ## `nn`: layers and models
//!
//! A layer is a struct implementing [`Module`](nn::Module): a forward pass and named
//! parameters, with PyTorch's names, shapes and initialisation. Constructors that draw random
//! numbers take a `u64` seed or `&mut` a generator ([`RngSource`]).
//!
//! ```
//! use tensorgrad::Tensor;
//! use tensorgrad::nn::{Dropout, Linear, Module, Relu, Sequential};
//!
//! let mut model: Sequential = Sequential::new()
//!     .add(Linear::new(4, 16, 0)) // in, out, seed
//!     .add(Relu)
//!     .add(Dropout::new(0.1, 0))
//!     .add(Linear::new(16, 3, 1));
//! model.eval(); // dropout off, as model.eval() in PyTorch
//! assert_eq!(model.forward(&Tensor::zeros(&[8, 4])).shape(), &[8, 3]);
//! assert_eq!(model.named_parameters()[0].0, "0.weight"); // a PyTorch state_dict key
//! assert_eq!(model.num_parameters(), 4 * 16 + 16 + 16 * 3 + 3);
//! ```
//!
//! ## `loss`: loss functions
//!
//! Functions from predictions and targets to a loss tensor, reduced as a
//! [`Reduction`](loss::Reduction) says. Classification losses take the class ids as a
//! `&[usize]` or as a tensor of whole numbers.
//!
//! ```
//! use tensorgrad::Tensor;
//! use tensorgrad::loss::{Reduction, cross_entropy, mse};
//!
//! let logits = Tensor::from_vec(vec![2.0f32, 0.5, -1.0, 0.0, 0.0, 3.0], &[2, 3]);
//! let ce = cross_entropy(&logits, &[0, 2], 0.0, Reduction::Mean); // both rows pick their class
//! assert!(ce.item() < 0.3);
//! let p = Tensor::from_slice(&[1.0f32, 2.0]);
//! assert_eq!(mse(&p, &Tensor::from_slice(&[1.0, 4.0]), Reduction::Sum).item(), 4.0);
//! ```
//!
//! ## `optim`: optimizers
//!
//! An optimizer is built from a model's parameters and a configuration whose `Default` is
//! PyTorch's. [`Optimizer::step`](optim::Optimizer::step) takes the [`Gradients`] that a
//! backward pass returned. Each backward pass returns new gradients, so there is nothing to
//! zero between steps.
//!
//! ```
//! use tensorgrad::Tensor;
//! use tensorgrad::optim::{Optimizer, Sgd, SgdConfig};
//!
//! // Fit w in y = 2·x by gradient descent on the squared error.
//! let w = Tensor::from_vec(vec![0.0f32], &[1]).requires_grad();
//! let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
//! let y = &x * 2.0;
//! let mut opt = Sgd::new(vec![w.clone()], SgdConfig { lr: 0.05, ..Default::default() });
//! for _ in 0..50 {
//!     let loss = (&x * &w - &y).powf(2.0).mean();
//!     opt.step(&loss.backward());
//! }
//! assert!((w.item() - 2.0).abs() < 1e-4);
//! ```
//!
//! ## `train`: Keras-style `fit`
//!
//! A [`Trainer`](train::Trainer) owns a model, an optimizer and a loss function, and runs
//! `fit` (shuffled mini-batches, validation, metrics, callbacks), `evaluate` and `predict`;
//! `fit` returns the per-epoch [`History`](train::History).
//!
//! ```
//! use tensorgrad::nn::{Linear, Module};
//! use tensorgrad::optim::{Adam, AdamConfig};
//! use tensorgrad::train::{EarlyStopping, FitOptions, Trainer, Validation};
//! use tensorgrad::{Tensor, loss};
//!
//! // y = 3x − 1 on 64 points in [0, 1); the last quarter is held out for validation.
//! let x = Tensor::<f32>::arange(64).reshape(&[64, 1]).mul_scalar(1.0 / 64.0);
//! let y = x.mul_scalar(3.0).add_scalar(-1.0);
//! let model: Linear = Linear::new(1, 1, 0);
//! let opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.1, ..Default::default() });
//! let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
//! let mut trainer = Trainer::new(model, opt, mse).callback(EarlyStopping::new("val_loss", 5));
//! let options = FitOptions {
//!     epochs: 100,
//!     batch_size: 16,
//!     validation: Validation::Split(0.25),
//!     verbose: false,
//!     ..Default::default()
//! };
//! let history = trainer.fit(&x, &y, &options)?;
//! assert!(history.last("val_loss").unwrap() < 1e-3);
//! let p = trainer.predict(&Tensor::from_vec(vec![0.5f32], &[1, 1]), 32);
//! assert!((p.item() - 0.5).abs() < 0.05);
//! # Ok::<(), tensorgrad::Error>(())
//! ```
//!
//! ## `data`: preprocessing and loading
//!
//! Keras's text tools ([`Tokenizer`](data::Tokenizer), [`pad_sequences`](data::pad_sequences)),
//! readers for CSV and labelled text files, seeded splits, and PyTorch's
//! [`Dataset`](data::Dataset) and [`DataLoader`](data::DataLoader), which
//! [`Trainer::fit_loader`](train::Trainer::fit_loader) trains on.
//!
//! ```
//! use tensorgrad::Tensor;
//! use tensorgrad::data::{DataLoader, Padding, TensorDataset, Tokenizer, Truncating, pad_sequences};
//!
//! let texts = ["A warm, funny film.", "Dull.", "Funny and warm!"];
//! let mut tokenizer = Tokenizer::new();
//! tokenizer.fit_on_texts(&texts);
//! assert_eq!(tokenizer.word_index()["warm"], 1); // the most frequent word first
//! let ids = tokenizer.texts_to_sequences(&texts);
//! let x = pad_sequences(&ids, Some(4), Padding::Pre, Truncating::Pre, 0.0); // [3, 4]
//! let y = Tensor::from_slice(&[1.0f32, 0.0, 1.0]);
//!
//! let loader = DataLoader::new(TensorDataset::new(&x, &y), 2).shuffle(true).seed(7);
//! let sizes: Vec<usize> = loader.epoch(0).map(|batch| batch.len()).collect();
//! assert_eq!(sizes, [2, 1]);
//! ```
//!
//! ## `io`: weight files
//!
//! Weights are saved as [safetensors](https://github.com/huggingface/safetensors) files under
//! the parameters' dotted names, so files move between this crate and PyTorch in both
//! directions. Saving is atomic; loading checks every name, shape and dtype first.
//!
//! ```
//! use tensorgrad::nn::{Linear, Module};
//! use tensorgrad::{Tensor, io};
//!
//! let model: Linear = Linear::new(3, 2, 0);
//! let path = std::env::temp_dir().join(format!("tensorgrad-root-doc-{}.safetensors", std::process::id()));
//! io::save_model(&model, &path)?;
//! let copy: Linear = Linear::new(3, 2, 1); // other initial weights
//! io::load_model(&copy, &path)?;
//! let x = Tensor::ones(&[1, 3]);
//! assert_eq!(copy.forward(&x).to_vec(), model.forward(&x).to_vec());
//! std::fs::remove_file(&path).ok();
//! # Ok::<(), tensorgrad::Error>(())
//! ```
//!
//! # Cargo features
//!
//! `plot` (`History::plot`: training curves as PNG or SVG) and
//! `progress` (progress bars in `fit`) are on by default; `default-features = false` leaves
//! both out. `tokenizers` (off by default) adds `models::load_tokenizer`, which reads a model
//! directory's `tokenizer.json` with Hugging Face's `tokenizers` crate (its pure-Rust regex
//! backend: no C library). `mpi` (off by default) adds
//! `distributed::Mpi`, data-parallel training across processes and machines over the
//! system's MPI library (Open MPI or MPICH, and `libclang` to build the bindings).
#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod data;
pub mod distributed;
mod error;
pub mod io;
mod kernels;
pub mod loss;
/// Pretrained transformers (GPT-2, BERT) loading Hugging Face checkpoints.
pub mod models;
pub mod nn;
mod ops;
pub mod optim;
mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use kernels::info::{CpuInfo, GemmPlan, cpu_info};
pub use ops::attention::{AttnMask, SdpaOptions};
pub use ops::conv::{
    Conv1dOptions, Conv2dOptions, ConvOptions, ConvPadding, ConvTranspose1dOptions, ConvTranspose2dOptions,
    ConvTransposeOptions, FoldOptions,
};
pub use ops::matmul::PackedMatrix;
pub use ops::norm::BatchNormOptions;
pub use ops::pad::PadMode;
pub use ops::pool::{AvgPool1dConfig, AvgPool2dConfig, MaxPool1dConfig, MaxPool2dConfig};
pub use tensor::autograd::Gradients;
pub use tensor::element::Element;
pub use tensor::gradcheck::{GradcheckError, GradcheckOptions, gradcheck, gradcheck_with};
pub use tensor::handle::{Tensor, TensorId};
pub use tensor::layout::Layout;
pub use tensor::mode::{detect_anomaly, is_anomaly_enabled, is_grad_enabled, no_grad, set_detect_anomaly};
pub use tensor::rng::RngSource;
pub use tensor::{memory, shape};

/// The [`rand`](https://docs.rs/rand/0.9) crate, version 0.9, which tensorgrad's constructors
/// draw from (see [`RngSource`]).
///
/// Use it instead of adding `rand` to your own `Cargo.toml`: `cargo add rand` may pick a newer
/// version whose generators are different types, and then `Linear::new(…, &mut rng)` does not
/// compile. A plain `u64` seed works wherever a generator does.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// let mut rng = StdRng::seed_from_u64(42);
/// let w = tensorgrad::Tensor::<f32>::randn(&[2, 3], 0.0, 1.0, &mut rng);
/// assert_eq!(w.shape(), &[2, 3]);
/// ```
pub use rand;

/// Coming from PyTorch or Keras: the calls you know, their counterparts here, and the
/// differences that matter.
#[doc = include_str!("../docs/COMING_FROM_PYTORCH_KERAS.md")]
pub mod guide {}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
