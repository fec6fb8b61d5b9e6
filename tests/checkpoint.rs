//! Nothing is lost on interruption: a run stopped at any point and resumed from its last
//! checkpoint ends with the same weights, bit for bit, as a run that never stopped — with
//! dropout and recurrent dropout active, shuffling on, and Adam's moments in flight.

use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::loss::{Reduction, bce};
use tensorgrad::nn::{Activation, Dense, Embedding, Lstm, LstmConfig, Module, Sequential};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
use tensorgrad::train::{
    Callback, Checkpoint, FitOptions, History, TrainContext, Trainer, load_checkpoint, save_checkpoint,
};
use tensorgrad::{Error, Tensor};

/// The flagship's shape, small: Embedding(50, 8, mask_zero) → LSTM(8→12, dropout 0.2,
/// recurrent dropout 0.2) → Dense(1, sigmoid).
fn model() -> Sequential {
    let mut rng = StdRng::seed_from_u64(4);
    let lstm = LstmConfig { dropout: 0.2, recurrent_dropout: 0.2, ..LstmConfig::new(8, 12) };
    Sequential::new()
        .add_named("embedding", Embedding::new(50, 8, &mut rng).with_mask_zero(true))
        .add_named("lstm", Lstm::new(lstm, &mut rng))
        .add_named("dense", Dense::new(12, 1, Some(Activation::Sigmoid), &mut rng))
}

/// 64 post-padded sequences of ids; the label says whether id 7 occurs.
fn data() -> (Tensor, Tensor) {
    let mut rng = StdRng::seed_from_u64(1);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..64 {
        let len = rand::Rng::random_range(&mut rng, 2..10);
        let seq: Vec<f32> =
            (0..10).map(|t| if t < len { rand::Rng::random_range(&mut rng, 1..50) as f32 } else { 0.0 }).collect();
        ys.push(if seq.contains(&7.0) { 1.0 } else { 0.0 });
        xs.extend(seq);
    }
    (Tensor::from_vec(xs, &[64, 10]), Tensor::from_vec(ys, &[64, 1]))
}

fn optimizer(m: &Sequential) -> Adam {
    Adam::new(m.parameters(), AdamConfig { lr: 1e-2, ..Default::default() })
}

fn bce_mean(p: &Tensor, y: &Tensor) -> Tensor {
    bce(p, y, Reduction::Mean)
}

fn options(initial_epoch: usize) -> FitOptions<'static> {
    FitOptions { epochs: 4, batch_size: 8, seed: 21, verbose: false, initial_epoch, ..FitOptions::default() }
}

fn bits(m: &Sequential) -> Vec<u32> {
    m.named_parameters().iter().flat_map(|(_, t)| t.to_vec()).map(f32::to_bits).collect()
}

/// Fails (like a crash) at a given epoch and batch.
struct CrashAt(usize, usize);

impl Callback for CrashAt {
    fn on_batch_end(&mut self, batch: usize, _loss: f64, ctx: &mut TrainContext<'_, f32>) -> tensorgrad::Result<()> {
        if ctx.epoch == self.0 && batch == self.1 {
            return Err(Error::Format { path: None, reason: "simulated crash".into() });
        }
        Ok(())
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tensorgrad-ckpt-{}-{name}.safetensors", std::process::id()))
}

#[test]
fn a_run_resumed_after_a_crash_ends_with_the_same_weights_and_history() {
    let (x, y) = data();
    let mut m1 = model();
    let mut o1 = optimizer(&m1);
    let full = Trainer::new(&mut m1, &mut o1, bce_mean).fit(&x, &y, &options(0)).unwrap();

    // Crash at several points: mid-epoch, right at an epoch's first batch, in the last epoch.
    for (crash_epoch, crash_batch) in [(2, 3), (1, 0), (3, 7)] {
        let path = temp(&format!("crash-{crash_epoch}-{crash_batch}"));
        let mut m2 = model();
        let mut o2 = optimizer(&m2);
        let err = Trainer::new(&mut m2, &mut o2, bce_mean)
            .callback(Checkpoint::new(&path))
            .callback(CrashAt(crash_epoch, crash_batch))
            .fit(&x, &y, &options(0))
            .unwrap_err();
        assert!(err.to_string().contains("simulated crash"));

        // A new process: fresh model and optimizer, restored from the last checkpoint.
        let mut m3 = model();
        let mut o3 = optimizer(&m3);
        let resume = load_checkpoint(&path, &m3, &mut o3).unwrap();
        assert_eq!(resume.epoch, crash_epoch - 1);
        let rest = Trainer::new(&mut m3, &mut o3, bce_mean).fit(&x, &y, &options(resume.epoch + 1)).unwrap();
        assert_eq!(bits(&m1), bits(&m3), "weights differ after resuming from a crash at {crash_epoch}/{crash_batch}");
        let mut history = resume.history;
        history.extend(&rest);
        assert_eq!(history.get("loss"), full.get("loss"));
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn loading_a_damaged_or_mismatched_checkpoint_changes_nothing() {
    let path = temp("damaged");
    let m = model();
    let o = optimizer(&m);
    save_checkpoint(&path, &m, &o, 0, &History::new()).unwrap();
    let good = std::fs::read(&path).unwrap();

    let target = model();
    let mut opt = optimizer(&target);
    // Give the optimizer some state, so "unchanged" means something.
    let g = target.forward(&data().0).sum().backward();
    opt.step(&g);
    let (w_before, s_before) = (bits(&target), opt.state_dict().len());
    for cut in [10, good.len() / 2, good.len() - 1] {
        std::fs::write(&path, &good[..cut]).unwrap();
        assert!(load_checkpoint(&path, &target, &mut opt).is_err(), "a file cut at {cut} bytes loaded");
        assert_eq!(bits(&target), w_before);
        assert_eq!(opt.state_dict().len(), s_before);
    }
    // A checkpoint of another architecture lists what does not fit.
    let mut rng = StdRng::seed_from_u64(0);
    let other: Sequential = Sequential::new().add_named("dense", Dense::new(3, 1, None, &mut rng));
    save_checkpoint(&path, &other, &optimizer(&other), 0, &History::new()).unwrap();
    let err = load_checkpoint(&path, &target, &mut opt).unwrap_err();
    assert!(matches!(err, Error::StateMismatch { .. }), "{err}");
    assert_eq!(bits(&target), w_before);
    std::fs::remove_file(&path).ok();
}

/// Checkpoints inside epochs: a run cut at any batch resumes at the batch after its last
/// checkpoint and ends with the same weights and the same history, epoch by epoch, as one that
/// never stopped — the interrupted epoch's loss, accuracy and AUC included.
#[test]
fn a_run_resumed_mid_epoch_matches_one_that_never_stopped() {
    use tensorgrad::train::{Metric, Validation};
    let (x, y) = data();
    let metrics = [Metric::Accuracy, Metric::Auc];
    // 48 training rows in 6 batches of 8 per epoch, 16 for validation.
    let opts = FitOptions { validation: Validation::Split(0.25), ..options(0) };
    let mut m1 = model();
    let mut o1 = optimizer(&m1);
    let full = Trainer::new(&mut m1, &mut o1, bce_mean).metrics(&metrics).fit(&x, &y, &opts).unwrap();
    let names = ["loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc", "lr"];

    // (crash epoch, crash batch, checkpoint every n batches, (epoch, batches done) at the last
    // checkpoint): a checkpoint right at the crash, some batches back (redone on resuming), and
    // one after an epoch's last batch (before its validation ran).
    for (crash_epoch, crash_batch, every, resumed_at) in
        [(2, 3, 1, (2, 4)), (0, 1, 1, (0, 2)), (1, 4, 4, (1, 2)), (1, 5, 5, (1, 4)), (3, 5, 4, (3, 6))]
    {
        let path = temp(&format!("mid-{crash_epoch}-{crash_batch}-{every}"));
        let mut m2 = model();
        let mut o2 = optimizer(&m2);
        let err = Trainer::new(&mut m2, &mut o2, bce_mean)
            .metrics(&metrics)
            .callback(Checkpoint::new(&path).every_n_batches(every))
            .callback(CrashAt(crash_epoch, crash_batch))
            .fit(&x, &y, &opts)
            .unwrap_err();
        assert!(err.to_string().contains("simulated crash"));

        let mut m3 = model();
        let mut o3 = optimizer(&m3);
        let resume = load_checkpoint(&path, &m3, &mut o3).unwrap();
        let progress = resume.progress.clone().expect("a mid-epoch checkpoint");
        assert_eq!((progress.epoch(), progress.batches_done()), resumed_at, "crash at {crash_epoch}/{crash_batch}");
        assert_eq!(resume.history.epochs(), resumed_at.0);
        let rest = Trainer::new(&mut m3, &mut o3, bce_mean)
            .metrics(&metrics)
            .fit(&x, &y, &resume.fit_options(opts.clone()))
            .unwrap();
        assert_eq!(bits(&m1), bits(&m3), "weights differ after a crash at {crash_epoch}/{crash_batch}, every {every}");
        let mut history = resume.history;
        history.extend(&rest);
        for name in names {
            let (a, b) = (full.get(name).unwrap(), history.get(name).unwrap());
            let to_bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(to_bits(a), to_bits(b), "{name} after a crash at {crash_epoch}/{crash_batch}, every {every}");
        }
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn a_loader_run_resumed_mid_epoch_matches_one_that_never_stopped() {
    use tensorgrad::data::{DataLoader, TensorDataset};
    let (x, y) = data();
    let loader = DataLoader::new(TensorDataset::new(&x, &y), 8).shuffle(true).seed(21).prefetch(2);
    let mut m1 = model();
    let mut o1 = optimizer(&m1);
    let full = Trainer::new(&mut m1, &mut o1, bce_mean).fit_loader(&loader, &options(0)).unwrap();

    let path = temp("loader-mid");
    let mut m2 = model();
    let mut o2 = optimizer(&m2);
    Trainer::new(&mut m2, &mut o2, bce_mean)
        .callback(Checkpoint::new(&path).every_n_batches(3))
        .callback(CrashAt(2, 4))
        .fit_loader(&loader, &options(0))
        .unwrap_err();
    let mut m3 = model();
    let mut o3 = optimizer(&m3);
    let resume = load_checkpoint(&path, &m3, &mut o3).unwrap();
    // 8 batches an epoch; the 21st batch seen (epoch 2, batch 4) was the last checkpointed.
    assert_eq!(resume.progress.as_ref().map(|p| (p.epoch(), p.batches_done())), Some((2, 5)));
    let rest = Trainer::new(&mut m3, &mut o3, bce_mean).fit_loader(&loader, &resume.fit_options(options(0))).unwrap();
    assert_eq!(bits(&m1), bits(&m3));
    let mut history = resume.history;
    history.extend(&rest);
    assert_eq!(history.get("loss"), full.get("loss"));
    std::fs::remove_file(&path).ok();
}

#[test]
#[should_panic(expected = "fit: initial_progress is in epoch 1 but initial_epoch is 0")]
fn resuming_with_a_progress_of_another_epoch_is_refused() {
    let (x, y) = data();
    let path = temp("progress-mismatch");
    let mut m = model();
    let mut o = optimizer(&m);
    Trainer::new(&mut m, &mut o, bce_mean)
        .callback(Checkpoint::new(&path).every_n_batches(10))
        .callback(CrashAt(1, 2))
        .fit(&x, &y, &options(0))
        .unwrap_err();
    let resume = load_checkpoint(&path, &m, &mut o).unwrap();
    std::fs::remove_file(&path).ok();
    let progress = resume.progress.expect("a mid-epoch checkpoint");
    Trainer::new(&mut m, &mut o, bce_mean)
        .fit(&x, &y, &FitOptions { initial_progress: Some(progress), ..options(0) })
        .unwrap();
}
