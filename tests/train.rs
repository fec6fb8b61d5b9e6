//! The training loop: fit learns on real data, validation, early stopping, checkpoints,
//! reproducibility and resumption.

use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::loss::{Reduction, bce};
use tensorgrad::nn::{Activation, Dense, Module, Sequential};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig, StepLr};
use tensorgrad::train::{
    Control, EarlyStopping, FitOptions, FnCallback, LrSchedule, Metric, ModelCheckpoint, Trainer, Validation,
};
use tensorgrad::{Tensor, io};

/// The breast-cancer data shipped in the repo: 30 standardised features and a 0/1 label.
fn breast_cancer() -> (Tensor, Tensor) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/breast_cancer/breast_cancer.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let target = headers.iter().position(|h| h == "target").unwrap();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for rec in reader.records() {
        let rec = rec.unwrap();
        for (i, v) in rec.iter().enumerate() {
            let v: f32 = v.parse().unwrap();
            if i == target { ys.push(v) } else { xs.push(v) }
        }
    }
    let n = ys.len();
    let f = xs.len() / n;
    // Standardise each feature.
    for j in 0..f {
        let col: Vec<f32> = (0..n).map(|i| xs[i * f + j]).collect();
        let mean = col.iter().sum::<f32>() / n as f32;
        let std = (col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n as f32).sqrt().max(1e-6);
        for i in 0..n {
            xs[i * f + j] = (xs[i * f + j] - mean) / std;
        }
    }
    // A fixed shuffle so the tail (used for validation) holds both classes.
    let perm = tensorgrad::data::permutation(n, 7);
    let x = Tensor::from_vec(xs, &[n, f]).index_select(0, &perm);
    let y = Tensor::from_vec(ys, &[n, 1]).index_select(0, &perm);
    (x, y)
}

fn mlp(inputs: usize, seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new().add(Dense::new(inputs, 16, Some(Activation::Relu), &mut rng)).add(Dense::new(
        16,
        1,
        Some(Activation::Sigmoid),
        &mut rng,
    ))
}

fn bce_mean(p: &Tensor, y: &Tensor) -> Tensor {
    bce(p, y, Reduction::Mean)
}

fn quiet(epochs: usize) -> FitOptions<'static> {
    FitOptions { epochs, batch_size: 32, verbose: false, ..FitOptions::default() }
}

#[test]
fn fit_learns_the_breast_cancer_data() {
    let (x, y) = breast_cancer();
    let mut model = mlp(x.shape()[1], 0);
    let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
    let mut trainer = Trainer::new(&mut model, &mut opt, bce_mean).metrics(&[Metric::Accuracy, Metric::Auc]);
    let before = trainer.evaluate(&x, &y, 64);
    let opts = FitOptions { validation: Validation::Split(0.2), ..quiet(15) };
    let history = trainer.fit(&x, &y, &opts).unwrap();
    assert_eq!(history.epochs(), 15);
    for name in ["loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc", "lr"] {
        assert_eq!(history.get(name).map(|v| v.len()), Some(15), "{name}");
    }
    let val_acc = history.last("val_accuracy").unwrap();
    assert!(val_acc > 0.9, "validation accuracy {val_acc}");
    assert!(history.last("loss").unwrap() < history.get("loss").unwrap()[0]);
    let after = trainer.evaluate(&x, &y, 64);
    assert!(after.loss < before.loss / 2.0, "{} → {}", before.loss, after.loss);
    assert!(after.get("accuracy").unwrap() > 0.95);
    let p = trainer.predict(&x, 100);
    assert_eq!(p.shape(), &[x.shape()[0], 1]);
}

#[test]
fn the_same_seed_gives_the_same_weights_and_history() {
    let (x, y) = breast_cancer();
    let run = || {
        let mut model = mlp(x.shape()[1], 3);
        let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.05, momentum: 0.9, ..Default::default() });
        let h = Trainer::new(&mut model, &mut opt, bce_mean).fit(&x, &y, &FitOptions { seed: 11, ..quiet(3) }).unwrap();
        let w: Vec<Vec<f32>> = model.named_parameters().iter().map(|(_, t)| t.to_vec()).collect();
        (h.get("loss").unwrap().to_vec(), w)
    };
    assert_eq!(run(), run());
}

#[test]
fn a_run_resumed_from_a_checkpoint_ends_with_the_same_weights() {
    let (x, y) = breast_cancer();
    let dir = std::env::temp_dir().join(format!("tensorgrad-train-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let make = || {
        let model = mlp(x.shape()[1], 5);
        let opt = Adam::new(model.parameters(), AdamConfig { lr: 5e-3, ..Default::default() });
        (model, opt)
    };
    // Uninterrupted: 4 epochs.
    let (mut m1, mut o1) = make();
    Trainer::new(&mut m1, &mut o1, bce_mean).fit(&x, &y, &FitOptions { seed: 9, ..quiet(4) }).unwrap();
    // Interrupted after 2 epochs: save weights and optimizer state, restore into fresh objects.
    let (mut m2, mut o2) = make();
    Trainer::new(&mut m2, &mut o2, bce_mean).fit(&x, &y, &FitOptions { seed: 9, ..quiet(2) }).unwrap();
    io::save_model(&m2, dir.join("model.safetensors")).unwrap();
    io::save_tensors(dir.join("opt.safetensors"), &o2.state_dict(), &[]).unwrap();
    let (mut m3, mut o3) = make();
    io::load_model(&m3, dir.join("model.safetensors")).unwrap();
    o3.load_state_dict(&io::load_tensors(dir.join("opt.safetensors")).unwrap()).unwrap();
    Trainer::new(&mut m3, &mut o3, bce_mean)
        .fit(&x, &y, &FitOptions { seed: 9, initial_epoch: 2, ..quiet(4) })
        .unwrap();
    let bits = |m: &Sequential| -> Vec<u32> {
        m.named_parameters().iter().flat_map(|(_, t)| t.to_vec()).map(f32::to_bits).collect()
    };
    assert_eq!(bits(&m1), bits(&m3));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    let (x, y) = breast_cancer();
    let mut model = mlp(x.shape()[1], 1);
    // A learning rate far too large makes the validation loss worsen quickly.
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 5.0, ..Default::default() });
    let mut best = f64::INFINITY;
    let history = {
        let mut epochs_seen = Vec::new();
        let h = Trainer::new(&mut model, &mut opt, bce_mean)
            .callback(EarlyStopping::new("val_loss", 2).restore_best_weights(true))
            .callback(FnCallback(|e: usize, logs: &[(String, f64)]| {
                epochs_seen.push((e, logs.iter().find(|(k, _)| k == "val_loss").unwrap().1));
                Control::Continue
            }))
            .fit(&x, &y, &FitOptions { validation: Validation::Split(0.2), ..quiet(50) })
            .unwrap();
        for &(_, v) in &epochs_seen {
            best = best.min(v);
        }
        h
    };
    assert!(history.epochs() < 50, "early stopping should have stopped before 50 epochs");
    let (best_epoch, best_val) = history.best("val_loss", true).unwrap();
    assert_eq!(best_val, best);
    assert_eq!(history.epochs(), best_epoch + 3, "stops patience epochs after the best");
    // The restored model scores the best epoch's validation loss again.
    let n = x.shape()[0];
    let split = (n as f64 * 0.8) as usize;
    let (xv, yv) = (x.narrow(0, split, n - split), y.narrow(0, split, n - split));
    let mut opt2 = Sgd::new(model.parameters(), SgdConfig { lr: 5.0, ..Default::default() });
    let ev = Trainer::new(&mut model, &mut opt2, bce_mean).evaluate(&xv, &yv, 32);
    assert!((ev.loss - best_val).abs() < 1e-5, "{} vs {}", ev.loss, best_val);
}

#[test]
fn checkpoint_saves_the_best_model_and_schedules_set_the_learning_rate() {
    let (x, y) = breast_cancer();
    let path = std::env::temp_dir().join(format!("tensorgrad-ckpt-{}.safetensors", std::process::id()));
    let mut model = mlp(x.shape()[1], 2);
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    let history = Trainer::new(&mut model, &mut opt, bce_mean)
        .callback(ModelCheckpoint::new(&path).save_best_only("val_loss"))
        .callback(LrSchedule::new(StepLr::new(0.1, 2, 0.5)))
        .fit(&x, &y, &FitOptions { validation: Validation::Split(0.25), ..quiet(5) })
        .unwrap();
    assert_eq!(history.get("lr").unwrap(), &[0.1, 0.1, 0.05, 0.05, 0.025]);
    assert!((opt.learning_rate() - 0.025).abs() < 1e-12);
    let restored = mlp(x.shape()[1], 99);
    io::load_model(&restored, &path).unwrap();
    std::fs::remove_file(&path).ok();
}

#[test]
#[should_panic(expected = "fit: batch size must be at least 1")]
fn batch_size_zero_is_refused() {
    let (x, y) = breast_cancer();
    let mut model = mlp(x.shape()[1], 0);
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    Trainer::new(&mut model, &mut opt, bce_mean).fit(&x, &y, &FitOptions { batch_size: 0, ..quiet(1) }).unwrap();
}

#[test]
#[should_panic(expected = "fit: 569 input samples but 10 targets")]
fn mismatched_samples_are_refused() {
    let (x, y) = breast_cancer();
    let mut model = mlp(x.shape()[1], 0);
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    Trainer::new(&mut model, &mut opt, bce_mean).fit(&x, &y.narrow(0, 0, 10), &quiet(1)).unwrap();
}

#[test]
#[should_panic(expected = "fit: the dataset is empty")]
fn an_empty_dataset_is_refused() {
    let (x, y) = breast_cancer();
    let mut model = mlp(x.shape()[1], 0);
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    Trainer::new(&mut model, &mut opt, bce_mean).fit(&x.narrow(0, 0, 0), &y.narrow(0, 0, 0), &quiet(1)).unwrap();
}
