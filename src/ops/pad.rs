//! `pad`: PyTorch's `F.pad` in its four modes. A constant border is a copy into a filled buffer
//! whose backward is a `narrow` of the gradient; reflect, replicate and circular padding map
//! each output position along each dim to one input position (`kernels::pad::map_gather`),
//! and their backward adds the gradient back through the same maps (`map_scatter`, so the
//! edges that were copied several times collect several gradients). The two map ops are each
//! other's backward, so padding can be differentiated any number of times.

use std::sync::Arc;

use crate::kernels::Par;
use crate::kernels::pad::{map_gather, map_scatter, pad_constant};
use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;
use crate::tensor::layout::Layout;

/// How [`Tensor::pad`] fills the border (PyTorch's `mode` of `F.pad`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode {
    /// A constant value (PyTorch's `"constant"` with `value`).
    Constant(f64),
    /// The input mirrored at its edge, without repeating the edge: `[a, b, c]` padded by 2 on
    /// the left is `[c, b, a, b, c]`. Each padding must be less than its dim's size.
    Reflect,
    /// The edge value repeated.
    Replicate,
    /// The input wrapped around: the left border is the end of the input. Each padding must be
    /// at most its dim's size.
    Circular,
}

impl Default for PadMode {
    /// Zeros, as PyTorch's default `mode="constant", value=0`.
    fn default() -> Self {
        PadMode::Constant(0.0)
    }
}

/// The index maps of a padding: output position `o` of dim `d` reads input position
/// `maps[d][o]`.
struct PadMaps {
    maps: Vec<Vec<usize>>,
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
}

impl<E: Element> Tensor<E> {
    /// Pads the trailing dims, PyTorch's `F.pad(x, pads, mode)`: `pads` lists
    /// `(left, right)` pairs starting from the last dim (`[left, right, top, bottom, …]`), at
    /// most one pair per dim. ∂/∂x is the gradient's interior for a constant border; for the
    /// other modes every output position's gradient is added to the input position it copied.
    ///
    /// ```
    /// use tensorgrad::{PadMode, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[1, 3]);
    /// assert_eq!(x.pad(&[2, 1], PadMode::Constant(9.0)).to_vec(), vec![9.0, 9.0, 1.0, 2.0, 3.0, 9.0]);
    /// assert_eq!(x.pad(&[2, 1], PadMode::Reflect).to_vec(), vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0]);
    /// assert_eq!(x.pad(&[2, 1], PadMode::Replicate).to_vec(), vec![1.0, 1.0, 1.0, 2.0, 3.0, 3.0]);
    /// assert_eq!(x.pad(&[2, 1], PadMode::Circular).to_vec(), vec![2.0, 3.0, 1.0, 2.0, 3.0, 1.0]);
    /// assert_eq!(x.pad(&[0, 0, 1, 0], PadMode::default()).shape(), &[2, 3]);
    /// ```
    ///
    /// # Panics
    /// If `pads` has an odd length or more pairs than the tensor has dims; for `Reflect`, if a
    /// padding is not less than its dim's size; for `Circular`, if it is more than the size; for
    /// `Replicate`, if a padded dim is empty.
    #[track_caller]
    pub fn pad(&self, pads: &[usize], mode: PadMode) -> Tensor<E> {
        let shape = self.shape();
        let nd = shape.len();
        if !pads.len().is_multiple_of(2) || pads.len() / 2 > nd {
            panic!(
                "pad: {} padding values for a tensor of shape {shape:?}: needs an even number, at most 2 per dim",
                pads.len()
            );
        }
        let pairs: Vec<(usize, usize, usize)> =
            pads.chunks(2).enumerate().map(|(i, lr)| (nd - 1 - i, lr[0], lr[1])).collect();
        let mut out_shape = shape.to_vec();
        for &(d, l, r) in &pairs {
            out_shape[d] += l + r;
        }
        if pairs.iter().all(|&(_, l, r)| l == 0 && r == 0) {
            return self.clone();
        }
        let value = match mode {
            PadMode::Constant(v) => Some(v),
            _ => None,
        };
        if let Some(v) = value {
            let mut region = Layout::contiguous(&out_shape);
            for &(d, l, _) in &pairs {
                region = region.narrow(d, l, shape[d]);
            }
            let in_shape = shape.to_vec();
            let out = pad_constant(&self.data(), self.layout(), &out_shape, &region, E::of(v));
            return Tensor::from_data(out, &out_shape).record("pad", [self.clone()], move |c| {
                let mut g = c.grad().clone();
                for &(d, l, _) in &pairs {
                    g = g.narrow(d, l, in_shape[d]);
                }
                vec![Some(g)]
            });
        }
        let mut maps: Vec<Vec<usize>> = shape.iter().map(|&n| (0..n).collect()).collect();
        for &(d, l, r) in &pairs {
            let n = shape[d];
            let bad = match mode {
                PadMode::Reflect => l >= n || r >= n,
                PadMode::Circular => l > n || r > n,
                _ => n == 0,
            };
            if bad {
                let (name, rule) = match mode {
                    PadMode::Reflect => ("reflect", "less than"),
                    PadMode::Circular => ("circular", "at most"),
                    _ => ("replicate", "used on a dim of size above 0, not"),
                };
                panic!(
                    "pad: {name} padding ({l}, {r}) of dim {d} must be {rule} the dim's size {n} (input shape {shape:?})"
                );
            }
            maps[d] = (0..n + l + r)
                .map(|o| {
                    let i = o as isize - l as isize;
                    let n = n as isize;
                    (match mode {
                        PadMode::Reflect => {
                            if i < 0 {
                                -i
                            } else if i >= n {
                                2 * (n - 1) - i
                            } else {
                                i
                            }
                        }
                        PadMode::Replicate => i.clamp(0, n - 1),
                        _ => i.rem_euclid(n),
                    }) as usize
                })
                .collect();
        }
        let plan = Arc::new(PadMaps { maps, in_shape: shape.to_vec(), out_shape });
        self.pad_gather(&plan)
    }

    /// The padded tensor read through the maps; its backward is `pad_scatter`.
    fn pad_gather(&self, plan: &Arc<PadMaps>) -> Tensor<E> {
        let out = map_gather(Par::current(), &self.data(), self.layout(), &plan.maps);
        let p = Arc::clone(plan);
        Tensor::from_data(out, &plan.out_shape)
            .record("pad", [self.clone()], move |c| vec![Some(c.grad().pad_scatter(&p))])
    }

    /// The adjoint of `pad_gather` (padding's backward); its backward is `pad_gather`.
    fn pad_scatter(&self, plan: &Arc<PadMaps>) -> Tensor<E> {
        let g = self.detach().contiguous();
        let data = g.data();
        let off = g.layout().offset();
        let out = map_scatter(Par::current(), &data[off..off + g.numel()], &plan.maps, &plan.in_shape);
        let p = Arc::clone(plan);
        Tensor::from_data(out, &plan.in_shape)
            .record("pad_backward", [self.clone()], move |c| vec![Some(c.grad().pad_gather(&p))])
    }
}
