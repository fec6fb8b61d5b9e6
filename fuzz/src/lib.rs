//! Helpers shared by the fuzz targets and by the seed generator (`examples/make_seeds.rs`).

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::nn::{Embedding, Linear, Lstm, LstmConfig, Module, Sequential};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use tensorgrad::{Gradients, Tensor};

/// A file path private to this process, in `/dev/shm` when there is one (the loaders read from
/// a path, and a RAM disk keeps the fuzzer fast), else in the temporary directory. The file name
/// ends in `name`, so its extension is kept (`read_labelled` picks the format by it).
pub fn scratch(name: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    dir.join(format!("tensorgrad-fuzz-{}-{name}", std::process::id()))
}

/// Writes `data` to the scratch file `name` and returns its path.
pub fn write_scratch(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch(name);
    std::fs::write(&path, data).expect("cannot write the fuzzer's scratch file");
    path
}

/// The small fixed model the `load_model` target loads into:
/// `emb.weight [10, 3]`, `lstm.{weight_ih_l0 [8, 3], weight_hh_l0 [8, 2], bias_ih_l0 [8],
/// bias_hh_l0 [8]}`, `fc.weight [1, 2]`, `fc.bias [1]`.
pub fn small_model(seed: u64) -> Sequential<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .add_named("emb", Embedding::new(10, 3, &mut rng))
        .add_named("lstm", Lstm::new(LstmConfig::new(3, 2), &mut rng))
        .add_named("fc", Linear::new(2, 1, &mut rng))
}

/// The parameter shapes the `optimizer_state` target builds its optimizers over.
pub const PARAM_SHAPES: [&[usize]; 3] = [&[2, 3], &[4], &[]];

/// Fresh parameters of [`PARAM_SHAPES`], with fixed values.
pub fn params() -> Vec<Tensor<f32>> {
    PARAM_SHAPES
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let n: usize = shape.iter().product();
            let values = (0..n).map(|k| (i * 10 + k) as f32 * 0.125 - 0.5).collect();
            Tensor::from_vec(values, shape).requires_grad()
        })
        .collect()
}

/// Gradients of `Σ p²` for every parameter (so a step has something to apply).
pub fn grads(params: &[Tensor<f32>]) -> Gradients<f32> {
    let loss = params.iter().map(|p| p.powf(2.0).sum()).reduce(|a, b| a + b).expect("at least one parameter");
    loss.backward()
}

/// An Adam with AMSGrad (buffers `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`) over `params`.
pub fn adam(params: Vec<Tensor<f32>>) -> Adam<f32> {
    Adam::new(params, AdamConfig { lr: 0.01, amsgrad: true, ..AdamConfig::default() })
}

/// An SGD with momentum (buffer `momentum_buffer`) over `params`.
pub fn sgd(params: Vec<Tensor<f32>>) -> Sgd<f32> {
    Sgd::new(params, SgdConfig { lr: 0.01, momentum: 0.9, ..SgdConfig::default() })
}

/// The state of an optimizer after `steps` steps on [`grads`].
pub fn trained_state<O: Optimizer<f32>>(
    make: impl Fn(Vec<Tensor<f32>>) -> O,
    steps: usize,
) -> Vec<(String, Tensor<f32>)> {
    let params = params();
    let mut opt = make(params.clone());
    for _ in 0..steps {
        opt.step(&grads(&params));
    }
    opt.state_dict()
}

/// The bits of a list of named tensors: names, shapes and values, for exact comparisons.
pub fn bits(tensors: &[(String, Tensor<f32>)]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let mut out: Vec<_> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec(), t.to_vec().iter().map(|v| v.to_bits()).collect()))
        .collect();
    out.sort();
    out
}

/// The bits of every parameter of a model.
pub fn model_bits(model: &impl Module<f32>) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    bits(&model.named_parameters())
}
