//! Matrix product: 2-D, batched with broadcast batch dims, and the 1-D cases of `torch.matmul`.
//! Operands are passed to the kernel with their own strides: transposed, narrowed and broadcast
//! views are never copied.

use crate::kernels::Par;
use crate::kernels::gemm::{BOperand, PackedB};
use crate::kernels::matmul::{MatRef, batched_gemm, gemm};
use crate::kernels::slice::add_assign;
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

/// A 2-D right operand packed once into the layout the matrix-multiply kernel streams through,
/// for multiplying many left operands by the same matrix: a layer's weight in an inference
/// loop, or any constant matrix used over and over. Made by [`Tensor::pack`], used by
/// [`Tensor::matmul_packed`]; [`Linear`](crate::nn::Linear) keeps one of its weight for
/// forward passes under [`no_grad`](crate::no_grad).
///
/// Packing costs about one pass over the matrix; a product with it skips that pass. The
/// packing belongs to this process's CPU (its kernel and cache blocking).
///
/// ```
/// use tensorgrad::Tensor;
/// let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// let wt = w.t().pack(); // [3, 2], packed from the transposed view without a copy
/// for _ in 0..3 {
///     let x = Tensor::from_vec(vec![1.0f32, 0.0, -1.0], &[1, 3]);
///     assert_eq!(x.matmul_packed(&wt).to_vec(), x.matmul(&w.t()).to_vec());
/// }
/// ```
pub struct PackedMatrix<E: Element> {
    packed: PackedB<E>,
    /// The packed tensor (for gradients, and to tell whether it changed since).
    source: Tensor<E>,
    /// Its buffer's version when packed.
    version: u64,
}

impl<E: Element> std::fmt::Debug for PackedMatrix<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedMatrix({:?})", self.source.shape())
    }
}

impl<E: Element> PackedMatrix<E> {
    /// The shape of the packed matrix, `[k, n]`.
    pub fn shape(&self) -> &[usize] {
        self.source.shape()
    }

    /// Whether this is a packing of `t` as it is now (the same tensor, not written in place
    /// since, e.g. by an optimizer step).
    pub fn is_packing_of(&self, t: &Tensor<E>) -> bool {
        self.source.id() == t.id() && self.source.storage().version() == self.version
    }
}

impl<E: Element> Tensor<E> {
    /// Packs this 2-D matrix `[k, n]` for use as the right operand of
    /// [`matmul_packed`](Tensor::matmul_packed), reading it with its own strides (a transposed
    /// view such as a weight's `w.t()` is packed without a copy first).
    #[track_caller]
    pub fn pack(&self) -> PackedMatrix<E> {
        if self.ndim() != 2 {
            panic!("pack: expected a 2-D matrix, got shape {:?}", self.shape());
        }
        let (k, n) = (self.shape()[0], self.shape()[1]);
        let l = self.layout();
        let m = MatRef { offset: l.offset(), rs: l.strides()[0], cs: l.strides()[1] };
        let packed = PackedB::new(k, n, &self.data(), m);
        PackedMatrix { packed, source: self.clone(), version: self.storage().version() }
    }

    /// `self · B` for `self: […, k]` and a packed `B: [k, n]`: the same values as
    /// `self.matmul(&b)` on the matrix that was packed, without packing it again. Gradients
    /// flow as through `matmul` (to `self`, and to the packed tensor if it requires one).
    #[track_caller]
    pub fn matmul_packed(&self, b: &PackedMatrix<E>) -> Tensor<E> {
        self.matmul_packed_bias(b, None)
    }

    /// [`matmul_packed`](Tensor::matmul_packed) plus a bias `[n]` added to every row, added as
    /// the product's epilogue while each block of rows is still in cache.
    #[track_caller]
    pub(crate) fn matmul_packed_bias(&self, b: &PackedMatrix<E>, bias: Option<&Tensor<E>>) -> Tensor<E> {
        let (k, n) = (b.shape()[0], b.shape()[1]);
        if self.ndim() == 0 || self.shape()[self.ndim() - 1] != k {
            panic!("matmul_packed: cannot multiply {:?} by a packed {:?}", self.shape(), b.shape());
        }
        if !b.is_packing_of(&b.source) {
            panic!("matmul_packed: the packed matrix {:?} was written in place since it was packed", b.shape());
        }
        let graph = crate::is_grad_enabled()
            && (self.needs_grad() || b.source.needs_grad() || bias.is_some_and(Tensor::needs_grad));
        let lead = self.shape()[..self.ndim() - 1].to_vec();
        let m: usize = lead.iter().product();
        // The left operand as a matrix: a 2-D one with its own strides, else its rows folded.
        let x = if self.ndim() == 2 { self.clone() } else { self.contiguous().reshape(&[m, k]) };
        let l = x.layout();
        let mut out = crate::tensor::memory::take(m * n);
        // The bias goes into the product's epilogue unless a graph is recorded (then it is its
        // own op, for its gradient).
        let bias_v = bias.filter(|_| !graph).map(Tensor::to_vec);
        let add_bias = |_: usize, j0: usize, row: &mut [E]| {
            if let Some(bv) = &bias_v {
                add_assign(row, &bv[j0..j0 + row.len()]);
            }
        };
        let epilogue: Option<crate::kernels::gemm::Epilogue<'_, E>> =
            if bias_v.is_some() { Some(&add_bias) } else { None };
        crate::kernels::gemm::gemm(
            Par::current(),
            m,
            k,
            n,
            &x.data(),
            MatRef { offset: l.offset(), rs: l.strides()[0], cs: l.strides()[1] },
            BOperand::Packed(&b.packed),
            &mut out,
            n,
            false,
            epilogue,
        );
        let mut y = Tensor::from_data(out, &[m, n]);
        if graph {
            // matmul's backward, on the packed tensor itself (its gradient comes out laid out
            // like it, as in `matmul`).
            y = y.record("matmul", vec![x, b.source.clone()], |c| {
                let (a, b) = (&c.inputs[0], &c.inputs[1]);
                vec![
                    c.needs(0).then(|| c.grad().matmul(&b.t())),
                    c.needs(1)
                        .then(|| if is_transposed(b, 2) { c.grad().t().matmul(a).t() } else { a.t().matmul(c.grad()) }),
                ]
            });
            if let Some(bias) = bias {
                y = y + bias.clone();
            }
        }
        if lead.len() == 1 { y } else { y.reshape(&[lead.as_slice(), &[n]].concat()) }
    }
}

/// A packed form of some weights, kept between calls for inference and made again when any of
/// the weights changes (another tensor, or its buffer written in place, e.g. by an optimizer
/// step). A clone starts empty, so a cloned layer never shares a stale packing.
pub(crate) struct WeightPack<T>(std::sync::Mutex<Option<(WeightKey, std::sync::Arc<T>)>>);

/// Which weights a packing was made from: each one's id and buffer version.
type WeightKey = Vec<(crate::TensorId, u64)>;

impl<T> WeightPack<T> {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        WeightPack(std::sync::Mutex::new(None))
    }

    /// The packing of `weights`, from the cache when they are unchanged, else from `make`.
    pub(crate) fn get<E: Element>(&self, weights: &[&Tensor<E>], make: impl FnOnce() -> T) -> std::sync::Arc<T> {
        let key: Vec<_> = weights.iter().map(|w| (w.id(), w.storage().version())).collect();
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some((k, packed)) if *k == key => packed.clone(),
            _ => {
                let packed = std::sync::Arc::new(make());
                *slot = Some((key, packed.clone()));
                packed
            }
        }
    }
}

impl<T> Clone for WeightPack<T> {
    fn clone(&self) -> Self {
        WeightPack::new()
    }
}

impl<T> std::fmt::Debug for WeightPack<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeightPack")
    }
}
