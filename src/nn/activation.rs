//! Activation modules (no parameters): `Sigmoid`, `Relu`, `Tanh`, `Softmax`, `LeakyRelu`, `Gelu`,
//! and the [`Activation`] enum that `Dense` takes.

use super::module::{Module, Param};
use crate::{Element, Tensor};

/// An activation function, as a value (Keras's `activation=` argument).
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Activation, Dense, Module};
///
/// let x = Tensor::from_vec(vec![-2.0f32, 0.0, 3.0], &[3]);
/// assert_eq!(Activation::Relu.apply(&x).to_vec(), [0.0, 0.0, 3.0]);
/// assert_eq!(Activation::LeakyRelu(0.5).apply(&x).to_vec(), [-1.0, 0.0, 3.0]);
/// assert_eq!(Activation::Relu.name(), "ReLU");
///
/// // Dense(4, activation="sigmoid"): every output in (0, 1)
/// let head: Dense = Dense::new(3, 4, Some(Activation::Sigmoid), 0);
/// let p = head.forward(&Tensor::ones(&[2, 3]));
/// assert!(p.to_vec().iter().all(|&v| v > 0.0 && v < 1.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// The identity.
    Linear,
    /// Logistic sigmoid.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over the last dim.
    Softmax,
    /// Leaky ReLU with the given negative slope.
    LeakyRelu(f64),
    /// GELU (exact, erf-based).
    Gelu,
}

impl Activation {
    /// Applies the activation.
    pub fn apply<E: Element>(self, x: &Tensor<E>) -> Tensor<E> {
        match self {
            Activation::Linear => x.clone(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => x.softmax(x.ndim().saturating_sub(1)),
            Activation::LeakyRelu(s) => x.leaky_relu(E::of(s)),
            Activation::Gelu => x.gelu(),
        }
    }
}

impl Activation {
    /// PyTorch's name for the activation (`ReLU`, `Sigmoid`, …), used in model descriptions.
    pub fn name(self) -> String {
        match self {
            Activation::Linear => "Identity".into(),
            Activation::Sigmoid => "Sigmoid".into(),
            Activation::Relu => "ReLU".into(),
            Activation::Tanh => "Tanh".into(),
            Activation::Softmax => "Softmax(dim=-1)".into(),
            Activation::LeakyRelu(s) => format!("LeakyReLU(negative_slope={s})"),
            Activation::Gelu => "GELU".into(),
        }
    }
}

macro_rules! activation_module {
    ($(#[$doc:meta])* $name:ident, $act:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl<E: Element> Module<E> for $name {
            fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
                $act.apply(x)
            }
            fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}
            fn describe(&self) -> String {
                $act.name()
            }
        }
    };
}

activation_module!(
    /// Logistic sigmoid, elementwise. Any shape in, same shape out.
    ///
    /// ```
    /// use tensorgrad::{Tensor, nn::{Module, Sigmoid}};
    /// assert_eq!(Sigmoid.forward(&Tensor::<f32>::zeros(&[2])).to_vec(), [0.5, 0.5]);
    /// ```
    Sigmoid,
    Activation::Sigmoid
);
activation_module!(
    /// `max(x, 0)`, elementwise. Any shape in, same shape out.
    ///
    /// ```
    /// use tensorgrad::{Tensor, nn::{Linear, Module, Relu, Sequential}};
    /// assert_eq!(Relu.forward(&Tensor::from_slice(&[-1.0f32, 2.0])).to_vec(), [0.0, 2.0]);
    /// // Between two layers, as nn.ReLU() in an nn.Sequential:
    /// let mlp: Sequential = Sequential::new().add(Linear::new(4, 8, 0)).add(Relu).add(Linear::new(8, 1, 1));
    /// assert_eq!(mlp.forward(&Tensor::ones(&[3, 4])).shape(), &[3, 1]);
    /// ```
    Relu,
    Activation::Relu
);
activation_module!(
    /// Hyperbolic tangent, elementwise. Any shape in, same shape out.
    ///
    /// ```
    /// use tensorgrad::{Tensor, nn::{Module, Tanh}};
    /// let y = Tanh.forward(&Tensor::from_slice(&[0.0f64, 100.0]));
    /// assert_eq!(y.to_vec(), [0.0, 1.0]);
    /// ```
    Tanh,
    Activation::Tanh
);
activation_module!(
    /// Softmax over the last dim. Any shape in, same shape out.
    ///
    /// ```
    /// use tensorgrad::{Tensor, nn::{Module, Softmax}};
    /// let p = Softmax.forward(&Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 0.0, 0.0, 0.0], &[2, 3]));
    /// let rows = p.sum_dim(1, false).to_vec();
    /// assert!(rows.iter().all(|s| (s - 1.0).abs() < 1e-12));
    /// assert!((p.get(&[1, 0]) - 1.0 / 3.0).abs() < 1e-12);
    /// ```
    Softmax,
    Activation::Softmax
);
activation_module!(
    /// GELU (exact, erf-based), elementwise: `x·Φ(x)`, with `Φ` the standard normal CDF.
    ///
    /// ```
    /// use tensorgrad::{Tensor, nn::{Gelu, Module}};
    /// let y = Gelu.forward(&Tensor::from_slice(&[0.0f64, 1.0, 10.0])).to_vec();
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] - 0.841_344_746).abs() < 1e-8); // Φ(1)
    /// assert!((y[2] - 10.0).abs() < 1e-12);
    /// ```
    Gelu,
    Activation::Gelu
);

/// Leaky ReLU: `x` for x > 0, `slope · x` otherwise (PyTorch's default slope is 0.01).
///
/// ```
/// use tensorgrad::{Tensor, nn::{LeakyRelu, Module}};
/// assert_eq!(LeakyRelu::default().0, 0.01);
/// let y = LeakyRelu(0.25).forward(&Tensor::from_slice(&[-4.0f32, 2.0]));
/// assert_eq!(y.to_vec(), [-1.0, 2.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu(pub f64);

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu(0.01)
    }
}

impl<E: Element> Module<E> for LeakyRelu {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        x.leaky_relu(E::of(self.0))
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}
    fn describe(&self) -> String {
        Activation::LeakyRelu(self.0).name()
    }
}
