//! Layers as composable modules, in PyTorch's conventions (Keras names where users expect them).
//!
//! A module is a plain struct holding its parameters ([`Param`]); [`Module::forward`] maps a
//! tensor to a tensor ([`Module::forward_many`] several tensors to one, for modules such as
//! [`ScaledDotProductAttention`]), and [`Module::named_parameters`] lists the parameters with
//! dotted names in a stable order, as in a PyTorch `state_dict` (`lstm.weight_ih_l0`, `fc.bias`,
//! …). Dropout masks come from the key of the training step ([`StepKey`]), not from a generator
//! shared by threads.
//!
//! Transformers: [`MultiheadAttention`], [`TransformerEncoderLayer`]/[`TransformerEncoder`],
//! [`TransformerDecoderLayer`]/[`TransformerDecoder`], [`SinusoidalPositionalEncoding`],
//! [`LayerNorm`] and [`RmsNorm`], with PyTorch's names and parameter layout, all running on the
//! fused [`Tensor::scaled_dot_product_attention`](crate::Tensor::scaled_dot_product_attention).

mod activation;
mod attention;
mod conv;
mod dropout;
mod embedding;
mod flatten;
pub mod init;
mod linear;
mod mha;
mod module;
mod norm;
mod pad;
mod pool;
mod rnn;
mod sequential;
mod step_key;
mod transformer;

pub use activation::{Activation, Gelu, LeakyRelu, Relu, Sigmoid, Softmax, Tanh};
pub use attention::ScaledDotProductAttention;
pub use conv::{
    Conv, Conv1d, Conv2d, ConvConfig, ConvTranspose, ConvTranspose1d, ConvTranspose2d, ConvTransposeConfig,
};
pub use dropout::{Dropout, Dropout2d};
pub use embedding::Embedding;
pub use flatten::{Flatten, Unflatten};
pub use init::Init;
pub use linear::{Dense, Linear};
pub use mha::{MhaArgs, MhaMask, MultiheadAttention, MultiheadAttentionConfig};
pub(crate) use module::derive_seed;
pub use module::{Buffer, Mask, Module, Param, param_name};
pub(crate) use module::{state_entries, write_state};
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d, BatchNormConfig, LayerNorm, RmsNorm};
pub use pad::{CircularPad2d, ConstantPad2d, ReflectionPad2d, ReplicationPad2d, ZeroPad2d};
pub use pool::{AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d};
pub use rnn::{Gru, GruConfig, GruOutput, Lstm, LstmConfig, LstmOutput, LstmState, RnnConfig};
pub use sequential::{LayerSummary, Sequential, Summary};
pub use step_key::StepKey;
pub use transformer::{
    DecoderArgs, EncoderArgs, SinusoidalPositionalEncoding, TransformerActivation, TransformerDecoder,
    TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer, TransformerLayerConfig,
};
