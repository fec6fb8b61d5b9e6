//! `Flatten`: merges a range of dims into one, as a layer.

use super::module::{Module, Param};
use crate::{Element, Tensor};

/// Merges dims `start_dim..=end_dim` into one (PyTorch's `nn.Flatten`, Keras's `Flatten`). The
/// default, [`Flatten::new`], keeps the batch dim and merges the rest: `[N, C, H, W]` becomes
/// `[N, C·H·W]`. `end_dim` counts from the end as in PyTorch: `-1` is the last dim.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Flatten, Linear, Module, Sequential};
///
/// let model: Sequential = Sequential::new().add(Flatten::new()).add(Linear::new(28 * 28, 10, 0));
/// let images = Tensor::zeros(&[32, 1, 28, 28]);
/// assert_eq!(model.forward(&images).shape(), &[32, 10]);
/// assert_eq!(Module::<f32>::forward(&Flatten::range(0, -2), &Tensor::zeros(&[2, 3, 4])).shape(), &[6, 4]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flatten {
    start_dim: usize,
    end_dim: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { start_dim: 1, end_dim: -1 }
    }
}

impl Flatten {
    /// Flattens every dim after the first (the batch dim).
    pub fn new() -> Self {
        Self::default()
    }

    /// Flattens dims `start_dim..=end_dim`; a negative `end_dim` counts from the end.
    pub fn range(start_dim: usize, end_dim: isize) -> Self {
        Flatten { start_dim, end_dim }
    }
}

impl<E: Element> Module<E> for Flatten {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let n = x.ndim() as isize;
        let end = if self.end_dim < 0 { n + self.end_dim } else { self.end_dim };
        if end < 0 || end >= n.max(1) {
            panic!("Flatten: end_dim {} is out of range for input of shape {:?}", self.end_dim, x.shape());
        }
        x.flatten(self.start_dim, end as usize)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        format!("Flatten(start_dim={}, end_dim={})", self.start_dim, self.end_dim)
    }
}

/// Splits dim `dim` into dims of `sizes` (PyTorch's `nn.Unflatten`, the inverse of
/// [`Flatten`]): `[N, C·H·W]` becomes `[N, C, H, W]` with `Unflatten::new(1, &[C, H, W])`.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Module, Unflatten};
/// let unflatten = Unflatten::new(1, &[2, 5, 5]);
/// let y: Tensor = unflatten.forward(&Tensor::zeros(&[3, 50]));
/// assert_eq!(y.shape(), &[3, 2, 5, 5]);
/// assert_eq!(Module::<f32>::describe(&unflatten), "Unflatten(dim=1, unflattened_size=(2, 5, 5))");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unflatten {
    dim: usize,
    sizes: Vec<usize>,
}

impl Unflatten {
    /// Splits `dim` into `sizes`.
    pub fn new(dim: usize, sizes: &[usize]) -> Self {
        Unflatten { dim, sizes: sizes.to_vec() }
    }
}

impl<E: Element> Module<E> for Unflatten {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        x.unflatten(self.dim, &self.sizes)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        let sizes: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        let tuple = if sizes.len() == 1 { format!("({},)", sizes[0]) } else { format!("({})", sizes.join(", ")) };
        format!("Unflatten(dim={}, unflattened_size={tuple})", self.dim)
    }
}
