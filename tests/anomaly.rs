//! Numerical faults: anomaly mode names the op that made a NaN or an infinity and the line
//! that called it; the losses, sigmoid, softmax/log_softmax stay finite for extreme inputs.

use tensorgrad::loss::{Reduction, bce, bce_with_logits, cross_entropy};
use tensorgrad::{Tensor, detect_anomaly, is_anomaly_enabled};

fn t(v: &[f32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()])
}

#[test]
#[should_panic(expected = "anomaly: `ln` produced -inf at element 1 from finite inputs (called at tests/anomaly.rs:")]
fn forward_anomaly_names_the_op_and_the_callers_line() {
    detect_anomaly(|| t(&[1.0, 0.0]).ln());
}

#[test]
#[should_panic(expected = "anomaly: `div` produced NaN at element 0 from finite inputs")]
fn zero_over_zero_is_caught_in_an_operator() {
    detect_anomaly(|| t(&[0.0]) / t(&[0.0]));
}

#[test]
#[should_panic(expected = "anomaly: the backward of `sqrt` (called at tests/anomaly.rs:")]
fn backward_anomaly_names_the_op_whose_rule_made_it() {
    // √x is finite at 0, its derivative 1/(2√x) is not.
    let x = t(&[4.0, 0.0]).requires_grad();
    detect_anomaly(|| {
        let y = x.sqrt().sum();
        y.backward()
    });
}

#[test]
fn a_nan_from_the_inputs_is_reported_where_it_was_made_not_downstream() {
    // With the mode off, a NaN simply flows; with it on, later ops do not blame themselves
    // for a NaN they were given.
    let bad = t(&[f32::NAN, 1.0]);
    let y = detect_anomaly(|| (&bad * 2.0).exp());
    assert!(y.to_vec()[0].is_nan());
}

#[test]
fn anomaly_mode_is_off_by_default_and_restored_after_a_panic() {
    assert!(!is_anomaly_enabled());
    let r = std::panic::catch_unwind(|| detect_anomaly(|| t(&[0.0]).ln()));
    assert!(r.is_err());
    assert!(!is_anomaly_enabled());
    assert_eq!(t(&[0.0]).ln().to_vec(), vec![f32::NEG_INFINITY]);
}

#[test]
fn extreme_inputs_stay_finite_under_anomaly_detection() {
    detect_anomaly(|| {
        let x = t(&[1e4, -1e4, 0.0]).requires_grad();
        let s = x.sigmoid();
        assert_eq!(s.to_vec(), vec![1.0, 0.0, 0.5]);
        let row = x.reshape(&[1, 3]);
        let p = row.softmax(1);
        assert_eq!(p.to_vec(), vec![1.0, 0.0, 0.0]);
        let lp = row.log_softmax(1);
        assert_eq!(lp.to_vec(), vec![0.0, -2e4, -1e4]);
        let y = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3]);
        let losses = [
            bce_with_logits(&x, &y, None, Reduction::Mean),
            bce(&s, &y, Reduction::Mean),
            cross_entropy(&row, &[1], 0.1, Reduction::Mean),
            lp.sum() + p.sum() + s.sum(),
        ];
        for l in losses {
            assert!(l.item().is_finite());
            let g = l.backward();
            assert!(g.get(&x).unwrap().to_vec().iter().all(|v| v.is_finite()));
        }
        // Probabilities of exactly 0 and 1 in BCE are clipped, never inf.
        let p01 = t(&[0.0, 1.0]).requires_grad();
        let l = bce(&p01, &t(&[1.0, 0.0]), Reduction::Sum);
        assert!(l.item().is_finite() && l.item() > 10.0);
        assert!(l.backward().get(&p01).unwrap().to_vec().iter().all(|v| v.is_finite()));
    });
}
