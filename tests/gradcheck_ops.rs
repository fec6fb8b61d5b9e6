//! Finite-difference gradient checks, in `f64`, of every differentiable op, on contiguous
//! inputs and on non-contiguous views (transposed, permuted, narrowed, broadcast), plus
//! second-derivative checks (`gradgrad_*`) of a representative subset.
//!
//! `gradcheck` copies every input into a fresh contiguous leaf, so each view is built inside
//! the closure handed to it: a [`Viewed`] input holds the leaf and knows how to turn it into
//! a (usually non-contiguous) tensor of the shape the op under test should see.

use std::fmt;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tensorgrad::{Tensor, gradcheck};

type T = Tensor<f64>;
type TestResult = Result<(), TestCaseError>;

/// Proptest cases per test: every case checks every view kind, so few are needed. Set
/// `GRADCHECK_CASES` for a deeper run.
fn config() -> ProptestConfig {
    let cases = std::env::var("GRADCHECK_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(12);
    ProptestConfig::with_cases(cases)
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

// ---------------------------------------------------------------------------------------------
// Value strategies
// ---------------------------------------------------------------------------------------------

/// Which values an input may hold.
#[derive(Clone, Copy, Debug)]
enum Vals {
    /// Uniform in `[-2, 2)`.
    Any,
    /// Uniform in `[-6, 6)` (reaches both branches of the stable sigmoid).
    Wide,
    /// Uniform in `[0.3, 2.5)` (for `ln`, `sqrt`, non-integer `powf`).
    Pos,
    /// Magnitude in `[0.5, 2)` with either sign (divisors).
    NonZero,
    /// Uniform in `[-2, 2)` but at least 0.1 away from each listed point (kinks of `abs`,
    /// `relu`, `clamp`).
    Avoid(&'static [f64]),
    /// Pairwise at least 0.2 apart (a unique argmax for `max_dim`).
    Distinct,
}

fn values(vals: Vals, n: usize) -> BoxedStrategy<Vec<f64>> {
    use prop::collection::vec;
    match vals {
        Vals::Any => vec(-2.0f64..2.0, n).boxed(),
        Vals::Wide => vec(-6.0f64..6.0, n).boxed(),
        Vals::Pos => vec(0.3f64..2.5, n).boxed(),
        Vals::NonZero => vec((0.5f64..2.0, any::<bool>()).prop_map(|(m, neg)| if neg { -m } else { m }), n).boxed(),
        Vals::Avoid(points) => vec(
            (-2.0f64..2.0).prop_filter("too close to a kink", move |x| points.iter().all(|p| (x - p).abs() > 0.1)),
            n,
        )
        .boxed(),
        Vals::Distinct => (Just((0..n).collect::<Vec<usize>>()).prop_shuffle(), vec(0.0f64..0.1, n))
            .prop_map(|(ranks, jitter)| ranks.iter().zip(jitter).map(|(&r, j)| r as f64 * 0.3 - 1.5 + j).collect())
            .boxed(),
    }
}

/// A shape with a rank in `ranks` and every dim in `1..=4`.
fn arb_shape(ranks: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<usize>> {
    ranks.prop_flat_map(|r| prop::collection::vec(1usize..=4, r)).boxed()
}

/// A shape that broadcasts to `shape`: some leading dims dropped, some others set to 1.
fn smaller_shape(shape: &[usize]) -> BoxedStrategy<Vec<usize>> {
    let s = shape.to_vec();
    let r = s.len();
    (0..=r, prop::collection::vec(any::<bool>(), r))
        .prop_map(move |(lead, ones)| {
            s[lead..].iter().zip(&ones[lead..]).map(|(&d, &one)| if one { 1 } else { d }).collect()
        })
        .boxed()
}

/// Indices in `0..size`, `len` of them.
fn indices(size: usize, len: usize) -> BoxedStrategy<Vec<usize>> {
    prop::collection::vec(0..size, len).boxed()
}

// ---------------------------------------------------------------------------------------------
// Inputs seen through views
// ---------------------------------------------------------------------------------------------

/// How the leaf is turned into the tensor the op sees.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// The leaf itself.
    Contiguous,
    /// The leaf has dims `a` and `b` swapped; `.t()` (2-D) or `.transpose(a, b)` swaps them back.
    Transposed { a: usize, b: usize },
    /// For 1-D targets: the leaf is `[n, 2]`; `.t().narrow(0, col, 1).squeeze(0)` is one of its
    /// columns, with stride 2.
    Column { col: usize },
    /// `.permute(perm)` of a leaf with correspondingly permuted dims.
    Permuted(Vec<usize>),
    /// `.narrow(dim, start, len)` of a leaf that is longer along `dim`.
    Narrowed { dim: usize, start: usize },
    /// `.broadcast_to(shape)` of a smaller leaf.
    Broadcast,
}

/// A leaf plus the view that makes it an input of the target shape.
#[derive(Clone, Debug)]
struct Viewed {
    kind: Kind,
    shape: Vec<usize>,
    leaf: T,
}

impl Viewed {
    /// The view of `leaf` (a copy of `self.leaf` made by gradcheck) that the op sees.
    fn view(&self, leaf: &T) -> T {
        let v = match &self.kind {
            Kind::Contiguous => leaf.clone(),
            Kind::Transposed { a, b } => {
                if leaf.ndim() == 2 {
                    leaf.t()
                } else {
                    leaf.transpose(*a, *b)
                }
            }
            Kind::Column { col } => leaf.t().narrow(0, *col, 1).squeeze(0),
            Kind::Permuted(perm) => leaf.permute(perm),
            Kind::Narrowed { dim, start } => leaf.narrow(*dim, *start, self.shape[*dim]),
            Kind::Broadcast => leaf.broadcast_to(&self.shape),
        };
        assert_eq!(v.shape(), self.shape.as_slice(), "test bug: view {:?} has the wrong shape", self.kind);
        v
    }
}

impl fmt::Display for Viewed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} view {:?} of leaf {:?}", self.kind, self.shape, self.leaf.shape())
    }
}

fn viewed(kind: Kind, target: Vec<usize>, leaf_shape: Vec<usize>, vals: Vals) -> BoxedStrategy<Viewed> {
    values(vals, numel(&leaf_shape))
        .prop_map(move |v| Viewed { kind: kind.clone(), shape: target.clone(), leaf: Tensor::from_vec(v, &leaf_shape) })
        .boxed()
}

fn contiguous_input(shape: Vec<usize>, vals: Vals) -> BoxedStrategy<Viewed> {
    viewed(Kind::Contiguous, shape.clone(), shape, vals)
}

fn transposed_input(shape: Vec<usize>, vals: Vals) -> BoxedStrategy<Viewed> {
    let r = shape.len();
    match r {
        0 => contiguous_input(shape, vals),
        1 => (0..2usize)
            .prop_flat_map(move |col| viewed(Kind::Column { col }, shape.clone(), vec![shape[0], 2], vals))
            .boxed(),
        _ => (0..r, 1..r)
            .prop_flat_map(move |(a, k)| {
                let b = (a + k) % r;
                let (a, b) = (a.min(b), a.max(b));
                let mut leaf_shape = shape.clone();
                leaf_shape.swap(a, b);
                viewed(Kind::Transposed { a, b }, shape.clone(), leaf_shape, vals)
            })
            .boxed(),
    }
}

fn permuted_input(shape: Vec<usize>, vals: Vals) -> BoxedStrategy<Viewed> {
    let r = shape.len();
    Just((0..r).collect::<Vec<usize>>())
        .prop_shuffle()
        .prop_flat_map(move |perm| {
            let mut leaf_shape = vec![0; r];
            for (i, &p) in perm.iter().enumerate() {
                leaf_shape[p] = shape[i];
            }
            viewed(Kind::Permuted(perm), shape.clone(), leaf_shape, vals)
        })
        .boxed()
}

fn narrowed_input(shape: Vec<usize>, vals: Vals) -> BoxedStrategy<Viewed> {
    let r = shape.len();
    if r == 0 {
        return contiguous_input(shape, vals);
    }
    (0..r, 1..=3usize)
        .prop_flat_map(|(dim, extra)| (Just(dim), Just(extra), 0..=extra))
        .prop_flat_map(move |(dim, extra, start)| {
            let mut leaf_shape = shape.clone();
            leaf_shape[dim] += extra;
            viewed(Kind::Narrowed { dim, start }, shape.clone(), leaf_shape, vals)
        })
        .boxed()
}

fn broadcast_input(shape: Vec<usize>, vals: Vals) -> BoxedStrategy<Viewed> {
    smaller_shape(&shape).prop_flat_map(move |small| viewed(Kind::Broadcast, shape.clone(), small, vals)).boxed()
}

/// One input of each kind, all of shape `shape`: contiguous, transposed, permuted, narrowed,
/// broadcast (always in this order).
fn views(shape: Vec<usize>, vals: Vals) -> BoxedStrategy<Vec<Viewed>> {
    (
        contiguous_input(shape.clone(), vals),
        transposed_input(shape.clone(), vals),
        permuted_input(shape.clone(), vals),
        narrowed_input(shape.clone(), vals),
        broadcast_input(shape, vals),
    )
        .prop_map(|(a, b, c, d, e)| vec![a, b, c, d, e])
        .boxed()
}

/// `views` of a random shape with a rank in `ranks`.
fn any_views(ranks: std::ops::RangeInclusive<usize>, vals: Vals) -> BoxedStrategy<Vec<Viewed>> {
    arb_shape(ranks).prop_flat_map(move |s| views(s, vals)).boxed()
}

/// Pairs of view kinds to combine in a binary op: equal kinds, and each kind with the next.
fn kind_pairs(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).map(|i| (i, i)).chain((0..n).map(move |i| (i, (i + 1) % n)))
}

// ---------------------------------------------------------------------------------------------
// Checking helpers
// ---------------------------------------------------------------------------------------------

fn check(label: impl fmt::Display, f: impl Fn(&[T]) -> T, inputs: &[T]) -> TestResult {
    let r = gradcheck(f, inputs);
    prop_assert!(r.is_ok(), "{}: {}", label, r.unwrap_err());
    Ok(())
}

/// Deterministic, distinct, sign-alternating weights of a shape (`salt` varies them).
fn weights(shape: &[usize], salt: usize) -> T {
    let v = (0..numel(shape))
        .map(|i| {
            let w = 0.3 + ((i * 37 + salt * 11 + 5) % 17) as f64 / 10.0;
            if (i + salt).is_multiple_of(2) { w } else { -w }
        })
        .collect();
    Tensor::from_vec(v, shape)
}

/// `xs ↦ Σᵢ ⟨∂⟨f(xs), w⟩/∂xᵢ, uᵢ⟩` for fixed weights `w`, `uᵢ`, with the backward pass recorded,
/// so that gradcheck of it checks the second-order backward of `f`.
fn grad_of(f: impl Fn(&[T]) -> T) -> impl Fn(&[T]) -> T {
    move |xs: &[T]| {
        let y = f(xs);
        let grads = y.backward_with_grad_and_graph(&weights(y.shape(), 1));
        let mut total = Tensor::scalar(0.0);
        for (i, x) in xs.iter().enumerate() {
            if let Some(gx) = grads.get(x) {
                total = &total + &(gx * &weights(x.shape(), i + 2)).sum();
            }
        }
        total
    }
}

fn check_gradgrad(label: impl fmt::Display, f: impl Fn(&[T]) -> T, inputs: &[T]) -> TestResult {
    check(format_args!("second derivative of {label}"), grad_of(f), inputs)
}

/// Checks `f` on each view of one input.
fn check_unary(name: &str, inputs: &[Viewed], f: impl Fn(&T) -> T) -> TestResult {
    for v in inputs {
        check(format_args!("{name} on {v}"), |xs| f(&v.view(&xs[0])), std::slice::from_ref(&v.leaf))?;
    }
    Ok(())
}

fn gradgrad_unary(name: &str, inputs: &[Viewed], f: impl Fn(&T) -> T) -> TestResult {
    for v in inputs {
        check_gradgrad(format_args!("{name} on {v}"), |xs| f(&v.view(&xs[0])), std::slice::from_ref(&v.leaf))?;
    }
    Ok(())
}

/// Checks `f(a, b)` on pairs of views (see [`kind_pairs`]).
fn check_pairs(name: &str, a: &[Viewed], b: &[Viewed], f: impl Fn(&T, &T) -> T) -> TestResult {
    for (i, j) in kind_pairs(a.len().min(b.len())) {
        let (a, b) = (&a[i], &b[j]);
        check(
            format_args!("{name} with a = {a}, b = {b}"),
            |xs| f(&a.view(&xs[0]), &b.view(&xs[1])),
            &[a.leaf.clone(), b.leaf.clone()],
        )?;
    }
    Ok(())
}

fn gradgrad_pairs(name: &str, a: &[Viewed], b: &[Viewed], f: impl Fn(&T, &T) -> T) -> TestResult {
    for (i, j) in kind_pairs(a.len().min(b.len())) {
        let (a, b) = (&a[i], &b[j]);
        check_gradgrad(
            format_args!("{name} with a = {a}, b = {b}"),
            |xs| f(&a.view(&xs[0]), &b.view(&xs[1])),
            &[a.leaf.clone(), b.leaf.clone()],
        )?;
    }
    Ok(())
}

/// Checks `f` on lists of inputs where input `j` uses view kind `(i + j) % 5` for each `i`.
fn check_lists(name: &str, parts: &[Vec<Viewed>], f: impl Fn(&[T]) -> T, second_order: bool) -> TestResult {
    let kinds = parts.iter().map(Vec::len).min().unwrap_or(0);
    for i in 0..kinds {
        let chosen: Vec<&Viewed> = parts.iter().enumerate().map(|(j, p)| &p[(i + j) % kinds]).collect();
        let leaves: Vec<T> = chosen.iter().map(|v| v.leaf.clone()).collect();
        let desc: Vec<String> = chosen.iter().map(|v| v.to_string()).collect();
        let g = |xs: &[T]| {
            let viewed: Vec<T> = chosen.iter().zip(xs).map(|(v, x)| v.view(x)).collect();
            f(&viewed)
        };
        if second_order {
            check_gradgrad(format_args!("{name} of [{}]", desc.join("; ")), g, &leaves)?;
        } else {
            check(format_args!("{name} of [{}]", desc.join("; ")), g, &leaves)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Binary elementwise cases
// ---------------------------------------------------------------------------------------------

/// Inputs for a binary elementwise op: full-shape views of both operands, views of smaller
/// shapes that broadcast implicitly to the full shape, and a column `[m, 1]` with a row `[n]`
/// (neither operand has the result's shape).
#[derive(Clone, Debug)]
struct BinCase {
    a: Vec<Viewed>,
    b: Vec<Viewed>,
    a_small: Vec<Viewed>,
    b_small: Vec<Viewed>,
    col: Vec<Viewed>,
    row: Vec<Viewed>,
    /// The row and column with their values drawn the other way round, for `[n] op [m, 1]`:
    /// the right operand keeps the right operand's values (a divisor stays away from 0).
    row_left: Vec<Viewed>,
    col_right: Vec<Viewed>,
}

fn bin_case(va: Vals, vb: Vals) -> BoxedStrategy<BinCase> {
    (arb_shape(1..=3), 1usize..=4, 1usize..=4)
        .prop_flat_map(move |(s, m, n)| (Just(s.clone()), smaller_shape(&s), smaller_shape(&s), Just(m), Just(n)))
        .prop_flat_map(move |(s, sa, sb, m, n)| {
            (
                views(s.clone(), va),
                views(s, vb),
                views(sa, va),
                views(sb, vb),
                views(vec![m, 1], va),
                views(vec![n], vb),
                (views(vec![n], va), views(vec![m, 1], vb)),
            )
        })
        .prop_map(|(a, b, a_small, b_small, col, row, (row_left, col_right))| BinCase {
            a,
            b,
            a_small,
            b_small,
            col,
            row,
            row_left,
            col_right,
        })
        .boxed()
}

fn check_binary_same_shape(name: &str, c: &BinCase, f: impl Fn(&T, &T) -> T) -> TestResult {
    check_pairs(name, &c.a, &c.b, &f)
}

fn check_binary_broadcasting(name: &str, c: &BinCase, f: impl Fn(&T, &T) -> T) -> TestResult {
    check_pairs(name, &c.a, &c.b_small, &f)?;
    check_pairs(name, &c.a_small, &c.b, &f)?;
    check_pairs(name, &c.a_small, &c.b_small, &f)?;
    check_pairs(name, &c.col, &c.row, &f)?;
    // The row on the left: [n] op [m, 1].
    check_pairs(name, &c.row_left, &c.col_right, &f)
}

/// A scalar-form strategy: views plus a scalar constant.
fn views_and_scalar(vals: Vals) -> BoxedStrategy<(Vec<Viewed>, f64)> {
    (any_views(0..=3, vals), -3.0f64..3.0).boxed()
}

// ---------------------------------------------------------------------------------------------
// Matmul cases
// ---------------------------------------------------------------------------------------------

/// Views of the two operands of one matmul shape pair.
type MatPair = (Vec<Viewed>, Vec<Viewed>);

fn mat_pair(sa: Vec<usize>, sb: Vec<usize>) -> BoxedStrategy<MatPair> {
    (views(sa, Vals::Any), views(sb, Vals::Any)).boxed()
}

fn matmul_dims() -> BoxedStrategy<(usize, usize, usize, usize, usize)> {
    (1usize..=3, 1usize..=3, 1usize..=4, 1usize..=4, 1usize..=4).boxed()
}

fn check_matmul_pairs(pairs: &[MatPair], second_order: bool) -> TestResult {
    for (a, b) in pairs {
        if second_order {
            gradgrad_pairs("matmul", a, b, |x, y| x.matmul(y))?;
        } else {
            check_pairs("matmul", a, b, |x, y| x.matmul(y))?;
        }
    }
    Ok(())
}

/// Every kind of `a` with every kind of `b` (strided GEMM operands in every combination).
fn check_matmul_all_kinds(a: &[Viewed], b: &[Viewed]) -> TestResult {
    for a in a {
        for b in b {
            check(
                format_args!("matmul with a = {a}, b = {b}"),
                |xs| a.view(&xs[0]).matmul(&b.view(&xs[1])),
                &[a.leaf.clone(), b.leaf.clone()],
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Indexing and joining cases
// ---------------------------------------------------------------------------------------------

/// A shape, a dim of it, and views of that shape.
fn views_with_dim(ranks: std::ops::RangeInclusive<usize>, vals: Vals) -> BoxedStrategy<(Vec<Viewed>, usize)> {
    arb_shape(ranks)
        .prop_flat_map(|s| {
            let r = s.len();
            (Just(s), 0..r)
        })
        .prop_flat_map(move |(s, dim)| (views(s, vals), Just(dim)))
        .boxed()
}

/// Views, a dim, and indices into that dim with at least one repeat.
fn index_select_case(vals: Vals) -> BoxedStrategy<(Vec<Viewed>, usize, Vec<usize>)> {
    arb_shape(1..=3)
        .prop_flat_map(|s| {
            let r = s.len();
            (Just(s), 0..r)
        })
        .prop_flat_map(move |(s, dim)| {
            let size = s[dim];
            (views(s, vals), Just(dim), (1usize..=4).prop_flat_map(move |len| indices(size, len)))
        })
        .prop_map(|(v, dim, mut idx)| {
            idx.push(idx[0]);
            (v, dim, idx)
        })
        .boxed()
}

/// Views, a dim, and one index per slice along that dim.
fn gather_case(vals: Vals) -> BoxedStrategy<(Vec<Viewed>, usize, Vec<usize>)> {
    arb_shape(1..=3)
        .prop_flat_map(|s| {
            let r = s.len();
            (Just(s), 0..r)
        })
        .prop_flat_map(move |(s, dim)| {
            let size = s[dim];
            let slices = numel(&s) / size;
            (views(s, vals), Just(dim), indices(size, slices))
        })
        .boxed()
}

/// Parts for `cat` along `dim`: equal shapes except along `dim`.
fn cat_case(vals: Vals) -> BoxedStrategy<(Vec<Vec<Viewed>>, usize)> {
    arb_shape(1..=3)
        .prop_flat_map(|s| {
            let r = s.len();
            (Just(s), 0..r, prop::collection::vec(1usize..=3, 2..=3))
        })
        .prop_flat_map(move |(s, dim, lens)| {
            let parts: Vec<BoxedStrategy<Vec<Viewed>>> = lens
                .iter()
                .map(|&len| {
                    let mut shape = s.clone();
                    shape[dim] = len;
                    views(shape, vals)
                })
                .collect();
            (parts, Just(dim))
        })
        .boxed()
}

/// Parts for `stack` (equal shapes) and the new dim (`0..=rank`).
fn stack_case(vals: Vals) -> BoxedStrategy<(Vec<Vec<Viewed>>, usize)> {
    (arb_shape(1..=3), 2usize..=3)
        .prop_flat_map(|(s, count)| {
            let r = s.len();
            (Just(s), Just(count), 0..=r)
        })
        .prop_flat_map(move |(s, count, dim)| {
            let parts: Vec<BoxedStrategy<Vec<Viewed>>> = (0..count).map(|_| views(s.clone(), vals)).collect();
            (parts, Just(dim))
        })
        .boxed()
}

/// Shapes with the element count of `shape` to reshape it to: flat, reversed, with a leading
/// 1, the first two or the last two dims merged, a 1 inserted after dim 0 or before the last
/// dim, and `[]` for one element.
fn reshape_targets(shape: &[usize]) -> Vec<Vec<usize>> {
    let n = numel(shape);
    let mut reversed = shape.to_vec();
    reversed.reverse();
    let mut out = vec![vec![n], reversed, [&[1], shape].concat()];
    if n == 1 {
        out.push(vec![]);
    }
    if shape.len() >= 2 {
        let mut merged = vec![shape[0] * shape[1]];
        merged.extend_from_slice(&shape[2..]);
        out.push(merged);
        let mut split_last = shape.to_vec();
        let last = split_last.pop().unwrap_or(1);
        split_last.extend([1, last]);
        out.push(split_last);
        let r = shape.len();
        let mut merged_last = shape[..r - 2].to_vec();
        merged_last.push(shape[r - 2] * shape[r - 1]);
        out.push(merged_last);
        let mut one_inside = shape.to_vec();
        one_inside.insert(1, 1);
        out.push(one_inside);
    }
    out
}

// =============================================================================================
// First derivatives
// =============================================================================================

proptest! {
    #![proptest_config(config())]

    // ----- add, sub, mul, div -----

    #[test]
    fn gradcheck_add_views(c in bin_case(Vals::Any, Vals::Any)) {
        check_binary_same_shape("add", &c, |a, b| a + b)?;
    }

    #[test]
    fn gradcheck_add_broadcasting(c in bin_case(Vals::Any, Vals::Any)) {
        check_binary_broadcasting("add", &c, |a, b| a + b)?;
    }

    #[test]
    fn gradcheck_add_scalar((vs, s) in views_and_scalar(Vals::Any)) {
        check_unary("&t + s", &vs, |x| x + s)?;
        check_unary("s + &t", &vs, |x| s + x)?;
        check_unary("&t + 2.0", &vs, |x| x + 2.0)?;
    }

    #[test]
    fn gradcheck_sub_views(c in bin_case(Vals::Any, Vals::Any)) {
        check_binary_same_shape("sub", &c, |a, b| a - b)?;
    }

    #[test]
    fn gradcheck_sub_broadcasting(c in bin_case(Vals::Any, Vals::Any)) {
        check_binary_broadcasting("sub", &c, |a, b| a - b)?;
    }

    #[test]
    fn gradcheck_sub_scalar((vs, s) in views_and_scalar(Vals::Any)) {
        check_unary("&t - s", &vs, |x| x - s)?;
        check_unary("s - &t", &vs, |x| s - x)?;
        check_unary("2.0 - &t", &vs, |x| 2.0 - x)?;
    }

    #[test]
    fn gradcheck_mul_views(c in bin_case(Vals::Any, Vals::Any)) {
        check_binary_same_shape("mul", &c, |a, b| a * b)?;
        // The same operand twice: gradients from both sides must accumulate.
        check_unary("x * x", &c.a, |x| x * x)?;
    }

    #[test]
    fn gradcheck_mul_broadcasting(c in bin_case(Vals::Any, Vals::Any)) {
        check_binary_broadcasting("mul", &c, |a, b| a * b)?;
    }

    #[test]
    fn gradcheck_mul_scalar((vs, s) in views_and_scalar(Vals::Any)) {
        check_unary("&t * s", &vs, |x| x * s)?;
        check_unary("s * &t", &vs, |x| s * x)?;
        check_unary("&t * 3.0", &vs, |x| x * 3.0)?;
    }

    #[test]
    fn gradcheck_div_views(c in bin_case(Vals::Any, Vals::NonZero)) {
        check_binary_same_shape("div", &c, |a, b| a / b)?;
    }

    #[test]
    fn gradcheck_div_broadcasting(c in bin_case(Vals::Any, Vals::NonZero)) {
        check_binary_broadcasting("div", &c, |a, b| a / b)?;
    }

    #[test]
    fn gradcheck_div_scalar((vs, s) in views_and_scalar(Vals::NonZero)) {
        let s = if s.abs() < 0.5 { s + 1.0 } else { s };
        check_unary("&t / s", &vs, |x| x / s)?;
        check_unary("s / &t", &vs, |x| s / x)?;
        check_unary("1.0 / &t", &vs, |x| 1.0 / x)?;
    }

    // ----- unary elementwise -----

    #[test]
    fn gradcheck_neg(vs in any_views(0..=3, Vals::Any)) {
        check_unary("neg", &vs, |x| x.neg())?;
        check_unary("-x", &vs, |x| -x)?;
    }

    #[test]
    fn gradcheck_exp(vs in any_views(0..=3, Vals::Any)) {
        check_unary("exp", &vs, |x| x.exp())?;
    }

    #[test]
    fn gradcheck_ln(vs in any_views(0..=3, Vals::Pos)) {
        check_unary("ln", &vs, |x| x.ln())?;
    }

    #[test]
    fn gradcheck_powf((vs, p) in (any_views(0..=3, Vals::Pos), -2.0f64..3.0)) {
        check_unary(&format!("powf({p})"), &vs, |x| x.powf(p))?;
        check_unary("powf(0.5)", &vs, |x| x.powf(0.5))?;
        check_unary("powf(-1)", &vs, |x| x.powf(-1.0))?;
    }

    #[test]
    fn gradcheck_powf_integer_exponent_negative_base(vs in any_views(0..=3, Vals::Any)) {
        check_unary("powf(2)", &vs, |x| x.powf(2.0))?;
        check_unary("powf(3)", &vs, |x| x.powf(3.0))?;
    }

    #[test]
    fn gradcheck_log_sin_cos(vs in any_views(0..=3, Vals::Pos)) {
        check_unary("log", &vs, |x| x.log())?;
        check_unary("sin", &vs, |x| x.sin())?;
        check_unary("cos", &vs, |x| x.cos())?;
        gradgrad_unary("sin", &vs, |x| x.sin())?;
        gradgrad_unary("cos", &vs, |x| x.cos())?;
    }

    #[test]
    fn gradcheck_pow_views(c in bin_case(Vals::Pos, Vals::Any)) {
        check_binary_same_shape("pow", &c, |a, b| a.pow(b))?;
    }

    #[test]
    fn gradcheck_pow_broadcasting(c in bin_case(Vals::Pos, Vals::Any)) {
        // Every broadcasting pattern with the positive operand as the base (the row-on-the-left
        // case of `check_binary_broadcasting` would put the exponent's values in the base).
        let pow = |a: &T, b: &T| a.pow(b);
        check_pairs("pow", &c.a, &c.b_small, pow)?;
        check_pairs("pow", &c.a_small, &c.b, pow)?;
        check_pairs("pow", &c.a_small, &c.b_small, pow)?;
        check_pairs("pow", &c.col, &c.row, pow)?;
        gradgrad_pairs("pow", &c.a, &c.b_small, |a, b| a.pow(b))?;
    }

    #[test]
    fn gradcheck_min_dim(vs in any_views(1..=3, Vals::Distinct)) {
        for d in 0..vs[0].shape.len() {
            check_unary(&format!("min_dim({d})"), &vs, |x| x.min_dim(d, false).0)?;
        }
    }

    #[test]
    fn gradcheck_gelu(vs in any_views(0..=3, Vals::Wide)) {
        check_unary("gelu", &vs, |x| x.gelu())?;
        gradgrad_unary("gelu", &vs, |x| x.gelu())?;
    }

    #[test]
    fn gradcheck_gelu_tanh(vs in any_views(0..=3, Vals::Wide)) {
        check_unary("gelu_tanh", &vs, |x| x.gelu_tanh())?;
        gradgrad_unary("gelu_tanh", &vs, |x| x.gelu_tanh())?;
    }

    #[test]
    fn gradcheck_where_cond_masked_fill_and_triangles(c in bin_case(Vals::Any, Vals::Any)) {
        // The condition: a fixed pattern over the operands' common shape, broadcast from a row.
        let pick = |a: &T, b: &T| {
            let shape = tensorgrad::shape::broadcast_shapes("test", a.shape(), b.shape());
            let n = *shape.last().unwrap_or(&1);
            let row = Tensor::from_vec((0..n).map(|i| (i % 2) as f64).collect(), &[n]);
            Tensor::where_cond(&row, a, b)
        };
        check_pairs("where_cond", &c.a, &c.b, pick)?;
        check_pairs("where_cond", &c.a, &c.b_small, pick)?;
        check_pairs("where_cond", &c.col, &c.row, pick)?;
        gradgrad_pairs("where_cond", &c.a, &c.b, |a, b| pick(a, b) * pick(b, a))?;
        check_unary("masked_fill", &c.a, |x| {
            let n = *x.shape().last().unwrap_or(&1);
            x.masked_fill(&Tensor::from_vec((0..n).map(|i| (i % 3 == 0) as u8 as f64).collect(), &[n]), -5.0)
        })?;
    }

    #[test]
    fn gradcheck_tril_triu(vs in any_views(2..=3, Vals::Any)) {
        check_unary("tril(0)", &vs, |x| x.tril(0))?;
        check_unary("triu(1)", &vs, |x| x.triu(1))?;
        check_unary("tril(-1)", &vs, |x| x.tril(-1))?;
    }

    #[test]
    fn gradcheck_flatten(vs in any_views(2..=3, Vals::Any)) {
        check_unary("flatten(0, 1)", &vs, |x| x.flatten(0, 1))?;
        check_unary("flatten(1, last)", &vs, |x| x.flatten(1, x.ndim() - 1))?;
    }

    #[test]
    fn gradcheck_sqrt(vs in any_views(0..=3, Vals::Pos)) {
        check_unary("sqrt", &vs, |x| x.sqrt())?;
    }

    #[test]
    fn gradcheck_abs(vs in any_views(0..=3, Vals::Avoid(&[0.0]))) {
        check_unary("abs", &vs, |x| x.abs())?;
    }

    #[test]
    fn gradcheck_clamp(vs in any_views(0..=3, Vals::Avoid(&[-1.0, 0.5]))) {
        check_unary("clamp(-1, 0.5)", &vs, |x| x.clamp(-1.0, 0.5))?;
    }

    #[test]
    fn gradcheck_tanh(vs in any_views(0..=3, Vals::Any)) {
        check_unary("tanh", &vs, |x| x.tanh())?;
    }

    #[test]
    fn gradcheck_sigmoid(vs in any_views(0..=3, Vals::Wide)) {
        check_unary("sigmoid", &vs, |x| x.sigmoid())?;
    }

    #[test]
    fn gradcheck_relu(vs in any_views(0..=3, Vals::Avoid(&[0.0]))) {
        check_unary("relu", &vs, |x| x.relu())?;
    }

    // ----- reductions -----

    #[test]
    fn gradcheck_sum(vs in any_views(0..=3, Vals::Any)) {
        check_unary("sum", &vs, |x| x.sum())?;
    }

    #[test]
    fn gradcheck_sum_dim(vs in any_views(1..=3, Vals::Any)) {
        for d in 0..vs[0].shape.len() {
            for keepdim in [true, false] {
                check_unary(&format!("sum_dim({d}, {keepdim})"), &vs, |x| x.sum_dim(d, keepdim))?;
            }
        }
    }

    #[test]
    fn gradcheck_sum_dims_keepdim(vs in any_views(2..=3, Vals::Any)) {
        let r = vs[0].shape.len();
        check_unary("sum_dims_keepdim(first, last)", &vs, |x| x.sum_dims_keepdim(&[0, r - 1]))?;
        check_unary("sum_dims_keepdim(all)", &vs, |x| x.sum_dims_keepdim(&(0..r).collect::<Vec<_>>()))?;
    }

    #[test]
    fn gradcheck_sum_to_shape((vs, small) in arb_shape(1..=3)
        .prop_flat_map(|s| (views(s.clone(), Vals::Any), smaller_shape(&s))))
    {
        check_unary(&format!("sum_to_shape({small:?})"), &vs, |x| x.sum_to_shape(&small))?;
    }

    #[test]
    fn gradcheck_mean(vs in any_views(0..=3, Vals::Any)) {
        check_unary("mean", &vs, |x| x.mean())?;
    }

    #[test]
    fn gradcheck_mean_dim(vs in any_views(1..=3, Vals::Any)) {
        for d in 0..vs[0].shape.len() {
            for keepdim in [true, false] {
                check_unary(&format!("mean_dim({d}, {keepdim})"), &vs, |x| x.mean_dim(d, keepdim))?;
            }
        }
    }

    #[test]
    fn gradcheck_max_dim(vs in any_views(1..=3, Vals::Distinct)) {
        for d in 0..vs[0].shape.len() {
            for keepdim in [true, false] {
                check_unary(&format!("max_dim({d}, {keepdim})"), &vs, |x| x.max_dim(d, keepdim).0)?;
            }
        }
    }

    // ----- softmax -----

    #[test]
    fn gradcheck_softmax(vs in any_views(1..=3, Vals::Wide)) {
        for d in 0..vs[0].shape.len() {
            check_unary(&format!("softmax({d})"), &vs, |x| x.softmax(d))?;
        }
    }

    #[test]
    fn gradcheck_log_softmax(vs in any_views(1..=3, Vals::Wide)) {
        for d in 0..vs[0].shape.len() {
            check_unary(&format!("log_softmax({d})"), &vs, |x| x.log_softmax(d))?;
        }
    }

    // ----- matmul -----

    #[test]
    fn gradcheck_matmul_2d(((a, b), _) in matmul_dims()
        .prop_flat_map(|(_, _, m, k, n)| (mat_pair(vec![m, k], vec![k, n]), Just(()))))
    {
        check_matmul_all_kinds(&a, &b)?;
    }

    #[test]
    fn gradcheck_matmul_batched(pair in matmul_dims()
        .prop_flat_map(|(b, _, m, k, n)| mat_pair(vec![b, m, k], vec![b, k, n])))
    {
        check_matmul_pairs(&[pair], false)?;
    }

    #[test]
    fn gradcheck_matmul_broadcast_batch(pairs in matmul_dims().prop_flat_map(|(b, c, m, k, n)| (
        mat_pair(vec![b, m, k], vec![k, n]),
        mat_pair(vec![m, k], vec![b, k, n]),
        mat_pair(vec![1, m, k], vec![b, k, n]),
        mat_pair(vec![b, 1, m, k], vec![c, k, n]),
    )))
    {
        check_matmul_pairs(&[pairs.0, pairs.1, pairs.2, pairs.3], false)?;
    }

    #[test]
    fn gradcheck_matmul_vector(pairs in matmul_dims().prop_flat_map(|(b, _, m, k, n)| (
        mat_pair(vec![k], vec![k]),
        mat_pair(vec![k], vec![k, n]),
        mat_pair(vec![m, k], vec![k]),
        mat_pair(vec![k], vec![b, k, n]),
        mat_pair(vec![b, m, k], vec![k]),
    )))
    {
        check_matmul_pairs(&[pairs.0, pairs.1, pairs.2, pairs.3, pairs.4], false)?;
    }

    // ----- joining and indexing -----

    #[test]
    fn gradcheck_cat((parts, dim) in cat_case(Vals::Any)) {
        check_lists(&format!("cat(dim {dim})"), &parts, |xs| Tensor::cat(xs, dim), false)?;
    }

    #[test]
    fn gradcheck_stack((parts, dim) in stack_case(Vals::Any)) {
        check_lists(&format!("stack(dim {dim})"), &parts, |xs| Tensor::stack(xs, dim), false)?;
    }

    #[test]
    fn gradcheck_index_select((vs, dim, idx) in index_select_case(Vals::Any)) {
        check_unary(&format!("index_select({dim}, {idx:?})"), &vs, |x| x.index_select(dim, &idx))?;
    }

    #[test]
    fn gradcheck_gather((vs, dim, idx) in gather_case(Vals::Any)) {
        check_unary(&format!("gather({dim}, {idx:?})"), &vs, |x| x.gather(dim, &idx))?;
    }

    // ----- the view ops themselves -----

    #[test]
    fn gradcheck_t(vs in any_views(2..=2, Vals::Any)) {
        check_unary("t", &vs, |x| x.t())?;
        check_unary("t then exp", &vs, |x| x.t().exp())?;
    }

    #[test]
    fn gradcheck_transpose(vs in any_views(2..=4, Vals::Any)) {
        let r = vs[0].shape.len();
        for a in 0..r {
            for b in 0..r {
                check_unary(&format!("transpose({a}, {b})"), &vs, |x| x.transpose(a, b))?;
            }
        }
    }

    #[test]
    fn gradcheck_permute((vs, perm) in arb_shape(1..=4).prop_flat_map(|s| {
        let r = s.len();
        (views(s, Vals::Any), Just((0..r).collect::<Vec<usize>>()).prop_shuffle())
    }))
    {
        check_unary(&format!("permute({perm:?})"), &vs, |x| x.permute(&perm))?;
        check_unary(&format!("permute({perm:?}) then tanh"), &vs, |x| x.permute(&perm).tanh())?;
    }

    #[test]
    fn gradcheck_narrow(((vs, dim), start, len) in views_with_dim(1..=3, Vals::Any)
        .prop_flat_map(|(vs, dim)| {
            let size = vs[0].shape[dim];
            (Just((vs, dim)), 0..size)
        })
        .prop_flat_map(|(vd, start)| {
            let size = vd.0[0].shape[vd.1];
            (Just(vd), Just(start), 0..=size - start)
        }))
    {
        check_unary(&format!("narrow({dim}, {start}, {len})"), &vs, |x| x.narrow(dim, start, len))?;
    }

    #[test]
    fn gradcheck_broadcast_to((vs, target) in arb_shape(1..=3)
        .prop_flat_map(|s| (Just(s.clone()), smaller_shape(&s), 0usize..=1, 1usize..=3))
        .prop_flat_map(|(s, small, extra_dims, lead)| {
            let target = [vec![lead; extra_dims], s].concat();
            (views(small, Vals::Any), Just(target))
        }))
    {
        check_unary(&format!("broadcast_to({target:?})"), &vs, |x| x.broadcast_to(&target))?;
    }

    #[test]
    fn gradcheck_squeeze((vs, dim) in arb_shape(0..=2)
        .prop_flat_map(|s| {
            let r = s.len();
            (Just(s), 0..=r)
        })
        .prop_flat_map(|(mut s, dim)| {
            s.insert(dim, 1);
            (views(s, Vals::Any), Just(dim))
        }))
    {
        check_unary(&format!("squeeze({dim})"), &vs, |x| x.squeeze(dim))?;
    }

    #[test]
    fn gradcheck_unsqueeze(vs in any_views(0..=3, Vals::Any)) {
        for d in 0..=vs[0].shape.len() {
            check_unary(&format!("unsqueeze({d})"), &vs, |x| x.unsqueeze(d))?;
        }
    }

    #[test]
    fn gradcheck_reshape(vs in any_views(0..=3, Vals::Any)) {
        for target in reshape_targets(&vs[0].shape) {
            check_unary(&format!("reshape({target:?})"), &vs, |x| x.reshape(&target))?;
        }
    }

    #[test]
    fn gradcheck_reshape_of_transposed(vs in arb_shape(2..=2).prop_flat_map(|s| transposed_input(s, Vals::Any))) {
        // The transposed view cannot be expressed with strides after flattening: a copy.
        let (m, n) = (vs.shape[0], vs.shape[1]);
        for target in [vec![m * n], vec![n, m], vec![1, m * n], vec![m, n, 1]] {
            check_unary(&format!("reshape({target:?}) of a transposed view"), std::slice::from_ref(&vs), |x| {
                x.reshape(&target)
            })?;
        }
    }

    #[test]
    fn gradcheck_contiguous(vs in any_views(0..=3, Vals::Any)) {
        check_unary("contiguous", &vs, |x| x.contiguous())?;
        check_unary("contiguous then sigmoid", &vs, |x| x.contiguous().sigmoid())?;
    }

    #[test]
    fn gradcheck_composed_views(vs in any_views(2..=3, Vals::Any)) {
        // A chain of views feeding a nonlinearity and a reduction.
        check_unary("t/narrow/broadcast chain", &vs, |x| {
            let r = x.ndim();
            let y = x.transpose(0, r - 1);
            let y = y.narrow(0, 0, y.shape()[0]).unsqueeze(0);
            let mut target = y.shape().to_vec();
            target[0] = 2;
            (y.broadcast_to(&target).tanh() * y.exp()).sum_dim(0, false)
        })?;
    }
}

// =============================================================================================
// Second derivatives
// =============================================================================================

proptest! {
    #![proptest_config(config())]

    #[test]
    fn gradgrad_mul(c in bin_case(Vals::Any, Vals::Any)) {
        gradgrad_pairs("mul", &c.a, &c.b, |a, b| a * b)?;
        gradgrad_pairs("mul (broadcast)", &c.a, &c.b_small, |a, b| a * b)?;
        gradgrad_pairs("mul (outer)", &c.col, &c.row, |a, b| a * b)?;
        gradgrad_unary("x * x", &c.a, |x| x * x)?;
    }

    #[test]
    fn gradgrad_div(c in bin_case(Vals::Any, Vals::NonZero)) {
        gradgrad_pairs("div", &c.a, &c.b, |a, b| a / b)?;
        gradgrad_pairs("div (broadcast)", &c.a_small, &c.b, |a, b| a / b)?;
        gradgrad_unary("1.0 / x", &c.b, |x| 1.0 / x)?;
    }

    #[test]
    fn gradgrad_add_broadcast(c in bin_case(Vals::Any, Vals::Any)) {
        let square = |y: T| &y * &y;
        gradgrad_pairs("(a + b)²", &c.a, &c.b_small, |a, b| square(a + b))?;
        gradgrad_pairs("(a + b)² (outer)", &c.col, &c.row, |a, b| square(a + b))?;
        gradgrad_pairs("(a - b)²", &c.a_small, &c.b, |a, b| square(a - b))?;
    }

    #[test]
    fn gradgrad_scalar_forms((vs, s) in views_and_scalar(Vals::NonZero)) {
        gradgrad_unary("(2 - x)·(x + s)·3", &vs, |x| (2.0 - x) * (x + s) * 3.0)?;
        gradgrad_unary("x / 4 · -x", &vs, |x| (x / 4.0) * -x)?;
    }

    #[test]
    fn gradgrad_exp(vs in any_views(1..=3, Vals::Any)) {
        gradgrad_unary("exp", &vs, |x| x.exp())?;
    }

    #[test]
    fn gradgrad_ln(vs in any_views(1..=3, Vals::Pos)) {
        gradgrad_unary("ln", &vs, |x| x.ln())?;
    }

    #[test]
    fn gradgrad_powf((vs, p) in (any_views(1..=3, Vals::Pos), -2.0f64..3.0)) {
        gradgrad_unary(&format!("powf({p})"), &vs, |x| x.powf(p))?;
        gradgrad_unary("powf(3)", &vs, |x| x.powf(3.0))?;
    }

    #[test]
    fn gradgrad_sqrt(vs in any_views(1..=3, Vals::Pos)) {
        gradgrad_unary("sqrt", &vs, |x| x.sqrt())?;
    }

    #[test]
    fn gradgrad_tanh(vs in any_views(1..=3, Vals::Any)) {
        gradgrad_unary("tanh", &vs, |x| x.tanh())?;
    }

    #[test]
    fn gradgrad_sigmoid(vs in any_views(1..=3, Vals::Wide)) {
        gradgrad_unary("sigmoid", &vs, |x| x.sigmoid())?;
    }

    #[test]
    fn gradgrad_piecewise(vs in any_views(1..=3, Vals::Avoid(&[-1.0, 0.0, 0.5]))) {
        // Piecewise-linear ops have a zero second derivative of their own, but their masks must
        // still route the second-order gradient of what surrounds them.
        gradgrad_unary("abs · x", &vs, |x| x.abs() * x)?;
        gradgrad_unary("relu²", &vs, |x| x.relu() * x.relu())?;
        gradgrad_unary("clamp · exp", &vs, |x| x.clamp(-1.0, 0.5) * x.exp())?;
        gradgrad_unary("neg · x", &vs, |x| x.neg() * x)?;
    }

    #[test]
    fn gradgrad_softmax(vs in any_views(1..=3, Vals::Any)) {
        for d in 0..vs[0].shape.len() {
            gradgrad_unary(&format!("softmax({d})"), &vs, |x| x.softmax(d))?;
        }
    }

    #[test]
    fn gradgrad_log_softmax(vs in any_views(1..=3, Vals::Any)) {
        for d in 0..vs[0].shape.len() {
            gradgrad_unary(&format!("log_softmax({d})"), &vs, |x| x.log_softmax(d))?;
        }
    }

    #[test]
    fn gradgrad_matmul(pairs in matmul_dims().prop_flat_map(|(b, _, m, k, n)| (
        mat_pair(vec![m, k], vec![k, n]),
        mat_pair(vec![b, m, k], vec![k, n]),
        mat_pair(vec![k], vec![b, k, n]),
    )))
    {
        check_matmul_pairs(&[pairs.0.clone(), pairs.1, pairs.2], true)?;
        // A product of x with itself: x·xᵀ is quadratic in x.
        gradgrad_unary("x·xᵀ", &pairs.0 .0, |x| x.matmul(&x.t()))?;
    }

    #[test]
    fn gradgrad_sum(vs in any_views(1..=3, Vals::Any)) {
        gradgrad_unary("sum²", &vs, |x| x.sum() * x.sum())?;
        for d in 0..vs[0].shape.len() {
            for keepdim in [true, false] {
                gradgrad_unary(&format!("sum_dim({d}, {keepdim})²"), &vs, |x| {
                    let s = x.sum_dim(d, keepdim);
                    &s * &s
                })?;
            }
        }
    }

    #[test]
    fn gradgrad_mean(vs in any_views(1..=3, Vals::Any)) {
        gradgrad_unary("mean · sum", &vs, |x| x.mean() * x.sum())?;
        for d in 0..vs[0].shape.len() {
            gradgrad_unary(&format!("mean_dim({d})²"), &vs, |x| x.mean_dim(d, false).powf(2.0))?;
        }
    }

    #[test]
    fn gradgrad_max_dim(vs in any_views(1..=3, Vals::Distinct)) {
        for d in 0..vs[0].shape.len() {
            gradgrad_unary(&format!("max_dim({d})²"), &vs, |x| x.max_dim(d, false).0.powf(2.0))?;
        }
    }

    #[test]
    fn gradgrad_index_select((vs, dim, idx) in index_select_case(Vals::Any)) {
        gradgrad_unary(&format!("index_select({dim}, {idx:?})²"), &vs, |x| {
            let y = x.index_select(dim, &idx);
            &y * &y
        })?;
    }

    #[test]
    fn gradgrad_gather((vs, dim, idx) in gather_case(Vals::Any)) {
        gradgrad_unary(&format!("gather({dim}, {idx:?})²"), &vs, |x| {
            let y = x.gather(dim, &idx);
            &y * &y
        })?;
    }

    #[test]
    fn gradgrad_narrow(((vs, dim), start) in views_with_dim(1..=3, Vals::Any)
        .prop_flat_map(|(vs, dim)| {
            let size = vs[0].shape[dim];
            (Just((vs, dim)), 0..size)
        }))
    {
        let len = vs[0].shape[dim] - start;
        gradgrad_unary(&format!("narrow({dim}, {start}, {len})²"), &vs, |x| {
            let y = x.narrow(dim, start, len);
            &y * &y
        })?;
    }

    #[test]
    fn gradgrad_cat((parts, dim) in cat_case(Vals::Any)) {
        check_lists(&format!("tanh(cat(dim {dim}))"), &parts, |xs| Tensor::cat(xs, dim).tanh(), true)?;
    }

    #[test]
    fn gradgrad_stack((parts, dim) in stack_case(Vals::Any)) {
        check_lists(&format!("stack(dim {dim})²"), &parts, |xs| {
            let y = Tensor::stack(xs, dim);
            &y * &y
        }, true)?;
    }

    #[test]
    fn gradgrad_view_ops(vs in any_views(2..=3, Vals::Any)) {
        let r = vs[0].shape.len();
        gradgrad_unary("transpose²", &vs, |x| x.transpose(0, r - 1).powf(2.0))?;
        gradgrad_unary("permute²", &vs, |x| {
            let perm: Vec<usize> = (0..r).rev().collect();
            x.permute(&perm).powf(2.0)
        })?;
        gradgrad_unary("reshape²", &vs, |x| x.reshape(&[x.numel()]).powf(2.0))?;
        gradgrad_unary("unsqueeze/squeeze²", &vs, |x| x.unsqueeze(1).squeeze(1).powf(2.0))?;
        gradgrad_unary("broadcast_to²", &vs, |x| {
            let target = [&[2], x.shape()].concat();
            x.broadcast_to(&target).powf(2.0)
        })?;
        gradgrad_unary("contiguous²", &vs, |x| x.contiguous().powf(2.0))?;
    }
}

// =============================================================================================
// The harness itself
// =============================================================================================

/// The checks above would pass vacuously if gradcheck could not see a wrong gradient, or if
/// the "views" were contiguous after all.
#[test]
fn harness_detects_wrong_gradients_and_builds_strided_views() {
    let x = Tensor::from_vec(vec![0.3, -1.2, 2.0, 0.7, 1.1, -0.4], &[2, 3]);
    // `x · detach(x)` has gradient x where the true one is 2x.
    assert!(gradcheck(|xs| &xs[0] * &xs[0].detach(), std::slice::from_ref(&x)).is_err());
    // A second derivative that is cut off (the first-order graph is not recorded).
    let no_graph = |xs: &[T]| xs[0].powf(3.0).sum().backward().get(&xs[0]).unwrap().clone();
    assert!(gradcheck(no_graph, std::slice::from_ref(&x)).is_err());
    assert!(gradcheck(grad_of(|xs| xs[0].powf(3.0)), std::slice::from_ref(&x)).is_ok());

    let shape = vec![3, 4];
    let leaf = |s: &[usize]| Tensor::from_vec(vec![0.5; numel(s)], s);
    let cases = [
        (Kind::Transposed { a: 0, b: 1 }, vec![4, 3]),
        (Kind::Permuted(vec![1, 0]), vec![4, 3]),
        (Kind::Narrowed { dim: 1, start: 1 }, vec![3, 6]),
        (Kind::Broadcast, vec![4]),
    ];
    for (kind, leaf_shape) in cases {
        let v = Viewed { kind, shape: shape.clone(), leaf: leaf(&leaf_shape) };
        assert!(!v.view(&v.leaf).is_contiguous(), "{v} is contiguous");
    }
    let column = Viewed { kind: Kind::Column { col: 1 }, shape: vec![3], leaf: leaf(&[3, 2]) };
    assert!(!column.view(&column.leaf).is_contiguous());
}
