//! `models::resnet` against torchvision 0.29 (`tests/fixtures/resnet/`, made by
//! `make_reference.py` there): the state_dict's names, shapes and dtypes are torchvision's, and a
//! file of torchvision-named tensors gives torchvision's logits in evaluation mode and in
//! training mode, with the same running statistics after the training-mode pass.
//!
//! A real checkpoint is 45 MB, so the fixture script fills every tensor with a formula that
//! [`value`] reproduces; the test writes those tensors to a safetensors file (counts as `I64`, as
//! torchvision's `num_batches_tracked`) and loads it with `ResNet::from_safetensors`.

mod common;

use common::named_tensor;
use tensorgrad::models::resnet::{ResNet, ResNetDepth};
use tensorgrad::nn::Module;
use tensorgrad::{Tensor, io};

const REF: &str = include_str!("fixtures/resnet/reference.txt");
const NAMES: &str = include_str!("fixtures/resnet/names.txt");

fn key(name: &str) -> usize {
    name.bytes().enumerate().map(|(j, b)| b as usize * (j + 1)).sum::<usize>() % 1000
}

/// The fixture script's `value(name, shape)`.
fn value(name: &str, shape: &[usize]) -> Vec<f64> {
    let n: usize = shape.iter().product();
    let k = key(name) as f64;
    let s: Vec<f64> =
        (0..n).map(|i| i as f64).map(|i| (1.3 * i + 0.7 * k + 0.001 * i * i / n.max(1) as f64).sin()).collect();
    let leaf = name.rsplit('.').next().unwrap();
    match leaf {
        "num_batches_tracked" => vec![(key(name) % 7) as f64],
        "running_var" => s.iter().map(|v| 1.0 + 0.5 * v.abs()).collect(),
        "running_mean" => s.iter().map(|v| 0.1 * v).collect(),
        _ if name.starts_with("bn") || name.contains(".bn") || name.contains("downsample.1") => {
            if leaf == "weight" {
                s.iter().map(|v| 1.0 + 0.2 * v).collect()
            } else {
                s.iter().map(|v| 0.1 * v).collect()
            }
        }
        _ => {
            let fan_in: usize = if shape.len() > 1 { shape[1..].iter().product() } else { shape[0] };
            s.iter().map(|v| v * (3.0 / fan_in as f64).sqrt()).collect()
        }
    }
}

/// torchvision's state_dict: (name, shape, dtype).
fn torchvision_names() -> Vec<(String, Vec<usize>, String)> {
    NAMES
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, rest) = l.split_once(' ').unwrap();
            let (shape, dtype) = rest.rsplit_once(' ').unwrap();
            let shape = shape.trim_matches(['[', ']']).split(',').filter(|v| !v.trim().is_empty());
            (name.to_string(), shape.map(|v| v.trim().parse().unwrap()).collect(), dtype.to_string())
        })
        .collect()
}

fn images() -> Tensor<f32> {
    let n = 2 * 3 * 64 * 64;
    let x = (0..n).map(|i| i as f64).map(|i| ((0.01 * i).sin() + 0.5 * (0.003 * i).cos()) as f32);
    Tensor::from_vec(x.collect(), &[2, 3, 64, 64])
}

fn assert_close(got: &Tensor<f32>, want: &Tensor<f64>, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    for (i, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!((f64::from(*g) - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: {g} vs torchvision {w}");
    }
}

#[test]
fn the_state_dict_is_torchvisions() {
    let model: ResNet = ResNet::new(ResNetDepth::R18, 10, 0);
    let ours: Vec<(String, Vec<usize>)> =
        model.state_dict().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    let mut theirs: Vec<(String, Vec<usize>)> = torchvision_names().into_iter().map(|(n, s, _)| (n, s)).collect();
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    theirs.sort();
    assert_eq!(ours_sorted, theirs);
    // Saved, the counts are I64 like torchvision's.
    let bytes = io::save_model_to_bytes(&model).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    for (name, _, dtype) in torchvision_names() {
        let want = if dtype == "int64" { "I64" } else { "F32" };
        assert!(header.contains(&format!("\"{name}\":{{\"dtype\":\"{want}\"")), "{name} is not {want}");
    }
}

#[test]
fn torchvision_weights_give_torchvisions_logits_and_running_statistics() {
    let tensors: Vec<(String, Tensor<f64>)> =
        torchvision_names().into_iter().map(|(n, s, _)| (n.clone(), Tensor::from_vec(value(&n, &s), &s))).collect();
    // Written as torchvision's file would be: floats as F32, the counts as I64 (through a model
    // whose state has exactly these names).
    let writer: ResNet<f64> = ResNet::new(ResNetDepth::R18, 10, 1);
    for (name, t) in writer.state_dict() {
        let v = tensors.iter().find(|(n, _)| *n == name).unwrap().1.to_vec();
        t.update_(|d| d.copy_from_slice(&v));
    }
    let path = std::env::temp_dir().join(format!("tensorgrad-resnet18-{}.safetensors", std::process::id()));
    io::save_model(&writer, &path).unwrap();
    let f32_path = std::env::temp_dir().join(format!("tensorgrad-resnet18-f32-{}.safetensors", std::process::id()));
    let as_f32: Vec<(String, Tensor<f32>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), Tensor::from_vec(t.to_vec().iter().map(|&v| v as f32).collect(), t.shape())))
        .collect();
    io::save_tensors(&f32_path, &as_f32, &[]).unwrap();
    std::fs::remove_file(&path).ok();

    let mut model: ResNet = ResNet::from_safetensors(&f32_path).unwrap();
    // The same file in f64 (converted on loading), against torchvision in float64.
    let mut model64: ResNet<f64> = ResNet::from_safetensors(&f32_path).unwrap();
    std::fs::remove_file(&f32_path).ok();
    let x64 = Tensor::from_vec(images().to_vec().iter().map(|&v| f64::from(v)).collect(), &[2, 3, 64, 64]);
    model64.eval();
    common::close_to(&model64.forward(&x64), &named_tensor(REF, "eval_logits_f64"), 1e-10, "f64 eval logits");
    model64.train();
    common::close_to(&model64.forward(&x64), &named_tensor(REF, "train_logits_f64"), 1e-10, "f64 train logits");
    let rv = model64.state_dict().into_iter().find(|(n, _)| n == "layer4.1.bn2.running_var").unwrap().1;
    common::close_to(&rv, &named_tensor(REF, "layer4.1.bn2.running_var_f64"), 1e-10, "f64 running_var");

    assert_eq!(model.depth(), ResNetDepth::R18);
    model.eval();
    assert_close(&model.forward(&images()), &named_tensor(REF, "eval_logits"), 1e-4, "eval logits");
    model.train();
    // Training mode normalises layer 4 over 2 images × 2×2 positions: 8 values per channel,
    // which amplifies float32 rounding in either implementation (the f64 check above is exact).
    assert_close(&model.forward(&images()), &named_tensor(REF, "train_logits"), 5e-4, "train logits");
    let state = model.state_dict();
    for name in [
        "bn1.running_mean",
        "bn1.running_var",
        "layer4.1.bn2.running_mean",
        "layer4.1.bn2.running_var",
        "layer2.0.downsample.1.running_var",
        "bn1.num_batches_tracked",
    ] {
        let got = &state.iter().find(|(n, _)| n == name).unwrap().1;
        assert_close(got, &named_tensor(REF, name), 1e-5, name);
    }
}

#[test]
fn a_file_that_is_not_a_resnet_is_a_config_error() {
    let path = std::env::temp_dir().join(format!("tensorgrad-not-resnet-{}.safetensors", std::process::id()));
    io::save_tensors(&path, &[("fc.weight".to_string(), Tensor::<f32>::zeros(&[2, 3]))], &[]).unwrap();
    let err = ResNet::<f32>::from_safetensors(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).ok();
    assert!(err.contains("not ResNet-18, -34 or -50"), "{err}");
}

#[test]
fn resnet50_has_torchvisions_parameter_count() {
    let model: ResNet = ResNet::new(ResNetDepth::R50, 1000, 0);
    assert_eq!(model.num_parameters(), 25_557_032);
    let r34: ResNet = ResNet::new(ResNetDepth::R34, 1000, 0);
    assert_eq!(r34.num_parameters(), 21_797_672);
}
