//! Pooling, padding and reshape ops (`max_pool1d`/`2d`, `avg_pool1d`/`2d`,
//! `adaptive_avg_pool1d`/`2d`, `adaptive_max_pool2d`, `pad`, `unflatten`) and their modules
//! (`MaxPool2d`, …, `Unflatten`, `Dropout2d`): values, indices and input gradients against
//! PyTorch (float64, `tests/fixtures/pool/reference.txt`, made by `make_reference.py` in that
//! folder), gradients against central differences on contiguous and non-contiguous inputs of
//! random shapes and options, second derivatives, and the messages of bad calls.

use proptest::prelude::*;
use tensorgrad::nn::{
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, CircularPad2d, ConstantPad2d, Dropout2d, MaxPool1d,
    MaxPool2d, Module, ReflectionPad2d, ReplicationPad2d, Unflatten, ZeroPad2d,
};
use tensorgrad::{AvgPool1dConfig, AvgPool2dConfig, MaxPool1dConfig, MaxPool2dConfig, PadMode, Tensor, gradcheck};

type T = Tensor<f64>;

/// The named list of numbers in the reference file.
fn reference(name: &str) -> Vec<f64> {
    let text = include_str!("fixtures/pool/reference.txt");
    let line = text
        .lines()
        .find(|l| l.split_once(' ').map(|(n, _)| n) == Some(name))
        .unwrap_or_else(|| panic!("{name} missing"));
    let list = line.split_once(' ').unwrap().1.trim().trim_start_matches('[').trim_end_matches(']');
    list.split(',').map(|v| v.trim().parse().unwrap()).collect()
}

/// The fixture script's distinct values (1009 is prime).
fn values(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 7919) % 1009) as f64 / 100.0 - 5.0).collect()
}

fn x1() -> T {
    Tensor::from_vec(values(66), &[2, 3, 11])
}

fn x2() -> T {
    Tensor::from_vec(values(336), &[2, 3, 7, 8])
}

fn xt() -> T {
    Tensor::from_vec(vec![1.0, 3.0, 3.0, 0.0, 3.0, 3.0, 2.0, 2.0, 2.0, 2.0, 5.0, 5.0], &[1, 3, 4])
}

fn upstream(shape: &[usize]) -> T {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| -1.0 + 2.3 * i as f64 / (n.max(2) - 1) as f64).collect(), shape)
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{what}[{i}]: {g} vs PyTorch {w}");
    }
}

/// Runs `f` on `x`, compares the output, its shape, the input gradient of `Σ y ⊙ g` and (for
/// max pooling) the indices with the fixture `name`.
fn check(name: &str, x: T, f: impl Fn(&T) -> (T, Option<T>)) {
    let x = x.requires_grad();
    let (y, idx) = f(&x);
    let shape: Vec<f64> = y.shape().iter().map(|&d| d as f64).collect();
    assert_eq!(shape, reference(&format!("{name}_shape")), "{name}: shape");
    close(&y.to_vec(), &reference(name), name);
    let g = (&y * &upstream(y.shape())).sum().backward();
    close(&g.get(&x).unwrap().to_vec(), &reference(&format!("{name}_grad")), &format!("{name}_grad"));
    if let Some(idx) = idx {
        assert_eq!(idx.to_vec(), reference(&format!("{name}_idx")), "{name}: indices");
    }
}

fn with_idx((y, i): (T, T)) -> (T, Option<T>) {
    (y, Some(i))
}

#[test]
fn max_pooling_matches_pytorch() {
    let m1 = MaxPool1dConfig::new;
    check("mp1_a", x1(), |x| with_idx(x.max_pool1d_with_indices(m1(3).stride(2).padding(1))));
    check("mp1_b", x1(), |x| with_idx(x.max_pool1d_with_indices(m1(2).ceil_mode(true))));
    check("mp1_c", x1(), |x| with_idx(x.max_pool1d_with_indices(m1(3).stride(1).padding(1).dilation(2))));
    check("mp1_d", x1(), |x| with_idx(x.max_pool1d_with_indices(m1(2).stride(2).padding(1).ceil_mode(true))));
    check("mp1_tie", xt(), |x| with_idx(x.max_pool1d_with_indices(m1(2).stride(1))));
    let m2 = MaxPool2dConfig::new;
    check("mp2_a", x2(), |x| with_idx(x.max_pool2d_with_indices(m2(2))));
    check("mp2_b", x2(), |x| with_idx(x.max_pool2d_with_indices(m2(3).stride(2).padding(1))));
    let c = MaxPool2dConfig {
        kernel_size: [3, 2],
        stride: Some([2, 1]),
        padding: [1, 0],
        dilation: [2, 1],
        ..Default::default()
    };
    check("mp2_c", x2(), |x| with_idx(x.max_pool2d_with_indices(c)));
    check("mp2_d", x2(), |x| with_idx(x.max_pool2d_with_indices(m2(2).stride(2).padding(1).ceil_mode(true))));
    check("mp2_e", x2(), |x| with_idx(x.max_pool2d_with_indices(m2(3).stride(2).ceil_mode(true))));
    check("mp2_unbatched", x2().narrow(0, 0, 1).squeeze(0), |x| with_idx(x.max_pool2d_with_indices(m2(2))));
    check("mp2_tie", xt().reshape(&[1, 1, 3, 4]), |x| with_idx(x.max_pool2d_with_indices(m2(2).stride(1))));
    // A window wholly in the padding is −∞ (PyTorch's index and gradient for it point past the
    // end of the plane, into the next one; ours stay in the plane, so only values are compared).
    let empty = x1().narrow(2, 0, 3).max_pool1d(m1(2).stride(1).padding(1).dilation(4));
    assert_eq!(empty.shape(), &[2, 3, 1]);
    assert_eq!(empty.to_vec(), reference("mp1_empty"));
    // PyTorch's adaptive max pooling returns indices too; ours returns the values only.
    check("amp2", x2(), |x| (x.adaptive_max_pool2d([3, 5]), None));
}

#[test]
fn average_pooling_matches_pytorch() {
    let a1 = AvgPool1dConfig::new;
    check("ap1_a", x1(), |x| (x.avg_pool1d(a1(3).stride(2).padding(1)), None));
    check("ap1_b", x1(), |x| (x.avg_pool1d(a1(3).stride(2).padding(1).count_include_pad(false)), None));
    check("ap1_c", x1(), |x| (x.avg_pool1d(a1(2).ceil_mode(true)), None));
    let d = a1(4).stride(3).padding(2).ceil_mode(true);
    check("ap1_d", x1(), |x| (x.avg_pool1d(d.count_include_pad(false)), None));
    check("ap1_e", x1(), |x| (x.avg_pool1d(d), None));
    let a2 = AvgPool2dConfig::new;
    check("ap2_a", x2(), |x| (x.avg_pool2d(a2(2)), None));
    check("ap2_b", x2(), |x| (x.avg_pool2d(a2(3).stride(2).padding(1)), None));
    check("ap2_c", x2(), |x| (x.avg_pool2d(a2(3).stride(2).padding(1).count_include_pad(false)), None));
    check("ap2_d", x2(), |x| (x.avg_pool2d(a2(3).stride(2).padding(1).ceil_mode(true)), None));
    let e = a2(3).stride(2).padding(1).ceil_mode(true).count_include_pad(false);
    check("ap2_e", x2(), |x| (x.avg_pool2d(e), None));
    let f = AvgPool2dConfig { kernel_size: [3, 2], stride: Some([2, 1]), padding: [1, 1], ..Default::default() };
    check("ap2_f", x2(), |x| (x.avg_pool2d(f.divisor_override(5)), None));
    check("aap1_a", x1(), |x| (x.adaptive_avg_pool1d(4), None));
    check("aap1_b", x1(), |x| (x.adaptive_avg_pool1d(15), None));
    check("aap2_a", x2(), |x| (x.adaptive_avg_pool2d([3, 5]), None));
    check("aap2_b", x2(), |x| (x.adaptive_avg_pool2d([10, 9]), None));
    check("aap2_c", x2(), |x| (x.adaptive_avg_pool2d([1, 1]), None));
}

#[test]
fn padding_matches_pytorch() {
    check("pad_const", x2(), |x| (x.pad(&[1, 2, 3, 0], PadMode::Constant(1.5)), None));
    check("pad_const3", x2(), |x| (x.pad(&[1, 1, 0, 2, 1, 0], PadMode::default()), None));
    check("pad_reflect", x2(), |x| (x.pad(&[2, 3, 1, 2], PadMode::Reflect), None));
    check("pad_replicate", x2(), |x| (x.pad(&[3, 1, 0, 4], PadMode::Replicate), None));
    check("pad_circular", x2(), |x| (x.pad(&[2, 3, 1, 2], PadMode::Circular), None));
    check("pad_reflect1", x1(), |x| (x.pad(&[3, 4], PadMode::Reflect), None));
}

#[test]
fn strided_inputs_give_the_same_values_as_contiguous_ones() {
    // A transposed view transposed back, and a narrowed view: the same values as a copy.
    let x = x2();
    let stored = x.transpose(2, 3).contiguous();
    let view = stored.transpose(2, 3);
    assert!(!view.is_contiguous());
    let wide = Tensor::cat(&[x.clone(), x.clone()], 3).narrow(3, 8, 8);
    for v in [&view, &wide] {
        assert_eq!(
            v.max_pool2d(MaxPool2dConfig::new(3).stride(2).padding(1)).to_vec(),
            x.max_pool2d(MaxPool2dConfig::new(3).stride(2).padding(1)).to_vec()
        );
        assert_eq!(v.avg_pool2d(AvgPool2dConfig::new(2)).to_vec(), x.avg_pool2d(AvgPool2dConfig::new(2)).to_vec());
        assert_eq!(v.pad(&[2, 1, 1, 2], PadMode::Reflect).to_vec(), x.pad(&[2, 1, 1, 2], PadMode::Reflect).to_vec());
        assert_eq!(
            v.pad(&[2, 1, 1, 2], PadMode::Constant(-1.0)).to_vec(),
            x.pad(&[2, 1, 1, 2], PadMode::Constant(-1.0)).to_vec()
        );
    }
}

#[test]
fn unflatten_inverts_flatten() {
    let x = Tensor::<f64>::arange(24).reshape(&[2, 12]).requires_grad();
    let y = x.unflatten(1, &[3, 2, 2]);
    assert_eq!(y.shape(), &[2, 3, 2, 2]);
    assert_eq!(y.flatten(1, 3).to_vec(), x.to_vec());
    let g = (&y * &upstream(y.shape())).sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), upstream(&[2, 12]).to_vec());
    assert_eq!(x.unflatten(0, &[1, 2]).shape(), &[1, 2, 12]);
}

#[test]
fn f32_agrees_with_f64() {
    let x = x2();
    let x32 = Tensor::from_vec(x.to_vec().iter().map(|&v| v as f32).collect(), x.shape());
    let pairs: [(Tensor<f32>, T); 3] = [
        (
            x32.max_pool2d(MaxPool2dConfig::new(3).stride(2).padding(1)),
            x.max_pool2d(MaxPool2dConfig::new(3).stride(2).padding(1)),
        ),
        (x32.avg_pool2d(AvgPool2dConfig::new(3).padding(1)), x.avg_pool2d(AvgPool2dConfig::new(3).padding(1))),
        (x32.adaptive_avg_pool2d([3, 5]), x.adaptive_avg_pool2d([3, 5])),
    ];
    for (a, b) in pairs {
        for (p, q) in a.to_vec().iter().zip(b.to_vec()) {
            assert!((*p as f64 - q).abs() < 1e-5, "{p} vs {q}");
        }
    }
}

/// The gradient of `Σ (op(x)² ⊙ u)` with respect to `x`, squared and summed: its gradient
/// needs the recorded backward of `op`.
fn second_order(op: impl Fn(&T) -> T, x0: T) {
    let f = |i: &[T]| {
        let y = op(&i[0]);
        let u = upstream(y.shape());
        let gx = (&y * &y * &u).sum().backward_with_graph().get(&i[0]).unwrap().clone();
        (&gx * &gx.sin()).sum()
    };
    let r = gradcheck(f, std::slice::from_ref(&x0));
    assert!(r.is_ok(), "{}", r.unwrap_err());
}

#[test]
fn second_derivatives_match_central_differences() {
    let x = Tensor::from_vec(values(2 * 5 * 6).iter().map(|v| v * 0.3).collect(), &[1, 2, 5, 6]);
    second_order(|x| x.avg_pool2d(AvgPool2dConfig::new(3).stride(2).padding(1).count_include_pad(false)), x.clone());
    second_order(|x| x.max_pool2d(MaxPool2dConfig::new(2).stride(1).padding(1)), x.clone());
    second_order(|x| x.pad(&[2, 1, 1, 3], PadMode::Reflect), x.clone());
    second_order(|x| x.pad(&[2, 1, 1, 3], PadMode::Constant(0.5)), x.clone());
    second_order(|x| x.adaptive_avg_pool2d([3, 4]), x);
}

// ---------------------------------------------------------------------------------------------
// Gradients of random shapes and options, on contiguous and non-contiguous inputs
// ---------------------------------------------------------------------------------------------

/// `[N, C, H, W]` with `N, C` in 1..=2 and `H, W` in 2..=6, and distinct values (0.1 apart, so
/// a central difference never changes a maximum) in shuffled order.
fn shape_and_values() -> impl Strategy<Value = (Vec<usize>, Vec<f64>)> {
    (1usize..=2, 1usize..=2, 2usize..=6, 2usize..=6).prop_flat_map(|(n, c, h, w)| {
        let len = n * c * h * w;
        let vals: Vec<f64> = (0..len).map(|i| i as f64 * 0.1 - 1.5).collect();
        (Just(vec![n, c, h, w]), Just(vals).prop_shuffle())
    })
}

/// Kernel, stride, padding, dilation and ceil mode for one dim of length `l`, such that one
/// window fits.
fn fits(l: usize, k: usize, p: usize, d: usize) -> bool {
    d * (k - 1) < l + 2 * p
}

/// Checks `op` on the contiguous input, on a transposed view (stored `[N, C, W, H]`) and on a
/// narrowed view (stored with an extra column on the left).
fn check_views(shape: &[usize], vals: &[f64], op: &dyn Fn(&T) -> T) -> Result<(), String> {
    let x = Tensor::from_vec(vals.to_vec(), shape);
    gradcheck(|i: &[T]| op(&i[0]), std::slice::from_ref(&x)).map_err(|e| format!("contiguous: {e}"))?;
    let stored_t = x.transpose(2, 3).contiguous();
    gradcheck(|i: &[T]| op(&i[0].transpose(2, 3)), &[stored_t]).map_err(|e| format!("transposed: {e}"))?;
    let stored_n = Tensor::cat(&[x.narrow(3, 0, 1).mul_scalar(7.0), x.clone()], 3);
    let w = shape[3];
    gradcheck(|i: &[T]| op(&i[0].narrow(3, 1, w)), &[stored_n]).map_err(|e| format!("narrowed: {e}"))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn max_pool_gradients(
        (shape, vals) in shape_and_values(),
        k in 1usize..=3, s in 1usize..=3, d in 1usize..=2, ceil in any::<bool>(), pad in any::<bool>(),
    ) {
        let p = if pad { k / 2 } else { 0 };
        prop_assume!(fits(shape[2], k, p, d) && fits(shape[3], k, p, d));
        let cfg = MaxPool2dConfig::new(k).stride(s).padding(p).dilation(d).ceil_mode(ceil);
        check_views(&shape, &vals, &|x| x.max_pool2d(cfg)).map_err(|e| TestCaseError::fail(format!("{cfg:?}: {e}")))?;
        let cfg1 = MaxPool1dConfig::new(k).stride(s).padding(p).dilation(d).ceil_mode(ceil);
        check_views(&shape, &vals, &|x| x.flatten(1, 2).max_pool1d(cfg1)).map_err(|e| TestCaseError::fail(format!("{cfg1:?}: {e}")))?;
        check_views(&shape, &vals, &|x| x.adaptive_max_pool2d([k + 1, s + 1])).map_err(|e| TestCaseError::fail(format!("adaptive: {e}")))?;
    }

    #[test]
    fn avg_pool_gradients(
        (shape, vals) in shape_and_values(),
        k in 1usize..=3, s in 1usize..=3, ceil in any::<bool>(), pad in any::<bool>(), include in any::<bool>(),
        divisor in prop::option::of(1usize..=4),
    ) {
        let p = if pad { k / 2 } else { 0 };
        prop_assume!(fits(shape[2], k, p, 1) && fits(shape[3], k, p, 1));
        let mut cfg = AvgPool2dConfig::new(k).stride(s).padding(p).ceil_mode(ceil).count_include_pad(include);
        cfg.divisor_override = divisor;
        check_views(&shape, &vals, &|x| x.avg_pool2d(cfg)).map_err(|e| TestCaseError::fail(format!("{cfg:?}: {e}")))?;
        let cfg1 = AvgPool1dConfig::new(k).stride(s).padding(p).ceil_mode(ceil).count_include_pad(include);
        check_views(&shape, &vals, &|x| x.flatten(1, 2).avg_pool1d(cfg1)).map_err(|e| TestCaseError::fail(format!("{cfg1:?}: {e}")))?;
        check_views(&shape, &vals, &|x| x.adaptive_avg_pool2d([k + 2, s])).map_err(|e| TestCaseError::fail(format!("adaptive: {e}")))?;
        check_views(&shape, &vals, &|x| x.flatten(2, 3).adaptive_avg_pool1d(k * s)).map_err(|e| TestCaseError::fail(format!("adaptive 1d: {e}")))?;
    }

    #[test]
    fn pad_gradients((shape, vals) in shape_and_values(), pads in prop::collection::vec(0usize..=3, 4), mode in 0usize..4) {
        let (h, w) = (shape[2], shape[3]);
        let mode = [PadMode::Constant(0.7), PadMode::Reflect, PadMode::Replicate, PadMode::Circular][mode];
        let limit = |p: usize, n: usize| if mode == PadMode::Reflect { p.min(n - 1) } else { p.min(n) };
        let pads = [limit(pads[0], w), limit(pads[1], w), limit(pads[2], h), limit(pads[3], h)];
        check_views(&shape, &vals, &|x| x.pad(&pads, mode)).map_err(|e| TestCaseError::fail(format!("{mode:?} {pads:?}: {e}")))?;
    }
}

// ---------------------------------------------------------------------------------------------
// Modules
// ---------------------------------------------------------------------------------------------

#[test]
fn modules_describe_themselves_as_pytorch() {
    let d = |m: &dyn Module<f32>| m.describe();
    assert_eq!(d(&MaxPool1d::new(3)), "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)");
    let c = MaxPool2dConfig { kernel_size: [3, 2], stride: Some([2, 1]), ceil_mode: true, ..Default::default() };
    assert_eq!(
        d(&MaxPool2d::with_config(c)),
        "MaxPool2d(kernel_size=(3, 2), stride=(2, 1), padding=0, dilation=1, ceil_mode=True)"
    );
    assert_eq!(
        d(&AvgPool1d::with_config(AvgPool1dConfig::new(4).stride(2).padding(1))),
        "AvgPool1d(kernel_size=(4,), stride=(2,), padding=(1,))"
    );
    assert_eq!(d(&AvgPool2d::new(2)), "AvgPool2d(kernel_size=2, stride=2, padding=0)");
    assert_eq!(d(&AdaptiveAvgPool1d::new(5)), "AdaptiveAvgPool1d(output_size=5)");
    assert_eq!(d(&AdaptiveAvgPool2d::new([5, 7])), "AdaptiveAvgPool2d(output_size=(5, 7))");
    assert_eq!(d(&Unflatten::new(1, &[2, 5, 5])), "Unflatten(dim=1, unflattened_size=(2, 5, 5))");
    assert_eq!(d(&Dropout2d::new(0.5, 0)), "Dropout2d(p=0.5)");
    assert_eq!(d(&ZeroPad2d::same(2)), "ZeroPad2d((2, 2, 2, 2))");
    assert_eq!(d(&ConstantPad2d::new([1, 2, 3, 4], 3.5)), "ConstantPad2d(padding=(1, 2, 3, 4), value=3.5)");
    assert_eq!(d(&ConstantPad2d::new([2, 2, 0, 0], 1.0)), "ConstantPad2d(padding=(2, 2, 0, 0), value=1.0)");
    assert_eq!(d(&ReflectionPad2d::new([1, 1, 2, 0])), "ReflectionPad2d((1, 1, 2, 0))");
    assert_eq!(d(&ReplicationPad2d::same(1)), "ReplicationPad2d((1, 1, 1, 1))");
    assert_eq!(d(&CircularPad2d::same(1)), "CircularPad2d((1, 1, 1, 1))");
    assert!(MaxPool2d::new(2).named_parameters_empty());
}

/// No pooling module has parameters.
trait NoParams {
    fn named_parameters_empty(&self) -> bool;
}

impl<M: Module<f32>> NoParams for M {
    fn named_parameters_empty(&self) -> bool {
        self.named_parameters().is_empty()
    }
}

#[test]
fn modules_run_their_ops() {
    let x = x2();
    assert_eq!(Module::<f64>::forward(&MaxPool2d::new(2), &x).to_vec(), x.max_pool2d(MaxPool2dConfig::new(2)).to_vec());
    assert_eq!(Module::<f64>::forward(&AvgPool2d::new(2), &x).to_vec(), x.avg_pool2d(AvgPool2dConfig::new(2)).to_vec());
    assert_eq!(Module::<f64>::forward(&AdaptiveAvgPool2d::new([1, 1]), &x).shape(), &[2, 3, 1, 1]);
    let l = x1();
    assert_eq!(Module::<f64>::forward(&MaxPool1d::new(2), &l).shape(), &[2, 3, 5]);
    assert_eq!(Module::<f64>::forward(&AvgPool1d::new(2), &l).shape(), &[2, 3, 5]);
    assert_eq!(Module::<f64>::forward(&AdaptiveAvgPool1d::new(3), &l).shape(), &[2, 3, 3]);
    let p = [2, 3, 1, 2];
    assert_eq!(Module::<f64>::forward(&ReflectionPad2d::new(p), &x).to_vec(), reference("pad_reflect"));
    assert_eq!(Module::<f64>::forward(&CircularPad2d::new(p), &x).to_vec(), reference("pad_circular"));
    assert_eq!(Module::<f64>::forward(&ReplicationPad2d::new([3, 1, 0, 4]), &x).to_vec(), reference("pad_replicate"));
    assert_eq!(Module::<f64>::forward(&ConstantPad2d::new([1, 2, 3, 0], 1.5), &x).to_vec(), reference("pad_const"));
    assert_eq!(Module::<f64>::forward(&ZeroPad2d::same(1), &x).sum().item(), x.sum().item());
}

#[test]
fn dropout2d_zeroes_whole_channels_and_scales_the_rest() {
    let drop = Dropout2d::new(0.25, 11);
    let x = Tensor::<f64>::ones(&[16, 32, 3, 4]).requires_grad();
    let y = Module::<f64>::forward(&drop, &x);
    let v = y.to_vec();
    let mut dropped = 0;
    for ch in v.chunks(12) {
        if ch[0] == 0.0 {
            dropped += 1;
            assert!(ch.iter().all(|&c| c == 0.0));
        } else {
            assert!(ch.iter().all(|&c| c == 1.0 / 0.75));
        }
    }
    assert!((64..=192).contains(&dropped), "{dropped} of 512 channels dropped");
    // The gradient is the mask.
    let g = y.sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), v);
    // [N, C, L] drops channels of length L.
    let y1 = Module::<f64>::forward(&drop, &Tensor::ones(&[8, 16, 5])).to_vec();
    for ch in y1.chunks(5) {
        assert!(ch.iter().all(|&c| c == ch[0]));
    }
}

#[test]
fn dropout2d_is_the_identity_in_eval_and_deterministic_per_seed() {
    let x = Tensor::<f32>::ones(&[4, 8, 2, 2]);
    let (a, b, c) = (Dropout2d::new(0.5, 5), Dropout2d::new(0.5, 5), Dropout2d::new(0.5, 6));
    let (ya, yb, yc) = (a.forward(&x).to_vec(), b.forward(&x).to_vec(), c.forward(&x).to_vec());
    assert_eq!(ya, yb);
    assert_ne!(ya, yc);
    // Fresh masks on every call, the same sequence after a reseed.
    let ya2 = a.forward(&x).to_vec();
    assert_ne!(ya, ya2);
    let mut r = a.clone();
    Module::<f32>::reseed(&mut r, 5);
    assert_eq!(r.forward(&x).to_vec(), ya);
    let mut e = Dropout2d::new(0.5, 5);
    e.set_training(false);
    assert!(!e.is_training());
    assert_eq!(e.forward(&x).to_vec(), x.to_vec());
    assert_eq!(Dropout2d::new(0.0, 1).forward(&x).to_vec(), x.to_vec());
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "max_pool2d: expects a 3-D [C, H, W] or 4-D [N, C, H, W] input, got shape [4, 4]")]
fn max_pool2d_refuses_a_2d_input() {
    let _ = Tensor::<f32>::zeros(&[4, 4]).max_pool2d(MaxPool2dConfig::new(2));
}

#[test]
#[should_panic(expected = "max_pool2d: padding [2, 2] must be at most half of kernel_size [3, 3]")]
fn max_pool2d_refuses_too_much_padding() {
    let _ = Tensor::<f32>::zeros(&[1, 1, 8, 8]).max_pool2d(MaxPool2dConfig::new(3).padding(2));
}

#[test]
#[should_panic(
    expected = "max_pool1d: kernel_size, stride and dilation must be greater than zero, got kernel_size 2, stride 0, dilation 1"
)]
fn max_pool1d_refuses_a_zero_stride() {
    let _ = Tensor::<f32>::zeros(&[1, 1, 8]).max_pool1d(MaxPool1dConfig::new(2).stride(0));
}

#[test]
#[should_panic(
    expected = "avg_pool1d: input of shape [1, 1, 2] is too small for kernel_size 3 (the output would be empty)"
)]
fn avg_pool1d_refuses_a_too_short_input() {
    let _ = Tensor::<f32>::zeros(&[1, 1, 2]).avg_pool1d(AvgPool1dConfig::new(3));
}

#[test]
#[should_panic(expected = "avg_pool2d: divisor_override must be greater than zero, got 0")]
fn avg_pool2d_refuses_a_zero_divisor() {
    let _ = Tensor::<f32>::zeros(&[1, 1, 4, 4]).avg_pool2d(AvgPool2dConfig::new(2).divisor_override(0));
}

#[test]
#[should_panic(expected = "adaptive_avg_pool2d: output_size [0, 2] must be positive (input of shape [1, 3, 3])")]
fn adaptive_avg_pool2d_refuses_an_empty_output() {
    let _ = Tensor::<f32>::zeros(&[1, 3, 3]).adaptive_avg_pool2d([0, 2]);
}

#[test]
#[should_panic(
    expected = "pad: reflect padding (3, 0) of dim 1 must be less than the dim's size 3 (input shape [2, 3])"
)]
fn reflect_padding_must_be_less_than_the_size() {
    let _ = Tensor::<f32>::zeros(&[2, 3]).pad(&[3, 0], PadMode::Reflect);
}

#[test]
#[should_panic(expected = "pad: circular padding (0, 4) of dim 0 must be at most the dim's size 3")]
fn circular_padding_must_wrap_at_most_once() {
    let _ = Tensor::<f32>::zeros(&[3, 2]).pad(&[0, 0, 0, 4], PadMode::Circular);
}

#[test]
#[should_panic(
    expected = "pad: 3 padding values for a tensor of shape [2, 3]: needs an even number, at most 2 per dim"
)]
fn pad_needs_pairs() {
    let _ = Tensor::<f32>::zeros(&[2, 3]).pad(&[1, 1, 1], PadMode::Replicate);
}

#[test]
#[should_panic(expected = "unflatten: sizes [2, 4] multiply to 8, but dim 1 of shape [3, 6] has size 6")]
fn unflatten_sizes_must_multiply_to_the_dim() {
    let _ = Tensor::<f32>::zeros(&[3, 6]).unflatten(1, &[2, 4]);
}

#[test]
#[should_panic(expected = "Dropout2d: expects a 3-D [N, C, L] or 4-D [N, C, H, W] input, got shape [5]")]
fn dropout2d_refuses_a_vector() {
    let _ = Dropout2d::new(0.5, 1).forward(&Tensor::<f32>::ones(&[5]));
}

#[test]
#[should_panic(expected = "ReflectionPad2d: expects a 3-D [C, H, W] or 4-D [N, C, H, W] input, got shape [3, 3]")]
fn reflection_pad2d_refuses_a_matrix() {
    let _ = ReflectionPad2d::same(1).forward(&Tensor::<f32>::ones(&[3, 3]));
}

#[test]
#[should_panic(expected = "Dropout2d: dropout probability 1 must be in [0, 1)")]
fn dropout2d_refuses_p_one() {
    let _ = Dropout2d::new(1.0, 1);
}

thread_local! {
    static CAPTURE: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    static CAPTURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The line a panic inside `f` reports.
fn panic_line(f: impl FnOnce()) -> u32 {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(|c| c.get()) {
                CAPTURE.with(|c| c.set(info.location().map(|l| l.line())));
            } else {
                default(info);
            }
        }));
    });
    CAPTURING.with(|c| c.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(false));
    assert!(r.is_err(), "no panic");
    CAPTURE.with(|c| c.take()).expect("a location")
}

#[test]
fn panics_point_at_the_callers_line() {
    let x = Tensor::<f32>::zeros(&[4, 4]);
    let line = line!() + 1;
    assert_eq!(panic_line(|| drop(x.max_pool2d(MaxPool2dConfig::new(2)))), line);
    let line = line!() + 1;
    assert_eq!(panic_line(|| drop(Module::<f32>::forward(&AvgPool2d::new(2), &x))), line);
    let line = line!() + 1;
    assert_eq!(panic_line(|| drop(x.pad(&[5, 0], PadMode::Reflect))), line);
    let line = line!() + 1;
    assert_eq!(panic_line(|| drop(Dropout2d::new(0.5, 0).forward(&x))), line);
    let line = line!() + 1;
    assert_eq!(panic_line(|| drop(x.unflatten(1, &[3]))), line);
}
