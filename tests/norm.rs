//! `layer_norm` and `rms_norm` (and the `LayerNorm`/`RmsNorm` modules): values and gradients
//! against PyTorch (float64, `tests/fixtures/norm/reference.txt`, made by `make_reference.py` in
//! that folder), gradients against central differences on contiguous and non-contiguous inputs
//! of random shapes, second derivatives, and the messages of bad calls.

use approx::assert_relative_eq;
use proptest::prelude::*;
use tensorgrad::nn::{LayerNorm, Module, RmsNorm};
use tensorgrad::{Tensor, gradcheck};

type T = Tensor<f64>;

/// The named list of numbers in the reference file.
fn reference(name: &str) -> Vec<f64> {
    let text = include_str!("fixtures/norm/reference.txt");
    let line = text
        .lines()
        .find(|l| l.split_once(' ').map(|(n, _)| n) == Some(name))
        .unwrap_or_else(|| panic!("{name} missing"));
    let list = line.split_once(' ').unwrap().1.trim().trim_start_matches('[').trim_end_matches(']');
    list.split(',').map(|v| v.trim().parse().unwrap()).collect()
}

fn x() -> T {
    Tensor::from_vec(
        vec![
            0.5,
            -1.25,
            2.0,
            0.75,
            3.0,
            3.5,
            -2.5,
            0.0,
            1e3,
            1e3 + 1.5,
            1e3 - 0.5,
            1e3 + 2.0,
            -0.3,
            0.9,
            0.1,
            -2.2,
            1.1,
            1.1,
            1.1,
            1.2,
            0.0,
            0.25,
            -0.75,
            4.0,
        ],
        &[2, 3, 4],
    )
}

/// The fixture's upstream gradient: `linspace(-1, 1.3, 24)` in `x`'s shape.
fn upstream() -> T {
    Tensor::from_vec((0..24).map(|i| -1.0 + 2.3 * i as f64 / 23.0).collect(), &[2, 3, 4])
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{what}[{i}]: {g} vs PyTorch {w}");
    }
}

#[test]
fn layer_norm_matches_pytorch_with_weight_and_bias() {
    let (x, w, b) = (
        x().requires_grad(),
        Tensor::from_vec(vec![1.5, -0.5, 2.0, 0.25], &[4]).requires_grad(),
        Tensor::from_vec(vec![0.1, 0.2, -0.3, 0.0], &[4]).requires_grad(),
    );
    let y = x.layer_norm(&[4], Some(&w), Some(&b), 1e-5);
    close(&y.to_vec(), &reference("ln_affine"), "ln_affine");
    let g = (&y * &upstream()).sum().backward();
    close(&g.get(&x).unwrap().to_vec(), &reference("ln_affine_grad0"), "dx");
    close(&g.get(&w).unwrap().to_vec(), &reference("ln_affine_grad1"), "dweight");
    close(&g.get(&b).unwrap().to_vec(), &reference("ln_affine_grad2"), "dbias");
}

#[test]
fn layer_norm_over_two_dims_and_rms_norm_match_pytorch() {
    let x = x().requires_grad();
    let y = x.layer_norm(&[3, 4], None, None, 1e-5);
    close(&y.to_vec(), &reference("ln_2d"), "ln_2d");
    close(&(&y * &upstream()).sum().backward().get(&x).unwrap().to_vec(), &reference("ln_2d_grad0"), "ln_2d dx");
    let w = Tensor::from_vec(vec![1.5, -0.5, 2.0, 0.25], &[4]).requires_grad();
    let y = x.rms_norm(&[4], Some(&w), Some(1e-6));
    close(&y.to_vec(), &reference("rms"), "rms");
    let g = (&y * &upstream()).sum().backward();
    close(&g.get(&x).unwrap().to_vec(), &reference("rms_grad0"), "rms dx");
    close(&g.get(&w).unwrap().to_vec(), &reference("rms_grad1"), "rms dweight");
}

#[test]
fn modules_have_pytorchs_parameters_and_defaults() {
    let ln: LayerNorm<f64> = LayerNorm::new(&[4]);
    let names: Vec<String> = ln.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight", "bias"]);
    let plain = x().layer_norm(&[4], None, None, 1e-5);
    assert_eq!(ln.forward(&x()).to_vec(), plain.to_vec());
    assert_eq!(LayerNorm::<f64>::with_options(&[4], 1e-5, false, false).num_parameters(), 0);
    assert_eq!(LayerNorm::<f64>::with_options(&[4], 1e-5, true, false).num_parameters(), 4);
    let rms: RmsNorm<f64> = RmsNorm::new(&[4]);
    assert_eq!(rms.named_parameters()[0].0, "weight");
    // eps = None is the machine epsilon, as in PyTorch.
    assert_eq!(rms.forward(&x()).to_vec(), x().rms_norm(&[4], None, Some(f64::EPSILON)).to_vec());
    assert_eq!(Module::<f64>::describe(&ln), "LayerNorm([4], eps=0.00001, elementwise_affine=true)");
}

#[test]
fn second_derivatives_match_central_differences() {
    // The gradient of Σ (layer_norm(x)·u)² with respect to x, differentiated again.
    let u = upstream().narrow(0, 0, 1);
    let x0 = Tensor::from_vec(vec![0.5, -1.25, 2.0, 0.75, 3.0, 3.5, -2.5, 0.0, 0.2, 1.5, -0.5, 2.0], &[1, 3, 4]);
    let w = Tensor::from_vec(vec![1.5, -0.5, 2.0, 0.25], &[4]);
    for rms in [false, true] {
        let f = |i: &[T]| {
            let y = if rms {
                i[0].rms_norm(&[4], Some(&w), Some(1e-6))
            } else {
                i[0].layer_norm(&[4], Some(&w), None, 1e-5)
            };
            let gx = (&y * &y * &u).sum().backward_with_graph().get(&i[0]).unwrap().clone();
            (&gx * &gx).sum()
        };
        let r = gradcheck(f, std::slice::from_ref(&x0));
        assert!(r.is_ok(), "rms={rms}: {}", r.unwrap_err());
    }
}

#[test]
#[should_panic(expected = "layer_norm: normalized_shape [3] is not the trailing dims of the input's shape [2, 4]")]
fn a_wrong_normalized_shape_names_both_shapes() {
    let _ = Tensor::<f32>::zeros(&[2, 4]).layer_norm(&[3], None, None, 1e-5);
}

#[test]
#[should_panic(expected = "rms_norm: weight has shape [3], normalized_shape is [4]")]
fn a_wrong_weight_shape_is_refused() {
    let _ = Tensor::<f32>::zeros(&[2, 4]).rms_norm(&[4], Some(&Tensor::ones(&[3])), None);
}

fn shape_and_values() -> impl Strategy<Value = (Vec<usize>, usize, Vec<f64>)> {
    (prop::collection::vec(1usize..4, 1..=3), 1usize..5).prop_flat_map(|(lead, last)| {
        let mut shape = lead.clone();
        shape.push(last.max(2));
        let n: usize = shape.iter().product();
        let nd = 1usize;
        (Just(shape), Just(nd), prop::collection::vec(-2.0f64..2.0, n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_on_contiguous_and_transposed_inputs((shape, nd, vals) in shape_and_values()) {
        let norm_shape = shape[shape.len() - nd..].to_vec();
        let leaf = Tensor::from_vec(vals.clone(), &shape);
        let w = Tensor::from_vec((0..norm_shape.iter().product::<usize>()).map(|i| 0.5 + 0.25 * i as f64).collect(), &norm_shape);
        let b = w.mul_scalar(-0.3);
        for rms in [false, true] {
            let f = |i: &[T]| {
                let y = if rms {
                    i[0].rms_norm(&norm_shape, Some(&i[1]), Some(1e-3))
                } else {
                    i[0].layer_norm(&norm_shape, Some(&i[1]), Some(&i[2]), 1e-3)
                };
                (&y * &y.sin()).sum()
            };
            let r = gradcheck(f, &[leaf.clone(), w.clone(), b.clone()]);
            prop_assert!(r.is_ok(), "rms={} contiguous {:?}: {}", rms, shape, r.unwrap_err());
            // A non-contiguous input: the transpose of a contiguous tensor, transposed back.
            if shape.len() >= 2 {
                let d = shape.len();
                let mut tshape = shape.clone();
                tshape.swap(d - 2, d - 1);
                let stored = Tensor::from_vec(vals.clone(), &tshape);
                let g = |i: &[T]| {
                    let v = i[0].transpose(d - 2, d - 1);
                    let y = if rms {
                        v.rms_norm(&norm_shape, Some(&w), Some(1e-3))
                    } else {
                        v.layer_norm(&norm_shape, Some(&w), Some(&b), 1e-3)
                    };
                    (&y * &y.sin()).sum()
                };
                let r = gradcheck(g, &[stored]);
                prop_assert!(r.is_ok(), "rms={} transposed {:?}: {}", rms, tshape, r.unwrap_err());
            }
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    let x64 = x();
    let x32 = Tensor::from_vec(x64.to_vec().iter().map(|&v| v as f32).collect(), &[2, 3, 4]);
    for (a, b) in
        x32.layer_norm(&[4], None, None, 1e-5).to_vec().iter().zip(x64.layer_norm(&[4], None, None, 1e-5).to_vec())
    {
        assert_relative_eq!(*a as f64, b, epsilon = 2e-4);
    }
}
