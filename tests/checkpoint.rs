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
