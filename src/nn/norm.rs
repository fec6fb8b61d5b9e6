//! `LayerNorm` and `RmsNorm`: normalisation layers with PyTorch's parameters and defaults.

use super::module::{Module, Param, join};
use crate::{Element, Tensor};

/// Layer normalisation over the trailing dims `normalized_shape` (PyTorch's `nn.LayerNorm`):
/// `eps` 1e-5, and a learned `weight` (ones) and `bias` (zeros) of that shape unless built
/// without them. Parameter names are PyTorch's (`weight`, `bias`), so state dicts map 1:1.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{LayerNorm, Module};
/// let ln: LayerNorm = LayerNorm::new(&[4]);
/// let y = ln.forward(&Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 4]));
/// assert!(y.sum().item().abs() < 1e-5);
/// assert_eq!(ln.named_parameters().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["weight", "bias"]);
/// ```
#[derive(Clone, Debug)]
pub struct LayerNorm<E: Element = f32> {
    shape: Vec<usize>,
    eps: f64,
    weight: Option<Param<E>>,
    bias: Option<Param<E>>,
}

impl<E: Element> LayerNorm<E> {
    /// A layer with PyTorch's defaults: `eps = 1e-5`, affine weight and bias.
    pub fn new(normalized_shape: &[usize]) -> Self {
        Self::with_options(normalized_shape, 1e-5, true, true)
    }

    /// A layer with the given `eps`, and a learned weight and bias only where asked
    /// (`elementwise_affine`, and `bias` as in PyTorch ≥ 2.1).
    ///
    /// # Panics
    /// If `normalized_shape` is empty or `eps` is negative or not finite.
    #[track_caller]
    pub fn with_options(normalized_shape: &[usize], eps: f64, elementwise_affine: bool, bias: bool) -> Self {
        if normalized_shape.is_empty() {
            panic!("LayerNorm: normalized_shape must have at least one dim");
        }
        if !(eps >= 0.0 && eps.is_finite()) {
            panic!("LayerNorm: eps {eps} must be finite and non-negative");
        }
        LayerNorm {
            shape: normalized_shape.to_vec(),
            eps,
            weight: elementwise_affine.then(|| Param::new(Tensor::ones(normalized_shape))),
            bias: (elementwise_affine && bias).then(|| Param::new(Tensor::zeros(normalized_shape))),
        }
    }

    /// The trailing dims normalised over.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.shape
    }
}

impl<E: Element> Module<E> for LayerNorm<E> {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let w = self.weight.as_ref().map(Param::tensor);
        let b = self.bias.as_ref().map(Param::tensor);
        x.layer_norm(&self.shape, w.as_ref(), b.as_ref(), self.eps)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        if let Some(w) = &self.weight {
            f(join(prefix, "weight"), w);
        }
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }

    fn describe(&self) -> String {
        format!("LayerNorm({:?}, eps={}, elementwise_affine={})", self.shape, self.eps, self.weight.is_some())
    }
}

/// RMS normalisation over the trailing dims `normalized_shape` (PyTorch's `nn.RMSNorm`):
/// `x / √(mean(x²) + eps) · weight`, with a learned `weight` (ones) unless built without it, and
/// `eps: None` meaning the machine epsilon of the element type, as in PyTorch.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Module, RmsNorm};
/// let norm: RmsNorm = RmsNorm::new(&[2]);
/// let y = norm.forward(&Tensor::from_vec(vec![3.0, 4.0], &[1, 2]));
/// assert!((y.powf(2.0).mean().item() - 1.0).abs() < 1e-5); // unit root mean square
/// ```
#[derive(Clone, Debug)]
pub struct RmsNorm<E: Element = f32> {
    shape: Vec<usize>,
    eps: Option<f64>,
    weight: Option<Param<E>>,
}

impl<E: Element> RmsNorm<E> {
    /// A layer with PyTorch's defaults: `eps = None` (machine epsilon), a learned weight.
    pub fn new(normalized_shape: &[usize]) -> Self {
        Self::with_options(normalized_shape, None, true)
    }

    /// A layer with the given `eps` and, if `elementwise_affine`, a learned weight.
    ///
    /// # Panics
    /// If `normalized_shape` is empty or `eps` is negative or not finite.
    #[track_caller]
    pub fn with_options(normalized_shape: &[usize], eps: Option<f64>, elementwise_affine: bool) -> Self {
        if normalized_shape.is_empty() {
            panic!("RmsNorm: normalized_shape must have at least one dim");
        }
        if let Some(e) = eps
            && !(e >= 0.0 && e.is_finite())
        {
            panic!("RmsNorm: eps {e} must be finite and non-negative");
        }
        RmsNorm {
            shape: normalized_shape.to_vec(),
            eps,
            weight: elementwise_affine.then(|| Param::new(Tensor::ones(normalized_shape))),
        }
    }
}

impl<E: Element> Module<E> for RmsNorm<E> {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let w = self.weight.as_ref().map(Param::tensor);
        x.rms_norm(&self.shape, w.as_ref(), self.eps)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        if let Some(w) = &self.weight {
            f(join(prefix, "weight"), w);
        }
    }

    fn describe(&self) -> String {
        match self.eps {
            Some(e) => format!("RMSNorm({:?}, eps={e}, elementwise_affine={})", self.shape, self.weight.is_some()),
            None => format!("RMSNorm({:?}, eps=None, elementwise_affine={})", self.shape, self.weight.is_some()),
        }
    }
}
