//! Property tests of broadcasting and of every view and shape op against a naive reference.
//!
//! The reference is an owned row-major array ([`Nd`]) whose ops are written with plain index
//! arithmetic, one output index at a time. Running the same op on an `Nd` of *source
//! positions* tells, for every output element, which input element it must be; the tests then
//! compare `to_vec()` and `get(&index)` of the tensor op with that, and use the same map to
//! predict the gradient of views (the adjoint scatters the output gradient back).

use approx::assert_relative_eq;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tensorgrad::Tensor;
use tensorgrad::shape::{broadcast_shapes, contiguous_strides, numel, try_broadcast_shapes};

// ---------------------------------------------------------------------------------------------
// The reference: an owned row-major n-d array with index-by-index ops
// ---------------------------------------------------------------------------------------------

/// Every index of `shape` in row-major order (`[[]]` for a scalar, nothing if a dim is 0).
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    if shape.contains(&0) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut idx = vec![0; shape.len()];
    loop {
        out.push(idx.clone());
        let mut d = shape.len();
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Row-major position of `index` in `shape`.
fn flat(shape: &[usize], index: &[usize]) -> usize {
    assert_eq!(shape.len(), index.len(), "reference: rank of index {index:?} vs shape {shape:?}");
    let mut pos = 0;
    for (&i, &d) in index.iter().zip(shape) {
        assert!(i < d, "reference: index {index:?} out of bounds for {shape:?}");
        pos = pos * d + i;
    }
    pos
}

#[derive(Clone, Debug, PartialEq)]
struct Nd<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T: Copy> Nd<T> {
    fn new(shape: &[usize], data: Vec<T>) -> Self {
        assert_eq!(data.len(), numel(shape));
        Nd { shape: shape.to_vec(), data }
    }

    fn from_fn(shape: &[usize], mut f: impl FnMut(&[usize]) -> T) -> Self {
        let data = indices(shape).iter().map(|i| f(i)).collect();
        Nd { shape: shape.to_vec(), data }
    }

    fn at(&self, index: &[usize]) -> T {
        self.data[flat(&self.shape, index)]
    }

    fn transpose(&self, a: usize, b: usize) -> Self {
        let mut shape = self.shape.clone();
        shape.swap(a, b);
        Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            j.swap(a, b);
            self.at(&j)
        })
    }

    fn permute(&self, perm: &[usize]) -> Self {
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        Nd::from_fn(&shape, |i| {
            let mut j = vec![0; i.len()];
            for (k, &p) in perm.iter().enumerate() {
                j[p] = i[k];
            }
            self.at(&j)
        })
    }

    fn narrow(&self, dim: usize, start: usize, len: usize) -> Self {
        let mut shape = self.shape.clone();
        shape[dim] = len;
        Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            j[dim] += start;
            self.at(&j)
        })
    }

    fn broadcast_to(&self, shape: &[usize]) -> Self {
        let lead = shape.len() - self.shape.len();
        Nd::from_fn(shape, |i| {
            let j: Vec<usize> =
                self.shape.iter().enumerate().map(|(d, &size)| if size == 1 { 0 } else { i[d + lead] }).collect();
            self.at(&j)
        })
    }

    fn squeeze(&self, dim: usize) -> Self {
        let mut shape = self.shape.clone();
        shape.remove(dim);
        Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            j.insert(dim, 0);
            self.at(&j)
        })
    }

    fn unsqueeze(&self, dim: usize) -> Self {
        let mut shape = self.shape.clone();
        shape.insert(dim, 1);
        Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            j.remove(dim);
            self.at(&j)
        })
    }

    fn reshape(&self, shape: &[usize]) -> Self {
        Nd::new(shape, self.data.clone())
    }

    fn index_select(&self, dim: usize, idx: &[usize]) -> Self {
        let mut shape = self.shape.clone();
        shape[dim] = idx.len();
        Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            j[dim] = idx[i[dim]];
            self.at(&j)
        })
    }

    fn gather(&self, dim: usize, idx: &[usize]) -> Self {
        let mut shape = self.shape.clone();
        shape[dim] = 1;
        Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            j[dim] = idx[flat(&shape, i)];
            self.at(&j)
        })
    }

    fn cat(parts: &[Nd<T>], dim: usize) -> Self {
        let mut shape = parts[0].shape.clone();
        shape[dim] = parts.iter().map(|p| p.shape[dim]).sum();
        Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            for p in parts {
                if j[dim] < p.shape[dim] {
                    return p.at(&j);
                }
                j[dim] -= p.shape[dim];
            }
            unreachable!("reference cat: index {i:?} past the end")
        })
    }

    fn stack(parts: &[Nd<T>], dim: usize) -> Self {
        let mut shape = parts[0].shape.clone();
        shape.insert(dim, parts.len());
        Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            let which = j.remove(dim);
            parts[which].at(&j)
        })
    }

    fn map<U: Copy>(&self, f: impl Fn(T) -> U) -> Nd<U> {
        Nd { shape: self.shape.clone(), data: self.data.iter().map(|&x| f(x)).collect() }
    }
}

impl Nd<f64> {
    fn tensor(&self) -> Tensor<f64> {
        Tensor::from_vec(self.data.clone(), &self.shape)
    }

    /// Sums over `dim`, keeping it with size 1.
    fn sum_dim_keep(&self, dim: usize) -> Self {
        let mut shape = self.shape.clone();
        shape[dim] = 1;
        Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            (0..self.shape[dim])
                .map(|k| {
                    j[dim] = k;
                    self.at(&j)
                })
                .sum()
        })
    }

    /// Max over `dim` (kept with size 1) and the position of the first max of each slice.
    fn max_dim_keep(&self, dim: usize) -> (Self, Vec<usize>) {
        let mut shape = self.shape.clone();
        shape[dim] = 1;
        let mut positions = Vec::new();
        let vals = Nd::from_fn(&shape, |i| {
            let mut j = i.to_vec();
            let (mut best, mut at) = (f64::NEG_INFINITY, 0);
            for k in 0..self.shape[dim] {
                j[dim] = k;
                if self.at(&j) > best {
                    best = self.at(&j);
                    at = k;
                }
            }
            positions.push(at);
            best
        });
        (vals, positions)
    }
}

/// The positions `0..numel` of `shape`: run a reference op on this to learn, for each output
/// element, which input element it reads.
fn positions(shape: &[usize]) -> Nd<usize> {
    Nd::new(shape, (0..numel(shape)).collect())
}

/// Maps an index of the broadcast result back to the operand of shape `small`.
fn unbroadcast_index(index: &[usize], small: &[usize]) -> Vec<usize> {
    let lead = index.len() - small.len();
    small.iter().enumerate().map(|(d, &size)| if size == 1 { 0 } else { index[d + lead] }).collect()
}

// ---------------------------------------------------------------------------------------------
// Tensors with the same values but different layouts
// ---------------------------------------------------------------------------------------------

/// A tensor with the logical values of `nd` whose layout depends on `mode`:
/// 0 row-major; 1 stored with the dims reversed and permuted back (a transposed layout);
/// 2 a narrow of a buffer with two padding columns (rows not adjacent); 3 a transposed view of
/// that padded buffer.
fn make_tensor(nd: &Nd<f64>, mode: u8) -> Tensor<f64> {
    let n = nd.shape.len();
    match mode {
        _ if n == 0 => nd.tensor(),
        1 => {
            let rev: Vec<usize> = (0..n).rev().collect();
            nd.permute(&rev).tensor().permute(&rev)
        }
        2 => {
            let last = n - 1;
            let mut shape = nd.shape.clone();
            shape[last] += 2;
            let padded = Nd::from_fn(&shape, |j| {
                if j[last] >= 1 && j[last] <= nd.shape[last] {
                    let mut i = j.to_vec();
                    i[last] -= 1;
                    nd.at(&i)
                } else {
                    -12345.0
                }
            });
            padded.tensor().narrow(last, 1, nd.shape[last])
        }
        3 if n >= 2 => make_tensor(&nd.transpose(0, n - 1), 2).transpose(0, n - 1),
        _ => nd.tensor(),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// Shape, `to_vec()` and `get(&index)` at every index agree exactly with the reference.
fn check_values(t: &Tensor<f64>, expected: &Nd<f64>) -> Result<(), TestCaseError> {
    prop_assert_eq!(t.shape(), &expected.shape[..]);
    prop_assert_eq!(t.numel(), expected.data.len());
    prop_assert_eq!(t.to_vec(), expected.data.clone());
    for index in indices(&expected.shape) {
        prop_assert_eq!(t.get(&index), expected.at(&index), "get({:?})", index);
    }
    Ok(())
}

/// Like [`check_values`] up to rounding (for arithmetic results).
fn check_close(t: &Tensor<f64>, expected: &Nd<f64>) -> Result<(), TestCaseError> {
    prop_assert_eq!(t.shape(), &expected.shape[..]);
    let got = t.to_vec();
    prop_assert_eq!(got.len(), expected.data.len());
    for (index, (g, e)) in indices(&expected.shape).iter().zip(got.iter().zip(&expected.data)) {
        assert_relative_eq!(*g, *e, epsilon = 1e-9, max_relative = 1e-12);
        assert_relative_eq!(t.get(index), *e, epsilon = 1e-9, max_relative = 1e-12);
    }
    Ok(())
}

/// Whether `view` reads the buffer of the contiguous tensor `base` (nothing was copied): an
/// in-place write to `base` must show through `view`. Vacuously true for an empty view.
fn shares_buffer(base: &Tensor<f64>, view: &Tensor<f64>) -> bool {
    let before = view.to_vec();
    base.update_(|d| d.iter_mut().for_each(|x| *x += 0.25));
    let after = view.to_vec();
    base.update_(|d| d.iter_mut().for_each(|x| *x -= 0.25));
    after.iter().zip(&before).all(|(a, b)| *a == b + 0.25)
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn values(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-1000i32..1000).prop_map(f64::from), n)
}

/// A random array of rank `ranks` with dims `1..=max_dim`.
fn nd(ranks: std::ops::RangeInclusive<usize>, max_dim: usize) -> impl Strategy<Value = Nd<f64>> {
    prop::collection::vec(1..=max_dim, ranks)
        .prop_flat_map(|shape| values(numel(&shape)).prop_map(move |v| Nd::new(&shape, v)))
}

/// A dim size, sometimes 0.
fn dim_size(max: usize) -> impl Strategy<Value = usize> {
    prop_oneof![8 => 1..=max, 1 => Just(0)]
}

/// Like [`nd`] but some dims may be 0 (empty tensors).
fn nd0(ranks: std::ops::RangeInclusive<usize>, max_dim: usize) -> impl Strategy<Value = Nd<f64>> {
    prop::collection::vec(dim_size(max_dim), ranks)
        .prop_flat_map(|shape| values(numel(&shape)).prop_map(move |v| Nd::new(&shape, v)))
}

/// Like [`nd`] but with few distinct values, so that maxima tie.
fn nd_with_ties(ranks: std::ops::RangeInclusive<usize>, max_dim: usize) -> impl Strategy<Value = Nd<f64>> {
    prop::collection::vec(1..=max_dim, ranks).prop_flat_map(|shape| {
        prop::collection::vec((-2i32..3).prop_map(f64::from), numel(&shape)).prop_map(move |v| Nd::new(&shape, v))
    })
}

/// A permutation of `0..n` chosen by `seed`.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    let mut s = seed | 1;
    for i in (1..n).rev() {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        p.swap(i, (s >> 33) as usize % (i + 1));
    }
    p
}

/// Two shapes that broadcast to `out`: each drops some leading dims and sets some dims to 1.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec(dim_size(4), 0..=4).prop_flat_map(|out| {
        let n = out.len();
        let mask = prop::collection::vec(0u8..3, n);
        (Just(out), 0..=n, 0..=n, mask.clone(), mask).prop_map(|(out, da, db, ma, mb)| {
            // mask 0: keep the dim; 1: the operand has 1 there; 2: the other operand has 1.
            let a: Vec<usize> = (da..out.len()).map(|d| if ma[d] == 1 { 1 } else { out[d] }).collect();
            let b: Vec<usize> = (db..out.len()).map(|d| if ma[d] == 2 || mb[d] == 1 { 1 } else { out[d] }).collect();
            (out, a, b)
        })
    })
}

fn config() -> ProptestConfig {
    // 32 cases by default (PROPTEST_CASES overrides, for a longer soak). No regression files:
    // failures are reported with their minimal input instead.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(cases) }
}

// ---------------------------------------------------------------------------------------------
// Broadcasting
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn broadcast_shapes_follow_numpy_rules((out, a, b) in broadcast_pair()) {
        // Per dim: equal sizes stay, a 1 stretches to the other size (also to 0).
        let n = a.len().max(b.len());
        let expected: Vec<usize> = (0..n)
            .map(|i| {
                let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
                let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
                if da == 1 { db } else { da }
            })
            .collect();
        prop_assert_eq!(try_broadcast_shapes(&a, &b), Some(expected.clone()));
        prop_assert_eq!(try_broadcast_shapes(&b, &a), Some(expected.clone()));
        prop_assert_eq!(broadcast_shapes("test", &a, &b), expected.clone());
        // Every kept dim equals out's dim, right-aligned.
        for (e, o) in expected.iter().rev().zip(out.iter().rev()) {
            prop_assert!(*e == *o || *e == 1);
        }
    }

    #[test]
    fn broadcast_shapes_reject_unequal_non_one_dims(
        shape in prop::collection::vec(1usize..=4, 1..=4),
        dim_seed in any::<usize>(),
        bump in 1usize..=3,
    ) {
        let d = dim_seed % shape.len();
        let mut other = shape.clone();
        other[d] = shape[d] + bump;
        if shape[d] == 1 {
            prop_assert!(try_broadcast_shapes(&shape, &other).is_some());
        } else {
            prop_assert_eq!(try_broadcast_shapes(&shape, &other), None);
            prop_assert_eq!(try_broadcast_shapes(&other, &shape), None);
        }
    }

    #[test]
    fn binary_ops_broadcast_against_reference(
        (out, sa, sb) in broadcast_pair(),
        seed in any::<u64>(),
        mode_a in 0u8..4,
        mode_b in 0u8..4,
    ) {
        let a = Nd::new(&sa, (0..numel(&sa)).map(|i| ((i as u64 * 7 + seed) % 19) as f64 - 9.0).collect());
        let b = Nd::new(&sb, (0..numel(&sb)).map(|i| ((i as u64 * 5 + seed / 3) % 17) as f64 + 1.0).collect());
        let (ta, tb) = (make_tensor(&a, mode_a), make_tensor(&b, mode_b));
        let shape = broadcast_shapes("test", &sa, &sb);
        prop_assert!(shape.len() <= out.len());
        let reference = |f: fn(f64, f64) -> f64| {
            Nd::from_fn(&shape, |i| f(a.at(&unbroadcast_index(i, &sa)), b.at(&unbroadcast_index(i, &sb))))
        };
        check_close(&ta.add(&tb), &reference(|x, y| x + y))?;
        check_close(&(&ta - &tb), &reference(|x, y| x - y))?;
        check_close(&(&ta * &tb), &reference(|x, y| x * y))?;
        check_close(&(&ta / &tb), &reference(|x, y| x / y))?;
        // Operand order does not matter for the shape.
        let swapped = &tb + &ta;
        prop_assert_eq!(swapped.shape(), &shape[..]);
    }

    #[test]
    fn broadcast_to_is_a_stride_zero_view(
        base in nd0(0..=3, 4),
        extra in prop::collection::vec(0usize..=3, 0..=2),
        stretch in prop::collection::vec(0usize..=3, 3),
        mode in 0u8..4,
    ) {
        // Dims of size 1 stretch to `stretch[d]`; `extra` dims are prepended.
        let target: Vec<usize> = extra
            .iter()
            .copied()
            .chain(base.shape.iter().enumerate().map(|(d, &s)| if s == 1 { stretch[d] } else { s }))
            .collect();
        let t = make_tensor(&base, mode);
        let b = t.broadcast_to(&target);
        check_values(&b, &base.broadcast_to(&target))?;
        let lead = extra.len();
        for (d, &stride) in b.strides().iter().enumerate() {
            if d < lead || (base.shape[d - lead] == 1 && target[d] != 1) {
                prop_assert_eq!(stride, 0, "dim {} of {:?}", d, target);
            } else {
                prop_assert_eq!(stride, t.strides()[d - lead]);
            }
        }
        prop_assert_eq!(b.layout().offset(), t.layout().offset());
        if mode == 0 {
            prop_assert!(shares_buffer(&t, &b));
        }
        if b.numel() > t.numel() {
            prop_assert!(!b.is_contiguous());
        }
    }
}

#[test]
fn binary_ops_broadcast_named_cases() {
    // [3, 1] + [4] -> [3, 4]
    let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3, 1]);
    let b = Tensor::from_vec(vec![10.0f64, 20.0, 30.0, 40.0], &[4]);
    let s = &a + &b;
    assert_eq!(s.shape(), &[3, 4]);
    assert_eq!(s.to_vec(), vec![11.0, 21.0, 31.0, 41.0, 12.0, 22.0, 32.0, 42.0, 13.0, 23.0, 33.0, 43.0]);

    // [2, 1, 3] * [4, 1] -> [2, 4, 3]
    let a = Nd::new(&[2, 1, 3], (1..=6).map(f64::from).collect());
    let b = Nd::new(&[4, 1], vec![1.0, -1.0, 0.5, 2.0]);
    let p = a.tensor() * b.tensor();
    assert_eq!(p.shape(), &[2, 4, 3]);
    for i in indices(&[2, 4, 3]) {
        assert_relative_eq!(p.get(&i), a.at(&[i[0], 0, i[2]]) * b.at(&[i[1], 0]));
    }

    // Scalar-shaped [] tensors on either side and on both.
    let s = Tensor::scalar(2.5f64);
    let m = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let r = &m - &s;
    assert_eq!(r.shape(), &[2, 3]);
    assert_eq!(r.to_vec(), vec![-1.5, -0.5, 0.5, 1.5, 2.5, 3.5]);
    let r = &s / &m;
    assert_eq!(r.shape(), &[2, 3]);
    for (g, x) in r.to_vec().iter().zip(m.to_vec()) {
        assert_relative_eq!(*g, 2.5 / x);
    }
    let r = &s * &Tensor::scalar(4.0);
    assert_eq!(r.shape(), &[] as &[usize]);
    assert_eq!(r.item(), 10.0);
    // [] against [1]: the result has the larger rank.
    let r = &s + &Tensor::from_vec(vec![1.0], &[1]);
    assert_eq!(r.shape(), &[1]);
    assert_eq!(r.to_vec(), vec![3.5]);
}

#[test]
fn binary_op_gradients_sum_over_broadcast_dims() {
    // d/da Σ(a + b) = 1 per element of a; d/db = how many times each b element was used.
    let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3, 1]).requires_grad();
    let b = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[4]).requires_grad();
    let g = (&a * &b).sum().backward();
    assert_eq!(g.get(&a).unwrap().shape(), &[3, 1]);
    assert_eq!(g.get(&a).unwrap().to_vec(), vec![10.0; 3]);
    assert_eq!(g.get(&b).unwrap().shape(), &[4]);
    assert_eq!(g.get(&b).unwrap().to_vec(), vec![6.0; 4]);

    let s = Tensor::scalar(3.0f64).requires_grad();
    let m = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let g = (&m * &s).sum().backward();
    assert_eq!(g.get(&s).unwrap().shape(), &[] as &[usize]);
    assert_eq!(g.get(&s).unwrap().item(), 21.0);
}

// ---------------------------------------------------------------------------------------------
// Single views
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn t_matches_reference(x in nd(2..=2, 5), mode in 0u8..4) {
        let t = make_tensor(&x, mode);
        let v = t.t();
        check_values(&v, &x.transpose(0, 1))?;
        prop_assert_eq!(v.strides(), &[t.strides()[1], t.strides()[0]][..]);
        prop_assert_eq!(v.layout().offset(), t.layout().offset());
        if mode == 0 {
            prop_assert!(shares_buffer(&t, &v));
            prop_assert_eq!(v.is_contiguous(), x.shape[0] == 1 || x.shape[1] == 1);
        }
        // Transposing twice gives the original layout back.
        let back = v.t();
        prop_assert_eq!(back.layout(), t.layout());
    }

    #[test]
    fn transpose_matches_reference(x in nd0(1..=4, 4), a in any::<usize>(), b in any::<usize>(), mode in 0u8..4) {
        let n = x.shape.len();
        let (a, b) = (a % n, b % n);
        let t = make_tensor(&x, mode);
        let v = t.transpose(a, b);
        check_values(&v, &x.transpose(a, b))?;
        let mut strides = t.strides().to_vec();
        strides.swap(a, b);
        prop_assert_eq!(v.strides(), &strides[..]);
        if mode == 0 {
            prop_assert!(shares_buffer(&t, &v));
            if a != b && x.shape[a] > 1 && x.shape[b] > 1 && numel(&x.shape) > 0 {
                prop_assert!(!v.is_contiguous());
            }
        }
    }

    #[test]
    fn permute_matches_reference(x in nd0(0..=4, 4), seed in any::<u64>(), mode in 0u8..4) {
        let perm = permutation(x.shape.len(), seed);
        let t = make_tensor(&x, mode);
        let v = t.permute(&perm);
        check_values(&v, &x.permute(&perm))?;
        let strides: Vec<usize> = perm.iter().map(|&p| t.strides()[p]).collect();
        prop_assert_eq!(v.strides(), &strides[..]);
        // The inverse permutation restores the layout.
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        let back = v.permute(&inverse);
        prop_assert_eq!(back.layout(), t.layout());
        if mode == 0 && numel(&x.shape) > 0 {
            prop_assert!(shares_buffer(&t, &v));
        }
    }

    #[test]
    fn narrow_matches_reference(
        x in nd0(1..=4, 5),
        dim in any::<usize>(),
        start in any::<usize>(),
        len in any::<usize>(),
        mode in 0u8..4,
    ) {
        let dim = dim % x.shape.len();
        let start = start % (x.shape[dim] + 1);
        let len = len % (x.shape[dim] - start + 1);
        let t = make_tensor(&x, mode);
        let v = t.narrow(dim, start, len);
        check_values(&v, &x.narrow(dim, start, len))?;
        prop_assert_eq!(v.strides(), t.strides());
        if len > 0 {
            prop_assert_eq!(v.layout().offset(), t.layout().offset() + start * t.strides()[dim]);
        }
        if mode == 0 && len > 0 {
            prop_assert!(shares_buffer(&t, &v));
            // Narrowing the outermost non-trivial dim keeps row-major order.
            if x.shape[..dim].iter().all(|&d| d == 1) {
                prop_assert!(v.is_contiguous());
            }
        }
    }

    #[test]
    fn squeeze_and_unsqueeze_match_reference(x in nd0(0..=4, 3), dim in any::<usize>(), mode in 0u8..4) {
        let t = make_tensor(&x, mode);
        // unsqueeze at any of 0..=ndim
        let d = dim % (x.shape.len() + 1);
        let u = t.unsqueeze(d);
        check_values(&u, &x.unsqueeze(d))?;
        prop_assert_eq!(u.is_contiguous(), t.is_contiguous());
        // squeezing it again gives the same layout back
        let s = u.squeeze(d);
        prop_assert_eq!(s.layout(), t.layout());
        // squeeze every size-1 dim of x
        for d in (0..x.shape.len()).filter(|&d| x.shape[d] == 1) {
            let s = t.squeeze(d);
            check_values(&s, &x.squeeze(d))?;
            prop_assert_eq!(s.is_contiguous(), t.is_contiguous());
        }
        if mode == 0 {
            prop_assert!(shares_buffer(&t, &u));
        }
    }

    #[test]
    fn reshape_of_contiguous_is_a_view(
        x in nd0(0..=4, 4),
        choice in any::<usize>(),
        narrow_rows in any::<bool>(),
    ) {
        // Optionally a contiguous view with an offset: rows 1.. of dim 0.
        let base = x.tensor();
        let (t, xr) = if narrow_rows && !x.shape.is_empty() && x.shape[0] > 1 {
            (base.narrow(0, 1, x.shape[0] - 1), x.narrow(0, 1, x.shape[0] - 1))
        } else {
            (base.clone(), x.clone())
        };
        prop_assert!(t.is_contiguous());
        let target = reshape_target(&xr.shape, choice);
        let r = t.reshape(&target);
        check_values(&r, &xr.reshape(&target))?;
        prop_assert_eq!(r.strides(), &contiguous_strides(&target)[..]);
        prop_assert_eq!(r.layout().offset(), t.layout().offset());
        prop_assert!(r.is_contiguous());
        prop_assert!(shares_buffer(&base, &r));
    }

    #[test]
    fn reshape_of_strided_views_matches_reference(x in nd0(1..=4, 4), mode in 1u8..4, choice in any::<usize>()) {
        // Views whose rows are not adjacent: reshape copies when it must, and the values are
        // the row-major order of the view either way.
        let t = make_tensor(&x, mode);
        let target = reshape_target(&x.shape, choice);
        let r = t.reshape(&target);
        check_values(&r, &x.reshape(&target))?;
        // Flattening and restoring round-trips.
        check_values(&r.reshape(&x.shape), &x)?;
        check_values(&t.reshape(&[numel(&x.shape)]), &x.reshape(&[numel(&x.shape)]))?;
    }

    #[test]
    fn reshape_splitting_a_narrowed_dim_is_a_view(
        rows in 1usize..=4,
        w1 in 1usize..=3,
        w2 in 1usize..=3,
        pad in 1usize..=3,
        seed in any::<u64>(),
    ) {
        // [rows, w1*w2] narrowed out of a [rows, w1*w2 + pad] buffer, split into [rows, w1, w2]:
        // expressible with strides [w1*w2 + pad, w2, 1], so no copy.
        let width = w1 * w2 + pad;
        let buf = Nd::new(&[rows, width], (0..rows * width).map(|i| ((i as u64 ^ seed) % 1000) as f64).collect());
        let base = buf.tensor();
        let v = base.narrow(1, 0, w1 * w2);
        let r = v.reshape(&[rows, w1, w2]);
        check_values(&r, &buf.narrow(1, 0, w1 * w2).reshape(&[rows, w1, w2]))?;
        // Dims of size 1 may carry any stride; the others must step through the buffer.
        for (d, &expected) in [width, w2, 1].iter().enumerate() {
            if r.shape()[d] > 1 {
                prop_assert_eq!(r.strides()[d], expected, "strides {:?}", r.strides());
            }
        }
        prop_assert!(shares_buffer(&base, &r));
    }

    #[test]
    fn contiguous_copies_into_row_major(x in nd0(0..=4, 4), mode in 0u8..4) {
        let t = make_tensor(&x, mode);
        let c = t.contiguous();
        check_values(&c, &x)?;
        prop_assert!(c.is_contiguous());
        if t.is_contiguous() {
            // Already row-major: the same tensor back.
            prop_assert_eq!(c.id(), t.id());
            prop_assert_eq!(c.layout(), t.layout());
        } else {
            prop_assert_eq!(c.strides(), &contiguous_strides(&x.shape)[..]);
            prop_assert_eq!(c.layout().offset(), 0);
        }
    }
}

/// A shape with the same element count as `shape`, picked by `choice`: flattened, reversed,
/// with a 1 inserted, with the first two dims merged, or with the first dim split.
fn reshape_target(shape: &[usize], choice: usize) -> Vec<usize> {
    let n = numel(shape);
    let mut candidates: Vec<Vec<usize>> = vec![vec![n], shape.iter().rev().copied().collect()];
    let mut with_one = shape.to_vec();
    with_one.insert(choice % (shape.len() + 1), 1);
    candidates.push(with_one);
    if shape.len() >= 2 {
        let mut merged = vec![shape[0] * shape[1]];
        merged.extend_from_slice(&shape[2..]);
        candidates.push(merged);
    }
    if let Some(&d0) = shape.first()
        && let Some(f) = (2..d0).find(|f| d0 % f == 0)
    {
        let mut split = vec![f, d0 / f];
        split.extend_from_slice(&shape[1..]);
        candidates.push(split);
    }
    if n == 1 {
        candidates.push(vec![]);
    }
    candidates.swap_remove(choice % candidates.len())
}

#[test]
fn views_copy_nothing() {
    let base = Tensor::<f64>::arange(24).reshape(&[2, 3, 4]);
    assert!(base.is_contiguous());
    assert_eq!(base.strides(), &[12, 4, 1]);

    let tr = base.transpose(0, 2);
    assert!(!tr.is_contiguous());
    assert_eq!(tr.shape(), &[4, 3, 2]);
    assert_eq!(tr.strides(), &[1, 4, 12]);
    assert!(shares_buffer(&base, &tr));

    let m = Tensor::<f64>::arange(6).reshape(&[2, 3]);
    let mt = m.t();
    assert!(!mt.is_contiguous());
    assert_eq!(mt.strides(), &[1, 3]);
    assert!(shares_buffer(&m, &mt));

    let col = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3, 1]);
    let b = col.broadcast_to(&[2, 3, 5]);
    assert_eq!(b.strides(), &[0, 1, 0]);
    assert!(!b.is_contiguous());
    assert!(shares_buffer(&col, &b));

    let nr = base.narrow(2, 1, 2);
    assert_eq!(nr.strides(), &[12, 4, 1]);
    assert_eq!(nr.layout().offset(), 1);
    assert!(!nr.is_contiguous());
    assert!(shares_buffer(&base, &nr));
    let nr0 = base.narrow(0, 1, 1);
    assert!(nr0.is_contiguous());
    assert_eq!(nr0.layout().offset(), 12);

    let u = base.unsqueeze(1);
    assert_eq!(u.shape(), &[2, 1, 3, 4]);
    assert!(u.is_contiguous());
    assert!(shares_buffer(&base, &u));

    let p = base.permute(&[1, 2, 0]);
    assert_eq!(p.strides(), &[4, 1, 12]);
    assert!(shares_buffer(&base, &p));

    // reshape of contiguous data is a view; of a transpose it must copy.
    let r = base.reshape(&[6, 4]);
    assert_eq!(r.strides(), &[4, 1]);
    assert!(shares_buffer(&base, &r));
    let rt = tr.reshape(&[24]);
    assert!(rt.is_contiguous());
    assert!(!shares_buffer(&base, &rt));
    assert_eq!(rt.to_vec(), tr.to_vec());

    // contiguous() of a view copies; of contiguous data it is the same tensor.
    let c = tr.contiguous();
    assert!(c.is_contiguous());
    assert!(!shares_buffer(&base, &c));
    assert_eq!(base.contiguous().id(), base.id());
}

// ---------------------------------------------------------------------------------------------
// Chains of views
// ---------------------------------------------------------------------------------------------

/// A view op with concrete arguments.
#[derive(Clone, Debug)]
enum ViewOp {
    T,
    Transpose(usize, usize),
    Permute(Vec<usize>),
    Narrow(usize, usize, usize),
    BroadcastTo(Vec<usize>),
    Squeeze(usize),
    Unsqueeze(usize),
    Reshape(Vec<usize>),
}

/// Turns a random `(kind, params)` into an op valid for `shape`, if there is one.
fn resolve(kind: u8, p: [usize; 3], shape: &[usize]) -> Option<ViewOp> {
    let n = shape.len();
    Some(match kind {
        0 if n == 2 => ViewOp::T,
        0 | 1 if n >= 1 => ViewOp::Transpose(p[0] % n, p[1] % n),
        2 => ViewOp::Permute(permutation(n, p[0] as u64)),
        3 if n >= 1 => {
            let dim = p[0] % n;
            let start = p[1] % (shape[dim] + 1);
            ViewOp::Narrow(dim, start, p[2] % (shape[dim] - start + 1))
        }
        4 => {
            // Stretch size-1 dims and maybe add a leading dim, within an element budget.
            let mut target: Vec<usize> = shape.iter().map(|&s| if s == 1 { (1 + p[0] % 4) % 4 } else { s }).collect();
            if p[1].is_multiple_of(2) {
                target.insert(0, 1 + p[2] % 3);
            }
            if numel(&target) > 256 || target.len() > 5 {
                return None;
            }
            ViewOp::BroadcastTo(target)
        }
        5 => {
            let ones: Vec<usize> = (0..n).filter(|&d| shape[d] == 1).collect();
            if ones.is_empty() {
                return None;
            }
            ViewOp::Squeeze(ones[p[0] % ones.len()])
        }
        6 if n < 5 => ViewOp::Unsqueeze(p[0] % (n + 1)),
        7 if n < 5 => ViewOp::Reshape(reshape_target(shape, p[0])),
        _ => return None,
    })
}

fn apply_tensor(t: &Tensor<f64>, op: &ViewOp) -> Tensor<f64> {
    match op {
        ViewOp::T => t.t(),
        ViewOp::Transpose(a, b) => t.transpose(*a, *b),
        ViewOp::Permute(p) => t.permute(p),
        ViewOp::Narrow(d, s, l) => t.narrow(*d, *s, *l),
        ViewOp::BroadcastTo(s) => t.broadcast_to(s),
        ViewOp::Squeeze(d) => t.squeeze(*d),
        ViewOp::Unsqueeze(d) => t.unsqueeze(*d),
        ViewOp::Reshape(s) => t.reshape(s),
    }
}

fn apply_ref<T: Copy>(x: &Nd<T>, op: &ViewOp) -> Nd<T> {
    match op {
        ViewOp::T => x.transpose(0, 1),
        ViewOp::Transpose(a, b) => x.transpose(*a, *b),
        ViewOp::Permute(p) => x.permute(p),
        ViewOp::Narrow(d, s, l) => x.narrow(*d, *s, *l),
        ViewOp::BroadcastTo(s) => x.broadcast_to(s),
        ViewOp::Squeeze(d) => x.squeeze(*d),
        ViewOp::Unsqueeze(d) => x.unsqueeze(*d),
        ViewOp::Reshape(s) => x.reshape(s),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn chains_of_views_match_reference(
        x in nd0(0..=4, 4),
        mode in 0u8..4,
        steps in prop::collection::vec((0u8..8, [any::<usize>(), any::<usize>(), any::<usize>()]), 1..8),
    ) {
        let leaf = make_tensor(&x, mode).requires_grad();
        let mut t = leaf.clone();
        let mut map = positions(&x.shape);
        let mut ops = Vec::new();
        for (kind, p) in steps {
            let Some(op) = resolve(kind, p, &map.shape) else { continue };
            t = apply_tensor(&t, &op);
            map = apply_ref(&map, &op);
            ops.push(op);
            let expected = map.map(|i| x.data[i]);
            check_values(&t, &expected).map_err(|e| TestCaseError::fail(format!("after {ops:?}: {e}")))?;
        }
        // Backward through the chain: d Σ(view ⊙ w) / dx scatters w back along the map.
        let w = Nd::new(&map.shape, (0..map.data.len()).map(|i| (i % 7) as f64 - 3.0).collect());
        let mut expected = vec![0.0; x.data.len()];
        for (&src, &wi) in map.data.iter().zip(&w.data) {
            expected[src] += wi;
        }
        let grads = (&t * &w.tensor()).sum().backward();
        match grads.get(&leaf) {
            Some(g) => {
                prop_assert_eq!(g.shape(), &x.shape[..]);
                let got = g.to_vec();
                for (g, e) in got.iter().zip(&expected) {
                    assert_relative_eq!(*g, *e, epsilon = 1e-9);
                }
            }
            // No gradient only if nothing of x reached the output.
            None => prop_assert!(map.data.is_empty(), "no gradient after {:?}", ops),
        }
    }

    #[test]
    fn narrow_of_transpose_of_broadcast(
        x in nd(1..=3, 4),
        rows in 1usize..=3,
        start in any::<usize>(),
        len in any::<usize>(),
        mode in 0u8..4,
    ) {
        let n = x.shape.len();
        let mut target = vec![rows];
        target.extend_from_slice(&x.shape);
        let b_ref = x.broadcast_to(&target);
        let tr_ref = b_ref.transpose(0, n);
        let size = tr_ref.shape[0];
        let start = start % (size + 1);
        let len = len % (size - start + 1);
        let expected = tr_ref.narrow(0, start, len);
        let t = make_tensor(&x, mode);
        let v = t.broadcast_to(&target).transpose(0, n).narrow(0, start, len);
        check_values(&v, &expected)?;
        // The broadcast dim moved to the end and still has stride 0.
        prop_assert_eq!(v.strides()[n], 0);
        if mode == 0 && len > 0 {
            prop_assert!(shares_buffer(&t, &v));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// cat, stack, index_select, gather
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cat_along_every_dim(
        shape in prop::collection::vec(1usize..=3, 1..=4),
        sizes in prop::collection::vec(0usize..=3, 1..=4),
        modes in prop::collection::vec(0u8..4, 4),
        seed in any::<u64>(),
    ) {
        for dim in 0..shape.len() {
            let parts: Vec<Nd<f64>> = sizes
                .iter()
                .enumerate()
                .map(|(k, &s)| {
                    let mut sh = shape.clone();
                    sh[dim] = s;
                    let n = numel(&sh);
                    Nd::new(&sh, (0..n).map(|i| ((i as u64 * 31 + k as u64 * 1000 + seed) % 9973) as f64).collect())
                })
                .collect();
            let tensors: Vec<Tensor<f64>> = parts.iter().zip(&modes).map(|(p, &m)| make_tensor(p, m)).collect();
            let c = Tensor::cat(&tensors, dim);
            check_values(&c, &Nd::cat(&parts, dim))?;
            prop_assert!(c.is_contiguous());
        }
    }

    #[test]
    fn stack_along_every_dim(
        x in nd0(0..=3, 3),
        count in 1usize..=3,
        modes in prop::collection::vec(0u8..4, 3),
    ) {
        let parts: Vec<Nd<f64>> = (0..count).map(|k| x.map(|v| v + 10_000.0 * k as f64)).collect();
        let tensors: Vec<Tensor<f64>> = parts.iter().zip(&modes).map(|(p, &m)| make_tensor(p, m)).collect();
        for dim in 0..=x.shape.len() {
            let s = Tensor::stack(&tensors, dim);
            check_values(&s, &Nd::stack(&parts, dim))?;
        }
    }

    #[test]
    fn index_select_matches_reference(
        x in nd(1..=4, 4),
        dim in any::<usize>(),
        raw in prop::collection::vec(any::<usize>(), 0..=6),
        mode in 0u8..4,
    ) {
        let dim = dim % x.shape.len();
        let idx: Vec<usize> = raw.iter().map(|r| r % x.shape[dim]).collect();
        let t = make_tensor(&x, mode);
        check_values(&t.index_select(dim, &idx), &x.index_select(dim, &idx))?;
        // Gradient of the sum: each slice gets how many times it was selected (repeats add up).
        let leaf = t.clone().requires_grad();
        let grads = leaf.index_select(dim, &idx).sum().backward();
        let expected = Nd::from_fn(&x.shape, |i| idx.iter().filter(|&&k| k == i[dim]).count() as f64);
        match grads.get(&leaf) {
            Some(g) => check_values(g, &expected)?,
            None => prop_assert!(idx.is_empty()),
        }
        // Also on a transposed view.
        if x.shape.len() >= 2 {
            let last = x.shape.len() - 1;
            let xt = x.transpose(0, last);
            let idx: Vec<usize> = raw.iter().map(|r| r % xt.shape[dim]).collect();
            check_values(&t.transpose(0, last).index_select(dim, &idx), &xt.index_select(dim, &idx))?;
        }
    }

    #[test]
    fn gather_matches_reference(
        x in nd(1..=4, 4),
        dim in any::<usize>(),
        raw in prop::collection::vec(any::<usize>(), 64),
        mode in 0u8..4,
    ) {
        let dim = dim % x.shape.len();
        let mut kshape = x.shape.clone();
        kshape[dim] = 1;
        let idx: Vec<usize> = (0..numel(&kshape)).map(|k| raw[k % raw.len()] % x.shape[dim]).collect();
        let t = make_tensor(&x, mode);
        let g = t.gather(dim, &idx);
        check_values(&g, &x.gather(dim, &idx))?;
        // Gradient: 1 at each picked position, 0 elsewhere.
        let leaf = t.requires_grad();
        let grads = leaf.gather(dim, &idx).sum().backward();
        let mut expected = Nd::new(&x.shape, vec![0.0; x.data.len()]);
        for (k, i) in indices(&kshape).iter().enumerate() {
            let mut j = i.clone();
            j[dim] = idx[k];
            expected.data[flat(&x.shape, &j)] += 1.0;
        }
        check_values(grads.get(&leaf).unwrap(), &expected)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions on non-contiguous inputs
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sum_dim_on_views_matches_reference(x in nd0(1..=4, 4), mode in 0u8..4, keepdim in any::<bool>()) {
        let t = make_tensor(&x, mode);
        for dim in 0..x.shape.len() {
            let expected = x.sum_dim_keep(dim);
            let expected = if keepdim { expected } else { expected.squeeze(dim) };
            check_close(&t.sum_dim(dim, keepdim), &expected)?;
        }
        let total: f64 = x.data.iter().sum();
        let s = t.sum();
        prop_assert_eq!(s.shape(), &[] as &[usize]);
        assert_relative_eq!(s.item(), total, epsilon = 1e-9);
    }

    #[test]
    fn max_dim_on_views_matches_reference(x in nd_with_ties(1..=4, 4), mode in 0u8..4, keepdim in any::<bool>()) {
        let t = make_tensor(&x, mode);
        for dim in 0..x.shape.len() {
            let (expected, positions) = x.max_dim_keep(dim);
            let expected = if keepdim { expected } else { expected.squeeze(dim) };
            let (m, idx) = t.max_dim(dim, keepdim);
            check_values(&m, &expected)?;
            prop_assert_eq!(idx, positions, "first max along dim {}", dim);
        }
    }

    #[test]
    fn sum_dim_of_broadcast_counts_repeats(x in nd(1..=3, 4), rows in 1usize..=4) {
        // Summing a stride-0 dim multiplies by its size.
        let mut target = vec![rows];
        target.extend_from_slice(&x.shape);
        let s = x.tensor().broadcast_to(&target).sum_dim(0, false);
        check_close(&s, &x.map(|v| v * rows as f64))?;
    }
}
