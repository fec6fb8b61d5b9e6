//! Activation modules (no parameters): `Sigmoid`, `Relu`, `Tanh`, `Softmax`, `LeakyRelu`, `Gelu`,
//! and the [`Activation`] enum that `Dense` takes.

use super::module::{Module, Param};
use crate::{Element, Tensor};

/// An activation function, as a value (Keras's `activation=` argument).
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
    Sigmoid,
    Activation::Sigmoid
);
activation_module!(
    /// `max(x, 0)`, elementwise. Any shape in, same shape out.
    Relu,
    Activation::Relu
);
activation_module!(
    /// Hyperbolic tangent, elementwise. Any shape in, same shape out.
    Tanh,
    Activation::Tanh
);
activation_module!(
    /// Softmax over the last dim. Any shape in, same shape out.
    Softmax,
    Activation::Softmax
);
activation_module!(
    /// GELU (exact, erf-based), elementwise.
    Gelu,
    Activation::Gelu
);

/// Leaky ReLU: `x` for x > 0, `slope · x` otherwise (PyTorch's default slope is 0.01).
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
