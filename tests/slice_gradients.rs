//! The backward of `narrow` and `index_select` adds each slice's gradient into one buffer; these
//! tests pin the values (against hand-derived gradients) in both the plain and the recorded
//! (`backward_with_graph`) walks.

use approx::assert_relative_eq;
use tensorgrad::Tensor;

/// loss = Σ_t Σ (t + 1) · x[:, t, :]  ⇒  ∂loss/∂x[b, t, h] = t + 1
fn stepwise_loss(x: &Tensor<f64>, steps: usize) -> Tensor<f64> {
    let mut loss = Tensor::scalar(0.0);
    for t in 0..steps {
        loss = loss + x.narrow(1, t, 1).sum() * (t as f64 + 1.0);
    }
    loss
}

#[test]
fn narrow_slices_accumulate_into_one_gradient() {
    let (b, steps, h) = (3, 100, 4);
    let x = Tensor::<f64>::zeros(&[b, steps, h]).requires_grad();
    let grads = stepwise_loss(&x, steps).backward();
    let g = grads.get(&x).unwrap();
    assert_eq!(g.shape(), &[b, steps, h]);
    for bi in 0..b {
        for t in 0..steps {
            for hi in 0..h {
                assert_relative_eq!(g.get(&[bi, t, hi]), t as f64 + 1.0);
            }
        }
    }
}

#[test]
fn narrow_slices_accumulate_when_recorded() {
    let x = Tensor::<f64>::zeros(&[2, 10, 3]).requires_grad();
    let grads = stepwise_loss(&x, 10).backward_with_graph();
    let g = grads.get(&x).unwrap();
    // The loss is linear in x, so its gradient is a constant: nothing to record.
    assert!(!g.needs_grad());
    assert_relative_eq!(g.get(&[0, 0, 0]), 1.0);
    assert_relative_eq!(g.get(&[1, 9, 2]), 10.0);
}

#[test]
fn overlapping_narrows_and_a_full_use_add_up() {
    // loss = Σ x + Σ x[1..3] + Σ x[2..4]  ⇒  grad = [1, 2, 3, 2]
    let x = Tensor::<f64>::zeros(&[4]).requires_grad();
    let loss = x.sum() + x.narrow(0, 1, 2).sum() + x.narrow(0, 2, 2).sum();
    let g = loss.backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![1.0, 2.0, 3.0, 2.0]);
}

#[test]
fn repeated_index_select_rows_add_up() {
    // Embedding-style lookup with repeats: row 2 is used three times, row 0 once.
    let table = Tensor::<f64>::arange(8).reshape(&[4, 2]).requires_grad();
    let ids = [2, 0, 2, 2];
    let picked = table.index_select(0, &ids);
    let w = Tensor::from_vec(vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0], &[4, 2]);
    let g = (picked * &w).sum().backward();
    let expected = vec![2.0, 20.0, 0.0, 0.0, 8.0, 80.0, 0.0, 0.0];
    assert_eq!(g.get(&table).unwrap().to_vec(), expected);
}

#[test]
fn index_select_gradient_is_differentiable_again() {
    // loss = Σ (x[ids])² ⇒ grad = 2·count·x ⇒ Σ grad = 2·Σ count·x; d/dx = 2·count
    let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]).requires_grad();
    let loss = x.index_select(0, &[0, 2, 2]).powf(2.0).sum();
    let g = loss.backward_with_graph().get(&x).unwrap().clone();
    assert_eq!(g.to_vec(), vec![2.0, 0.0, 12.0]);
    let gg = g.sum().backward();
    assert_eq!(gg.get(&x).unwrap().to_vec(), vec![2.0, 0.0, 4.0]);
}
