//! `scaled_dot_product_attention`: values and gradients against PyTorch (float64,
//! `tests/fixtures/attention/reference.txt`, made by `make_reference.py` in that folder) for
//! plain, scaled, causal, boolean-masked, additively masked (with the mask's gradient),
//! broadcast and multi-tile problems; the fused kernel against the composite form (with
//! dropout); gradients against central differences on contiguous and non-contiguous inputs of
//! random shapes; second derivatives; fully masked rows; and the messages of bad calls.

use proptest::prelude::*;
use tensorgrad::{AttnMask, SdpaOptions, Tensor, gradcheck};

type T = Tensor<f64>;

mod common;
use common::close;

/// A named tensor of the reference file: `name [shape] [values]`.
fn reference(name: &str) -> T {
    common::named_tensor(include_str!("fixtures/attention/reference.txt"), name)
}

/// Runs case `name` of the fixture with `options` (its mask filled in from the file) and
/// compares the output and the gradients of `sum(out · linspace)`.
fn check_case(name: &str, options: SdpaOptions<'_, f64>, mask: Option<bool>) {
    let (q, k, v) = (
        reference(&format!("{name}_q")).requires_grad(),
        reference(&format!("{name}_k")).requires_grad(),
        reference(&format!("{name}_v")).requires_grad(),
    );
    let m = mask.map(|additive| {
        let m = reference(&format!("{name}_mask"));
        if additive { m.requires_grad() } else { m }
    });
    let attn_mask = match (&m, mask) {
        (Some(m), Some(true)) => Some(AttnMask::Additive(m)),
        (Some(m), Some(false)) => Some(AttnMask::Bool(m)),
        _ => None,
    };
    let out = q.scaled_dot_product_attention(&k, &v, SdpaOptions { attn_mask, ..options });
    close(&out, &reference(&format!("{name}_out")), &format!("{name} out"));
    let n = out.numel();
    let g = Tensor::from_vec((0..n).map(|i| -1.0 + 2.3 * i as f64 / (n - 1) as f64).collect(), out.shape());
    let grads = (&out * &g).sum().backward();
    for (t, tag) in [(&q, "dq"), (&k, "dk"), (&v, "dv")] {
        close(grads.get(t).unwrap(), &reference(&format!("{name}_{tag}")), &format!("{name} {tag}"));
    }
    if mask == Some(true) {
        let m = m.as_ref().unwrap();
        close(grads.get(m).unwrap(), &reference(&format!("{name}_dmask")), &format!("{name} dmask"));
    }
}

#[test]
fn plain_scaled_and_causal_attention_match_pytorch() {
    check_case("plain", SdpaOptions::default(), None);
    check_case("scaled", SdpaOptions { scale: Some(0.3), ..Default::default() }, None);
    check_case("causal", SdpaOptions { is_causal: true, ..Default::default() }, None);
}

#[test]
fn boolean_and_additive_masks_match_pytorch_with_the_masks_gradient() {
    // The boolean mask blocks every key of query 2: its output and gradients are zeros.
    check_case("bool", SdpaOptions::default(), Some(false));
    check_case("additive", SdpaOptions::default(), Some(true));
}

#[test]
fn broadcast_keys_and_several_tiles_match_pytorch() {
    check_case("broadcast", SdpaOptions::default(), None);
    check_case("tiles", SdpaOptions::default(), None);
    check_case("tiles_causal", SdpaOptions { is_causal: true, ..Default::default() }, None);
}

/// `softmax(q·kᵀ·scale + mask)·v` written with the composite ops, for comparison.
fn composite(q: &T, k: &T, v: &T, options: SdpaOptions<'_, f64>) -> T {
    q.attention_probs(k, options).matmul(v)
}

fn seq(shape: &[usize], a: f64, b: f64) -> T {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| (a * i as f64 + b).sin()).collect(), shape)
}

#[test]
fn the_fused_kernel_equals_the_composite_form_with_dropout_and_across_tiles() {
    // 150 queries and 300 keys: three query tiles and three key tiles, the last ones partial.
    let (q, k, v) = (seq(&[2, 150, 16], 0.37, 0.1), seq(&[2, 300, 16], 0.61, 0.7), seq(&[2, 300, 5], 0.23, -0.4));
    let keep: Vec<f64> =
        seq(&[150, 300], 0.91, 0.0).to_vec().iter().map(|&x| if x > -0.3 { 1.0 } else { 0.0 }).collect();
    let keep = Tensor::from_vec(keep, &[150, 300]);
    for options in [
        SdpaOptions::default(),
        SdpaOptions { is_causal: true, ..Default::default() },
        SdpaOptions { attn_mask: Some(AttnMask::Bool(&keep)), ..Default::default() },
        SdpaOptions { dropout_p: 0.3, dropout_seed: 11, ..Default::default() },
        SdpaOptions { dropout_p: 0.5, dropout_seed: 3, is_causal: true, ..Default::default() },
    ] {
        let (qg, kg, vg) = (q.clone().requires_grad(), k.clone().requires_grad(), v.clone().requires_grad());
        let fused = qg.scaled_dot_product_attention(&kg, &vg, options);
        let reference = composite(&qg, &kg, &vg, options);
        let what = format!("causal={} dropout={}", options.is_causal, options.dropout_p);
        for (a, b) in fused.to_vec().iter().zip(reference.to_vec()) {
            assert!((a - b).abs() < 1e-12, "{what}: output {a} vs {b}");
        }
        let w = seq(fused.shape(), 0.13, 0.5);
        let gf = (&fused * &w).sum().backward();
        let gc = (&reference * &w).sum().backward();
        for t in [&qg, &kg, &vg] {
            for (a, b) in gf.get(t).unwrap().to_vec().iter().zip(gc.get(t).unwrap().to_vec()) {
                assert!((a - b).abs() < 1e-11, "{what}: gradient {a} vs {b}");
            }
        }
    }
}

#[test]
fn dropout_is_seeded_and_drops_about_p() {
    let q = Tensor::<f64>::zeros(&[1, 64, 4]);
    let v = Tensor::ones(&[1, 256, 1]);
    let opts = |seed| SdpaOptions { dropout_p: 0.25, dropout_seed: seed, ..Default::default() };
    let a = q.attention_probs(&Tensor::zeros(&[1, 256, 4]), opts(1)).to_vec();
    let dropped = a.iter().filter(|&&x| x == 0.0).count() as f64 / a.len() as f64;
    assert!((dropped - 0.25).abs() < 0.02, "dropped {dropped}");
    let k = Tensor::zeros(&[1, 256, 4]);
    let x = q.scaled_dot_product_attention(&k, &v, opts(1)).to_vec();
    let y = q.scaled_dot_product_attention(&k, &v, opts(1)).to_vec();
    let z = q.scaled_dot_product_attention(&k, &v, opts(2)).to_vec();
    assert_eq!(x, y);
    assert_ne!(x, z);
}

#[test]
fn f32_agrees_with_f64() {
    let (q, k, v) = (seq(&[3, 40, 8], 0.37, 0.1), seq(&[3, 90, 8], 0.61, 0.7), seq(&[3, 90, 8], 0.23, -0.4));
    let o64 = q.scaled_dot_product_attention(&k, &v, SdpaOptions { is_causal: true, ..Default::default() });
    let f = |t: &T| Tensor::<f32>::from_vec(t.to_vec().iter().map(|&x| x as f32).collect(), t.shape());
    let o32 = f(&q).scaled_dot_product_attention(&f(&k), &f(&v), SdpaOptions { is_causal: true, ..Default::default() });
    for (a, b) in o32.to_vec().iter().zip(o64.to_vec()) {
        assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn second_derivatives_match_central_differences() {
    let k = seq(&[1, 4, 3], 0.61, 0.7);
    let add = Tensor::from_vec(vec![0.0, 0.3, -0.2, 0.1, 0.0, 0.4, 0.2, -0.1, 0.0, 0.5, 0.1, -0.3], &[3, 4]);
    for causal in [false, true] {
        let f = |i: &[T]| {
            let options = SdpaOptions {
                attn_mask: (!causal).then_some(AttnMask::Additive(&add)),
                is_causal: causal,
                dropout_p: 0.2,
                dropout_seed: 5,
                ..Default::default()
            };
            let out = i[0].scaled_dot_product_attention(&k, &i[1], options);
            let gq = (&out * &out).sum().backward_with_graph().get(&i[0]).unwrap().clone();
            (&gq * &gq.sin()).sum()
        };
        let r = gradcheck(f, &[seq(&[1, 3, 3], 0.37, 0.1), seq(&[1, 4, 2], 0.23, -0.4)]);
        assert!(r.is_ok(), "causal={causal}: {}", r.unwrap_err());
    }
}

#[test]
fn a_query_with_every_key_blocked_gets_zeros_and_no_nan() {
    let q = seq(&[2, 3, 4], 0.37, 0.1).requires_grad();
    let k = seq(&[2, 5, 4], 0.61, 0.7);
    let v = seq(&[2, 5, 2], 0.23, -0.4);
    let keep =
        Tensor::from_vec(vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], &[3, 5]);
    let opts = SdpaOptions { attn_mask: Some(AttnMask::Bool(&keep)), ..Default::default() };
    let out = q.scaled_dot_product_attention(&k, &v, opts);
    let o = out.to_vec();
    assert!(o.iter().all(|x| x.is_finite()));
    assert_eq!(&o[2..4], &[0.0, 0.0]); // batch 0, query 1
    let g = out.sum().backward();
    let dq = g.get(&q).unwrap().to_vec();
    assert!(dq.iter().all(|x| x.is_finite()));
    assert_eq!(&dq[4..8], &[0.0; 4]);
    assert_eq!(q.attention_probs(&k, opts).to_vec()[5..10], [0.0; 5]);
}

#[test]
#[should_panic(expected = "scaled_dot_product_attention: query size 4 ≠ key size 3")]
fn mismatched_sizes_name_both_shapes() {
    let _ = Tensor::<f32>::zeros(&[2, 4]).scaled_dot_product_attention(
        &Tensor::zeros(&[5, 3]),
        &Tensor::zeros(&[5, 3]),
        SdpaOptions::default(),
    );
}

#[test]
#[should_panic(expected = "a boolean attn_mask holds 0 and 1 only, found -inf")]
fn a_float_mask_given_as_boolean_is_refused() {
    let m = Tensor::<f32>::from_vec(vec![0.0, f32::NEG_INFINITY], &[1, 2]);
    let x = Tensor::<f32>::zeros(&[2, 4]);
    let _ = x.scaled_dot_product_attention(
        &x,
        &x,
        SdpaOptions { attn_mask: Some(AttnMask::Bool(&m)), ..Default::default() },
    );
}

#[test]
#[should_panic(expected = "give either attn_mask or is_causal, not both")]
fn mask_and_causal_together_are_refused() {
    let m = Tensor::<f32>::ones(&[2, 2]);
    let x = Tensor::<f32>::zeros(&[2, 4]);
    let opts = SdpaOptions { attn_mask: Some(AttnMask::Bool(&m)), is_causal: true, ..Default::default() };
    let _ = x.scaled_dot_product_attention(&x, &x, opts);
}

#[test]
#[should_panic(expected = "attn_mask of shape [3, 2] does not broadcast to the scores [2, 2]")]
fn a_mask_of_the_wrong_shape_is_refused() {
    let m = Tensor::<f32>::ones(&[3, 2]);
    let x = Tensor::<f32>::zeros(&[2, 4]);
    let _ = x.scaled_dot_product_attention(
        &x,
        &x,
        SdpaOptions { attn_mask: Some(AttnMask::Bool(&m)), ..Default::default() },
    );
}

fn problem() -> impl Strategy<Value = (usize, usize, usize, usize, usize, bool, Vec<f64>)> {
    (1usize..3, 1usize..5, 1usize..6, 1usize..4, 1usize..4, any::<bool>()).prop_flat_map(
        |(b, lq, lk, d, dv, causal)| {
            let n = b * (lq * d + lk * d + lk * dv);
            (Just(b), Just(lq), Just(lk), Just(d), Just(dv), Just(causal), prop::collection::vec(-1.5f64..1.5, n))
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_on_contiguous_and_transposed_inputs((b, lq, lk, d, dv, causal, vals) in problem()) {
        let (nq, nk) = (b * lq * d, b * lk * d);
        let q = Tensor::from_vec(vals[..nq].to_vec(), &[b, lq, d]);
        let k = Tensor::from_vec(vals[nq..nq + nk].to_vec(), &[b, lk, d]);
        let v = Tensor::from_vec(vals[nq + nk..].to_vec(), &[b, lk, dv]);
        let bias = seq(&[lq, lk], 0.7, 0.2);
        for additive in [false, true] {
            let f = |i: &[T]| {
                let options = SdpaOptions {
                    attn_mask: (additive && !causal).then_some(AttnMask::Additive(&i[3])),
                    is_causal: causal,
                    ..Default::default()
                };
                let out = i[0].scaled_dot_product_attention(&i[1], &i[2], options);
                (&out * &out.cos()).sum()
            };
            let r = gradcheck(f, &[q.clone(), k.clone(), v.clone(), bias.clone()]);
            prop_assert!(r.is_ok(), "contiguous b={} lq={} lk={} d={} dv={} causal={}: {}", b, lq, lk, d, dv, causal, r.unwrap_err());
        }
        // Non-contiguous operands: stored transposed ([b, size, L]) and viewed as [b, L, size].
        let t = |x: &T| x.transpose(1, 2).contiguous();
        let g = |i: &[T]| {
            let out = i[0].transpose(1, 2).scaled_dot_product_attention(
                &i[1].transpose(1, 2),
                &i[2].transpose(1, 2),
                SdpaOptions { is_causal: causal, dropout_p: 0.3, dropout_seed: 9, ..Default::default() },
            );
            (&out * &out.cos()).sum()
        };
        let r = gradcheck(g, &[t(&q), t(&k), t(&v)]);
        prop_assert!(r.is_ok(), "transposed: {}", r.unwrap_err());
    }
}
