//! Padding layers for `[N, C, H, W]` (or `[C, H, W]`) inputs, PyTorch's `ZeroPad2d`,
//! `ConstantPad2d`, `ReflectionPad2d`, `ReplicationPad2d` and `CircularPad2d`: each is
//! [`Tensor::pad`] of the last two dims with a fixed `(left, right, top, bottom)`.

use super::module::{Module, Param};
use crate::{Element, PadMode, Tensor};

/// Pads `x` (which must be 3-D or 4-D) by `padding` in `mode`, naming `module` in a panic.
#[track_caller]
fn pad2d<E: Element>(module: &str, x: &Tensor<E>, padding: &[usize; 4], mode: PadMode) -> Tensor<E> {
    if x.ndim() != 3 && x.ndim() != 4 {
        panic!("{module}: expects a 3-D [C, H, W] or 4-D [N, C, H, W] input, got shape {:?}", x.shape());
    }
    x.pad(padding, mode)
}

/// `(l, r, t, b)` as Python prints a tuple.
fn tuple(p: &[usize; 4]) -> String {
    format!("({}, {}, {}, {})", p[0], p[1], p[2], p[3])
}

macro_rules! pad_module {
    ($(#[$doc:meta])* $name:ident, $mode:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            padding: [usize; 4],
        }

        impl $name {
            /// Pads by `[left, right, top, bottom]`.
            pub fn new(padding: [usize; 4]) -> Self {
                $name { padding }
            }

            /// Pads by `padding` on all four sides.
            pub fn same(padding: usize) -> Self {
                $name { padding: [padding; 4] }
            }
        }

        impl<E: Element> Module<E> for $name {
            fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
                pad2d(stringify!($name), x, &self.padding, $mode)
            }

            fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

            fn describe(&self) -> String {
                format!("{}({})", stringify!($name), tuple(&self.padding))
            }
        }
    };
}

pad_module!(
    /// Zeros around the last two dims (PyTorch's `nn.ZeroPad2d`).
    ///
    /// ```
    /// use tensorgrad::nn::{Module, ZeroPad2d};
    /// use tensorgrad::Tensor;
    /// let pad = ZeroPad2d::new([1, 2, 0, 1]);
    /// let y: Tensor = pad.forward(&Tensor::ones(&[1, 3, 4, 4]));
    /// assert_eq!(y.shape(), &[1, 3, 5, 7]);
    /// assert_eq!(Module::<f32>::describe(&pad), "ZeroPad2d((1, 2, 0, 1))");
    /// ```
    ZeroPad2d,
    PadMode::Constant(0.0)
);

pad_module!(
    /// The input mirrored at its edges, without repeating them (PyTorch's
    /// `nn.ReflectionPad2d`); each padding must be less than its dim.
    ///
    /// ```
    /// use tensorgrad::nn::{Module, ReflectionPad2d};
    /// use tensorgrad::Tensor;
    /// let y: Tensor = ReflectionPad2d::same(1).forward(&Tensor::zeros(&[3, 4, 4]));
    /// assert_eq!(y.shape(), &[3, 6, 6]);
    /// ```
    ReflectionPad2d,
    PadMode::Reflect
);

pad_module!(
    /// The edge values repeated (PyTorch's `nn.ReplicationPad2d`).
    ///
    /// ```
    /// use tensorgrad::nn::{Module, ReplicationPad2d};
    /// use tensorgrad::Tensor;
    /// let y: Tensor = ReplicationPad2d::new([2, 0, 0, 0]).forward(&Tensor::from_vec(vec![1.0, 2.0], &[1, 1, 2]));
    /// assert_eq!(y.to_vec(), vec![1.0, 1.0, 1.0, 2.0]);
    /// ```
    ReplicationPad2d,
    PadMode::Replicate
);

pad_module!(
    /// The input wrapped around (PyTorch's `nn.CircularPad2d`); each padding must be at most
    /// its dim.
    ///
    /// ```
    /// use tensorgrad::nn::{CircularPad2d, Module};
    /// use tensorgrad::Tensor;
    /// let y: Tensor = CircularPad2d::new([1, 1, 0, 0]).forward(&Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 1, 3]));
    /// assert_eq!(y.to_vec(), vec![3.0, 1.0, 2.0, 3.0, 1.0]);
    /// ```
    CircularPad2d,
    PadMode::Circular
);

/// A constant value around the last two dims (PyTorch's `nn.ConstantPad2d`).
///
/// ```
/// use tensorgrad::nn::{ConstantPad2d, Module};
/// use tensorgrad::Tensor;
/// let pad = ConstantPad2d::new([1, 2, 3, 4], 3.5);
/// let y: Tensor = pad.forward(&Tensor::zeros(&[1, 1, 2, 2]));
/// assert_eq!(y.shape(), &[1, 1, 9, 5]);
/// assert_eq!(Module::<f32>::describe(&pad), "ConstantPad2d(padding=(1, 2, 3, 4), value=3.5)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstantPad2d {
    padding: [usize; 4],
    value: f64,
}

impl ConstantPad2d {
    /// Pads by `[left, right, top, bottom]` with `value`.
    pub fn new(padding: [usize; 4], value: f64) -> Self {
        ConstantPad2d { padding, value }
    }
}

impl<E: Element> Module<E> for ConstantPad2d {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        pad2d("ConstantPad2d", x, &self.padding, PadMode::Constant(self.value))
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        format!("ConstantPad2d(padding={}, value={:?})", tuple(&self.padding), self.value)
    }
}
