//! `Tensor::matmul` against a naive triple loop accumulated in `f64`, for `f32` and `f64`:
//! every small shape, a few large ones, transposed / narrowed / permuted / broadcast operands,
//! batched and 1-D products, bit-identical results across rayon thread counts, and the
//! gradients of a product of transposed views.
//!
//! Tolerance: an element passes if it is within `max_relative` of the reference
//! (`1e-5` for `f32`, `1e-12` for `f64`), or within the worst-case rounding bound of a
//! length-`k` dot product, `(k + 1)·ε·Σₚ|aᵢₚ·bₚⱼ|` (which only matters under cancellation).

use approx::relative_eq;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::{Element, Tensor};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn f64_of<E: Element>(x: E) -> f64 {
    x.to_f64().unwrap()
}

/// Uniform values in [-1, 1), exactly representable in `E`.
fn random_vec<E: Element>(rng: &mut StdRng, len: usize) -> Vec<E> {
    (0..len).map(|_| E::of(rng.random_range(-1.0..1.0))).collect()
}

fn max_relative<E: Element>() -> f64 {
    if E::NAME == "f32" { 1e-5 } else { 1e-12 }
}

/// A reference product `C = A·B` of row-major logical matrices, with `Σₚ|aᵢₚ·bₚⱼ|` per element.
struct Reference {
    value: Vec<f64>,
    abs: Vec<f64>,
}

fn reference<E: Element>(a: &[E], b: &[E], m: usize, k: usize, n: usize) -> Reference {
    assert_eq!(a.len(), m * k);
    assert_eq!(b.len(), k * n);
    let mut value = vec![0.0; m * n];
    let mut abs = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut sa) = (0.0f64, 0.0f64);
            for p in 0..k {
                let prod = f64_of(a[i * k + p]) * f64_of(b[p * n + j]);
                s += prod;
                sa += prod.abs();
            }
            value[i * n + j] = s;
            abs[i * n + j] = sa;
        }
    }
    Reference { value, abs }
}

/// Asserts `got` (row-major) matches the reference of a length-`k` product.
#[track_caller]
fn assert_matches<E: Element>(got: &[E], want: &Reference, k: usize, what: &str) {
    assert_eq!(got.len(), want.value.len(), "{what}: wrong number of elements");
    let eps = f64_of(E::epsilon());
    let rel = max_relative::<E>();
    for (idx, (&g, (&w, &wa))) in got.iter().zip(want.value.iter().zip(&want.abs)).enumerate() {
        let g = f64_of(g);
        let bound = (k as f64 + 1.0) * eps * wa;
        assert!(
            relative_eq!(g, w, epsilon = bound, max_relative = rel),
            "{what} ({}): element {idx}: got {g:e}, expected {w:e} (|diff| = {:e}, abs bound {bound:e})",
            E::NAME,
            (g - w).abs(),
        );
    }
}

/// A 2-D tensor whose logical value is the row-major `rows × cols` matrix `logical`: contiguous,
/// or (when `trans`) a contiguous `cols × rows` tensor holding the transpose, viewed with `.t()`.
fn operand<E: Element>(logical: &[E], rows: usize, cols: usize, trans: bool) -> Tensor<E> {
    if !trans {
        return Tensor::from_vec(logical.to_vec(), &[rows, cols]);
    }
    let mut data = vec![E::zero(); rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            data[c * rows + r] = logical[r * cols + c];
        }
    }
    let t = Tensor::from_vec(data, &[cols, rows]).t();
    assert_eq!(t.shape(), &[rows, cols]);
    assert_eq!(t.strides(), &[1, rows]);
    t
}

/// Extracts matrix `p` (row-major `rows × cols`) from a row-major batch of matrices.
fn batch_item<E: Element>(data: &[E], p: usize, rows: usize, cols: usize) -> &[E] {
    &data[p * rows * cols..(p + 1) * rows * cols]
}

const TRANSPOSES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

fn check_2d<E: Element>(rng: &mut StdRng, m: usize, k: usize, n: usize, ta: bool, tb: bool) {
    let a = random_vec::<E>(rng, m * k);
    let b = random_vec::<E>(rng, k * n);
    let want = reference(&a, &b, m, k, n);
    let c = operand(&a, m, k, ta).matmul(&operand(&b, k, n, tb));
    assert_eq!(c.shape(), &[m, n], "[{m},{k}]x[{k},{n}] ta={ta} tb={tb}: wrong shape");
    assert_matches(&c.to_vec(), &want, k, &format!("[{m},{k}]x[{k},{n}] ta={ta} tb={tb}"));
}

// ---------------------------------------------------------------------------------------------
// 2-D products
// ---------------------------------------------------------------------------------------------

fn all_small_sizes<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for m in 1..=17 {
        for k in 1..=17 {
            for n in 1..=17 {
                for (ta, tb) in TRANSPOSES {
                    check_2d::<E>(&mut rng, m, k, n, ta, tb);
                }
            }
        }
    }
}

#[test]
fn small_sizes_all_transposes_f32() {
    all_small_sizes::<f32>(1);
}

#[test]
fn small_sizes_all_transposes_f64() {
    all_small_sizes::<f64>(2);
}

const LARGE: [(usize, usize, usize); 5] =
    [(64, 100, 33), (257, 129, 65), (33, 200, 300), (300, 300, 300), (1, 1000, 1)];

fn large_sizes<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (m, k, n) in LARGE {
        for (ta, tb) in TRANSPOSES {
            check_2d::<E>(&mut rng, m, k, n, ta, tb);
        }
    }
}

#[test]
fn large_sizes_all_transposes_f32() {
    large_sizes::<f32>(3);
}

#[test]
fn large_sizes_all_transposes_f64() {
    large_sizes::<f64>(4);
}

/// Operands that are windows into bigger matrices (row stride ≠ number of columns, nonzero
/// offset), optionally transposed as well.
fn narrowed<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (m, k, n) in [(1, 1, 1), (3, 5, 7), (8, 8, 8), (17, 9, 13), (40, 70, 50), (130, 90, 70)] {
        for (ta, tb) in TRANSPOSES {
            // A: logical m×k sits at rows 2.., cols 3.. of a bigger matrix (or of its transpose).
            let (ar, ac) = if ta { (k + 6, m + 4) } else { (m + 5, k + 7) };
            let big_a = random_vec::<E>(&mut rng, ar * ac);
            let big_a_t = Tensor::from_vec(big_a.clone(), &[ar, ac]);
            let av =
                if ta { big_a_t.narrow(0, 2, k).narrow(1, 3, m).t() } else { big_a_t.narrow(0, 2, m).narrow(1, 3, k) };
            let (br, bc) = if tb { (n + 3, k + 2) } else { (k + 4, n + 9) };
            let big_b = random_vec::<E>(&mut rng, br * bc);
            let big_b_t = Tensor::from_vec(big_b.clone(), &[br, bc]);
            let bv =
                if tb { big_b_t.narrow(0, 1, n).narrow(1, 2, k).t() } else { big_b_t.narrow(0, 4, k).narrow(1, 5, n) };
            assert_eq!(av.shape(), &[m, k]);
            assert_eq!(bv.shape(), &[k, n]);

            // Logical values, by hand from the big buffers.
            let mut a = vec![E::zero(); m * k];
            for i in 0..m {
                for p in 0..k {
                    a[i * k + p] = if ta { big_a[(2 + p) * ac + 3 + i] } else { big_a[(2 + i) * ac + 3 + p] };
                }
            }
            let mut b = vec![E::zero(); k * n];
            for p in 0..k {
                for j in 0..n {
                    b[p * n + j] = if tb { big_b[(1 + j) * bc + 2 + p] } else { big_b[(4 + p) * bc + 5 + j] };
                }
            }
            let want = reference(&a, &b, m, k, n);
            let c = av.matmul(&bv);
            assert_eq!(c.shape(), &[m, n]);
            assert_matches(&c.to_vec(), &want, k, &format!("narrowed [{m},{k}]x[{k},{n}] ta={ta} tb={tb}"));
        }
    }
}

#[test]
fn narrowed_views_f32() {
    narrowed::<f32>(5);
}

#[test]
fn narrowed_views_f64() {
    narrowed::<f64>(6);
}

/// Operands with a zero stride inside the matrix (a row or column broadcast to a matrix).
fn zero_stride_operands<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (m, k, n) in [(5, 7, 3), (33, 20, 17), (100, 64, 90)] {
        let row = random_vec::<E>(&mut rng, k);
        let av = Tensor::from_vec(row.clone(), &[1, k]).broadcast_to(&[m, k]);
        assert_eq!(av.strides()[0], 0);
        let col = random_vec::<E>(&mut rng, k);
        let bv = Tensor::from_vec(col.clone(), &[k, 1]).broadcast_to(&[k, n]);
        assert_eq!(bv.strides()[1], 0);
        let a: Vec<E> = (0..m).flat_map(|_| row.iter().copied()).collect();
        let b: Vec<E> = col.iter().flat_map(|&x| std::iter::repeat_n(x, n)).collect();
        let want = reference(&a, &b, m, k, n);
        assert_matches(&av.matmul(&bv).to_vec(), &want, k, &format!("zero-stride [{m},{k}]x[{k},{n}]"));
    }
}

#[test]
fn zero_stride_operands_f32() {
    zero_stride_operands::<f32>(7);
}

#[test]
fn zero_stride_operands_f64() {
    zero_stride_operands::<f64>(8);
}

#[test]
fn empty_dims() {
    // k = 0: the product is all zeros.
    let a = Tensor::<f32>::from_vec(vec![], &[3, 0]);
    let b = Tensor::<f32>::from_vec(vec![], &[0, 4]);
    let c = a.matmul(&b);
    assert_eq!(c.shape(), &[3, 4]);
    assert_eq!(c.to_vec(), vec![0.0; 12]);
    // m = 0 / n = 0: empty results.
    let c = Tensor::<f64>::from_vec(vec![], &[0, 5]).matmul(&Tensor::from_vec(vec![1.0; 10], &[5, 2]));
    assert_eq!(c.shape(), &[0, 2]);
    let c = Tensor::<f64>::from_vec(vec![1.0; 10], &[2, 5]).matmul(&Tensor::from_vec(vec![], &[5, 0]));
    assert_eq!(c.shape(), &[2, 0]);
    // Batched with k = 0.
    let c = Tensor::<f32>::from_vec(vec![], &[2, 3, 0]).matmul(&Tensor::from_vec(vec![], &[2, 0, 4]));
    assert_eq!(c.shape(), &[2, 3, 4]);
    assert_eq!(c.to_vec(), vec![0.0; 24]);
}

// ---------------------------------------------------------------------------------------------
// Batched and broadcast products
// ---------------------------------------------------------------------------------------------

fn batched<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Small products (parallel over the batch) and large ones (split inside each product).
    for (bs, m, k, n) in [(1, 3, 4, 5), (3, 7, 5, 9), (4, 17, 17, 17), (5, 40, 30, 20), (2, 200, 150, 120)] {
        for (ta, tb) in TRANSPOSES {
            let a = random_vec::<E>(&mut rng, bs * m * k);
            let b = random_vec::<E>(&mut rng, bs * k * n);
            // Transposed batch operands: contiguous [bs, cols, rows] with the last two dims swapped.
            let make = |data: &[E], rows: usize, cols: usize, trans: bool| {
                if !trans {
                    return Tensor::from_vec(data.to_vec(), &[bs, rows, cols]);
                }
                let mut t = vec![E::zero(); data.len()];
                for p in 0..bs {
                    for r in 0..rows {
                        for c in 0..cols {
                            t[p * rows * cols + c * rows + r] = data[p * rows * cols + r * cols + c];
                        }
                    }
                }
                Tensor::from_vec(t, &[bs, cols, rows]).transpose(1, 2)
            };
            let c = make(&a, m, k, ta).matmul(&make(&b, k, n, tb));
            assert_eq!(c.shape(), &[bs, m, n]);
            let got = c.to_vec();
            for p in 0..bs {
                let want = reference(batch_item(&a, p, m, k), batch_item(&b, p, k, n), m, k, n);
                assert_matches(
                    batch_item(&got, p, m, n),
                    &want,
                    k,
                    &format!("batched [{bs},{m},{k}]x[{bs},{k},{n}] ta={ta} tb={tb}, batch {p}"),
                );
            }
        }
    }
}

#[test]
fn batched_f32() {
    batched::<f32>(9);
}

#[test]
fn batched_f64() {
    batched::<f64>(10);
}

/// Batch dims with non-unit, non-row-major strides: `[m, b, k]` permuted to `[b, m, k]`.
fn permuted_batch<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (bs, m, k, n) = (3, 6, 5, 4);
    let raw_a = random_vec::<E>(&mut rng, m * bs * k); // [m, bs, k]
    let raw_b = random_vec::<E>(&mut rng, bs * n * k); // [bs, n, k], used as [bs, k, n]
    let av = Tensor::from_vec(raw_a.clone(), &[m, bs, k]).permute(&[1, 0, 2]);
    let bv = Tensor::from_vec(raw_b.clone(), &[bs, n, k]).transpose(1, 2);
    let c = av.matmul(&bv);
    assert_eq!(c.shape(), &[bs, m, n]);
    let got = c.to_vec();
    for p in 0..bs {
        let a: Vec<E> = (0..m * k).map(|x| raw_a[(x / k) * bs * k + p * k + x % k]).collect();
        let b: Vec<E> = (0..k * n).map(|x| raw_b[p * n * k + (x % n) * k + x / n]).collect();
        let want = reference(&a, &b, m, k, n);
        assert_matches(batch_item(&got, p, m, n), &want, k, &format!("permuted batch {p}"));
    }
}

#[test]
fn permuted_batch_f32() {
    permuted_batch::<f32>(11);
}

#[test]
fn permuted_batch_f64() {
    permuted_batch::<f64>(12);
}

fn broadcast_batch<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (m, k, n) in [(1, 1, 1), (4, 3, 5), (9, 16, 7), (64, 70, 65)] {
        // [2, 1, m, k] x [3, k, n] -> [2, 3, m, n]
        let a = random_vec::<E>(&mut rng, 2 * m * k);
        let b = random_vec::<E>(&mut rng, 3 * k * n);
        let c = Tensor::from_vec(a.clone(), &[2, 1, m, k]).matmul(&Tensor::from_vec(b.clone(), &[3, k, n]));
        assert_eq!(c.shape(), &[2, 3, m, n]);
        let got = c.to_vec();
        for i in 0..2 {
            for j in 0..3 {
                let want = reference(batch_item(&a, i, m, k), batch_item(&b, j, k, n), m, k, n);
                assert_matches(
                    batch_item(&got, i * 3 + j, m, n),
                    &want,
                    k,
                    &format!("broadcast [2,1,{m},{k}]x[3,{k},{n}] at ({i},{j})"),
                );
            }
        }

        // [m, k] x [3, k, n] -> [3, m, n] (a plain matrix against a batch), and the mirror.
        let a2 = random_vec::<E>(&mut rng, m * k);
        let c = Tensor::from_vec(a2.clone(), &[m, k]).matmul(&Tensor::from_vec(b.clone(), &[3, k, n]));
        assert_eq!(c.shape(), &[3, m, n]);
        let got = c.to_vec();
        for j in 0..3 {
            let want = reference(&a2, batch_item(&b, j, k, n), m, k, n);
            assert_matches(batch_item(&got, j, m, n), &want, k, &format!("[{m},{k}]x[3,{k},{n}] at {j}"));
        }
        let b2 = random_vec::<E>(&mut rng, k * n);
        let c = Tensor::from_vec(a.clone(), &[2, 1, m, k]).matmul(&Tensor::from_vec(b2.clone(), &[k, n]));
        assert_eq!(c.shape(), &[2, 1, m, n]);
        let got = c.to_vec();
        for i in 0..2 {
            let want = reference(batch_item(&a, i, m, k), &b2, m, k, n);
            assert_matches(batch_item(&got, i, m, n), &want, k, &format!("[2,1,{m},{k}]x[{k},{n}] at {i}"));
        }
    }
}

#[test]
fn broadcast_batch_f32() {
    broadcast_batch::<f32>(13);
}

#[test]
fn broadcast_batch_f64() {
    broadcast_batch::<f64>(14);
}

// ---------------------------------------------------------------------------------------------
// 1-D operands
// ---------------------------------------------------------------------------------------------

fn one_d<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (m, k, n) in [(1, 1, 1), (3, 1, 2), (5, 7, 3), (17, 33, 9), (100, 300, 70)] {
        let x = random_vec::<E>(&mut rng, k);
        let w = random_vec::<E>(&mut rng, k * n);
        let am = random_vec::<E>(&mut rng, m * k);
        let y = random_vec::<E>(&mut rng, k);

        // vector × matrix: [k] x [k, n] -> [n]
        let c = Tensor::from_vec(x.clone(), &[k]).matmul(&Tensor::from_vec(w.clone(), &[k, n]));
        assert_eq!(c.shape(), &[n]);
        assert_matches(&c.to_vec(), &reference(&x, &w, 1, k, n), k, &format!("vec[{k}] x [{k},{n}]"));
        // ... with a transposed matrix
        let c = Tensor::from_vec(x.clone(), &[k]).matmul(&operand(&w, k, n, true));
        assert_matches(&c.to_vec(), &reference(&x, &w, 1, k, n), k, &format!("vec[{k}] x [{k},{n}]^T-view"));

        // matrix × vector: [m, k] x [k] -> [m]
        let c = Tensor::from_vec(am.clone(), &[m, k]).matmul(&Tensor::from_vec(y.clone(), &[k]));
        assert_eq!(c.shape(), &[m]);
        assert_matches(&c.to_vec(), &reference(&am, &y, m, k, 1), k, &format!("[{m},{k}] x vec[{k}]"));
        let c = operand(&am, m, k, true).matmul(&Tensor::from_vec(y.clone(), &[k]));
        assert_matches(&c.to_vec(), &reference(&am, &y, m, k, 1), k, &format!("[{m},{k}]^T-view x vec[{k}]"));

        // dot product: [k] x [k] -> []
        let c = Tensor::from_vec(x.clone(), &[k]).matmul(&Tensor::from_vec(y.clone(), &[k]));
        assert_eq!(c.shape(), &[] as &[usize]);
        assert_matches(&c.to_vec(), &reference(&x, &y, 1, k, 1), k, &format!("dot [{k}]"));
        // dot product of strided vectors (columns of bigger matrices)
        let xm = Tensor::from_vec((0..k).flat_map(|p| [x[p], E::of(9.0), E::of(-9.0)]).collect::<Vec<E>>(), &[k, 3]);
        let xv = xm.narrow(1, 0, 1).squeeze(1);
        assert_eq!(xv.strides(), &[3]);
        let c = xv.matmul(&Tensor::from_vec(y.clone(), &[k]));
        assert_matches(&c.to_vec(), &reference(&x, &y, 1, k, 1), k, &format!("strided dot [{k}]"));

        // batched × vector: [2, m, k] x [k] -> [2, m]; vector × batched: [k] x [2, k, n] -> [2, n]
        let ab = random_vec::<E>(&mut rng, 2 * m * k);
        let c = Tensor::from_vec(ab.clone(), &[2, m, k]).matmul(&Tensor::from_vec(y.clone(), &[k]));
        assert_eq!(c.shape(), &[2, m]);
        let got = c.to_vec();
        for p in 0..2 {
            let want = reference(batch_item(&ab, p, m, k), &y, m, k, 1);
            assert_matches(batch_item(&got, p, m, 1), &want, k, &format!("[2,{m},{k}] x vec[{k}] at {p}"));
        }
        let wb = random_vec::<E>(&mut rng, 2 * k * n);
        let c = Tensor::from_vec(x.clone(), &[k]).matmul(&Tensor::from_vec(wb.clone(), &[2, k, n]));
        assert_eq!(c.shape(), &[2, n]);
        let got = c.to_vec();
        for p in 0..2 {
            let want = reference(&x, batch_item(&wb, p, k, n), 1, k, n);
            assert_matches(batch_item(&got, p, 1, n), &want, k, &format!("vec[{k}] x [2,{k},{n}] at {p}"));
        }
    }
}

#[test]
fn one_d_operands_f32() {
    one_d::<f32>(15);
}

#[test]
fn one_d_operands_f64() {
    one_d::<f64>(16);
}

// ---------------------------------------------------------------------------------------------
// Determinism across thread counts
// ---------------------------------------------------------------------------------------------

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

/// Shapes above the kernel's split threshold (m·k·n ≥ 2^18): `(batch dims, m, k, n, A is a
/// transposed view)`.
const SPLIT_SHAPES: [(&[usize], usize, usize, usize, bool); 9] = [
    (&[], 512, 512, 512, false), // square
    (&[], 128, 144, 512, false), // LSTM forward: x·W, split by columns
    (&[], 144, 128, 512, true),  // LSTM weight gradient: xᵀ·G, xᵀ a view of [128, 144]
    (&[], 4099, 64, 17, false),  // tall-skinny, split by rows, ragged last block
    (&[], 17, 64, 4099, false),  // short-wide, split by columns, ragged last block
    (&[], 300, 300, 300, false), // row blocks of 150, not a multiple of the micro-kernel
    (&[], 257, 129, 65, true),   // odd sizes everywhere
    (&[4], 128, 64, 128, false), // batched: small products, parallel over the batch
    (&[2], 300, 200, 310, true), // batched: large products, each split
];

fn bits<E: Element>(v: &[E]) -> Vec<u64> {
    // f32 → f64 is exact, so the f64 bit pattern identifies the f32 value's bits uniquely.
    v.iter().map(|&x| f64_of(x).to_bits()).collect()
}

fn thread_count_determinism<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (p1, p2, p3) = (pool(1), pool(2), pool(3));
    assert_eq!(p1.install(rayon::current_num_threads), 1);
    assert_eq!(p2.install(rayon::current_num_threads), 2);
    for (batch, m, k, n, ta) in SPLIT_SHAPES {
        assert!(m * k * n >= 1 << 18);
        let bs: usize = batch.iter().product();
        let a_data = random_vec::<E>(&mut rng, bs * m * k);
        let b_data = random_vec::<E>(&mut rng, bs * k * n);
        let a = if ta {
            let stored = [batch, &[k, m]].concat();
            let t = Tensor::from_vec(a_data, &stored);
            t.transpose(stored.len() - 2, stored.len() - 1)
        } else {
            Tensor::from_vec(a_data, &[batch, &[m, k]].concat())
        };
        let b = Tensor::from_vec(b_data, &[batch, &[k, n]].concat());
        let c1 = p1.install(|| a.matmul(&b)).to_vec();
        let c2 = p2.install(|| a.matmul(&b)).to_vec();
        assert_eq!(c1.len(), bs * m * n);
        let (b1, b2) = (bits(&c1), bits(&c2));
        if let Some(i) = b1.iter().zip(&b2).position(|(x, y)| x != y) {
            panic!(
                "{} {batch:?}x[{m},{k}]x[{k},{n}] (A transposed: {ta}): 1 and 2 threads differ at element {i}: \
                 {:e} vs {:e}",
                E::NAME,
                f64_of(c1[i]),
                f64_of(c2[i])
            );
        }
        // The same pool run twice is also reproducible, and 3 threads (other block edges) agree.
        let c2b = p2.install(|| a.matmul(&b)).to_vec();
        assert_eq!(b2, bits(&c2b), "{} {batch:?}x[{m},{k}]x[{k},{n}]: 2-thread run not reproducible", E::NAME);
        let c3 = p3.install(|| a.matmul(&b)).to_vec();
        assert!(b1 == bits(&c3), "{} {batch:?}x[{m},{k}]x[{k},{n}]: 1 and 3 threads differ", E::NAME);
    }
}

#[test]
fn identical_bits_with_1_and_2_threads_f32() {
    thread_count_determinism::<f32>(17);
}

#[test]
fn identical_bits_with_1_and_2_threads_f64() {
    thread_count_determinism::<f64>(18);
}

/// The threaded results are also correct, not just consistent (one large split shape).
#[test]
fn split_product_is_correct() {
    let mut rng = StdRng::seed_from_u64(19);
    let (m, k, n) = (300, 200, 310);
    let a = random_vec::<f32>(&mut rng, m * k);
    let b = random_vec::<f32>(&mut rng, k * n);
    let want = reference(&a, &b, m, k, n);
    for (ta, tb) in TRANSPOSES {
        let c = pool(2).install(|| operand(&a, m, k, ta).matmul(&operand(&b, k, n, tb)));
        assert_matches(&c.to_vec(), &want, k, &format!("2 threads [{m},{k}]x[{k},{n}] ta={ta} tb={tb}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Gradients
// ---------------------------------------------------------------------------------------------

fn transpose_of<E: Element>(x: &[E], rows: usize, cols: usize) -> Vec<E> {
    let mut t = vec![E::zero(); x.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = x[r * cols + c];
        }
    }
    t
}

/// `C = A·B` with A and B transposed views of leaves; checks dA = G·Bᵀ and dB = Aᵀ·G both on the
/// views (when they are the marked leaves) and on the stored tensors under the views.
fn grad_transposed<E: Element>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (m, k, n) in [(1, 1, 1), (2, 3, 4), (7, 5, 9), (16, 17, 15), (40, 33, 50)] {
        for (ta, tb) in TRANSPOSES {
            let a = random_vec::<E>(&mut rng, m * k);
            let b = random_vec::<E>(&mut rng, k * n);
            let g = random_vec::<E>(&mut rng, m * n);
            let gt = Tensor::from_vec(g.clone(), &[m, n]);
            let bt = transpose_of(&b, k, n); // Bᵀ as an n×k row-major matrix
            let at = transpose_of(&a, m, k); // Aᵀ as a k×m row-major matrix
            let da = reference(&g, &bt, m, n, k); // G·Bᵀ: m×k
            let db = reference(&at, &g, k, m, n); // Aᵀ·G: k×n
            let what = format!("[{m},{k}]x[{k},{n}] ta={ta} tb={tb}");

            // 1. The views themselves are the leaves.
            let av = operand(&a, m, k, ta).requires_grad();
            let bv = operand(&b, k, n, tb).requires_grad();
            let grads = av.matmul(&bv).backward_with_grad(&gt);
            let ga = grads.get(&av).expect("no gradient for A");
            let gb = grads.get(&bv).expect("no gradient for B");
            assert_eq!(ga.shape(), &[m, k]);
            assert_eq!(gb.shape(), &[k, n]);
            assert_matches(&ga.to_vec(), &da, n, &format!("dA (view leaf) {what}"));
            assert_matches(&gb.to_vec(), &db, m, &format!("dB (view leaf) {what}"));

            // 2. The stored (contiguous) tensors are the leaves; the views are ops on them.
            let a_store = if ta { Tensor::from_vec(at.clone(), &[k, m]) } else { Tensor::from_vec(a.clone(), &[m, k]) }
                .requires_grad();
            let b_store = if tb { Tensor::from_vec(bt.clone(), &[n, k]) } else { Tensor::from_vec(b.clone(), &[k, n]) }
                .requires_grad();
            let av = if ta { a_store.t() } else { a_store.clone() };
            let bv = if tb { b_store.t() } else { b_store.clone() };
            let grads = av.matmul(&bv).backward_with_grad(&gt);
            let ga = grads.get(&a_store).expect("no gradient for stored A").to_vec();
            let gb = grads.get(&b_store).expect("no gradient for stored B").to_vec();
            // The stored tensor's gradient is the transpose of the view's gradient.
            let ga = if ta { transpose_of(&ga, k, m) } else { ga };
            let gb = if tb { transpose_of(&gb, n, k) } else { gb };
            assert_matches(&ga, &da, n, &format!("dA (stored leaf) {what}"));
            assert_matches(&gb, &db, m, &format!("dB (stored leaf) {what}"));
        }
    }
}

#[test]
fn gradient_of_transposed_operands_f32() {
    grad_transposed::<f32>(20);
}

#[test]
fn gradient_of_transposed_operands_f64() {
    grad_transposed::<f64>(21);
}

/// Gradients through broadcast batch dims are summed over the broadcast:
/// `[2, 1, m, k] x [3, k, n]`: dA[i] = Σⱼ G[i, j]·B[j]ᵀ, dB[j] = Σᵢ A[i]ᵀ·G[i, j].
#[test]
fn gradient_of_broadcast_batch_f64() {
    let mut rng = StdRng::seed_from_u64(22);
    let (m, k, n) = (4, 3, 5);
    let a = random_vec::<f64>(&mut rng, 2 * m * k);
    let b = random_vec::<f64>(&mut rng, 3 * k * n);
    let g = random_vec::<f64>(&mut rng, 6 * m * n);
    let at = Tensor::from_vec(a.clone(), &[2, 1, m, k]).requires_grad();
    let bt = Tensor::from_vec(b.clone(), &[3, k, n]).requires_grad();
    let grads = at.matmul(&bt).backward_with_grad(&Tensor::from_vec(g.clone(), &[2, 3, m, n]));
    let ga = grads.get(&at).unwrap();
    let gb = grads.get(&bt).unwrap();
    assert_eq!(ga.shape(), &[2, 1, m, k]);
    assert_eq!(gb.shape(), &[3, k, n]);
    let (ga, gb) = (ga.to_vec(), gb.to_vec());
    for i in 0..2 {
        let mut want = Reference { value: vec![0.0; m * k], abs: vec![0.0; m * k] };
        for j in 0..3 {
            let r = reference(batch_item(&g, i * 3 + j, m, n), &transpose_of(batch_item(&b, j, k, n), k, n), m, n, k);
            for x in 0..m * k {
                want.value[x] += r.value[x];
                want.abs[x] += r.abs[x];
            }
        }
        assert_matches(batch_item(&ga, i, m, k), &want, 3 * n, &format!("broadcast dA[{i}]"));
    }
    for j in 0..3 {
        let mut want = Reference { value: vec![0.0; k * n], abs: vec![0.0; k * n] };
        for i in 0..2 {
            let r = reference(&transpose_of(batch_item(&a, i, m, k), m, k), batch_item(&g, i * 3 + j, m, n), k, m, n);
            for x in 0..k * n {
                want.value[x] += r.value[x];
                want.abs[x] += r.abs[x];
            }
        }
        assert_matches(batch_item(&gb, j, k, n), &want, 2 * m, &format!("broadcast dB[{j}]"));
    }
}

/// Gradients of the 1-D cases: vector·matrix and the dot product.
#[test]
fn gradient_of_vector_operands_f64() {
    let mut rng = StdRng::seed_from_u64(23);
    let (k, n) = (6, 4);
    let x = random_vec::<f64>(&mut rng, k);
    let w = random_vec::<f64>(&mut rng, k * n);
    let g = random_vec::<f64>(&mut rng, n);
    let xt = Tensor::from_vec(x.clone(), &[k]).requires_grad();
    let wt = operand(&w, k, n, true).requires_grad();
    let grads = xt.matmul(&wt).backward_with_grad(&Tensor::from_vec(g.clone(), &[n]));
    let gx = grads.get(&xt).unwrap();
    let gw = grads.get(&wt).unwrap();
    assert_eq!(gx.shape(), &[k]);
    assert_eq!(gw.shape(), &[k, n]);
    // dx = W·g, dW = x ⊗ g
    assert_matches(&gx.to_vec(), &reference(&w, &g, k, n, 1), n, "dx of x·W");
    assert_matches(&gw.to_vec(), &reference(&x, &g, k, 1, n), 1, "dW of x·W");

    let y = random_vec::<f64>(&mut rng, k);
    let yt = Tensor::from_vec(y.clone(), &[k]).requires_grad();
    let xt = Tensor::from_vec(x.clone(), &[k]).requires_grad();
    let grads = xt.matmul(&yt).backward();
    assert_eq!(grads.get(&xt).unwrap().to_vec(), y);
    assert_eq!(grads.get(&yt).unwrap().to_vec(), x);
}

/// The upstream gradient reaching the product need not be contiguous: from `sum()` (possibly a
/// broadcast of one value) and from a transpose of the product.
#[test]
fn gradient_with_strided_upstream_f64() {
    let mut rng = StdRng::seed_from_u64(24);
    let (m, k, n) = (7, 5, 6);
    let a = random_vec::<f64>(&mut rng, m * k);
    let b = random_vec::<f64>(&mut rng, k * n);
    let bt = transpose_of(&b, k, n);
    let at = transpose_of(&a, m, k);

    // loss = Σ A·B: dA = 1·Bᵀ, dB = Aᵀ·1.
    let av = operand(&a, m, k, true).requires_grad();
    let bv = operand(&b, k, n, false).requires_grad();
    let grads = av.matmul(&bv).sum().backward();
    let ones = vec![1.0f64; m * n];
    assert_matches(&grads.get(&av).unwrap().to_vec(), &reference(&ones, &bt, m, n, k), n, "dA of sum(A·B)");
    assert_matches(&grads.get(&bv).unwrap().to_vec(), &reference(&at, &ones, k, m, n), m, "dB of sum(A·B)");

    // y = (A·B)ᵀ with upstream gradient H (n×m): the product sees G = Hᵀ as a transposed view.
    let h = random_vec::<f64>(&mut rng, n * m);
    let g = transpose_of(&h, n, m);
    let av = operand(&a, m, k, false).requires_grad();
    let bv = operand(&b, k, n, true).requires_grad();
    let grads = av.matmul(&bv).t().backward_with_grad(&Tensor::from_vec(h, &[n, m]));
    assert_matches(&grads.get(&av).unwrap().to_vec(), &reference(&g, &bt, m, n, k), n, "dA of (A·B)ᵀ");
    assert_matches(&grads.get(&bv).unwrap().to_vec(), &reference(&at, &g, k, m, n), m, "dB of (A·B)ᵀ");
}

// ---------------------------------------------------------------------------------------------
// Every micro-kernel
// ---------------------------------------------------------------------------------------------

/// The SIMD build is chosen once per process, so the suite runs again in child processes, once
/// per narrower build this CPU has, with `TENSORGRAD_SIMD` set: every test above then runs on
/// the AVX2 and the portable micro-kernels too (and on AVX-512 in this process, where present).
#[test]
fn whole_suite_with_every_narrower_simd_build() {
    if std::env::var_os("TENSORGRAD_SIMD").is_some() {
        return; // a child: it runs the tests, not this
    }
    let narrower: &[&str] = match tensorgrad::cpu_info().simd {
        "avx512" => &["avx2", "portable"],
        "avx2+fma" => &["portable"],
        _ => &[],
    };
    for build in narrower {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--skip", "whole_suite_with_every_narrower_simd_build", "--test-threads", "2"])
            .env("TENSORGRAD_SIMD", build)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the matmul suite failed with TENSORGRAD_SIMD={build}:\n{text}");
        assert!(text.contains("the_requested_simd_build_is_used ... ok"), "TENSORGRAD_SIMD={build}:\n{text}");
    }
}

/// In a child of the test above: the build asked for is the one the kernels use.
#[test]
fn the_requested_simd_build_is_used() {
    let info = tensorgrad::cpu_info();
    match std::env::var("TENSORGRAD_SIMD").as_deref() {
        Ok("avx2") => assert_eq!(info.simd, "avx2+fma"),
        Ok("portable") => assert_eq!(info.simd, "portable"),
        _ => {}
    }
}
