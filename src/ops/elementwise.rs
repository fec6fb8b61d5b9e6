//! Elementwise arithmetic: `+ - * /` with NumPy broadcasting and with scalars, and the unary
//! math functions `neg`, `exp`, `ln` (also `log`), `powf`, `pow`, `sin`, `cos`, `sqrt`, `abs`,
//! `clamp`.
//!
//! Broadcasting is a view: a binary op first broadcasts both operands to the common shape with
//! [`Tensor::broadcast_to`] (whose backward sums over the stretched dims) and then works on equal
//! shapes, so no backward rule here ever un-broadcasts.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::kernels::map::{BinaryOp, UnaryOp};
use crate::kernels::{PAR_ELEMS, Par, index, map, math};
use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;
use crate::tensor::shape::broadcast_shapes;

/// The parallelism for an elementwise kernel over `n` elements. Below [`PAR_ELEMS`] the map
/// kernels run on the calling thread whatever they are given, so the rayon pool's size is not
/// looked up for them (that look-up was a few percent of a tiny op).
fn par_for(n: usize) -> Par {
    if n < PAR_ELEMS { Par::Seq } else { Par::current() }
}

impl<E: Element> Tensor<E> {
    /// Applies `f` to every element into a new tensor, recording nothing (a kernel helper).
    #[track_caller]
    pub(crate) fn map(&self, f: impl Fn(E) -> E + Sync) -> Tensor<E> {
        let d = self.data();
        Tensor::from_data(map::unary(par_for(self.numel()), &d, self.layout(), f), self.shape())
    }

    /// Applies a slice kernel `f(src, dst)` to the elements into a new tensor, recording nothing.
    #[track_caller]
    pub(crate) fn map_slice(&self, f: fn(&[E], &mut [E])) -> Tensor<E> {
        let d = self.data();
        Tensor::from_data(map::unary_into(par_for(self.numel()), &d, self.layout(), f), self.shape())
    }

    /// Applies a named elementwise function into a new tensor, recording nothing; its loop is
    /// compiled in this crate whatever crate instantiates the op.
    #[track_caller]
    pub(crate) fn map_op(&self, op: UnaryOp<E>) -> Tensor<E> {
        let d = self.data();
        Tensor::from_data(map::unary_op(par_for(self.numel()), &d, self.layout(), op), self.shape())
    }

    /// Combines two tensors of the same shape with a named function, recording nothing; its
    /// loop is compiled in this crate whatever crate instantiates the op.
    #[track_caller]
    pub(crate) fn zip_op(&self, other: &Tensor<E>, op: BinaryOp) -> Tensor<E> {
        let (a, b) = (self.data(), other.data());
        Tensor::from_data(
            map::binary_op(par_for(self.numel()), &a, self.layout(), &b, other.layout(), op),
            self.shape(),
        )
    }

    /// Combines two tensors of the same shape element by element, recording nothing.
    #[track_caller]
    pub(crate) fn zip(&self, other: &Tensor<E>, f: impl Fn(E, E) -> E + Sync) -> Tensor<E> {
        let (a, b) = (self.data(), other.data());
        Tensor::from_data(map::binary(par_for(self.numel()), &a, self.layout(), &b, other.layout(), f), self.shape())
    }

    /// Both operands broadcast to their common shape (views; no copy).
    #[track_caller]
    fn broadcast_pair(&self, other: &Tensor<E>, op: &str) -> (Tensor<E>, Tensor<E>) {
        // Compared element by element: for the short slices of shapes that is cheaper than the
        // `memcmp` call that `==` on slices makes.
        let (sa, sb) = (self.shape(), other.shape());
        if sa.len() == sb.len() && sa.iter().zip(sb).all(|(x, y)| x == y) {
            return (self.clone(), other.clone());
        }
        let shape = broadcast_shapes(op, self.shape(), other.shape());
        (self.broadcast_to(&shape), other.broadcast_to(&shape))
    }

    /// `self + other` with broadcasting. ∂/∂a = 1, ∂/∂b = 1.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![1.0f32, 2.0], &[2]);
    /// assert_eq!(a.add(&tensorgrad::Tensor::from_vec(vec![10.0], &[1])).to_vec(), vec![11.0, 12.0]);
    /// ```
    #[track_caller]
    pub fn add(&self, other: &Tensor<E>) -> Tensor<E> {
        let (a, b) = self.broadcast_pair(other, "add");
        a.zip_op(&b, BinaryOp::Add).record("add", [a, b], |c| vec![Some(c.grad().clone()), Some(c.grad().clone())])
    }

    /// `self - other` with broadcasting. ∂/∂a = 1, ∂/∂b = −1.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![5.0f32, 7.0], &[2]);
    /// assert_eq!((&a - &a.mul_scalar(2.0)).to_vec(), vec![-5.0, -7.0]);
    /// ```
    #[track_caller]
    pub fn sub(&self, other: &Tensor<E>) -> Tensor<E> {
        let (a, b) = self.broadcast_pair(other, "sub");
        a.zip_op(&b, BinaryOp::Sub)
            .record("sub", [a, b], |c| vec![Some(c.grad().clone()), c.needs(1).then(|| c.grad().neg())])
    }

    /// `self * other` with broadcasting. ∂/∂a = b, ∂/∂b = a.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    /// let col = tensorgrad::Tensor::from_vec(vec![10.0f32, 100.0], &[2, 1]);
    /// assert_eq!((&a * &col).to_vec(), vec![10.0, 20.0, 300.0, 400.0]);
    /// ```
    #[track_caller]
    pub fn mul(&self, other: &Tensor<E>) -> Tensor<E> {
        let (a, b) = self.broadcast_pair(other, "mul");
        a.zip_op(&b, BinaryOp::Mul).record("mul", [a, b], |c| {
            vec![c.needs(0).then(|| c.grad() * &c.inputs[1]), c.needs(1).then(|| c.grad() * &c.inputs[0])]
        })
    }

    /// `self / other` with broadcasting. ∂/∂a = 1/b, ∂/∂b = −a/b² = −out/b.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![1.0f32, 6.0], &[2]);
    /// assert_eq!((&a / &tensorgrad::Tensor::from_vec(vec![2.0f32, 3.0], &[2])).to_vec(), vec![0.5, 2.0]);
    /// ```
    #[track_caller]
    pub fn div(&self, other: &Tensor<E>) -> Tensor<E> {
        let (a, b) = self.broadcast_pair(other, "div");
        a.zip_op(&b, BinaryOp::Div).record("div", [a, b], |c| {
            let b = &c.inputs[1];
            vec![c.needs(0).then(|| c.grad() / b), c.needs(1).then(|| (c.grad() * c.out() / b).neg())]
        })
    }

    /// `self + s`. ∂/∂x = 1.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![1.0f32, 2.0], &[2]);
    /// assert_eq!(a.add_scalar(0.5).to_vec(), vec![1.5, 2.5]);
    /// ```
    #[track_caller]
    pub fn add_scalar(&self, s: E) -> Tensor<E> {
        self.map_op(UnaryOp::AddScalar(s)).record("add_scalar", [self.clone()], |c| vec![Some(c.grad().clone())])
    }

    /// `self · s`. ∂/∂x = s.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![1.0f32, -2.0], &[2]);
    /// assert_eq!(a.mul_scalar(3.0).to_vec(), vec![3.0, -6.0]);
    /// ```
    #[track_caller]
    pub fn mul_scalar(&self, s: E) -> Tensor<E> {
        self.map_op(UnaryOp::MulScalar(s))
            .record("mul_scalar", [self.clone()], move |c| vec![Some(c.grad().mul_scalar(s))])
    }

    /// `−self`. ∂/∂x = −1.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![1.0f32, -2.0], &[2]);
    /// assert_eq!(a.neg().to_vec(), vec![-1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn neg(&self) -> Tensor<E> {
        self.map_op(UnaryOp::Neg).record("neg", [self.clone()], |c| vec![Some(c.grad().neg())])
    }

    /// `eˣ`. ∂/∂x = eˣ (the output).
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![0.0f64, 1.0], &[2]);
    /// let y = a.exp().to_vec();
    /// assert!((y[0] - 1.0).abs() < 1e-12 && (y[1] - std::f64::consts::E).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn exp(&self) -> Tensor<E> {
        self.map_slice(math::exp_into).record("exp", [self.clone()], |c| vec![Some(c.grad() * c.out())])
    }

    /// Natural logarithm. ∂/∂x = 1/x.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![1.0f64, std::f64::consts::E], &[2]);
    /// let y = a.ln().to_vec();
    /// assert!(y[0].abs() < 1e-12 && (y[1] - 1.0).abs() < 1e-12);
    /// ```
    #[doc(alias = "log")]
    #[track_caller]
    pub fn ln(&self) -> Tensor<E> {
        self.map(|x| x.ln()).record("ln", [self.clone()], |c| vec![Some(c.grad() / &c.inputs[0])])
    }

    /// `xᵖ` for a constant exponent. ∂/∂x = p·xᵖ⁻¹.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![2.0f32, 3.0], &[2]);
    /// assert_eq!(a.powf(2.0).to_vec(), vec![4.0, 9.0]);
    /// ```
    #[track_caller]
    pub fn powf(&self, p: E) -> Tensor<E> {
        self.map(|x| x.powf(p)).record("powf", [self.clone()], move |c| {
            vec![Some(c.grad() * &c.inputs[0].powf(p - E::one()).mul_scalar(p))]
        })
    }

    /// Natural logarithm: the same op as [`ln`](Self::ln), under PyTorch's and NumPy's name.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![1.0f32, 4.0], &[2]);
    /// assert_eq!(a.log().to_vec(), a.ln().to_vec());
    /// ```
    #[track_caller]
    pub fn log(&self) -> Tensor<E> {
        self.ln()
    }

    /// `selfᵉˣᵖᵒⁿᵉⁿᵗ` element by element, with broadcasting (PyTorch's `pow` with a tensor
    /// exponent; [`powf`](Self::powf) takes a constant). ∂/∂a = b·aᵇ⁻¹, ∂/∂b = aᵇ·ln a, taken as 0
    /// where a = 0 and b ≥ 0 (as PyTorch does), so a zero base does not make the exponent's
    /// gradient NaN.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let base = Tensor::from_vec(vec![2.0f64, 3.0, 0.0], &[3]).requires_grad();
    /// let exponent = Tensor::from_vec(vec![3.0f64, 0.5, 2.0], &[3]).requires_grad();
    /// let y = base.pow(&exponent);
    /// assert_eq!(y.to_vec()[0], 8.0);
    /// let g = y.sum().backward();
    /// assert_eq!(g.get(&base).unwrap().to_vec()[0], 12.0); // 3 · 2²
    /// assert_eq!(g.get(&exponent).unwrap().to_vec()[2], 0.0); // 0² · ln 0, taken as 0
    /// ```
    #[track_caller]
    pub fn pow(&self, exponent: &Tensor<E>) -> Tensor<E> {
        let (a, b) = self.broadcast_pair(exponent, "pow");
        a.zip(&b, |x, y| x.powf(y)).record("pow", [a, b], |c| {
            let (a, b) = (&c.inputs[0], &c.inputs[1]);
            let da = c.needs(0).then(|| c.grad() * &(b * &a.pow(&b.add_scalar(-E::one()))));
            let db = c.needs(1).then(|| {
                // 1 where ln a counts, 0 where a = 0 and b ≥ 0; a is replaced by 1 there, so the
                // logarithm (and its own derivatives) stay finite.
                let keep = a.zip(b, |x, y| if x == E::zero() && y >= E::zero() { E::zero() } else { E::one() });
                let safe_a = &(a * &keep) + &Tensor::neg(&keep).add_scalar(E::one());
                c.grad() * &(&(c.out() * &safe_a.ln()) * &keep)
            });
            vec![da, db]
        })
    }

    /// `a` where `cond` is non-zero, `b` elsewhere (PyTorch's `torch.where(cond, a, b)`), with
    /// broadcasting over all three. `cond` is a constant (0/1 or any floats; non-zero counts as
    /// true). Gradients go to `a` where the condition holds and to `b` elsewhere; the other
    /// operand's values are never read there, so an `inf` or NaN in them does not leak.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let cond = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3]);
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]);
    /// let b = Tensor::from_vec(vec![f32::NEG_INFINITY], &[1]);
    /// assert_eq!(Tensor::where_cond(&cond, &a, &b).to_vec(), vec![1.0, f32::NEG_INFINITY, 3.0]);
    /// ```
    #[doc(alias = "where")]
    #[track_caller]
    pub fn where_cond(cond: &Tensor<E>, a: &Tensor<E>, b: &Tensor<E>) -> Tensor<E> {
        let shape = broadcast_shapes("where_cond", &broadcast_shapes("where_cond", cond.shape(), a.shape()), b.shape());
        let keep = cond.detach().broadcast_to(&shape).map(|v| if v != E::zero() { E::one() } else { E::zero() });
        let (a, b) = (a.broadcast_to(&shape), b.broadcast_to(&shape));
        let from_a = a.zip(&keep, |x, k| if k != E::zero() { x } else { E::zero() });
        let from_b = b.zip(&keep, |y, k| if k != E::zero() { E::zero() } else { y });
        let out = from_a.zip(&from_b, |x, y| x + y);
        out.record("where_cond", [a, b], move |c| {
            let zero = Tensor::zeros(&[1]);
            vec![
                c.needs(0).then(|| Tensor::where_cond(&keep, c.grad(), &zero)),
                c.needs(1).then(|| Tensor::where_cond(&keep, &zero, c.grad())),
            ]
        })
    }

    /// `value` where `mask` is non-zero, `self` elsewhere (PyTorch's `masked_fill`; the mask
    /// broadcasts to `self`'s shape). The usual way to hide attention scores: fill with `−∞`
    /// before a softmax.
    ///
    /// ```
    /// let scores = tensorgrad::Tensor::from_vec(vec![0.5f32, 1.0, 2.0], &[1, 3]);
    /// let pad = tensorgrad::Tensor::from_vec(vec![0.0f32, 0.0, 1.0], &[1, 3]);
    /// assert_eq!(scores.masked_fill(&pad, f32::NEG_INFINITY).softmax(1).to_vec()[2], 0.0);
    /// ```
    ///
    /// # Panics
    /// If the mask does not broadcast to `self`'s shape.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor<E>, value: E) -> Tensor<E> {
        if broadcast_shapes("masked_fill", mask.shape(), self.shape()) != self.shape() {
            panic!("masked_fill: mask of shape {:?} does not broadcast to {:?}", mask.shape(), self.shape());
        }
        Tensor::where_cond(mask, &Tensor::full(&[1], value), self)
    }

    /// The lower triangle of the last two dims: elements with `col − row > diagonal` set to 0
    /// (PyTorch's `tril`; `diagonal` 0 keeps the main diagonal, −1 drops it too).
    ///
    /// ```
    /// let x = tensorgrad::Tensor::<f32>::ones(&[3, 3]);
    /// assert_eq!(x.tril(0).to_vec(), vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
    /// assert_eq!(x.triu(1).to_vec(), vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor has fewer than 2 dims.
    #[track_caller]
    pub fn tril(&self, diagonal: isize) -> Tensor<E> {
        let keep = triangle("tril", self.shape(), |r, c| c - r <= diagonal);
        Tensor::where_cond(&keep, self, &Tensor::zeros(&[1]))
    }

    /// The upper triangle of the last two dims: elements with `col − row < diagonal` set to 0
    /// (PyTorch's `triu`); see [`tril`](Self::tril).
    #[track_caller]
    pub fn triu(&self, diagonal: isize) -> Tensor<E> {
        let keep = triangle("triu", self.shape(), |r, c| c - r >= diagonal);
        Tensor::where_cond(&keep, self, &Tensor::zeros(&[1]))
    }

    /// `sin x`. ∂/∂x = cos x.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![0.0f64, std::f64::consts::FRAC_PI_2], &[2]);
    /// assert_eq!(a.sin().to_vec(), vec![0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn sin(&self) -> Tensor<E> {
        self.map(|x| x.sin()).record("sin", [self.clone()], |c| vec![Some(c.grad() * &c.inputs[0].cos())])
    }

    /// `cos x`. ∂/∂x = −sin x.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![0.0f64, std::f64::consts::PI], &[2]);
    /// assert_eq!(a.cos().to_vec(), vec![1.0, -1.0]);
    /// ```
    #[track_caller]
    pub fn cos(&self) -> Tensor<E> {
        self.map(|x| x.cos()).record("cos", [self.clone()], |c| vec![Some((c.grad() * &c.inputs[0].sin()).neg())])
    }

    /// `√x`. ∂/∂x = 1/(2√x) (from the output).
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![4.0f32, 9.0], &[2]);
    /// assert_eq!(a.sqrt().to_vec(), vec![2.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn sqrt(&self) -> Tensor<E> {
        self.map(|x| x.sqrt())
            .record("sqrt", [self.clone()], |c| vec![Some((c.grad() / c.out()).mul_scalar(E::of(0.5)))])
    }

    /// `|x|`. ∂/∂x = sign(x), taken as 0 at 0 (as PyTorch does).
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![-1.5f32, 2.0], &[2]);
    /// assert_eq!(a.abs().to_vec(), vec![1.5, 2.0]);
    /// ```
    #[track_caller]
    pub fn abs(&self) -> Tensor<E> {
        self.map(|x| x.abs()).record("abs", [self.clone()], |c| {
            let sign = c.inputs[0].map(|x| {
                if x > E::zero() {
                    E::one()
                } else if x < E::zero() {
                    -E::one()
                } else {
                    E::zero()
                }
            });
            vec![Some(c.grad() * &sign)]
        })
    }

    /// Limits every element to `[min, max]`. ∂/∂x = 1 where `min ≤ x ≤ max`, else 0.
    ///
    /// ```
    /// let a = tensorgrad::Tensor::from_vec(vec![-2.0f32, 0.5, 3.0], &[3]);
    /// assert_eq!(a.clamp(-1.0, 1.0).to_vec(), vec![-1.0, 0.5, 1.0]);
    /// ```
    #[track_caller]
    pub fn clamp(&self, min: E, max: E) -> Tensor<E> {
        if min > max || min.is_nan() || max.is_nan() {
            panic!("clamp: min {min} must not exceed max {max}");
        }
        self.map(|x| x.max(min).min(max)).record("clamp", [self.clone()], move |c| {
            let inside = c.inputs[0].map(|x| if x >= min && x <= max { E::one() } else { E::zero() });
            vec![Some(c.grad() * &inside)]
        })
    }
}

// Operators on every combination of owned and borrowed tensors, and with a scalar on the right.
macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $scalar:expr) => {
        impl<E: Element> $Trait<&Tensor<E>> for &Tensor<E> {
            type Output = Tensor<E>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<E>) -> Tensor<E> {
                Tensor::$method(self, rhs)
            }
        }
        impl<E: Element> $Trait<Tensor<E>> for &Tensor<E> {
            type Output = Tensor<E>;
            #[track_caller]
            fn $method(self, rhs: Tensor<E>) -> Tensor<E> {
                Tensor::$method(self, &rhs)
            }
        }
        impl<E: Element> $Trait<&Tensor<E>> for Tensor<E> {
            type Output = Tensor<E>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<E>) -> Tensor<E> {
                Tensor::$method(&self, rhs)
            }
        }
        impl<E: Element> $Trait<Tensor<E>> for Tensor<E> {
            type Output = Tensor<E>;
            #[track_caller]
            fn $method(self, rhs: Tensor<E>) -> Tensor<E> {
                Tensor::$method(&self, &rhs)
            }
        }
        impl<E: Element> $Trait<E> for &Tensor<E> {
            type Output = Tensor<E>;
            fn $method(self, rhs: E) -> Tensor<E> {
                let f: fn(&Tensor<E>, E) -> Tensor<E> = $scalar;
                f(self, rhs)
            }
        }
        impl<E: Element> $Trait<E> for Tensor<E> {
            type Output = Tensor<E>;
            fn $method(self, rhs: E) -> Tensor<E> {
                let f: fn(&Tensor<E>, E) -> Tensor<E> = $scalar;
                f(&self, rhs)
            }
        }
    };
}

binary_operator!(Add, add, |t, s| t.add_scalar(s));
binary_operator!(Sub, sub, |t, s| t.add_scalar(-s));
binary_operator!(Mul, mul, |t, s| t.mul_scalar(s));
binary_operator!(Div, div, |t, s| t.mul_scalar(E::one() / s));

// A scalar on the left: `2.0 * &t`, `1.0 - &t`, `1.0 / &t`.
macro_rules! scalar_left {
    ($($E:ty),*) => {$(
        impl Add<&Tensor<$E>> for $E {
            type Output = Tensor<$E>;
            fn add(self, rhs: &Tensor<$E>) -> Tensor<$E> { rhs.add_scalar(self) }
        }
        impl Add<Tensor<$E>> for $E {
            type Output = Tensor<$E>;
            fn add(self, rhs: Tensor<$E>) -> Tensor<$E> { rhs.add_scalar(self) }
        }
        impl Sub<&Tensor<$E>> for $E {
            type Output = Tensor<$E>;
            fn sub(self, rhs: &Tensor<$E>) -> Tensor<$E> { rhs.neg().add_scalar(self) }
        }
        impl Sub<Tensor<$E>> for $E {
            type Output = Tensor<$E>;
            fn sub(self, rhs: Tensor<$E>) -> Tensor<$E> { rhs.neg().add_scalar(self) }
        }
        impl Mul<&Tensor<$E>> for $E {
            type Output = Tensor<$E>;
            fn mul(self, rhs: &Tensor<$E>) -> Tensor<$E> { rhs.mul_scalar(self) }
        }
        impl Mul<Tensor<$E>> for $E {
            type Output = Tensor<$E>;
            fn mul(self, rhs: Tensor<$E>) -> Tensor<$E> { rhs.mul_scalar(self) }
        }
        impl Div<&Tensor<$E>> for $E {
            type Output = Tensor<$E>;
            fn div(self, rhs: &Tensor<$E>) -> Tensor<$E> { rhs.powf(-1.0).mul_scalar(self) }
        }
        impl Div<Tensor<$E>> for $E {
            type Output = Tensor<$E>;
            fn div(self, rhs: Tensor<$E>) -> Tensor<$E> { rhs.powf(-1.0).mul_scalar(self) }
        }
    )*};
}
scalar_left!(f32, f64);

impl<E: Element> Neg for &Tensor<E> {
    type Output = Tensor<E>;
    fn neg(self) -> Tensor<E> {
        Tensor::neg(self)
    }
}

impl<E: Element> Neg for Tensor<E> {
    type Output = Tensor<E>;
    fn neg(self) -> Tensor<E> {
        Tensor::neg(&self)
    }
}

/// A `[rows, cols]` tensor of 1 where `keep(row, col)`, else 0, for the last two dims of `shape`.
#[track_caller]
fn triangle<E: Element>(op: &str, shape: &[usize], keep: impl Fn(isize, isize) -> bool) -> Tensor<E> {
    let [.., rows, cols] = shape else {
        panic!("{op}: needs at least 2 dims, got shape {shape:?}");
    };
    Tensor::from_data(index::grid_mask(*rows, *cols, keep), &[*rows, *cols])
}
