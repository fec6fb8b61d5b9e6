//! Convolutions (`conv1d`, `conv2d`, `conv_transpose1d/2d`, `im2col`, `col2im` and the `nn`
//! modules): values and gradients against PyTorch (float64, `tests/fixtures/conv/reference.txt`,
//! made by `make_reference.py` in that folder), gradients against central differences on
//! contiguous and non-contiguous inputs of random shapes, second derivatives, the fast paths
//! (1×1, depthwise, one image per thread) against the general one, and the messages of bad calls.

use approx::assert_relative_eq;
use proptest::prelude::*;
use tensorgrad::nn::{Conv1d, Conv2d, ConvConfig, ConvTranspose1d, ConvTranspose2d, Module};
use tensorgrad::{
    Conv1dOptions, Conv2dOptions, ConvPadding, ConvTranspose1dOptions, ConvTranspose2dOptions, FoldOptions, Tensor,
    gradcheck,
};

type T = Tensor<f64>;

/// The fixture's input values: `((i·37 + seed·11) mod 23) / 11 − 1`.
fn value(n: usize, seed: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 37 + seed * 11) % 23) as f64 / 11.0 - 1.0).collect()
}

fn make(shape: &[usize], seed: usize) -> T {
    Tensor::from_vec(value(shape.iter().product(), seed), shape)
}

fn list(s: &str) -> Vec<f64> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    if s.is_empty() {
        return Vec::new();
    }
    s.split(',').map(|v| v.trim().parse().unwrap()).collect()
}

fn dims(s: &str) -> Vec<usize> {
    s.split(',').map(|v| v.parse().unwrap()).collect()
}

/// One case of the reference file: name, op, options and the value lines.
struct Case {
    name: String,
    op: String,
    spec: std::collections::HashMap<String, String>,
    out: Vec<f64>,
    grads: Vec<Vec<f64>>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("fixtures/conv/reference.txt");
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (head, rest) = line.split_once(' ').unwrap();
        if head == "case" {
            let mut parts = rest.split(' ');
            let (name, op) = (parts.next().unwrap().to_string(), parts.next().unwrap().to_string());
            let spec = parts.map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect();
            cases.push(Case { name, op, spec, out: Vec::new(), grads: Vec::new() });
        } else if head == "out" {
            cases.last_mut().unwrap().out = list(rest);
        } else {
            cases.last_mut().unwrap().grads.push(list(rest));
        }
    }
    cases
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{what}[{i}]: {g} vs PyTorch {w}");
    }
}

/// Runs one case's op on leaves made like the fixture's.
fn run(case: &Case) -> (T, Vec<T>) {
    let s = &case.spec;
    let get = |k: &str| s[k].parse::<usize>().unwrap();
    let x = make(&dims(&s["x"]), 1).requires_grad();
    let mut inputs = vec![x.clone()];
    let y = match case.op.as_str() {
        "conv2d" | "conv1d" | "conv_transpose2d" | "conv_transpose1d" => {
            let w = make(&dims(&s["w"]), 2).requires_grad();
            inputs.push(w.clone());
            let b = (get("bias") == 1).then(|| {
                let n = if case.op.starts_with("conv_transpose") {
                    dims(&s["w"])[1] * get("groups")
                } else {
                    dims(&s["w"])[0]
                };
                make(&[n], 3).requires_grad()
            });
            inputs.extend(b.clone());
            let (stride, dil, groups) = (get("stride"), get("dil"), get("groups"));
            match case.op.as_str() {
                "conv2d" => {
                    let padding = match s["pad"].as_str() {
                        "same" => ConvPadding::Same,
                        p => ConvPadding::Explicit([p.parse().unwrap(); 2]),
                    };
                    let o = Conv2dOptions { stride: [stride; 2], padding, dilation: [dil; 2], groups };
                    x.conv2d(&w, b.as_ref(), o)
                }
                "conv1d" => {
                    let padding = match s["pad"].as_str() {
                        "same" => ConvPadding::Same,
                        p => ConvPadding::Explicit([p.parse().unwrap()]),
                    };
                    let o = Conv1dOptions { stride: [stride], padding, dilation: [dil], groups };
                    x.conv1d(&w, b.as_ref(), o)
                }
                "conv_transpose2d" => {
                    let o = ConvTranspose2dOptions {
                        stride: [stride; 2],
                        padding: [get("pad"); 2],
                        output_padding: [get("outpad"); 2],
                        dilation: [dil; 2],
                        groups,
                    };
                    x.conv_transpose2d(&w, b.as_ref(), o)
                }
                _ => {
                    let o = ConvTranspose1dOptions {
                        stride: [stride],
                        padding: [get("pad")],
                        output_padding: [get("outpad")],
                        dilation: [dil],
                        groups,
                    };
                    x.conv_transpose1d(&w, b.as_ref(), o)
                }
            }
        }
        op => {
            let pair = |k: &str| {
                let d = dims(&s[k]);
                [d[0], d[1]]
            };
            let o = FoldOptions { dilation: pair("dil"), padding: pair("pad"), stride: pair("stride") };
            if op == "unfold" {
                x.im2col(pair("k"), o)
            } else {
                // fold's input is made with seed 4 in the fixture.
                let cols = make(&dims(&s["x"]), 4).requires_grad();
                inputs[0] = cols.clone();
                cols.col2im(pair("size"), pair("k"), o)
            }
        }
    };
    (y, inputs)
}

#[test]
fn every_op_matches_pytorch_values_and_gradients() {
    let cases = cases();
    assert!(cases.len() >= 200, "the reference file has {} cases", cases.len());
    for case in &cases {
        let (y, inputs) = run(case);
        close(&y.to_vec(), &case.out, &format!("{} out", case.name));
        let up = Tensor::from_vec(value(y.numel(), 5), y.shape());
        let g = (&y * &up).sum().backward();
        assert_eq!(case.grads.len(), inputs.len(), "{}: gradients", case.name);
        for (i, (t, want)) in inputs.iter().zip(&case.grads).enumerate() {
            close(&g.get(t).unwrap().to_vec(), want, &format!("{} grad{i}", case.name));
        }
    }
}

/// Small random problems: input `[n, c, h, w]`, weight `[oc, c/groups, kh, kw]`, options.
#[derive(Clone, Debug)]
struct Problem {
    n: usize,
    c: usize,
    oc: usize,
    groups: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    dil: [usize; 2],
}

fn problem() -> impl Strategy<Value = Problem> {
    (1usize..3, 1usize..3, 1usize..3, 1usize..3, [1usize..6, 2usize..7], [1usize..4, 1usize..4])
        .prop_flat_map(|(n, cg, ocg, groups, hw, k)| {
            (Just((n, cg, ocg, groups, hw, k)), [1usize..3, 1usize..3], [0usize..2, 0usize..2], [1usize..3, 1usize..3])
        })
        .prop_filter_map("the kernel must fit", |((n, cg, ocg, groups, hw, k), stride, pad, dil)| {
            let fits = (0..2).all(|i| hw[i] + 2 * pad[i] > dil[i] * (k[i] - 1));
            let p = Problem { n, c: cg * groups, oc: ocg * groups, groups, hw, k, stride, pad, dil };
            fits.then_some(p)
        })
}

impl Problem {
    fn opts(&self) -> Conv2dOptions {
        Conv2dOptions {
            stride: self.stride,
            padding: ConvPadding::Explicit(self.pad),
            dilation: self.dil,
            groups: self.groups,
        }
    }
    fn topts(&self) -> ConvTranspose2dOptions {
        ConvTranspose2dOptions {
            stride: self.stride,
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: self.dil,
            groups: self.groups,
        }
    }
    fn x(&self) -> T {
        make(&[self.n, self.c, self.hw[0], self.hw[1]], 7)
    }
    fn w(&self) -> T {
        make(&[self.oc, self.c / self.groups, self.k[0], self.k[1]], 8)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_gradcheck_contiguous_and_strided(p in problem()) {
        let (x, w, b) = (p.x(), p.w(), make(&[p.oc], 9));
        let o = p.opts();
        let r = gradcheck(|i: &[T]| i[0].conv2d(&i[1], Some(&i[2]), o), &[x.clone(), w.clone(), b.clone()]);
        prop_assert!(r.is_ok(), "{:?}: {}", p, r.unwrap_err());
        // Non-contiguous input and weight: stored with H and W swapped, transposed back.
        let (xt, wt) = (x.transpose(2, 3).contiguous(), w.transpose(2, 3).contiguous());
        let r = gradcheck(|i: &[T]| i[0].transpose(2, 3).conv2d(&i[1].transpose(2, 3), None, o), &[xt, wt]);
        prop_assert!(r.is_ok(), "{:?} transposed: {}", p, r.unwrap_err());
    }

    #[test]
    fn conv_transpose2d_gradcheck(p in problem()) {
        // The transposed convolution maps [n, oc, ·] back to [n, c, ·]: weight [oc, c/groups, kh, kw].
        let x = make(&[p.n, p.oc, p.hw[0], p.hw[1]], 7);
        let w = make(&[p.oc, p.c / p.groups, p.k[0], p.k[1]], 8);
        let b = make(&[p.c], 9);
        let o = p.topts();
        let r = gradcheck(|i: &[T]| i[0].conv_transpose2d(&i[1], Some(&i[2]), o), &[x.clone(), w.clone(), b]);
        prop_assert!(r.is_ok(), "{:?}: {}", p, r.unwrap_err());
        // A narrowed (offset, strided) input.
        let big = make(&[p.n, p.oc + 1, p.hw[0], p.hw[1]], 3);
        let r = gradcheck(|i: &[T]| i[0].narrow(1, 1, p.oc).conv_transpose2d(&i[1], None, o), &[big, w]);
        prop_assert!(r.is_ok(), "{:?} narrowed: {}", p, r.unwrap_err());
    }

    #[test]
    fn conv1d_im2col_col2im_gradcheck(p in problem()) {
        let x1 = make(&[p.n, p.c, p.hw[1]], 7);
        let w1 = make(&[p.oc, p.c / p.groups, p.k[1]], 8);
        let o1 = Conv1dOptions { stride: [p.stride[1]], padding: ConvPadding::Explicit([p.pad[1]]), dilation: [p.dil[1]], groups: p.groups };
        let r = gradcheck(|i: &[T]| i[0].conv1d(&i[1], None, o1), &[x1.clone(), w1.clone()]);
        prop_assert!(r.is_ok(), "{:?} conv1d: {}", p, r.unwrap_err());
        let t1 = ConvTranspose1dOptions { stride: [p.stride[1]], dilation: [p.dil[1]], groups: p.groups, ..Default::default() };
        let xt = make(&[p.n, p.oc, p.hw[1]], 6);
        let r = gradcheck(|i: &[T]| i[0].conv_transpose1d(&i[1], None, t1), &[xt, w1]);
        prop_assert!(r.is_ok(), "{:?} conv_transpose1d: {}", p, r.unwrap_err());
        let fo = FoldOptions { dilation: p.dil, padding: p.pad, stride: p.stride };
        let x = p.x();
        // A non-contiguous input: stored with H and W swapped, transposed back.
        let r = gradcheck(|i: &[T]| i[0].transpose(2, 3).im2col(p.k, fo), &[x.transpose(2, 3).contiguous()]);
        prop_assert!(r.is_ok(), "{:?} im2col: {}", p, r.unwrap_err());
        let cols = x.im2col(p.k, fo);
        let r = gradcheck(|i: &[T]| i[0].col2im(p.hw, p.k, fo), &[cols]);
        prop_assert!(r.is_ok(), "{:?} col2im: {}", p, r.unwrap_err());
    }
}

#[test]
fn conv2d_second_derivatives_match_central_differences() {
    // The gradient of Σ conv2d(x, w)² · u with respect to x and w, differentiated again.
    let x = make(&[2, 4, 5, 4], 1);
    let w = make(&[4, 2, 3, 2], 2);
    let b = make(&[4], 3);
    let o = Conv2dOptions { stride: [2, 1], padding: ConvPadding::Explicit([1, 1]), dilation: [1, 2], groups: 2 };
    let f = |i: &[T]| {
        let y = i[0].conv2d(&i[1], Some(&i[2]), o);
        let u = Tensor::from_vec(value(y.numel(), 4), y.shape());
        let g = (&(&y * &y) * &u).sum().backward_with_graph();
        let (gx, gw) = (g.get(&i[0]).unwrap().clone(), g.get(&i[1]).unwrap().clone());
        &(&gx * &gx).sum() + &(&gw * &gw.sin()).sum()
    };
    let r = gradcheck(f, &[x, w, b]);
    assert!(r.is_ok(), "{}", r.unwrap_err());
    // Depthwise (the direct kernels) the same way.
    let x = make(&[1, 3, 4, 4], 1);
    let w = make(&[3, 1, 3, 3], 2);
    let o = Conv2dOptions { padding: ConvPadding::Same, groups: 3, ..Default::default() };
    let f = |i: &[T]| {
        let y = i[0].conv2d(&i[1], None, o);
        let g = (&y * &y).sum().backward_with_graph();
        let (gx, gw) = (g.get(&i[0]).unwrap().clone(), g.get(&i[1]).unwrap().clone());
        &(&gx * &gx.cos()).sum() + &(&gw * &gw).sum()
    };
    let r = gradcheck(f, &[x, w]);
    assert!(r.is_ok(), "depthwise: {}", r.unwrap_err());
}

/// f32 values in [−1, 1).
fn f32s(shape: &[usize], seed: u64) -> Tensor<f32> {
    Tensor::rand_uniform(shape, -1.0, 1.0, seed)
}

fn assert_close32(a: &Tensor<f32>, b: &Tensor<f32>, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for (i, (x, y)) in a.to_vec().iter().zip(b.to_vec()).enumerate() {
        assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{what}[{i}]: {x} vs {y}");
    }
}

/// Value and gradients of Σ conv(x, w)·u.
fn conv_and_grads(
    x: &Tensor<f32>,
    w: &Tensor<f32>,
    f: impl Fn(&Tensor<f32>, &Tensor<f32>) -> Tensor<f32>,
) -> (Tensor<f32>, Tensor<f32>, Tensor<f32>) {
    let (x, w) = (x.detach().requires_grad(), w.detach().requires_grad());
    let y = f(&x, &w);
    let u = f32s(y.shape(), 99);
    let g = (&y * &u).sum().backward();
    (y, g.get(&x).unwrap().clone(), g.get(&w).unwrap().clone())
}

#[test]
fn f32_fast_paths_equal_the_general_path() {
    // 1×1 (no im2col) against im2col + matmul.
    let x = f32s(&[3, 8, 9, 7], 1);
    let w = f32s(&[5, 8, 1, 1], 2);
    let fast = conv_and_grads(&x, &w, |x, w| x.conv2d(w, None, Conv2dOptions::default()));
    let general = conv_and_grads(&x, &w, |x, w| {
        w.reshape(&[5, 8]).matmul(&x.im2col([1, 1], FoldOptions::default())).reshape(&[3, 5, 9, 7])
    });
    for (a, b, what) in
        [(&fast.0, &general.0, "1x1 y"), (&fast.1, &general.1, "1x1 dx"), (&fast.2, &general.2, "1x1 dw")]
    {
        assert_close32(a, b, what);
    }
    // Depthwise (direct kernel) against the same filters as a dense block-diagonal weight.
    let x = f32s(&[2, 4, 8, 6], 3);
    let w = f32s(&[4, 1, 3, 3], 4);
    let o = Conv2dOptions { stride: [2, 1], padding: ConvPadding::Explicit([1, 2]), dilation: [1, 2], groups: 4 };
    let fast = conv_and_grads(&x, &w, |x, w| x.conv2d(w, None, o));
    let mask = Tensor::from_vec((0..16).map(|i| if i / 4 == i % 4 { 1.0 } else { 0.0 }).collect(), &[4, 4, 1, 1]);
    let dense = |x: &Tensor<f32>, w: &Tensor<f32>| {
        let full = &w.reshape(&[4, 1, 3, 3]).broadcast_to(&[4, 4, 3, 3]) * &mask;
        x.conv2d(&full, None, Conv2dOptions { groups: 1, ..o })
    };
    let general = conv_and_grads(&x, &w, dense);
    for (a, b, what) in [(&fast.0, &general.0, "dw y"), (&fast.1, &general.1, "dw dx"), (&fast.2, &general.2, "dw dw")]
    {
        assert_close32(a, b, what);
    }
    // A batch large enough to run one image per thread, against each image alone (which runs
    // the GEMM split instead), on a two-thread pool.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(|| {
        let x = f32s(&[8, 16, 20, 20], 5);
        let w = f32s(&[16, 16, 3, 3], 6);
        let b = f32s(&[16], 7);
        let o = Conv2dOptions { padding: ConvPadding::Explicit([1, 1]), ..Default::default() };
        let (y, dx, dw) = conv_and_grads(&x, &w, |x, w| x.conv2d(w, Some(&b), o));
        let u = f32s(y.shape(), 99);
        let mut dw_sum = Tensor::zeros(w.shape());
        for i in 0..8 {
            let xi = x.narrow(0, i, 1).detach().requires_grad();
            let wi = w.detach().requires_grad();
            let yi = xi.conv2d(&wi, Some(&b), o);
            assert_close32(&yi, &y.narrow(0, i, 1), "batched y");
            let g = (&yi * &u.narrow(0, i, 1)).sum().backward();
            assert_close32(g.get(&xi).unwrap(), &dx.narrow(0, i, 1), "batched dx");
            dw_sum = &dw_sum + g.get(&wi).unwrap();
        }
        assert_close32(&dw_sum, &dw, "batched dw");
    });
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // 32 images of 144 positions: products over chunks of 8 images, one chunk per task on
    // several threads.
    let x = f32s(&[32, 16, 12, 12], 1);
    let w = f32s(&[16, 8, 3, 3], 2);
    let o = Conv2dOptions { groups: 2, padding: ConvPadding::Same, ..Default::default() };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let (y, dx, dw) = conv_and_grads(&x, &w, |x, w| x.conv2d(w, None, o));
            (y.to_vec(), dx.to_vec(), dw.to_vec())
        })
    };
    assert_eq!(run(1), run(2));
    assert_eq!(run(1), run(3));
}

#[test]
fn modules_have_pytorchs_parameters_and_match_the_functional_ops() {
    let conv: Conv2d<f64> = Conv2d::new(4, 6, [3, 3], 0);
    let named: Vec<(String, Vec<usize>)> =
        conv.named_parameters().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    assert_eq!(named, [("weight".to_string(), vec![6, 4, 3, 3]), ("bias".to_string(), vec![6])]);
    // PyTorch's default init: uniform on ±1/√fan_in, fan_in = 4·3·3.
    let bound = 1.0 / 36f64.sqrt();
    assert!(conv.weight().value().to_vec().iter().all(|v| v.abs() <= bound));
    assert!(conv.bias().unwrap().value().to_vec().iter().all(|v| v.abs() <= bound));
    let x = make(&[2, 4, 7, 6], 1);
    let want = x.conv2d(&conv.weight().value(), conv.bias().map(|b| b.value()).as_ref(), Conv2dOptions::default());
    assert_eq!(conv.forward(&x).to_vec(), want.to_vec());
    assert_eq!(Module::<f64>::describe(&conv), "Conv2d(4, 6, kernel_size=(3, 3), stride=(1, 1))");
    let cfg = ConvConfig {
        stride: [2, 2],
        padding: ConvPadding::Explicit([1, 1]),
        groups: 2,
        bias: false,
        ..Default::default()
    };
    let grouped: Conv2d<f64> = Conv2d::with_config(4, 6, [3, 3], cfg, 1);
    assert_eq!(grouped.weight().value().shape(), &[6, 2, 3, 3]);
    assert_eq!(grouped.num_parameters(), 6 * 2 * 9);
    assert_eq!(
        Module::<f64>::describe(&grouped),
        "Conv2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2, bias=False)"
    );
    let o = Conv2dOptions { stride: [2, 2], padding: ConvPadding::Explicit([1, 1]), groups: 2, ..Default::default() };
    assert_eq!(grouped.forward(&x).to_vec(), x.conv2d(&grouped.weight().value(), None, o).to_vec());

    let c1: Conv1d<f64> = Conv1d::new(3, 5, [2], 2);
    assert_eq!(c1.weight().value().shape(), &[5, 3, 2]);
    assert_eq!(c1.forward(&make(&[2, 3, 9], 1)).shape(), &[2, 5, 8]);
    assert_eq!(Module::<f64>::describe(&c1), "Conv1d(3, 5, kernel_size=(2,), stride=(1,))");

    let t2: ConvTranspose2d<f64> = ConvTranspose2d::new(4, 6, [2, 2], 3);
    assert_eq!(t2.weight().value().shape(), &[4, 6, 2, 2]);
    let tb = 1.0 / 24f64.sqrt(); // fan_in of the transposed weight: 6·2·2
    assert!(t2.weight().value().to_vec().iter().all(|v| v.abs() <= tb));
    let y = t2.forward(&make(&[1, 4, 3, 3], 1));
    let want = make(&[1, 4, 3, 3], 1).conv_transpose2d(
        &t2.weight().value(),
        t2.bias().map(|b| b.value()).as_ref(),
        ConvTranspose2dOptions::default(),
    );
    assert_eq!(y.to_vec(), want.to_vec());
    assert_eq!(Module::<f64>::describe(&t2), "ConvTranspose2d(4, 6, kernel_size=(2, 2), stride=(1, 1))");
    let t1: ConvTranspose1d<f64> = ConvTranspose1d::new(2, 3, [3], 4);
    assert_eq!(t1.forward(&make(&[2, 2, 5], 1)).shape(), &[2, 3, 7]);
}

#[test]
fn f32_agrees_with_f64() {
    let x64 = make(&[2, 3, 6, 5], 1);
    let w64 = make(&[4, 3, 3, 3], 2);
    let x32 = Tensor::from_vec(x64.to_vec().iter().map(|&v| v as f32).collect(), x64.shape());
    let w32 = Tensor::from_vec(w64.to_vec().iter().map(|&v| v as f32).collect(), w64.shape());
    let o = Conv2dOptions { padding: ConvPadding::Same, ..Default::default() };
    for (a, b) in x32.conv2d(&w32, None, o).to_vec().iter().zip(x64.conv2d(&w64, None, o).to_vec()) {
        assert_relative_eq!(*a as f64, b, epsilon = 1e-5);
    }
}

#[test]
#[should_panic(
    expected = "conv2d: input [2, 3, 5, 5] has 3 channels, but weight [4, 2, 3, 3] with groups 1 expects 2 channels"
)]
fn a_wrong_channel_count_names_both_shapes() {
    let _ = Tensor::<f32>::zeros(&[2, 3, 5, 5]).conv2d(&Tensor::zeros(&[4, 2, 3, 3]), None, Conv2dOptions::default());
}

#[test]
#[should_panic(expected = "conv2d: groups 2 must divide the input channels 3 and the output channels 4")]
fn groups_must_divide_the_channels() {
    let o = Conv2dOptions { groups: 2, ..Default::default() };
    let _ = Tensor::<f32>::zeros(&[1, 3, 5, 5]).conv2d(&Tensor::zeros(&[4, 1, 3, 3]), None, o);
}

#[test]
#[should_panic(
    expected = "conv1d: input [1, 1, 2] padded by [0] is smaller than weight [1, 1, 3]'s kernel dilated by [1]"
)]
fn an_empty_output_is_refused() {
    let _ = Tensor::<f32>::zeros(&[1, 1, 2]).conv1d(&Tensor::zeros(&[1, 1, 3]), None, Conv1dOptions::default());
}

#[test]
#[should_panic(expected = "conv2d: padding Same is not supported for strided convolutions (stride [2, 1])")]
fn same_padding_needs_stride_one() {
    let o = Conv2dOptions { stride: [2, 1], padding: ConvPadding::Same, ..Default::default() };
    let _ = Tensor::<f32>::zeros(&[1, 1, 5, 5]).conv2d(&Tensor::zeros(&[1, 1, 3, 3]), None, o);
}

#[test]
#[should_panic(expected = "conv2d: bias has shape [3], expected [4]")]
fn a_wrong_bias_is_refused() {
    let _ = Tensor::<f32>::zeros(&[1, 2, 5, 5]).conv2d(
        &Tensor::zeros(&[4, 2, 3, 3]),
        Some(&Tensor::zeros(&[3])),
        Conv2dOptions::default(),
    );
}

#[test]
#[should_panic(expected = "conv2d: expected input [N, C, H, W] or [C, H, W], got [5, 5]")]
fn a_wrong_rank_is_refused() {
    let _ = Tensor::<f32>::zeros(&[5, 5]).conv2d(&Tensor::zeros(&[4, 2, 3, 3]), None, Conv2dOptions::default());
}

#[test]
#[should_panic(
    expected = "conv_transpose2d: output_padding [2, 2] must be smaller than either the stride [2, 2] or the dilation [1, 1]"
)]
fn output_padding_must_be_smaller_than_the_stride() {
    let o = ConvTranspose2dOptions { stride: [2, 2], output_padding: [2, 2], ..Default::default() };
    let _ = Tensor::<f32>::zeros(&[1, 2, 3, 3]).conv_transpose2d(&Tensor::zeros(&[2, 1, 3, 3]), None, o);
}

#[test]
#[should_panic(expected = "col2im: input [1, 4, 5] has 5 columns, but output_size [3, 3] with kernel [2, 2]")]
fn col2im_checks_the_number_of_columns() {
    let _ = Tensor::<f32>::zeros(&[1, 4, 5]).col2im([3, 3], [2, 2], FoldOptions::default());
}

#[test]
fn unbatched_inputs_work_as_in_pytorch() {
    let x = make(&[3, 6, 5], 1);
    let w = make(&[2, 3, 3, 3], 2);
    let o = Conv2dOptions::default();
    assert_eq!(x.conv2d(&w, None, o).to_vec(), x.unsqueeze(0).conv2d(&w, None, o).to_vec());
    assert_eq!(x.conv2d(&w, None, o).shape(), &[2, 4, 3]);
}

#[test]
#[should_panic(expected = "Conv2d: bias has shape [3], the weight [4, 2, 3, 3] has 4 output channels")]
fn a_layer_from_tensors_refuses_a_bias_of_another_width() {
    let _ = tensorgrad::nn::Conv2d::<f32>::from_tensors(
        Tensor::zeros(&[4, 2, 3, 3]),
        Some(Tensor::zeros(&[3])),
        tensorgrad::nn::ConvConfig::default(),
    );
}
