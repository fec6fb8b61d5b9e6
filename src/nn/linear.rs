//! `Linear` (PyTorch) and `Dense` (Keras: `Linear` plus an activation).

use crate::RngSource;

use super::activation::Activation;
use super::init::Init;
use super::module::{Module, Param, join};
use crate::ops::matmul::WeightPack;
use crate::{Element, PackedMatrix, Tensor};

/// A fully connected layer: `y = x · Wᵀ + b`.
///
/// # Shapes
/// - input: `[…, in_features]`
/// - output: `[…, out_features]`
/// - `weight`: `[out_features, in_features]`, `bias`: `[out_features]` (PyTorch's layout and
///   names, so weights move between the two).
///
/// Initialised as PyTorch does: weight and bias uniform on `±1/√in_features`.
///
/// Under [`no_grad`](crate::no_grad) (inference) the layer multiplies by its weight packed
/// once ([`PackedMatrix`]), kept until the weight changes, with the bias added in the same pass.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Tensor, nn::{Linear, Module}};
/// let mut rng = StdRng::seed_from_u64(0);
/// let fc: Linear = Linear::new(3, 2, &mut rng); // Linear<f32>
/// let y = fc.forward(&Tensor::ones(&[4, 3]));
/// assert_eq!(y.shape(), &[4, 2]);
/// assert_eq!(fc.named_parameters()[0].0, "weight");
/// ```
#[derive(Clone, Debug)]
pub struct Linear<E: Element = f32> {
    weight: Param<E>,
    bias: Option<Param<E>>,
    /// `Wᵀ` packed for the matrix multiply, made on the first forward pass under `no_grad` and
    /// kept while the weight is unchanged.
    packed: WeightPack<PackedMatrix<E>>,
}

impl<E: Element> Linear<E> {
    /// A layer with PyTorch's default initialisation and a bias.
    ///
    /// `rng` is `&mut` a generator or a `u64` seed ([`RngSource`]).
    pub fn new(in_features: usize, out_features: usize, rng: impl RngSource) -> Self {
        let a = 1.0 / (in_features.max(1) as f64).sqrt();
        Self::with_init(in_features, out_features, Init::Uniform(-a, a), Some(Init::Uniform(-a, a)), rng)
    }

    /// A layer with the given initialisers; `bias: None` makes a layer without a bias.
    pub fn with_init(
        in_features: usize,
        out_features: usize,
        weight: Init,
        bias: Option<Init>,
        rng: impl RngSource,
    ) -> Self {
        let mut rng = rng.into_rng();
        Linear {
            weight: Param::new(weight.tensor(&[out_features, in_features], &mut rng)),
            bias: bias.map(|b| Param::new(b.tensor(&[out_features], &mut rng))),
            packed: WeightPack::new(),
        }
    }

    /// A layer over given tensors (`weight: [out, in]`, `bias: [out]`).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::nn::{Linear, Module};
    /// // y = [x0 + x1, x0 − x1] + [1, 0]
    /// let w = Tensor::from_vec(vec![1.0f32, 1.0, 1.0, -1.0], &[2, 2]);
    /// let fc = Linear::from_tensors(w, Some(Tensor::from_slice(&[1.0, 0.0])));
    /// assert_eq!(fc.forward(&Tensor::from_vec(vec![3.0, 2.0], &[1, 2])).to_vec(), [6.0, 1.0]);
    /// ```
    ///
    /// # Panics
    /// If `weight` is not 2-D or `bias` is not `[out]`.
    #[track_caller]
    pub fn from_tensors(weight: Tensor<E>, bias: Option<Tensor<E>>) -> Self {
        assert_eq!(weight.ndim(), 2, "Linear: weight must be 2-D [out, in], got {:?}", weight.shape());
        if let Some(b) = &bias {
            assert_eq!(b.shape(), &weight.shape()[..1], "Linear: bias shape {:?} ≠ [{}]", b.shape(), weight.shape()[0]);
        }
        Linear { weight: Param::new(weight), bias: bias.map(Param::new), packed: WeightPack::new() }
    }

    /// The weight parameter, `[out_features, in_features]`.
    pub fn weight(&self) -> &Param<E> {
        &self.weight
    }

    /// The bias parameter, `[out_features]`, if any.
    pub fn bias(&self) -> Option<&Param<E>> {
        self.bias.as_ref()
    }

    /// Number of input features.
    pub fn in_features(&self) -> usize {
        self.weight.value().shape()[1]
    }

    /// Number of output features.
    pub fn out_features(&self) -> usize {
        self.weight.value().shape()[0]
    }
}

impl<E: Element> Module<E> for Linear<E> {
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let (inf, outf) = (self.in_features(), self.out_features());
        if x.ndim() == 0 || x.shape()[x.ndim() - 1] != inf {
            panic!("Linear: expected input [..., {inf}], got {:?}", x.shape());
        }
        let w = self.weight.tensor();
        if !crate::is_grad_enabled() {
            // Inference: Wᵀ packed once and kept, the bias added as the product's epilogue.
            let b = self.bias.as_ref().map(|b| b.tensor());
            let wt = self.packed.get(&[&w], || w.t().pack());
            return x.matmul_packed_bias(&wt, b.as_ref());
        }
        // Fold the leading dims into one, so the product is one large matmul.
        let lead = &x.shape()[..x.ndim() - 1];
        let flat = if x.ndim() == 2 { x.clone() } else { x.reshape(&[lead.iter().product(), inf]) };
        let mut y = flat.matmul(&w.t());
        if let Some(b) = &self.bias {
            y = y + b.tensor();
        }
        if x.ndim() == 2 { y } else { y.reshape(&[lead, &[outf]].concat()) }
    }

    fn describe(&self) -> String {
        format!(
            "Linear(in_features={}, out_features={}, bias={})",
            self.in_features(),
            self.out_features(),
            self.bias.is_some()
        )
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
}

/// Keras's `Dense`: a [`Linear`] layer followed by an optional activation.
///
/// # Shapes
/// input `[…, in_features]` → output `[…, units]`. Parameter names are `weight` and `bias`.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Tensor, nn::{Activation, Dense, Module}};
/// let mut rng = StdRng::seed_from_u64(0);
/// let head: Dense = Dense::new(128, 1, Some(Activation::Sigmoid), &mut rng);
/// let p = head.forward(&Tensor::zeros(&[8, 128]));
/// assert!(p.to_vec().iter().all(|&v| v > 0.0 && v < 1.0));
/// ```
#[derive(Clone, Debug)]
pub struct Dense<E: Element = f32> {
    linear: Linear<E>,
    activation: Activation,
}

impl<E: Element> Dense<E> {
    /// `units` outputs, PyTorch's default initialisation, and an optional activation.
    pub fn new(in_features: usize, units: usize, activation: Option<Activation>, rng: impl RngSource) -> Self {
        Dense { linear: Linear::new(in_features, units, rng), activation: activation.unwrap_or(Activation::Linear) }
    }

    /// The underlying linear layer.
    pub fn linear(&self) -> &Linear<E> {
        &self.linear
    }
}

impl<E: Element> Module<E> for Dense<E> {
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.activation.apply(&self.linear.forward(x))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        self.linear.visit_params(prefix, f)
    }

    fn describe(&self) -> String {
        let act = match self.activation {
            Activation::Linear => String::new(),
            a => format!(", activation={}", a.name()),
        };
        format!("Dense(in_features={}, units={}{act})", self.linear.in_features(), self.linear.out_features())
    }
}
