//! Activations: `tanh`, `sigmoid`, `relu` (primitives whose derivative comes from the output or
//! a mask), and `softmax` / `log_softmax`, composed from primitives so they need no backward of
//! their own.

use std::f64::consts::FRAC_1_SQRT_2;

use crate::kernels::map::UnaryOp;
use crate::kernels::math;
use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;
use crate::tensor::mode::no_grad;

/// `1/√(2π)`, the standard normal density at 0.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// `√(2/π)`, the tanh approximation's scale.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The tanh approximation's cubic coefficient.
const GELU_C: f64 = 0.044_715;

impl<E: Element> Tensor<E> {
    /// Hyperbolic tangent. ∂/∂x = 1 − tanh²(x) (from the output).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![0.0f64, 1.0], &[2]);
    /// let y = x.tanh().to_vec();
    /// assert!(y[0].abs() < 1e-12 && (y[1] - 0.761_594_155_955_764_9).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn tanh(&self) -> Tensor<E> {
        self.map_slice(math::tanh_into).record("tanh", [self.clone()], |c| {
            let y = c.out();
            vec![Some(c.grad() * &((y * y).neg() + E::one()))]
        })
    }

    /// Logistic sigmoid `1 / (1 + e⁻ˣ)`, finite for any input. ∂/∂x = σ(x)·(1 − σ(x)) (from the
    /// output).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![0.0f32, 100.0], &[2]);
    /// assert_eq!(x.sigmoid().to_vec(), vec![0.5, 1.0]);
    /// ```
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor<E> {
        self.map_slice(math::sigmoid_into).record("sigmoid", [self.clone()], |c| {
            let y = c.out();
            vec![Some(c.grad() * &(y * &(y.neg() + E::one())))]
        })
    }

    /// `max(x, 0)`. ∂/∂x = 1 where x > 0, else 0.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![-1.0f32, 2.0], &[2]);
    /// assert_eq!(x.relu().to_vec(), vec![0.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn relu(&self) -> Tensor<E> {
        self.map_op(UnaryOp::Relu).record("relu", [self.clone()], |c| {
            let mask = c.inputs[0].map_op(UnaryOp::Step);
            vec![Some(c.grad() * &mask)]
        })
    }

    /// `ln(1 + eˣ)`, computed as `max(x, 0) + ln(1 + e^(−|x|))` (finite for any x).
    /// ∂/∂x = σ(x).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![0.0f64], &[1]);
    /// assert!((x.softplus().item() - 2f64.ln()).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn softplus(&self) -> Tensor<E> {
        self.map(|x| x.max(E::zero()) + (-x.abs()).exp().ln_1p())
            .record("softplus", [self.clone()], |c| vec![Some(c.grad() * &c.inputs[0].sigmoid())])
    }

    /// `x` for x > 0, `slope · x` otherwise (composed: `relu(x) − slope · relu(−x)`).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![-2.0f32, 3.0], &[2]);
    /// assert_eq!(x.leaky_relu(0.5).to_vec(), vec![-1.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn leaky_relu(&self, slope: E) -> Tensor<E> {
        &self.relu() - &self.neg().relu().mul_scalar(slope)
    }

    /// The Gauss error function. ∂/∂x = 2/√π · e^(−x²).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![0.0f64, 10.0], &[2]);
    /// let y = x.erf().to_vec();
    /// assert!(y[0].abs() < 1e-12 && (y[1] - 1.0).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn erf(&self) -> Tensor<E> {
        self.map(|x| E::of(libm::erf(x.to_f64().unwrap_or(f64::NAN)))).record("erf", [self.clone()], |c| {
            let x = &c.inputs[0];
            vec![Some(c.grad() * &(x * x).neg().exp().mul_scalar(E::of(std::f64::consts::FRAC_2_SQRT_PI)))]
        })
    }

    /// GELU with the exact Gaussian CDF, `x · Φ(x) = x/2 · (1 + erf(x/√2))` (PyTorch's default
    /// `nn.GELU()`). One pass forward and one backward (∂/∂x = Φ(x) + x·φ(x)), vectorised for
    /// `f32` (an `erf` accurate to 1.5e-7; `f64` uses libm's); a recorded backward is written
    /// with ops, so it can be differentiated again.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![0.0f32, 10.0], &[2]);
    /// let y = x.gelu().to_vec();
    /// assert!(y[0].abs() < 1e-6 && (y[1] - 10.0).abs() < 1e-4);
    /// ```
    #[track_caller]
    pub fn gelu(&self) -> Tensor<E> {
        self.map_slice(math::gelu_into).record("gelu", [self.clone()], |c| {
            let x = &c.inputs[0];
            let d = if crate::is_grad_enabled() {
                // Φ(x) + x·φ(x), with ops.
                let cdf = x.mul_scalar(E::of(FRAC_1_SQRT_2)).erf().add_scalar(E::one()).mul_scalar(E::of(0.5));
                let pdf = (x * x).mul_scalar(E::of(-0.5)).exp().mul_scalar(E::of(FRAC_1_SQRT_2PI));
                &cdf + &(x * &pdf)
            } else {
                x.map_slice(math::gelu_grad_into)
            };
            vec![Some(c.grad() * &d)]
        })
    }

    /// GELU with the tanh approximation, `x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))`
    /// (PyTorch's `nn.GELU(approximate='tanh')`, GPT-2's activation). One pass forward and one
    /// backward; a recorded backward is written with ops, so it can be differentiated again.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![0.0f64, 1.0, -3.0], &[3]);
    /// let y = x.gelu_tanh().to_vec();
    /// assert!(y[0].abs() < 1e-15 && (y[1] - 0.8411919906082768).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn gelu_tanh(&self) -> Tensor<E> {
        self.map(|x| {
            let v = x.to_f64().unwrap_or(f64::NAN);
            E::of(0.5 * v * (1.0 + (SQRT_2_OVER_PI * (v + GELU_C * v * v * v)).tanh()))
        })
        .record("gelu_tanh", [self.clone()], |c| {
            let x = &c.inputs[0];
            // ∂/∂x = (1 + t)/2 + x/2 · (1 − t²) · √(2/π) · (1 + 3·0.044715·x²), t = tanh(inner).
            let d = if crate::is_grad_enabled() {
                let x2 = x * x;
                let t = (x + &(&x2 * x).mul_scalar(E::of(GELU_C))).mul_scalar(E::of(SQRT_2_OVER_PI)).tanh();
                let dinner = x2.mul_scalar(E::of(3.0 * GELU_C)).add_scalar(E::one()).mul_scalar(E::of(SQRT_2_OVER_PI));
                let sech2 = (&t * &t).neg().add_scalar(E::one());
                &t.add_scalar(E::one()).mul_scalar(E::of(0.5)) + &(&(x * &sech2) * &dinner).mul_scalar(E::of(0.5))
            } else {
                x.map(|x| {
                    let v = x.to_f64().unwrap_or(f64::NAN);
                    let t = (SQRT_2_OVER_PI * (v + GELU_C * v * v * v)).tanh();
                    let dinner = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * v * v);
                    E::of(0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * dinner)
                })
            };
            vec![Some(c.grad() * &d)]
        })
    }

    /// Softmax over `dim`: `exp(x − max) / Σ exp(x − max)`, stable for large inputs. A slice
    /// whose values are all `−∞` (a query with every key masked) gives zeros and zero gradients,
    /// where PyTorch gives NaN.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[1, 3]);
    /// let p = x.softmax(1).to_vec();
    /// assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    /// let masked = tensorgrad::Tensor::from_vec(vec![f64::NEG_INFINITY; 3], &[1, 3]);
    /// assert_eq!(masked.softmax(1).to_vec(), [0.0; 3]);
    /// ```
    #[track_caller]
    pub fn softmax(&self, dim: usize) -> Tensor<E> {
        crate::tensor::shape::check_dim("softmax", dim, self.shape());
        let e = (self - &self.shift_for(dim)).exp();
        let sum = e.sum_dim(dim, true);
        // Σ = 0 only for an all −∞ slice, whose exponentials are all 0: divide those by 1.
        let alive = no_grad(|| sum.detach().map(|s| if s == E::zero() { E::zero() } else { E::one() }));
        &e / &Tensor::where_cond(&alive, &sum, &Tensor::ones(&[1]))
    }

    /// `ln(softmax(x))` over `dim`, computed as `x − max − ln Σ exp(x − max)`.
    ///
    /// ```
    /// let x = tensorgrad::Tensor::from_vec(vec![1.0f64, 1.0], &[1, 2]);
    /// assert!(x.log_softmax(1).to_vec().iter().all(|v| (v + 2f64.ln()).abs() < 1e-12));
    /// ```
    #[track_caller]
    pub fn log_softmax(&self, dim: usize) -> Tensor<E> {
        crate::tensor::shape::check_dim("log_softmax", dim, self.shape());
        let s = self - &self.shift_for(dim);
        &s - &s.exp().sum_dim(dim, true).ln()
    }

    /// The max over `dim` (keepdim) as a constant. Softmax is invariant to the shift, so no
    /// gradient needs to flow through it.
    #[track_caller]
    fn shift_for(&self, dim: usize) -> Tensor<E> {
        no_grad(|| {
            let m = self.detach().max_dim(dim, true).0;
            // An all −∞ row would give −∞ − (−∞) = NaN; shift such rows by 0 instead.
            m.map(|x| if x.is_finite() { x } else { E::zero() })
        })
    }
}
