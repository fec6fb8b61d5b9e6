//! `batch_norm` and the `BatchNorm1d/2d` modules: values, gradients and running statistics against
//! PyTorch (float64, `tests/fixtures/batchnorm/reference.txt`, made by `make_reference.py` in that
//! folder), gradients against central differences on contiguous and non-contiguous inputs of
//! random shapes, second derivatives, buffers in weight files and checkpoints, and bad calls.

mod common;

use common::{close, close_to, named_tensor};
use proptest::prelude::*;
use tensorgrad::nn::{BatchNorm1d, BatchNorm2d, BatchNormConfig, Linear, Module, Sequential};
use tensorgrad::{BatchNormOptions, Tensor, gradcheck, io};

type T = Tensor<f64>;

const REF: &str = include_str!("fixtures/batchnorm/reference.txt");

fn r(name: &str) -> T {
    named_tensor(REF, name)
}

#[test]
fn functional_batch_norm_matches_pytorch_in_training_and_evaluation() {
    for name in ["x4", "x2", "x3"] {
        let (x, w, b, g) = (r(name), r(&format!("{name}_w")), r(&format!("{name}_b")), r(&format!("{name}_g")));
        let c = x.shape()[1];
        let at = |what: &str| format!("{name}_{what}");
        // Training with statistics and the affine part.
        let (xl, wl, bl) = (x.clone().requires_grad(), w.clone().requires_grad(), b.clone().requires_grad());
        let (rm, rv) = (Tensor::zeros(&[c]), Tensor::ones(&[c]));
        let y = xl.batch_norm(BatchNormOptions {
            running_mean: Some(&rm),
            running_var: Some(&rv),
            weight: Some(&wl),
            bias: Some(&bl),
            training: true,
            ..Default::default()
        });
        close(&y, &r(&at("train_y")), &at("train_y"));
        let grads = (&y * &g).sum().backward();
        close(grads.get(&xl).unwrap(), &r(&at("train_dx")), &at("train_dx"));
        // Σ g·(x − μ) over a channel whose mean (1e3) is 2000 of its spreads: x − μ carries the
        // rounding of x (1e-13), so the sum is only defined to ~1e-11 in either implementation.
        close_to(grads.get(&wl).unwrap(), &r(&at("train_dw")), 1e-11, &at("train_dw"));
        close(grads.get(&bl).unwrap(), &r(&at("train_db")), &at("train_db"));
        close(&rm, &r(&at("train_rm")), &at("train_rm"));
        close(&rv, &r(&at("train_rv")), &at("train_rv"));

        // Training without the affine part or statistics.
        let xl = x.clone().requires_grad();
        let y = xl.batch_norm(BatchNormOptions { training: true, eps: 1e-3, ..Default::default() });
        close(&y, &r(&at("plain_y")), &at("plain_y"));
        close((&y * &g).sum().backward().get(&xl).unwrap(), &r(&at("plain_dx")), &at("plain_dx"));

        // Evaluation with the updated statistics: they stay as they are.
        let (xl, wl, bl) = (x.clone().requires_grad(), w.clone().requires_grad(), b.clone().requires_grad());
        let before = (rm.to_vec(), rv.to_vec());
        let y = xl.batch_norm(BatchNormOptions {
            running_mean: Some(&rm),
            running_var: Some(&rv),
            weight: Some(&wl),
            bias: Some(&bl),
            ..Default::default()
        });
        assert_eq!((rm.to_vec(), rv.to_vec()), before);
        close(&y, &r(&at("eval_y")), &at("eval_y"));
        let grads = (&y * &g).sum().backward();
        close(grads.get(&xl).unwrap(), &r(&at("eval_dx")), &at("eval_dx"));
        close(grads.get(&wl).unwrap(), &r(&at("eval_dw")), &at("eval_dw"));
        close(grads.get(&bl).unwrap(), &r(&at("eval_db")), &at("eval_db"));
    }
}

#[test]
fn the_module_keeps_pytorchs_running_statistics_over_several_steps() {
    let x = r("x4");
    for (tag, momentum) in [("m01", Some(0.1)), ("mnone", None)] {
        let mut bn: BatchNorm2d<f64> = BatchNorm2d::with_config(3, BatchNormConfig { momentum, ..Default::default() });
        bn.weight().unwrap().value().update_(|w| w.copy_from_slice(&[1.5, 0.5, -1.0]));
        bn.bias().unwrap().value().update_(|b| b.copy_from_slice(&[0.1, 0.0, 0.2]));
        for step in 0..3 {
            let _ = bn.forward(&x.mul_scalar(1.0 + 0.5 * step as f64).add_scalar(step as f64));
        }
        close(&bn.running_mean().unwrap().value(), &r(&format!("module_{tag}_rm")), "running_mean");
        close(&bn.running_var().unwrap().value(), &r(&format!("module_{tag}_rv")), "running_var");
        let buffers = bn.named_buffers();
        assert_eq!(buffers[2].0, "num_batches_tracked");
        assert_eq!(buffers[2].1.shape(), &[] as &[usize]);
        assert_eq!(buffers[2].1.item(), r(&format!("module_{tag}_nbt")).item());
        bn.eval();
        close(&bn.forward(&x), &r(&format!("module_{tag}_eval_y")), "eval output");
    }
}

#[test]
fn buffers_are_state_but_not_parameters() {
    let bn: BatchNorm2d = BatchNorm2d::new(4);
    let params: Vec<String> = bn.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(params, ["weight", "bias"]);
    assert_eq!(bn.parameters().len(), 2);
    let state: Vec<String> = bn.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(state, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
    assert!(bn.named_buffers().iter().all(|(_, t)| !t.needs_grad()));
    let plain: BatchNorm1d = BatchNorm1d::with_config(
        4,
        BatchNormConfig { affine: false, track_running_stats: false, ..Default::default() },
    );
    assert!(plain.state_dict().is_empty());
    assert_eq!(
        Module::<f32>::describe(&bn),
        "BatchNorm2d(4, eps=0.00001, momentum=0.1, affine=true, track_running_stats=true)"
    );
}

#[test]
fn weight_files_carry_the_buffers_with_an_integer_count() {
    let model: Sequential<f64> = Sequential::new().add(BatchNorm1d::new(3)).add(Linear::new(3, 2, 0));
    let x = Tensor::from_vec((0..12).map(|i| (i * i % 7) as f64 - 2.0).collect(), &[4, 3]);
    let _ = model.forward(&x);
    let _ = model.forward(&x.mul_scalar(2.0));
    let bytes = io::save_model_to_bytes(&model).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    assert!(header.contains("\"0.num_batches_tracked\":{\"dtype\":\"I64\""), "{header}");

    let mut fresh: Sequential<f64> = Sequential::new().add(BatchNorm1d::new(3)).add(Linear::new(3, 2, 1));
    io::load_model_from_bytes(&fresh, &bytes).unwrap();
    for ((n, a), (_, b)) in model.state_dict().iter().zip(fresh.state_dict()) {
        assert_eq!(a.to_vec(), b.to_vec(), "{n}");
    }
    let mut model = model;
    model.eval();
    fresh.eval();
    assert_eq!(model.forward(&x).to_vec(), fresh.forward(&x).to_vec());

    // A file without the buffers is a mismatch naming them.
    let params_only = io::save_tensors_to_bytes(&model.named_parameters(), &[]).unwrap();
    let err = io::load_model_from_bytes(&fresh, &params_only).unwrap_err().to_string();
    assert!(err.contains("0.running_mean") && err.contains("0.num_batches_tracked"), "{err}");
}

#[test]
fn f32_training_agrees_with_f64() {
    // The same (f32-rounded) inputs in both types: what differs is the arithmetic.
    let x32 = Tensor::from_vec(r("x4").to_vec().iter().map(|&v| v as f32).collect(), r("x4").shape());
    let x64 = Tensor::from_vec(x32.to_vec().iter().map(|&v| f64::from(v)).collect(), x32.shape());
    let opts = BatchNormOptions { training: true, ..Default::default() };
    let a = x32.batch_norm(opts);
    let b = x64.batch_norm(BatchNormOptions { training: true, ..Default::default() });
    for (a, b) in a.to_vec().iter().zip(b.to_vec()) {
        assert!((*a as f64 - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
#[should_panic(expected = "batch_norm: weight has shape [4], the input [2, 3, 5] has 3 channels")]
fn a_wrong_weight_shape_is_refused() {
    let w = Tensor::<f32>::ones(&[4]);
    let _ = Tensor::<f32>::zeros(&[2, 3, 5]).batch_norm(BatchNormOptions { weight: Some(&w), ..Default::default() });
}

#[test]
#[should_panic(expected = "batch_norm: training needs more than one value per channel, got input of shape [1, 3]")]
fn training_on_one_value_per_channel_is_refused() {
    let _ = Tensor::<f32>::zeros(&[1, 3]).batch_norm(BatchNormOptions { training: true, ..Default::default() });
}

#[test]
#[should_panic(expected = "BatchNorm2d: expected an input [N, C, H, W], got shape [2, 3, 4]")]
fn batchnorm2d_refuses_a_3d_input() {
    let bn: BatchNorm2d = BatchNorm2d::new(3);
    let _ = bn.forward(&Tensor::zeros(&[2, 3, 4]));
}

#[test]
#[should_panic(expected = "BatchNorm1d: the input [2, 5] has 5 channels, the layer 3")]
fn batchnorm1d_refuses_other_channels() {
    let bn: BatchNorm1d = BatchNorm1d::new(3);
    let _ = bn.forward(&Tensor::zeros(&[2, 5]));
}

fn shape_and_values() -> impl Strategy<Value = (Vec<usize>, Vec<f64>)> {
    (2usize..4, 1usize..4, prop::collection::vec(1usize..4, 0..=2)).prop_flat_map(|(n, c, rest)| {
        let mut shape = vec![n, c];
        shape.extend(rest);
        let len: usize = shape.iter().product();
        (Just(shape), prop::collection::vec(-2.0f64..2.0, len))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gradcheck_on_contiguous_and_transposed_inputs((shape, vals) in shape_and_values()) {
        let c = shape[1];
        let w = Tensor::from_vec((0..c).map(|i| 0.5 + 0.25 * i as f64).collect(), &[c]);
        let b = w.mul_scalar(-0.3);
        let rm = Tensor::from_vec(vec![0.1; c], &[c]);
        let rv = Tensor::from_vec(vec![1.5; c], &[c]);
        for training in [true, false] {
            let f = |i: &[T]| {
                let opts = BatchNormOptions { running_mean: Some(&rm), running_var: Some(&rv), weight: Some(&i[1]), bias: Some(&i[2]), training, eps: 1e-3, ..Default::default() };
                let y = i[0].batch_norm(opts);
                (&y * &y.sin()).sum()
            };
            let leaf = Tensor::from_vec(vals.clone(), &shape);
            let res = gradcheck(f, &[leaf, w.clone(), b.clone()]);
            prop_assert!(res.is_ok(), "training={} contiguous {:?}: {}", training, shape, res.unwrap_err());
            // A non-contiguous input: the batch and channel dims stored the other way round.
            let mut tshape = shape.clone();
            tshape.swap(0, 1);
            let stored = Tensor::from_vec(vals.clone(), &tshape);
            let g = |i: &[T]| {
                let opts = BatchNormOptions { weight: Some(&w), bias: Some(&b), training, running_mean: Some(&rm), running_var: Some(&rv), eps: 1e-3, ..Default::default() };
                let y = i[0].transpose(0, 1).batch_norm(opts);
                (&y * &y.sin()).sum()
            };
            let res = gradcheck(g, &[stored]);
            prop_assert!(res.is_ok(), "training={} transposed {:?}: {}", training, tshape, res.unwrap_err());
        }
    }
}

#[test]
fn second_derivatives_match_central_differences() {
    let x = Tensor::from_vec((0..24).map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.3).collect(), &[2, 3, 4]);
    let w = Tensor::from_vec(vec![0.7, -1.2, 1.5], &[3]);
    let b = Tensor::from_vec(vec![0.1, 0.2, -0.3], &[3]);
    let f = |i: &[T]| {
        let y = i[0].batch_norm(BatchNormOptions {
            weight: Some(&i[1]),
            bias: Some(&i[2]),
            training: true,
            eps: 1e-3,
            ..Default::default()
        });
        let grads = (&y * &y.sin()).sum().backward_with_graph();
        let (gx, gw) = (grads.get(&i[0]).unwrap(), grads.get(&i[1]).unwrap());
        &(gx * gx).sum() + &(gw * gw).sum()
    };
    gradcheck(f, &[x, w, b]).unwrap();
}

#[test]
fn checkpoints_carry_the_running_statistics() {
    use tensorgrad::optim::{Adam, AdamConfig};
    use tensorgrad::train::{History, load_checkpoint, save_checkpoint};
    let model: Sequential<f64> = Sequential::new().add(BatchNorm1d::new(2));
    let x = Tensor::from_vec(vec![1.0, 5.0, 2.0, 7.0, 4.0, -1.0], &[3, 2]);
    let _ = model.forward(&x);
    let opt = Adam::new(model.named_parameters(), AdamConfig::default());
    let path = std::env::temp_dir().join(format!("tensorgrad-bn-ckpt-{}.safetensors", std::process::id()));
    save_checkpoint(&path, &model, &opt, 0, &History::default()).unwrap();
    let fresh: Sequential<f64> = Sequential::new().add(BatchNorm1d::new(2));
    let mut fresh_opt = Adam::new(fresh.named_parameters(), AdamConfig::default());
    load_checkpoint(&path, &fresh, &mut fresh_opt).unwrap();
    std::fs::remove_file(&path).ok();
    for ((n, a), (_, b)) in model.state_dict().iter().zip(fresh.state_dict()) {
        assert_eq!(a.to_vec(), b.to_vec(), "{n}");
    }
    assert_eq!(fresh.named_buffers()[2].1.item(), 1.0);
}
