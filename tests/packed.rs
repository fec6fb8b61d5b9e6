//! Matrices packed once (`Tensor::pack`, `matmul_packed`) and `Linear`'s packed weight in
//! inference: the same values as the unpacked product, and never a stale packing.

use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::nn::{Linear, Module};
use tensorgrad::optim::{Optimizer, Sgd, SgdConfig};
use tensorgrad::{Tensor, no_grad};

fn randn(shape: &[usize], seed: u64) -> Tensor<f32> {
    Tensor::randn(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.to_vec().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn packed_product_equals_the_product_bit_for_bit() {
    for (m, k, n) in [(1, 1, 1), (5, 17, 33), (64, 100, 70), (300, 257, 129)] {
        let x = randn(&[m, k], 1);
        let w = randn(&[n, k], 2);
        // A transposed view (a weight's Wᵀ) and a row-major matrix.
        for b in [w.t(), w.t().contiguous()] {
            let p = b.pack();
            assert_eq!(p.shape(), &[k, n]);
            assert_eq!(bits(&x.matmul_packed(&p)), bits(&x.matmul(&b)), "{m}x{k}x{n}");
        }
    }
    // Leading dims of the left operand fold into rows.
    let x = randn(&[2, 3, 8], 3);
    let b = randn(&[8, 5], 4);
    let y = x.matmul_packed(&b.pack());
    assert_eq!(y.shape(), &[2, 3, 5]);
    assert_eq!(bits(&y), bits(&x.matmul(&b)));
}

#[test]
fn gradients_flow_through_a_packed_product() {
    let x = randn(&[4, 6], 5).requires_grad();
    let b = randn(&[6, 3], 6);
    let g1 = x.matmul_packed(&b.pack()).sum().backward();
    let g2 = x.matmul(&b).sum().backward();
    assert_eq!(bits(g1.get(&x).unwrap()), bits(g2.get(&x).unwrap()));
}

#[test]
#[should_panic(expected = "matmul_packed: cannot multiply [2, 5] by a packed [4, 3]")]
fn wrong_inner_dim_names_both_shapes() {
    let _ = randn(&[2, 5], 7).matmul_packed(&randn(&[4, 3], 8).pack());
}

#[test]
#[should_panic(expected = "pack: expected a 2-D matrix, got shape [2, 3, 4]")]
fn pack_wants_a_matrix() {
    let _ = randn(&[2, 3, 4], 9).pack();
}

/// `Linear` under `no_grad` uses its packed weight: the same bits as with autograd on, and a
/// new packing after the optimizer changes the weight.
#[test]
fn linear_inference_uses_a_fresh_packing() {
    let mut rng = StdRng::seed_from_u64(10);
    let fc: Linear = Linear::new(20, 7, &mut rng);
    let x = randn(&[9, 20], 11);
    let train_mode = fc.forward(&x);
    let infer = no_grad(|| fc.forward(&x));
    assert_eq!(bits(&infer), bits(&train_mode));
    assert_eq!(bits(&no_grad(|| fc.forward(&x))), bits(&train_mode)); // from the cache

    // One SGD step changes the weight in place: inference must see it.
    let mut opt = Sgd::new(fc.parameters(), SgdConfig { lr: 0.5, ..Default::default() });
    let grads = fc.forward(&x).sum().backward();
    opt.step(&grads);
    let after = fc.forward(&x);
    let infer_after = no_grad(|| fc.forward(&x));
    assert_ne!(bits(&after), bits(&train_mode));
    assert_eq!(bits(&infer_after), bits(&after));
}

/// The fused LSTM under `no_grad` keeps its weights packed between calls: the same bits as a
/// forward pass with autograd on, and a fresh packing after the weights change.
#[test]
fn lstm_inference_uses_a_fresh_packing() {
    use tensorgrad::nn::{Lstm, LstmConfig};
    let mut rng = StdRng::seed_from_u64(12);
    let lstm: Lstm = Lstm::new(LstmConfig::new(5, 8), &mut rng);
    let x = randn(&[3, 4, 5], 13);
    let with_grad = lstm.forward(&x);
    assert_eq!(bits(&no_grad(|| lstm.forward(&x))), bits(&with_grad));
    assert_eq!(bits(&no_grad(|| lstm.forward(&x))), bits(&with_grad)); // from the cache
    let mut opt = Sgd::new(lstm.parameters(), SgdConfig { lr: 0.5, ..Default::default() });
    opt.step(&lstm.forward(&x).sum().backward());
    let after = lstm.forward(&x);
    assert_ne!(bits(&after), bits(&with_grad));
    assert_eq!(bits(&no_grad(|| lstm.forward(&x))), bits(&after));
}

/// Gradients of a packed product against central differences in f64: a contiguous and a
/// transposed left operand, a row-major and a transposed packed matrix, with and without leading
/// dims, and gradients of the gradients (its backward is recorded).
#[test]
fn gradcheck_packed_product() {
    use tensorgrad::{Tensor, gradcheck};
    let x = Tensor::<f64>::randn(&[4, 6], 0.0, 1.0, &mut StdRng::seed_from_u64(14));
    let w = Tensor::<f64>::randn(&[5, 6], 0.0, 1.0, &mut StdRng::seed_from_u64(15));
    type Check = fn(&[Tensor<f64>]) -> Tensor<f64>;
    let checks: [Check; 4] = [
        |v| v[0].matmul_packed(&v[1].t().pack()), // x · Wᵀ, W a transposed view
        |v| v[0].t().t().matmul_packed(&v[1].t().contiguous().pack()), // row-major packed matrix
        |v| v[0].reshape(&[2, 2, 6]).matmul_packed(&v[1].t().pack()), // leading dims
        |v| {
            // gradient of a gradient: d/dx of Σ (x·Wᵀ)² is recorded, then differentiated
            let y = v[0].matmul_packed(&v[1].t().pack());
            let g = (&y * &y).sum().backward_with_graph();
            g.get(&v[0]).unwrap().clone()
        },
    ];
    for (i, f) in checks.iter().enumerate() {
        let r = gradcheck(f, &[x.clone(), w.clone()]);
        assert!(r.is_ok(), "check {i}: {}", r.unwrap_err());
    }
    // A transposed (non-contiguous) left operand.
    let xt = Tensor::<f64>::randn(&[6, 4], 0.0, 1.0, &mut StdRng::seed_from_u64(16));
    let r = gradcheck(|v| v[0].t().matmul_packed(&v[1].t().pack()), &[xt, w]);
    assert!(r.is_ok(), "{}", r.unwrap_err());
}
