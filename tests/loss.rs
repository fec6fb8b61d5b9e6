//! Losses: values and gradients against PyTorch, gradchecks (f64), extreme inputs, messages.

use approx::assert_relative_eq;
use tensorgrad::loss::{Reduction, bce, bce_with_logits, cross_entropy, huber, l1, mse, nll_loss};
use tensorgrad::{Tensor, gradcheck};

fn t(v: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), shape)
}

fn p() -> Tensor<f64> {
    t(&[0.2, 0.9, 0.5, 0.7, 0.1, 0.35], &[2, 3])
}
fn target() -> Tensor<f64> {
    t(&[0.0, 1.0, 1.0, 1.0, 0.0, 0.25], &[2, 3])
}
fn x() -> Tensor<f64> {
    t(&[1.5, -2.0, 0.3, -0.7, 3.0, 0.0], &[2, 3])
}
fn w() -> Tensor<f64> {
    t(&[2.0, 0.5, 1.5], &[3])
}

/// Checks a loss value and its gradient against PyTorch's.
fn check(input: Tensor<f64>, f: impl Fn(&Tensor<f64>) -> Tensor<f64>, value: f64, grad: &[f64]) {
    let leaf = input.requires_grad();
    let loss = f(&leaf);
    assert_relative_eq!(loss.item(), value, max_relative = 1e-12);
    let g = loss.backward().get(&leaf).unwrap().to_vec();
    for (a, b) in g.iter().zip(grad) {
        assert_relative_eq!(*a, *b, max_relative = 1e-10, epsilon = 1e-15);
    }
}

// Values from tests/fixtures/loss/make_reference.py (PyTorch 2.15, float64).
#[test]
fn mse_matches_pytorch() {
    let g = [
        0.06666666666666667,
        -0.033333333333333326,
        -0.16666666666666666,
        -0.1,
        0.03333333333333333,
        0.033333333333333326,
    ];
    check(p(), |p| mse(p, &target(), Reduction::Mean), 0.06833333333333334, &g);
}

#[test]
fn l1_matches_pytorch() {
    let s = 0.16666666666666666;
    check(p(), |p| l1(p, &target(), Reduction::Mean), 0.21666666666666667, &[s, -s, -s, -s, s, s]);
}

#[test]
fn huber_matches_pytorch() {
    let g = [
        0.16666666666666666,
        -0.16666666666666666,
        -0.11666666666666665,
        -0.16666666666666666,
        0.16666666666666666,
        -0.041666666666666664,
    ];
    check(x(), |x| huber(x, &target(), 1.0, Reduction::Mean), 1.2460416666666667, &g);
}

#[test]
fn bce_matches_pytorch() {
    let g = [
        0.2083333333333333,
        -0.1851851851851852,
        -0.3333333333333333,
        -0.2380952380952381,
        0.18518518518518515,
        0.07326007326007325,
    ];
    check(p(), |p| bce(p, &target(), Reduction::Mean), 0.34487157088709175, &g);
}

#[test]
fn bce_with_logits_matches_pytorch() {
    let g = [
        0.1362624126989406,
        -0.14679951299631375,
        -0.07092624719805683,
        -0.11136462869469436,
        0.15876235447040557,
        0.041666666666666664,
    ];
    check(x(), |x| bce_with_logits(x, &target(), None, Reduction::Mean), 1.5379361857522327, &g);
}

#[test]
fn bce_with_logits_pos_weight_matches_pytorch() {
    let g = [
        0.1362624126989406,
        -0.07339975649815687,
        -0.10638937079708526,
        -0.22272925738938873,
        0.15876235447040557,
        0.03125,
    ];
    check(x(), |x| bce_with_logits(x, &target(), Some(&w()), Reduction::Mean), 1.6051933629469375, &g);
}

#[test]
fn cross_entropy_matches_pytorch() {
    let g = [
        0.3755469102795198,
        0.0113405340427777,
        -0.38688744432229755,
        -0.48849544779311266,
        0.46532812463825785,
        0.023167323154854855,
    ];
    check(x(), |x| cross_entropy(x, &[2, 0], 0.0, Reduction::Mean), 2.629045002406755, &g);
}

#[test]
fn cross_entropy_label_smoothing_matches_pytorch() {
    let g = [
        0.35888024361285314,
        -0.005326132623888966,
        -0.3535541109889642,
        -0.45516211445977933,
        0.4486614579715912,
        0.006500656488188188,
    ];
    check(x(), |x| cross_entropy(x, &[2, 0], 0.1, Reduction::Mean), 2.574045002406755, &g);
}

#[test]
fn cross_entropy_sum_matches_pytorch() {
    let g = [
        0.7510938205590396,
        -0.9773189319144446,
        0.22622511135540488,
        0.023009104413774704,
        -0.06934375072348431,
        0.04633464630970971,
    ];
    check(x(), |x| cross_entropy(x, &[1, 1], 0.0, Reduction::Sum), 3.85809000481351, &g);
}

#[test]
fn nll_loss_of_log_softmax_is_cross_entropy() {
    let a = nll_loss(&x().log_softmax(1), &[2, 0], Reduction::Mean).item();
    assert_relative_eq!(a, 2.629045002406755, max_relative = 1e-12);
}

fn gradcheck_ok(f: impl Fn(&[Tensor<f64>]) -> Tensor<f64>, inputs: &[Tensor<f64>]) {
    let r = gradcheck(f, inputs);
    assert!(r.is_ok(), "{}", r.unwrap_err());
}

#[test]
fn gradcheck_every_loss_and_reduction() {
    for red in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        gradcheck_ok(|v| mse(&v[0], &v[1], red), &[x(), p()]);
        gradcheck_ok(|v| l1(&v[0], &target(), red), &[p()]);
        gradcheck_ok(|v| huber(&v[0], &target(), 0.8, red), &[x()]);
        gradcheck_ok(|v| bce(&v[0], &target(), red), &[p()]);
        gradcheck_ok(|v| bce_with_logits(&v[0], &target(), None, red), &[x()]);
        gradcheck_ok(|v| bce_with_logits(&v[0], &v[1], Some(&w()), red), &[x(), p()]);
        gradcheck_ok(|v| cross_entropy(&v[0], &[1, 2], 0.2, red), &[x()]);
        gradcheck_ok(|v| nll_loss(&v[0].log_softmax(1), &[0, 2], red), &[x()]);
    }
}

#[test]
fn gradcheck_losses_on_non_contiguous_inputs() {
    gradcheck_ok(|v| mse(&v[0].t(), &target(), Reduction::Mean), &[x().t().contiguous()]);
    gradcheck_ok(
        |v| bce_with_logits(&v[0].narrow(1, 1, 3), &target(), None, Reduction::Sum),
        &[t(&[9.0, 1.5, -2.0, 0.3, 9.0, -0.7, 3.0, 0.2], &[2, 4])],
    );
    gradcheck_ok(
        |v| cross_entropy(&v[0].broadcast_to(&[2, 3]), &[0, 1], 0.0, Reduction::Mean),
        &[t(&[0.1, -0.4, 0.9], &[3])],
    );
}

#[test]
fn second_derivative_of_bce_with_logits() {
    // d²/dx² of the per-element loss is σ(x)(1 − σ(x)), whatever the target.
    let r = gradcheck(
        |v| {
            let g = bce_with_logits(&v[0], &target(), None, Reduction::Sum).backward_with_graph();
            g.get(&v[0]).unwrap().sum()
        },
        &[x()],
    );
    assert!(r.is_ok(), "{}", r.unwrap_err());
}

#[test]
fn losses_stay_finite_at_extreme_inputs() {
    let logits = t(&[1e4, -1e4, 1e4, -1e4], &[4]);
    let y = t(&[1.0, 0.0, 0.0, 1.0], &[4]);
    let leaf = logits.requires_grad();
    let l = bce_with_logits(&leaf, &y, None, Reduction::None);
    assert_eq!(l.to_vec(), vec![0.0, 0.0, 1e4, 1e4]);
    let g = l.sum().backward();
    assert_eq!(g.get(&leaf).unwrap().to_vec(), vec![0.0, 0.0, 1.0, -1.0]);

    for &(pv, yv) in &[(0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (1.0, 1.0)] {
        let p = t(&[pv], &[1]).requires_grad();
        let l = bce(&p, &t(&[yv], &[1]), Reduction::Mean);
        assert!(l.item().is_finite(), "bce({pv}, {yv}) = {}", l.item());
        assert!(l.backward().get(&p).unwrap().item().is_finite());
    }
    let f32_logits = Tensor::<f32>::from_vec(vec![1e4, -1e4, 0.0], &[1, 3]);
    let ce = cross_entropy(&f32_logits, &[1], 0.0, Reduction::Mean).item();
    assert!(ce.is_finite() && (ce - 2e4).abs() < 1.0, "{ce}");
}

#[test]
#[should_panic(expected = "mse: prediction shape [2, 3] and target shape [3, 2] differ")]
fn mse_shape_mismatch() {
    mse(&p(), &p().t(), Reduction::Mean);
}

#[test]
#[should_panic(expected = "bce: target 1.5 at position 1 is outside [0, 1]")]
fn bce_target_out_of_range() {
    bce(&t(&[0.5, 0.5], &[2]), &t(&[1.0, 1.5], &[2]), Reduction::Mean);
}

#[test]
#[should_panic(expected = "bce_with_logits: target -1 at position 0 is outside [0, 1]")]
fn bce_with_logits_target_out_of_range() {
    bce_with_logits(&t(&[0.5], &[1]), &t(&[-1.0], &[1]), None, Reduction::Mean);
}

#[test]
#[should_panic(expected = "cross_entropy: class 3 at position 1 is out of range for 3 classes")]
fn cross_entropy_class_out_of_range() {
    cross_entropy(&x(), &[0, 3], 0.0, Reduction::Mean);
}

#[test]
#[should_panic(expected = "cross_entropy: 3 targets for a batch of 2")]
fn cross_entropy_wrong_target_count() {
    cross_entropy(&x(), &[0, 1, 2], 0.0, Reduction::Mean);
}

/// σ(x) without cancellation or overflow, for reference values.
fn stable_sigmoid(x: f64) -> f64 {
    if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) }
}

/// ln(1 + eˣ) without cancellation or overflow, for reference values.
fn stable_softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The per-element loss and ∂/∂x of `bce_with_logits` (f64) at each logit with one target.
fn bce_with_logits_tail(logits: &[f64], y: f64, pos_weight: Option<f64>) -> (Vec<f64>, Vec<f64>) {
    let n = logits.len();
    let leaf = t(logits, &[n]).requires_grad();
    let w = pos_weight.map(|w| t(&[w], &[1]));
    let l = bce_with_logits(&leaf, &t(&vec![y; n], &[n]), w.as_ref(), Reduction::None);
    let values = l.to_vec();
    let grads = l.sum().backward().get(&leaf).unwrap().to_vec();
    (values, grads)
}

#[test]
fn bce_with_logits_is_accurate_in_the_tails() {
    // Issue 12: ∂/∂x was computed as (1 − y) − σ(−x), which cancels when the loss is nearly 0.
    let far: Vec<f64> = [10.0, 17.0, 30.0, 40.0, 100.0, 500.0].to_vec();
    let negative: Vec<f64> = far.iter().map(|x| -x).collect();
    for w in [None, Some(0.3), Some(4.0)] {
        let wv = w.unwrap_or(1.0);
        // Target 0, very negative logits: loss softplus(x), gradient σ(x).
        let (values, grads) = bce_with_logits_tail(&negative, 0.0, w);
        for ((&x, v), g) in negative.iter().zip(&values).zip(&grads) {
            assert!(*g > 0.0, "x = {x}, w = {w:?}: gradient {g}");
            assert_relative_eq!(*g, stable_sigmoid(x), max_relative = 1e-12);
            assert_relative_eq!(*v, stable_softplus(x), max_relative = 1e-12);
        }
        // Target 1, very positive logits: loss w·softplus(−x), gradient −w·σ(−x).
        let (values, grads) = bce_with_logits_tail(&far, 1.0, w);
        for ((&x, v), g) in far.iter().zip(&values).zip(&grads) {
            assert!(*g < 0.0, "x = {x}, w = {w:?}: gradient {g}");
            assert_relative_eq!(*g, -wv * stable_sigmoid(-x), max_relative = 1e-12);
            assert_relative_eq!(*v, wv * stable_softplus(-x), max_relative = 1e-12);
        }
    }
    // The case of the report: σ(−30) = 9.3576229688393e-14.
    let leaf = t(&[-30.0], &[1]).requires_grad();
    let g = bce_with_logits(&leaf, &t(&[0.0], &[1]), None, Reduction::Sum).backward();
    assert_relative_eq!(g.get(&leaf).unwrap().item(), 9.3576229688393e-14, max_relative = 1e-12);
}

#[test]
fn bce_with_logits_f32_gradient_does_not_vanish_in_the_tails() {
    let logits = [-10.0f32, -17.0, -20.0, -40.0];
    for w in [None, Some(2.5f32)] {
        let leaf = Tensor::<f32>::from_vec(logits.to_vec(), &[4]).requires_grad();
        let pos_weight = w.map(|w| Tensor::<f32>::from_vec(vec![w], &[1]));
        let zeros = Tensor::<f32>::zeros(&[4]);
        let l = bce_with_logits(&leaf, &zeros, pos_weight.as_ref(), Reduction::None);
        let grads = l.sum().backward().get(&leaf).unwrap().to_vec();
        for ((&x, &v), g) in logits.iter().zip(&l.to_vec()).zip(grads) {
            let exact = stable_sigmoid(f64::from(x));
            assert!(g > 0.0, "x = {x}: gradient {g}");
            assert_relative_eq!(f64::from(g), exact, max_relative = 1e-5);
            assert_relative_eq!(f64::from(v), stable_softplus(f64::from(x)), max_relative = 1e-5);
        }
        // Target 1 at the mirrored logits.
        let leaf = Tensor::<f32>::from_vec(logits.iter().map(|x| -x).collect(), &[4]).requires_grad();
        let ones = Tensor::<f32>::ones(&[4]);
        let l = bce_with_logits(&leaf, &ones, pos_weight.as_ref(), Reduction::Sum);
        let grads = l.backward().get(&leaf).unwrap().to_vec();
        for (&x, g) in logits.iter().zip(grads) {
            let exact = -f64::from(w.unwrap_or(1.0)) * stable_sigmoid(f64::from(x));
            assert!(g < 0.0, "x = {}: gradient {g}", -x);
            assert_relative_eq!(f64::from(g), exact, max_relative = 1e-5);
        }
    }
}

#[test]
fn second_derivative_of_bce_with_logits_with_pos_weight() {
    // The weighted gradient (1 − y)·σ(x) − w·y·σ(−x) is itself recorded, in x and in y.
    let r = gradcheck(
        |v| {
            let g = bce_with_logits(&v[0], &v[1], Some(&w()), Reduction::Sum).backward_with_graph();
            let dx = g.get(&v[0]).unwrap();
            (dx * dx).sum()
        },
        &[x(), p()],
    );
    assert!(r.is_ok(), "{}", r.unwrap_err());
}

// ---- Class ids as a tensor ----

#[test]
fn class_ids_as_a_tensor_give_the_losses_of_the_same_ids_as_usize() {
    for red in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        let want = cross_entropy(&x(), &[2, 0], 0.1, red).to_vec();
        let column = t(&[2.0, 0.0], &[2, 1]);
        assert_eq!(cross_entropy(&x(), &t(&[2.0, 0.0], &[2]), 0.1, red).to_vec(), want);
        assert_eq!(cross_entropy(&x(), &column, 0.1, red).to_vec(), want);
        // Labels of another float type than the logits.
        assert_eq!(cross_entropy(&x(), &Tensor::from_vec(vec![2.0f32, 0.0], &[2]), 0.1, red).to_vec(), want);
        let ids: Vec<usize> = vec![2, 0];
        assert_eq!(cross_entropy(&x(), &ids, 0.1, red).to_vec(), want);
        assert_eq!(cross_entropy(&x(), ids.as_slice(), 0.1, red).to_vec(), want);
        let logp = x().log_softmax(1);
        assert_eq!(nll_loss(&logp, &column, red).to_vec(), nll_loss(&logp, &[2, 0], red).to_vec());
    }
    // The gradient flows to the logits the same way.
    let logits = x().requires_grad();
    let g1 = cross_entropy(&logits, &t(&[1.0, 2.0], &[2]), 0.0, Reduction::Mean).backward();
    let g2 = cross_entropy(&logits, &[1, 2], 0.0, Reduction::Mean).backward();
    assert_eq!(g1.get(&logits).unwrap().to_vec(), g2.get(&logits).unwrap().to_vec());
    assert_relative_eq!(
        cross_entropy(&x(), &t(&[2.0, 0.0], &[2]), 0.0, Reduction::Mean).item(),
        2.629045002406755,
        epsilon = 1e-12
    );
}

#[test]
#[should_panic(expected = "cross_entropy: target 1.5 at position 1 is not a class id")]
fn a_fractional_class_id_is_refused() {
    cross_entropy(&x(), &t(&[0.0, 1.5], &[2]), 0.0, Reduction::Mean);
}

#[test]
#[should_panic(expected = "nll_loss: target NaN at position 0 is not a class id")]
fn a_nan_class_id_is_refused() {
    nll_loss(&x(), &t(&[f64::NAN, 1.0], &[2, 1]), Reduction::Mean);
}

#[test]
#[should_panic(expected = "cross_entropy: target -1 at position 1 is not a class id")]
fn a_negative_class_id_is_refused() {
    cross_entropy(&x(), &t(&[0.0, -1.0], &[2]), 0.0, Reduction::Mean);
}

#[test]
#[should_panic(expected = "cross_entropy: class 3 at position 0 is out of range for 3 classes")]
fn a_class_id_tensor_out_of_range_is_refused() {
    cross_entropy(&x(), &t(&[3.0, 0.0], &[2]), 0.0, Reduction::Mean);
}

#[test]
#[should_panic(expected = "cross_entropy: class ids must be a tensor of shape [N] or [N, 1], got [2, 3]")]
fn one_hot_targets_are_not_class_ids() {
    cross_entropy(&x(), &t(&[0.0, 0.0, 1.0, 1.0, 0.0, 0.0], &[2, 3]), 0.0, Reduction::Mean);
}

#[test]
#[should_panic(expected = "cross_entropy: 3 targets for a batch of 2")]
fn a_class_id_tensor_of_the_wrong_length_is_refused() {
    cross_entropy(&x(), &t(&[0.0, 1.0, 2.0], &[3]), 0.0, Reduction::Mean);
}
