//! Matrix product: 2-D, batched with broadcast batch dims, and the 1-D cases of `torch.matmul`.
//! Operands are passed to the kernel with their own strides: transposed, narrowed and broadcast
//! views are never copied.

use crate::kernels::Par;
use crate::kernels::matmul::{MatRef, batched_gemm, gemm};
use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;
use crate::tensor::layout::Layout;
use crate::tensor::shape::try_broadcast_shapes;

impl<E: Element> Tensor<E> {
    /// Matrix product with `torch.matmul`'s rules: `[m, k] × [k, n] → [m, n]`; leading (batch)
    /// dims broadcast, `[…, m, k] × […, k, n] → […, m, n]`; a 1-D operand is a vector (a dim of
    /// size 1 is added for the product and removed from the result).
    ///
    /// ∂/∂A = G·Bᵀ, ∂/∂B = Aᵀ·G (on transposed views, with no copy).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    /// let b = Tensor::from_vec(vec![5.0f32, 6.0, 7.0, 8.0], &[2, 2]);
    /// assert_eq!(a.matmul(&b).to_vec(), vec![19.0, 22.0, 43.0, 50.0]);
    /// assert_eq!(a.matmul(&b.t()).to_vec(), vec![17.0, 23.0, 39.0, 53.0]);
    /// ```
    #[track_caller]
    pub fn matmul(&self, other: &Tensor<E>) -> Tensor<E> {
        let (ra, rb) = (self.ndim(), other.ndim());
        if ra == 0 || rb == 0 {
            panic!(
                "matmul: both operands need at least one dim, got shapes {:?} and {:?}",
                self.shape(),
                other.shape()
            );
        }
        let a = if ra == 1 { self.unsqueeze(0) } else { self.clone() };
        let b = if rb == 1 { other.unsqueeze(1) } else { other.clone() };
        let (m, k) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
        let (k2, n) = (b.shape()[b.ndim() - 2], b.shape()[b.ndim() - 1]);
        if k != k2 {
            panic!("matmul: cannot multiply {:?} by {:?}: inner dims {k} ≠ {k2}", self.shape(), other.shape());
        }
        let (ba, bb) = (&a.shape()[..a.ndim() - 2], &b.shape()[..b.ndim() - 2]);
        let batch = try_broadcast_shapes(ba, bb).unwrap_or_else(|| {
            panic!(
                "matmul: batch dims {ba:?} and {bb:?} of shapes {:?} and {:?} cannot be broadcast together",
                self.shape(),
                other.shape()
            )
        });
        let a = a.broadcast_to(&[batch.as_slice(), &[m, k]].concat());
        let b = b.broadcast_to(&[batch.as_slice(), &[k, n]].concat());
        let mut out = a.matmul_same_batch(&b);
        if rb == 1 {
            out = out.squeeze(out.ndim() - 1);
        }
        if ra == 1 {
            out = out.squeeze(out.ndim() - if rb == 1 { 1 } else { 2 });
        }
        out
    }

    /// The primitive: `[…, m, k] × […, k, n]` with identical batch dims.
    #[track_caller]
    fn matmul_same_batch(&self, other: &Tensor<E>) -> Tensor<E> {
        let r = self.ndim();
        let (m, k, n) = (self.shape()[r - 2], self.shape()[r - 1], other.shape()[r - 1]);
        let (la, lb) = (self.layout(), other.layout());
        let (ad, bd) = (self.data(), other.data());
        let mut shape = self.shape().to_vec();
        shape[r - 1] = n;
        let mref = |l: &Layout| MatRef { offset: l.offset(), rs: l.strides()[r - 2], cs: l.strides()[r - 1] };
        let out = if r == 2 {
            let mut c = crate::tensor::memory::take(m * n);
            gemm(Par::current(), m, k, n, &ad, mref(la), &bd, mref(lb), &mut c);
            c
        } else {
            // Offsets of each batch's matrix, walking the batch dims with their own strides
            // (stride 0 for a broadcast batch dim: the same matrix is reused, not copied).
            let batch_offsets = |l: &Layout| {
                Layout::new(l.shape()[..r - 2].to_vec(), l.strides()[..r - 2].to_vec(), l.offset()).offsets()
            };
            let (ma, mb) = (mref(la), mref(lb));
            batched_gemm(
                Par::current(),
                m,
                k,
                n,
                &ad,
                &batch_offsets(la),
                (ma.rs, ma.cs),
                &bd,
                &batch_offsets(lb),
                (mb.rs, mb.cs),
            )
        };
        Tensor::from_data(out, &shape).record("matmul", [self.clone(), other.clone()], move |c| {
            let (a, b) = (&c.inputs[0], &c.inputs[1]);
            let t = |x: &Tensor<E>| x.transpose(r - 2, r - 1);
            // Each gradient is laid out like its operand: for an operand that is a transposed
            // view (a Linear layer's `Wᵀ`), the product is computed transposed and viewed back,
            // so the weight's own gradient comes out row-major and the optimizer reads it as is.
            vec![
                c.needs(0).then(|| {
                    if is_transposed(a, r) {
                        t(&b.matmul_same_batch(&t(c.grad())))
                    } else {
                        c.grad().matmul_same_batch(&t(b))
                    }
                }),
                c.needs(1).then(|| {
                    if is_transposed(b, r) {
                        t(&t(c.grad()).matmul_same_batch(a))
                    } else {
                        t(a).matmul_same_batch(c.grad())
                    }
                }),
            ]
        })
    }
}

/// True when the last two dims of `x` (rank `r`) are stored column by column, as in `w.t()`.
fn is_transposed<E: Element>(x: &Tensor<E>, r: usize) -> bool {
    let (s, d) = (x.strides(), x.shape());
    d[r - 2] > 1 && d[r - 1] > 1 && s[r - 2] == 1 && s[r - 1] >= d[r - 2]
}
