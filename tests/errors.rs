//! Bad inputs panic with a message naming the op and the shapes or values involved; fallible
//! constructors return typed errors; and the autograd semantics users rely on (gradients add up,
//! `detach`, `no_grad`, accumulation, deep graphs) hold.

use approx::{assert_abs_diff_eq, assert_relative_eq};
use tensorgrad::{Error, Gradients, Tensor, is_grad_enabled, no_grad};

fn m23() -> Tensor {
    Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
}

// ---------------------------------------------------------------------------------------------
// Broadcasting in binary ops
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] cannot be broadcast together")]
fn add_shape_mismatch() {
    let _ = &m23() + &Tensor::zeros(&[4]);
}

#[test]
#[should_panic(expected = "mul: shapes [2, 3] and [3, 2] cannot be broadcast together")]
fn mul_shape_mismatch() {
    let _ = m23() * Tensor::zeros(&[3, 2]);
}

#[test]
#[should_panic(expected = "sub: shapes [2, 1, 3] and [4, 2] cannot be broadcast together")]
fn sub_shape_mismatch() {
    let _ = Tensor::<f32>::zeros(&[2, 1, 3]) - Tensor::zeros(&[4, 2]);
}

#[test]
#[should_panic(expected = "div: shapes [5] and [2, 3] cannot be broadcast together")]
fn div_shape_mismatch() {
    let _ = Tensor::<f64>::ones(&[5]) / Tensor::ones(&[2, 3]);
}

#[test]
#[should_panic(expected = "broadcast_to: cannot broadcast shape [2, 3] to [3, 3]")]
fn broadcast_to_incompatible_dim() {
    let _ = m23().broadcast_to(&[3, 3]);
}

#[test]
#[should_panic(expected = "broadcast_to: cannot broadcast shape [2, 3] to [3]")]
fn broadcast_to_fewer_dims() {
    let _ = m23().broadcast_to(&[3]);
}

// ---------------------------------------------------------------------------------------------
// matmul
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "matmul: cannot multiply [128, 16] by [32, 4]: inner dims 16 ≠ 32")]
fn matmul_inner_dim_mismatch() {
    let _ = Tensor::<f32>::zeros(&[128, 16]).matmul(&Tensor::zeros(&[32, 4]));
}

#[test]
#[should_panic(expected = "matmul: cannot multiply [3] by [4]: inner dims 3 ≠ 4")]
fn matmul_vector_length_mismatch() {
    let _ = Tensor::<f32>::zeros(&[3]).matmul(&Tensor::zeros(&[4]));
}

#[test]
#[should_panic(
    expected = "matmul: batch dims [2] and [3] of shapes [2, 4, 5] and [3, 5, 6] cannot be broadcast together"
)]
fn matmul_batch_mismatch() {
    let _ = Tensor::<f32>::zeros(&[2, 4, 5]).matmul(&Tensor::zeros(&[3, 5, 6]));
}

#[test]
#[should_panic(expected = "matmul: both operands need at least one dim, got shapes [] and [3]")]
fn matmul_of_a_scalar() {
    let _ = Tensor::scalar(1.0f32).matmul(&Tensor::zeros(&[3]));
}

// ---------------------------------------------------------------------------------------------
// Dims out of range
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "transpose: dim 2 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn transpose_bad_dim() {
    let _ = m23().transpose(0, 2);
}

#[test]
#[should_panic(expected = "t: expects a 2-D tensor, got shape [2, 3, 4]")]
fn t_of_a_3d_tensor() {
    let _ = Tensor::<f32>::zeros(&[2, 3, 4]).t();
}

#[test]
#[should_panic(expected = "t: expects a 2-D tensor, got shape [3]")]
fn t_of_a_1d_tensor() {
    let _ = Tensor::<f32>::zeros(&[3]).t();
}

#[test]
#[should_panic(expected = "narrow: dim 2 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn narrow_bad_dim() {
    let _ = m23().narrow(2, 0, 1);
}

#[test]
#[should_panic(expected = "narrow: range 2..5 is out of bounds for dim 1 of size 3 (shape [2, 3])")]
fn narrow_out_of_range() {
    let _ = m23().narrow(1, 2, 3);
}

#[test]
#[should_panic(expected = "narrow: range 4..4 is out of bounds for dim 1 of size 3 (shape [2, 3])")]
fn narrow_empty_range_past_the_end() {
    let _ = m23().narrow(1, 4, 0);
}

#[test]
#[should_panic(expected = "narrow: range 1..18446744073709551615 is out of bounds for dim 0 of size 2")]
fn narrow_length_overflow() {
    let _ = m23().narrow(0, 1, usize::MAX);
}

#[test]
#[should_panic(expected = "squeeze: dim 2 is out of range for a tensor of shape [2, 1] (rank 2)")]
fn squeeze_bad_dim() {
    let _ = Tensor::<f32>::zeros(&[2, 1]).squeeze(2);
}

#[test]
#[should_panic(expected = "squeeze: dim 0 has size 2, not 1 (shape [2, 1])")]
fn squeeze_of_a_non_1_dim() {
    let _ = Tensor::<f32>::zeros(&[2, 1]).squeeze(0);
}

#[test]
#[should_panic(expected = "unsqueeze: dim 3 is out of range for a tensor of shape [2, 3] (valid: 0..=2)")]
fn unsqueeze_bad_dim() {
    let _ = m23().unsqueeze(3);
}

#[test]
#[should_panic(expected = "sum_dim: dim 2 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn sum_dim_bad_dim() {
    let _ = m23().sum_dim(2, false);
}

#[test]
#[should_panic(expected = "mean_dim: dim 2 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn mean_dim_bad_dim() {
    let _ = m23().mean_dim(2, true);
}

#[test]
#[should_panic(expected = "softmax: dim 2 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn softmax_bad_dim() {
    let _ = m23().softmax(2);
}

#[test]
#[should_panic(expected = "log_softmax: dim 5 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn log_softmax_bad_dim() {
    let _ = m23().log_softmax(5);
}

#[test]
#[should_panic(expected = "max_dim: dim 2 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn max_dim_bad_dim() {
    let _ = m23().max_dim(2, false);
}

#[test]
#[should_panic(expected = "max_dim: dim 1 of shape [2, 0] is empty")]
fn max_dim_of_an_empty_dim() {
    let _ = Tensor::<f32>::zeros(&[2, 0]).max_dim(1, false);
}

#[test]
#[should_panic(expected = "dim: dim 4 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn dim_accessor_bad_dim() {
    let _ = m23().dim(4);
}

#[test]
#[should_panic(expected = "get: index [2, 0] is out of bounds for shape [2, 3]")]
fn get_out_of_bounds() {
    let _ = m23().get(&[2, 0]);
}

#[test]
#[should_panic(expected = "get: index [1] is out of bounds for shape [2, 3]")]
fn get_wrong_rank() {
    let _ = m23().get(&[1]);
}

// ---------------------------------------------------------------------------------------------
// cat and stack
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "cat: dim 2 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn cat_bad_dim() {
    let _ = Tensor::cat(&[m23(), m23()], 2);
}

#[test]
#[should_panic(expected = "cat: shapes [[2, 3], [3, 3]] differ outside dim 1")]
fn cat_shape_mismatch() {
    let _ = Tensor::cat(&[m23(), Tensor::zeros(&[3, 3])], 1);
}

#[test]
#[should_panic(expected = "cat: shapes [[2, 3], [2, 3, 1]] differ outside dim 0")]
fn cat_rank_mismatch() {
    let _ = Tensor::cat(&[m23(), Tensor::zeros(&[2, 3, 1])], 0);
}

#[test]
#[should_panic(expected = "cat: needs at least one tensor")]
fn cat_of_an_empty_list() {
    let _ = Tensor::<f32>::cat::<Tensor<f32>>(&[], 0);
}

#[test]
#[should_panic(expected = "stack: dim 3 is out of range for tensors of shape [2, 3] (valid: 0..=2)")]
fn stack_bad_dim() {
    let _ = Tensor::stack(&[m23(), m23()], 3);
}

#[test]
#[should_panic(expected = "stack: all tensors must have the same shape, got [2, 3] and [3, 2]")]
fn stack_shape_mismatch() {
    let _ = Tensor::stack(&[m23(), Tensor::zeros(&[3, 2])], 0);
}

#[test]
#[should_panic(expected = "stack: needs at least one tensor")]
fn stack_of_an_empty_list() {
    let _ = Tensor::<f64>::stack::<Tensor<f64>>(&[], 0);
}

// ---------------------------------------------------------------------------------------------
// permute, reshape
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "permute: [0, 0] is not a permutation of the 2 dims of a tensor of shape [2, 3]")]
fn permute_repeated_dim() {
    let _ = m23().permute(&[0, 0]);
}

#[test]
#[should_panic(expected = "permute: [1, 0, 2] is not a permutation of the 2 dims of a tensor of shape [2, 3]")]
fn permute_wrong_length() {
    let _ = m23().permute(&[1, 0, 2]);
}

#[test]
#[should_panic(expected = "permute: [0, 2] is not a permutation of the 2 dims of a tensor of shape [2, 3]")]
fn permute_dim_out_of_range() {
    let _ = m23().permute(&[0, 2]);
}

#[test]
#[should_panic(expected = "reshape: cannot reshape [2, 3] (6 elements) into [4, 2] (8 elements)")]
fn reshape_wrong_element_count() {
    let _ = m23().reshape(&[4, 2]);
}

#[test]
#[should_panic(expected = "reshape: cannot reshape [3, 2] (6 elements) into [5] (5 elements)")]
fn reshape_of_a_view_wrong_element_count() {
    let _ = m23().t().reshape(&[5]);
}

// ---------------------------------------------------------------------------------------------
// index_select, gather
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "index_select: index 5 at position 2 is out of range for dim 1 of size 3")]
fn index_select_index_out_of_range() {
    let _ = m23().index_select(1, &[0, 2, 5, 1]);
}

#[test]
#[should_panic(expected = "index_select: dim 2 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn index_select_bad_dim() {
    let _ = m23().index_select(2, &[0]);
}

#[test]
#[should_panic(expected = "gather: index 3 at position 1 is out of range for dim 1 of size 3")]
fn gather_index_out_of_range() {
    let _ = m23().gather(1, &[0, 3]);
}

#[test]
#[should_panic(expected = "gather: 3 indices given, but a tensor of shape [2, 3] has 2 slices along dim 1")]
fn gather_wrong_index_count() {
    let _ = m23().gather(1, &[0, 1, 2]);
}

#[test]
#[should_panic(expected = "gather: dim 2 is out of range for a tensor of shape [2, 3] (rank 2)")]
fn gather_bad_dim() {
    let _ = m23().gather(2, &[0]);
}

// ---------------------------------------------------------------------------------------------
// Scalars, backward, construction, values
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "item: expected a tensor with one element, got shape [2, 3] (6 elements)")]
fn item_of_a_non_scalar() {
    let _ = m23().item();
}

#[test]
#[should_panic(expected = "item: expected a tensor with one element, got shape [0] (0 elements)")]
fn item_of_an_empty_tensor() {
    let _ = Tensor::<f32>::zeros(&[0]).item();
}

#[test]
#[should_panic(expected = "backward: can only start from a tensor with one element, got shape [2, 3]; \
                           use backward_with_grad to give the output gradient")]
fn backward_from_a_non_scalar() {
    let x = m23().requires_grad();
    let _ = (&x * 2.0).backward();
}

#[test]
#[should_panic(expected = "backward_with_graph: can only start from a tensor with one element, got shape [2, 3]")]
fn backward_with_graph_from_a_non_scalar() {
    let x = m23().requires_grad();
    let _ = (&x * 2.0).backward_with_graph();
}

#[test]
#[should_panic(expected = "backward: output gradient has shape [3, 2] but the output has shape [2, 3]")]
fn backward_with_grad_wrong_shape() {
    let x = m23().requires_grad();
    let _ = (&x * 2.0).backward_with_grad(&Tensor::ones(&[3, 2]));
}

#[test]
#[should_panic(expected = "backward: output gradient has shape [1] but the output has shape []")]
fn backward_with_grad_wrong_rank_for_a_scalar() {
    let x = m23().requires_grad();
    let _ = x.sum().backward_with_grad(&Tensor::ones(&[1]));
}

#[test]
#[should_panic(expected = "Tensor::from_vec: 5 values cannot fill shape [2, 3], which holds 6")]
fn from_vec_wrong_length() {
    let _ = Tensor::from_vec(vec![1.0f32; 5], &[2, 3]);
}

#[test]
#[should_panic(expected = "clamp: min 2 must not exceed max 1")]
fn clamp_min_above_max() {
    let _ = m23().clamp(2.0, 1.0);
}

#[test]
#[should_panic(expected = "clamp: min NaN must not exceed max 1")]
fn clamp_nan_bound() {
    let _ = m23().clamp(f32::NAN, 1.0);
}

#[test]
#[should_panic(expected = "update_: tensor of shape [3, 2] is not contiguous")]
fn update_of_a_transposed_view() {
    m23().t().update_(|d| d.fill(0.0));
}

#[test]
#[should_panic(expected = "rand_uniform: invalid range [1, 0)")]
fn rand_uniform_empty_range() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let _ = Tensor::<f32>::rand_uniform(&[2], 1.0, 0.0, &mut rng);
}

#[test]
#[should_panic(expected = "randn: invalid standard deviation inf")]
fn randn_infinite_std() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let _ = Tensor::<f32>::randn(&[2], 0.0, f32::INFINITY, &mut rng);
}

// ---------------------------------------------------------------------------------------------
// Non-panicking checks
// ---------------------------------------------------------------------------------------------

#[test]
fn try_from_vec_returns_a_data_length_error() {
    let err = Tensor::<f32>::try_from_vec(vec![1.0, 2.0, 3.0], &[2, 2]).unwrap_err();
    assert!(
        matches!(&err, Error::DataLength { op: "Tensor::from_vec", len: 3, shape, expected: 4, .. } if shape == &[2, 2]),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("[2, 2]"), "{msg}");
    assert_eq!(msg, "Tensor::from_vec: 3 values cannot fill shape [2, 2], which holds 4");

    // A scalar shape holds one value; an empty shape none.
    let err = Tensor::<f64>::try_from_vec(vec![], &[]).unwrap_err();
    assert!(err.to_string().contains("shape []"), "{err}");
    assert!(Tensor::<f64>::try_from_vec(vec![], &[3, 0]).is_ok());
    let ok = Tensor::<f64>::try_from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    assert_eq!(ok.to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn error_is_a_std_error() {
    fn takes_std_error(_: &(dyn std::error::Error + Send + Sync + 'static)) {}
    let err = Tensor::<f32>::try_from_vec(vec![1.0], &[2]).unwrap_err();
    takes_std_error(&err);
}

#[test]
fn tensors_and_gradients_are_send_and_sync() {
    const fn assert_send_sync<T: Send + Sync>() {}
    const _: () = {
        assert_send_sync::<Tensor<f32>>();
        assert_send_sync::<Tensor<f64>>();
        assert_send_sync::<Gradients>();
        assert_send_sync::<Gradients<f64>>();
        assert_send_sync::<Error>();
    };
    // And they really can cross threads.
    let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).requires_grad();
    let loss = (&x * &x).sum();
    let grads = std::thread::spawn(move || loss.backward()).join().unwrap();
    assert_eq!(grads.get(&x).unwrap().to_vec(), vec![2.0, 4.0]);
}

#[test]
fn a_panic_inside_no_grad_restores_recording() {
    assert!(is_grad_enabled());
    let r = std::panic::catch_unwind(|| no_grad(|| panic!("inside no_grad")));
    assert!(r.is_err());
    assert!(is_grad_enabled());
}

// ---------------------------------------------------------------------------------------------
// Autograd semantics
// ---------------------------------------------------------------------------------------------

#[test]
fn gradients_add_up_when_a_tensor_is_used_twice() {
    let x = Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3]).requires_grad();

    let g = (&x * &x).sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![2.0, -4.0, 6.0]);

    let g = (&x + &x).sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![2.0, 2.0, 2.0]);

    // Two branches that meet again: d/dx Σ(2x + 3x·x) = 2 + 6x.
    let y = (&x * 2.0 + (&x * &x) * 3.0).sum();
    let g = y.backward();
    assert_eq!(g.len(), 1);
    for (gi, xi) in g.get(&x).unwrap().to_vec().iter().zip(x.to_vec()) {
        assert_relative_eq!(*gi, 2.0 + 6.0 * xi);
    }

    // Through views of the same leaf: Σ(x ⊙ reverse(x)) via index_select.
    let r = x.index_select(0, &[2, 1, 0]);
    let g = (&x * &r).sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![6.0, -4.0, 2.0]);
}

#[test]
fn detach_stops_gradients() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).requires_grad();
    let d = x.detach();
    assert!(!d.needs_grad());
    assert!(d.is_leaf());
    assert_ne!(d.id(), x.id());
    assert_eq!(d.to_vec(), x.to_vec());

    // y = Σ detach(x)·x: only the second factor carries a gradient, so dy/dx = x (not 2x).
    let g = (&d * &x).sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![1.0, 2.0, 3.0]);
    assert!(g.get(&d).is_none());

    // Nothing flows at all through a fully detached expression.
    let y = (&x * 3.0).detach().sum();
    assert!(!y.needs_grad());
    let g = y.backward();
    assert!(g.is_empty());
    assert!(g.get(&x).is_none());
}

#[test]
fn no_grad_records_nothing() {
    let w = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).requires_grad();
    let y = no_grad(|| {
        assert!(!is_grad_enabled());
        ((&w * 3.0).exp() + &w).sum()
    });
    assert!(is_grad_enabled());
    assert!(!y.needs_grad());
    assert!(y.is_leaf());
    assert_eq!(y.op_name(), None);
    assert!(y.backward().is_empty());

    // Outside no_grad the same expression is recorded.
    let y = ((&w * 3.0).exp() + &w).sum();
    assert!(y.needs_grad());
    assert!(!y.is_leaf());
    assert!(y.op_name().is_some());

    // Nested no_grad restores the outer state.
    no_grad(|| {
        no_grad(|| assert!(!is_grad_enabled()));
        assert!(!is_grad_enabled());
    });
    assert!(is_grad_enabled());
}

#[test]
fn gradients_accumulate_across_backward_passes() {
    let w = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).requires_grad();
    let b = Tensor::from_vec(vec![0.5f64], &[1]).requires_grad();
    let batch1 = Tensor::from_vec(vec![1.0f64, 0.0, -1.0], &[3]);
    let batch2 = Tensor::from_vec(vec![2.0f64, 1.0, 0.0], &[3]);

    let mut total = Gradients::new();
    assert!(total.is_empty());
    let g1 = ((&w * &batch1).sum() + b.sum()).backward();
    let g2 = ((&w * &batch2).sum() + b.sum() * 2.0).backward();
    total.accumulate(g1);
    assert_eq!(total.get(&w).unwrap().to_vec(), vec![1.0, 0.0, -1.0]);
    total.accumulate(g2);
    assert_eq!(total.len(), 2);
    assert_eq!(total.get(&w).unwrap().to_vec(), vec![3.0, 1.0, -1.0]);
    assert_eq!(total.get(&b).unwrap().to_vec(), vec![3.0]);

    // The same as one backward pass over the summed loss.
    let once = ((&w * &batch1).sum() + b.sum() + (&w * &batch2).sum() + b.sum() * 2.0).backward();
    for t in [&w, &b] {
        for (a, e) in total.get(t).unwrap().to_vec().iter().zip(once.get(t).unwrap().to_vec()) {
            assert_abs_diff_eq!(*a, e, epsilon = 1e-12);
        }
    }

    // Accumulating does not alias the gradients handed in: the first pass's tensor is unchanged.
    let g3 = (&w * 1.0).sum().backward();
    let g3_w = g3.get(&w).unwrap().clone();
    let mut acc = Gradients::new();
    acc.accumulate(g3);
    acc.accumulate((&w * 1.0).sum().backward());
    assert_eq!(acc.get(&w).unwrap().to_vec(), vec![2.0, 2.0, 2.0]);
    assert_eq!(g3_w.to_vec(), vec![1.0, 1.0, 1.0]);

    // insert / remove.
    let mut g = Gradients::new();
    g.insert(&w, Tensor::ones(&[3]));
    assert_eq!(g.remove(&w).unwrap().to_vec(), vec![1.0; 3]);
    assert!(g.remove(&w).is_none());
}

#[test]
fn a_deep_graph_runs_backward_and_drops_without_overflow() {
    const STEPS: usize = 100_000;
    let x = Tensor::from_vec(vec![1.5f64, -0.5], &[2]).requires_grad();
    let mut y = x.clone();
    for i in 0..STEPS {
        // Alternate y + 1 and y · (−1): the gradient is (−1)^(STEPS/2) = 1.
        y = if i % 2 == 0 { y.add_scalar(1.0) } else { y.mul_scalar(-1.0) };
    }
    let loss = y.sum();
    let grads = loss.backward();
    assert_eq!(grads.get(&x).unwrap().to_vec(), vec![1.0, 1.0]);
    drop(grads);
    drop(loss);
    drop(y);

    // Dropped without ever running backward.
    let mut y = x.clone();
    for _ in 0..STEPS {
        y = y.add_scalar(1.0);
    }
    assert_relative_eq!(y.get(&[0]), 1.5 + STEPS as f64);
    drop(y);
}

#[test]
fn graphs_are_freed_in_a_training_loop() {
    let w = Tensor::from_vec(vec![0.5f32, -0.25, 1.0, 2.0], &[2, 2]).requires_grad();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    let mut last = None;
    for _ in 0..1000 {
        let loss = (x.matmul(&w).tanh() * 0.5).sum();
        let grads = loss.backward();
        let g = grads.get(&w).unwrap().to_vec();
        if let Some(prev) = &last {
            assert_eq!(&g, prev, "same inputs, same gradient");
        }
        last = Some(g);
    }
    // The leaf is still a plain leaf, usable afterwards.
    assert!(w.is_leaf());
    assert!(w.needs_grad());
}

#[test]
#[should_panic(expected = "an input of shape [1] to `mul` was modified in place (update_) after the op was recorded")]
fn update_after_recording_is_refused_by_backward() {
    // The graph of Σ w·w was recorded at w = [2]; after an in-place update its backward would
    // use the new value. Like PyTorch's version counter, backward refuses, naming the op.
    let w = Tensor::from_vec(vec![2.0f32], &[1]).requires_grad();
    let loss = (&w * &w).sum();
    w.update_(|d| d[0] = 3.0);
    assert_eq!(w.to_vec(), vec![3.0]);
    loss.backward();
}
