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

/// Keras resets `EarlyStopping` when a fit begins: a second `fit` on the same trainer is judged
/// on its own epochs. Here the second fit starts from weights set back to zero (a loss well above
/// the first fit's best); without the reset it stopped after `patience` epochs.
#[test]
fn early_stopping_starts_over_with_each_fit() {
    let (x, y) = breast_cancer();
    let model = mlp(x.shape()[1], 3);
    let opt = Adam::new(model.parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
    let mut trainer = Trainer::new(model, opt, bce_mean).callback(EarlyStopping::new("loss", 1));
    let first = trainer.fit(&x, &y, &quiet(8)).unwrap();
    let (_, best_first) = first.best("loss", true).unwrap();
    for (_, p) in trainer.model().named_parameters() {
        p.update_(|v| v.fill(0.0));
    }
    let second = trainer.fit(&x, &y, &quiet(8)).unwrap();
    assert!(second.get("loss").unwrap()[0] > best_first, "the second fit starts worse than the first ended");
    assert!(second.epochs() > 2, "the second fit stopped after {} epochs", second.epochs());
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

// ---- Owning or lending the model ----

#[test]
fn an_owning_trainer_fits_is_used_and_fits_again() {
    let (x, y) = breast_cancer();
    let model = mlp(x.shape()[1], 4);
    let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.05, ..Default::default() });
    let mut trainer = Trainer::new(model, opt, bce_mean).metrics(&[Metric::Accuracy]);
    let first = trainer.fit(&x, &y, &quiet(2)).unwrap();
    let after_first = trainer.evaluate(&x, &y, 128);
    assert_eq!(trainer.predict(&x, 128).shape(), &[x.shape()[0], 1]);
    let path = std::env::temp_dir().join(format!("tensorgrad-owning-trainer-{}.safetensors", std::process::id()));
    io::save_model(trainer.model(), &path).unwrap();
    trainer.optimizer_mut().set_learning_rate(0.02);
    let second = trainer.fit(&x, &y, &quiet(3)).unwrap();
    assert_eq!((first.epochs(), second.epochs()), (2, 3));
    assert_eq!(second.get("lr").unwrap(), &[0.02, 0.02, 0.02]);
    let after_second = trainer.evaluate(&x, &y, 128);
    assert!(after_second.loss < after_first.loss, "{} then {}", after_first.loss, after_second.loss);
    let (model, opt) = trainer.into_parts();
    assert!((opt.learning_rate() - 0.02).abs() < 1e-12);
    // The file holds the weights as they were after the first fit.
    let saved = mlp(x.shape()[1], 99);
    io::load_model(&saved, &path).unwrap();
    std::fs::remove_file(&path).ok();
    let mut eval_saved = Trainer::new(saved, Sgd::new(Vec::<Tensor>::new(), SgdConfig::default()), bce_mean);
    assert_eq!(eval_saved.evaluate(&x, &y, 128).loss, after_first.loss);
    assert!(model.named_parameters().iter().all(|(_, t)| t.to_vec().iter().all(|v| v.is_finite())));
}

#[test]
fn a_lent_model_is_the_callers_again_after_the_trainers_last_use() {
    let (x, y) = breast_cancer();
    let mut model = mlp(x.shape()[1], 6);
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.05, ..Default::default() });
    let epochs = std::cell::Cell::new(0);
    // A callback borrowing a local: the trainer has drop glue, yet the model's loan ends at
    // the trainer's last use, not at the end of the scope.
    let mut trainer = Trainer::new(&mut model, &mut opt, bce_mean).callback(FnCallback(|_, _: &[(String, f64)]| {
        epochs.set(epochs.get() + 1);
        Control::Continue
    }));
    trainer.fit(&x, &y, &quiet(2)).unwrap();
    let p = tensorgrad::train::predict(&model, &x, 256);
    assert_eq!(p.shape(), &[x.shape()[0], 1]);
    assert!(opt.learning_rate() > 0.0);
    assert_eq!(epochs.get(), 2);
}

// ---- Classifiers: class ids as tensors, multi-class accuracy ----

/// Three overlapping-free clusters in the plane, `per_class` points each, labels 0, 1, 2 as a
/// float tensor `[N]`, rows interleaved so any tail holds every class.
fn three_clusters(per_class: usize, seed: u64) -> (Tensor, Tensor) {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(seed);
    let centres = [(0.0f32, 2.5f32), (-2.5, -1.5), (2.5, -1.5)];
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..3 * per_class {
        let (cx, cy) = centres[i % 3];
        xs.push(cx + rng.random_range(-1.0..1.0));
        xs.push(cy + rng.random_range(-1.0..1.0));
        ys.push((i % 3) as f32);
    }
    (Tensor::from_vec(xs, &[3 * per_class, 2]), Tensor::from_vec(ys, &[3 * per_class]))
}

#[test]
fn a_three_class_classifier_learns_from_label_tensors() {
    use tensorgrad::loss::cross_entropy;
    use tensorgrad::nn::Linear;
    let (x, y) = three_clusters(100, 8);
    let mut rng = StdRng::seed_from_u64(2);
    let model = Linear::new(2, 3, &mut rng);
    let opt = Adam::new(model.parameters(), AdamConfig { lr: 0.05, ..Default::default() });
    let ce = |logits: &Tensor, labels: &Tensor| cross_entropy(logits, labels, 0.0, Reduction::Mean);
    let mut trainer = Trainer::new(model, opt, ce).metrics(&[Metric::Accuracy, Metric::SparseCategoricalAccuracy]);
    let before = trainer.evaluate(&x, &y, 64);
    let history = trainer
        .fit(&x, &y, &FitOptions { epochs: 20, batch_size: 16, validation: Validation::Split(0.2), ..quiet(20) })
        .unwrap();
    let (acc, val_acc) = (history.last("accuracy").unwrap(), history.last("val_accuracy").unwrap());
    assert!(acc > 0.95 && val_acc > 0.95, "accuracy {acc}, validation accuracy {val_acc}");
    assert_eq!(history.get("accuracy"), history.get("sparse_categorical_accuracy"));
    let after = trainer.evaluate(&x, &y, 64);
    assert!(after.loss < before.loss / 4.0, "{} → {}", before.loss, after.loss);
    // The predicted classes are the logits' arg-maxes: compare with the labels by hand.
    let logits = trainer.predict(&x, 64).to_vec();
    let right = logits
        .chunks(3)
        .zip(y.to_vec())
        .filter(|(row, label)| {
            let best = (0..3).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            best as f32 == *label
        })
        .count();
    assert_eq!(right as f64 / 300.0, after.get("accuracy").unwrap());
}

// ---- Data loaders and several inputs ----

fn mlp_with_dropout(inputs: usize, seed: u64) -> Sequential {
    use tensorgrad::nn::Dropout;
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .add(Dense::new(inputs, 16, Some(Activation::Relu), &mut rng))
        .add(Dropout::new(0.2, seed))
        .add(Dense::new(16, 1, Some(Activation::Sigmoid), &mut rng))
}

#[test]
fn fit_through_a_loader_over_tensors_is_bit_identical_to_fit() {
    use tensorgrad::data::{DataLoader, TensorDataset};
    let (x, y) = breast_cancer();
    let n = x.shape()[0];
    let (xt, yt, xv, yv) =
        (x.narrow(0, 0, 450), y.narrow(0, 0, 450), x.narrow(0, 450, n - 450), y.narrow(0, 450, n - 450));
    let names = ["loss", "accuracy", "val_loss", "val_accuracy", "lr"];
    let bits = |h: &tensorgrad::train::History, m: &Sequential| {
        let logs: Vec<Vec<u64>> =
            names.iter().map(|k| h.get(k).unwrap().iter().map(|v| v.to_bits()).collect()).collect();
        let w: Vec<u32> = m.named_parameters().iter().flat_map(|(_, t)| t.to_vec()).map(f32::to_bits).collect();
        (logs, w)
    };
    fn options(validation: Validation<'_>) -> FitOptions<'_> {
        FitOptions { seed: 21, batch_size: 32, validation, ..quiet(3) }
    }
    // In memory, the simple way.
    let mut m1 = mlp_with_dropout(x.shape()[1], 12);
    let mut o1 = Adam::new(m1.parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
    let h1 = Trainer::new(&mut m1, &mut o1, bce_mean)
        .metrics(&[Metric::Accuracy])
        .fit(&xt, &yt, &options(Validation::Data(&xv, &yv)))
        .unwrap();
    // Through loaders with the same seed and batch size, prefetching or not: the same batches,
    // the same dropout masks, the same arithmetic, so the same bits.
    for prefetch in [0, 2] {
        let train = DataLoader::new(TensorDataset::new(&xt, &yt), 32).shuffle(true).seed(21).prefetch(prefetch);
        let val = DataLoader::new(TensorDataset::new(&xv, &yv), 32);
        let mut m2 = mlp_with_dropout(x.shape()[1], 12);
        let o2 = Adam::new(m2.parameters(), AdamConfig { lr: 1e-2, ..Default::default() });
        let h2 = Trainer::new(&mut m2, o2, bce_mean)
            .metrics(&[Metric::Accuracy])
            .fit_loader(&train, &options(Validation::Loader(&val)))
            .unwrap();
        assert_eq!(bits(&h1, &m1), bits(&h2, &m2), "prefetch {prefetch}");
    }
}

/// `a·wa + b·wb + bias`: a model of two inputs, `a` `[N, 2]` and `b` `[N, 3]`.
struct TwoInputs {
    a: tensorgrad::nn::Linear,
    b: tensorgrad::nn::Linear,
}

impl Module for TwoInputs {
    #[track_caller]
    fn forward(&self, _x: &Tensor) -> Tensor {
        panic!("TwoInputs: takes 2 inputs (a, b); call forward_many");
    }
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor]) -> Tensor {
        let [a, b] = inputs else { panic!("TwoInputs: takes 2 inputs (a, b), got {}", inputs.len()) };
        self.a.forward(a) + self.b.forward(b)
    }
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &tensorgrad::nn::Param)) {
        let join = |n: &str| if prefix.is_empty() { n.to_string() } else { format!("{prefix}.{n}") };
        self.a.visit_params(&join("a"), f);
        self.b.visit_params(&join("b"), f);
    }
}

#[test]
fn a_two_input_model_trains_through_a_loader() {
    use tensorgrad::data::{DataLoader, FnDataset, Sample};
    use tensorgrad::loss::mse;
    use tensorgrad::nn::Linear;
    // y = 2·a0 − a1 + 0.5·b0 + b2 + 0.3, features from a fixed hash of the index.
    let feature = |i: usize, k: usize| ((i * 7919 + k * 104_729) % 1000) as f32 / 500.0 - 1.0;
    let sample = move |i: usize| {
        let a = [feature(i, 0), feature(i, 1)];
        let b = [feature(i, 2), feature(i, 3), feature(i, 4)];
        let y = 2.0 * a[0] - a[1] + 0.5 * b[0] + b[2] + 0.3;
        Sample::with_inputs(vec![Tensor::from_slice(&a), Tensor::from_slice(&b)], Tensor::from_slice(&[y]))
    };
    let train = DataLoader::new(FnDataset::new(512, sample), 32).shuffle(true).seed(3).prefetch(2).parallel(true);
    let val = DataLoader::new(FnDataset::new(128, move |i| sample(10_000 + i)), 64);
    let mut rng = StdRng::seed_from_u64(0);
    let model = TwoInputs { a: Linear::new(2, 1, &mut rng), b: Linear::new(3, 1, &mut rng) };
    let opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.05, ..Default::default() });
    let mut shapes = Vec::new();
    let mut trainer =
        Trainer::new(model, opt, |p: &Tensor, t: &Tensor| mse(p, t, Reduction::Mean)).grad_hook(|_, step| {
            if step.key.step == 0 {
                shapes = step.all_inputs.iter().map(|t| t.shape().to_vec()).collect();
            }
            Ok(())
        });
    let before = trainer.evaluate_loader(&val).loss;
    let history =
        trainer.fit_loader(&train, &FitOptions { validation: Validation::Loader(&val), ..quiet(30) }).unwrap();
    let after = trainer.evaluate_loader(&val).loss;
    assert!(after < 1e-3 && after < before / 100.0, "validation loss {before} → {after}");
    assert_eq!(history.last("val_loss"), Some(after));
    assert_eq!(trainer.predict_loader(&val).shape(), &[128, 1]);
    drop(trainer);
    assert_eq!(shapes, [vec![32, 2], vec![32, 3]]);
}

#[test]
#[should_panic(expected = "fit_loader: validation split 0.2 needs tensors in memory")]
fn fit_loader_refuses_a_validation_split() {
    use tensorgrad::data::{DataLoader, TensorDataset};
    let (x, y) = breast_cancer();
    let mut model = mlp(x.shape()[1], 0);
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    let loader = DataLoader::new(TensorDataset::new(&x, &y), 32);
    Trainer::new(&mut model, &mut opt, bce_mean)
        .fit_loader(&loader, &FitOptions { validation: Validation::Split(0.2), ..quiet(1) })
        .unwrap();
}

#[test]
#[should_panic(
    expected = "fit_loader: the loader has no batch (10 samples, batch size 32, the only partial batch dropped)"
)]
fn fit_loader_refuses_a_loader_without_batches() {
    use tensorgrad::data::{DataLoader, TensorDataset};
    let (x, y) = breast_cancer();
    let mut model = mlp(x.shape()[1], 0);
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    let loader = DataLoader::new(TensorDataset::new(&x.narrow(0, 0, 10), &y.narrow(0, 0, 10)), 32).drop_last(true);
    Trainer::new(&mut model, &mut opt, bce_mean).fit_loader(&loader, &quiet(1)).unwrap();
}
