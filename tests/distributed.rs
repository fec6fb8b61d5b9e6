//! Data-parallel training over MPI (cargo feature `mpi`).
//!
//! Run by `cargo test --features mpi` like any test: without MPI in its environment, this
//! program is the driver and starts itself under `mpirun -np N` for each group of checks (the
//! ranks run them in the same order, as collectives require), then checks that a rank that
//! panics or fails ends the whole job quickly. Needs Open MPI's `mpirun` on the `PATH`
//! (Debian: `openmpi-bin libopenmpi-dev`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use tensorgrad::data::{DataLoader, TensorDataset, permutation};
use tensorgrad::distributed::{Communicator, DataParallel, DataParallelConfig, Mpi, ReduceOp, SingleProcess};
use tensorgrad::nn::{Activation, Dense, Embedding, Linear, Lstm, LstmConfig, Module, Sequential, Tanh};
use tensorgrad::optim::{Adam, AdamConfig};
use tensorgrad::rand::{SeedableRng, rngs::StdRng};
use tensorgrad::train::{Checkpoint, FitOptions, Metric, Trainer, Validation, load_checkpoint};
use tensorgrad::{Element, Error, Tensor, loss};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let under_mpi = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"].iter().any(|v| std::env::var_os(v).is_some());
    if under_mpi {
        let comm = Arc::new(Mpi::init().expect("MPI starts"));
        match args.first().map(String::as_str) {
            Some("suite") => suite(&comm),
            Some("panic") => failing_rank(&comm, false),
            Some("error") => failing_rank(&comm, true),
            other => panic!("unknown case {other:?}"),
        }
        return;
    }
    driver();
}

// ------------------------------------------------------------------------------------------
// The driver: starts the ranks.
// ------------------------------------------------------------------------------------------

fn mpirun(np: usize, case: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-np", &np.to_string()])
        .arg(exe)
        .arg(case)
        // Containers often forbid the cross-process memory copy Open MPI's shared-memory
        // transport tries first; plain copies work everywhere.
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        // One thread per rank: the ranks share the machine's cores.
        .env("RAYON_NUM_THREADS", "1");
    cmd
}

fn driver() {
    let mut failed = 0;
    for np in [2, 3] {
        let started = Instant::now();
        let out = mpirun(np, "suite").output().expect("mpirun runs (is Open MPI installed?)");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        print!("{stdout}");
        let ok = out.status.success();
        println!(
            "test distributed suite on {np} ranks ... {} ({:.1} s)",
            if ok { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        if !ok {
            eprintln!("{stderr}");
            failed += 1;
        }
    }
    for (case, message) in [("panic", "injected failure on rank 1"), ("error", "cannot create the temporary file")] {
        let started = Instant::now();
        let out = mpirun(2, case).output().expect("mpirun runs");
        let seconds = started.elapsed().as_secs_f64();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let ok = !out.status.success() && seconds < 10.0 && text.contains(message);
        println!(
            "test distributed a rank's {case} ends the job ... {} (exit {:?} after {seconds:.1} s)",
            if ok { "ok" } else { "FAILED" },
            out.status.code()
        );
        if !ok {
            eprintln!("{text}");
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("{failed} distributed test group(s) failed");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------------------------------
// The checks every rank runs.
// ------------------------------------------------------------------------------------------

/// Runs each check, printing its name on rank 0. A failed assertion panics, which aborts the
/// job (the driver then reports the group as failed, with the message).
fn suite(comm: &Arc<Mpi>) {
    type Check = fn(&Arc<Mpi>);
    let checks: [(&str, Check); 8] = [
        ("collectives", collectives),
        ("N ranks of batch B train as one process of batch N·B (f64, Adam, 20 steps)", same_as_one_process_f64),
        ("the same in f32, default buckets, no overlap", same_as_one_process_f32),
        ("each sample once per epoch, the shuffle shared and new each epoch", samples_once_per_epoch),
        ("fit_loader shards its loader", fit_loader_shards),
        ("resuming from a checkpoint is bit-identical", resume_is_bit_identical),
        ("rank 0's weights are broadcast; a mismatch is reported", broadcast_and_check),
        ("a parameter used on some ranks only averages as zero elsewhere", unused_parameters),
    ];
    for (name, check) in checks {
        comm.barrier();
        check(comm);
        comm.barrier();
        if comm.rank() == 0 {
            println!("test distributed {name} (np {}) ... ok", comm.size());
        }
    }
}

fn collectives(comm: &Arc<Mpi>) {
    let (r, n) = (comm.rank() as f64, comm.size());
    let mut v = vec![r + 1.0, -r, 0.5];
    comm.all_reduce((&mut v[..]).into(), ReduceOp::Sum);
    let s = (n * (n + 1) / 2) as f64;
    assert_eq!(v, [s, -(s - n as f64), 0.5 * n as f64]);
    let mut m = vec![r as f32 * 2.0; 5];
    comm.all_reduce((&mut m[..]).into(), ReduceOp::Mean);
    assert_eq!(m, vec![(n - 1) as f32; 5]);
    let mut hi = [r, -r];
    comm.all_reduce((&mut hi[..]).into(), ReduceOp::Max);
    assert_eq!(hi, [(n - 1) as f64, 0.0]);
    comm.all_reduce((&mut hi[..]).into(), ReduceOp::Min);
    assert_eq!(hi, [(n - 1) as f64, 0.0]);
    // Large buffers take the ring (reduce-scatter, all-gather); lengths that do not divide.
    let ranks_sum = (n * (n + 1) / 2) as f64;
    for len in [100_003usize, 16_411, 3] {
        let mut a: Vec<f32> = (0..len).map(|i| (i % 97) as f32 * 0.25 * (r as f32 + 1.0)).collect();
        comm.all_reduce((&mut a[..]).into(), ReduceOp::Sum);
        assert!(a.iter().enumerate().all(|(i, &v)| v == (i % 97) as f32 * 0.25 * ranks_sum as f32), "f32 sum of {len}");
        let mut b: Vec<f64> = (0..len).map(|i| (i as f64).sqrt() + r).collect();
        comm.all_reduce((&mut b[..]).into(), ReduceOp::Mean);
        let mean_r = (n - 1) as f64 / 2.0;
        assert!(
            b.iter().enumerate().all(|(i, &v)| (v - ((i as f64).sqrt() + mean_r)).abs() < 1e-12),
            "f64 mean of {len}"
        );
        // Every rank holds the very same bits.
        let bits: f64 = b.iter().fold(0u64, |h, v| h.rotate_left(5) ^ v.to_bits()) as f64;
        let all = comm.all_gather(&[bits]);
        assert!(all.iter().all(|&x| x == all[0]), "the ranks' results differ in some bit");
    }
    // A large buffer, from the last rank.
    let mut big: Vec<f32> = (0..3_000_000).map(|i| if comm.rank() == n - 1 { i as f32 } else { -1.0 }).collect();
    comm.broadcast((&mut big[..]).into(), n - 1);
    assert!(big.iter().enumerate().all(|(i, &x)| x == i as f32));
    // Different lengths per rank, in rank order.
    let local: Vec<f64> = (0..comm.rank() + 1).map(|k| (comm.rank() * 10 + k) as f64).collect();
    let all = comm.all_gather(&local);
    let want: Vec<f64> = (0..n).flat_map(|q| (0..q + 1).map(move |k| (q * 10 + k) as f64)).collect();
    assert_eq!(all, want);
}

/// The flagship's shape in small: Embedding → LSTM → Dense(sigmoid), with a Linear → Tanh in
/// between so that there are several layers to bucket.
fn flagship<E: Element>(seed: u64) -> Sequential<E> {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .add_named("embedding", Embedding::new(20, 6, &mut rng))
        .add_named("lstm", Lstm::new(LstmConfig::new(6, 8), &mut rng))
        .add_named("hidden", Linear::new(8, 8, &mut rng))
        .add_named("tanh", Tanh)
        .add_named("dense", Dense::new(8, 1, Some(Activation::Sigmoid), &mut rng))
}

/// Token ids `[n, 5]` and 0/1 labels `[n, 1]`.
fn text_data<E: Element>(n: usize, seed: u64) -> (Tensor<E>, Tensor<E>) {
    let mut rng = StdRng::seed_from_u64(seed);
    use tensorgrad::rand::Rng;
    let ids: Vec<E> = (0..n * 5).map(|_| E::of(rng.random_range(1..20) as f64)).collect();
    let labels: Vec<E> = (0..n).map(|i| E::of(((i * 7) % 3 == 0) as u8 as f64)).collect();
    (Tensor::from_vec(ids, &[n, 5]), Tensor::from_vec(labels, &[n, 1]))
}

fn bce<E: Element>(p: &Tensor<E>, y: &Tensor<E>) -> Tensor<E> {
    loss::bce(p, y, loss::Reduction::Mean)
}

/// The largest |a − b| / max|b| over the tensors.
fn max_rel_diff<E: Element>(a: &[(String, Tensor<E>)], b: &[(String, Tensor<E>)]) -> f64 {
    a.iter()
        .zip(b)
        .map(|((na, ta), (nb, tb))| {
            assert_eq!(na, nb);
            let (va, vb) = (ta.to_vec(), tb.to_vec());
            let scale = vb.iter().map(|v| v.to_f64().unwrap().abs()).fold(1e-30, f64::max);
            va.iter()
                .zip(&vb)
                .map(|(x, y)| (x.to_f64().unwrap() - y.to_f64().unwrap()).abs() / scale)
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max)
}

/// Trains the flagship for 5 epochs of 4 steps (20 Adam steps) on 16·size·… samples: across
/// the ranks with `per_rank` samples per rank and step, and in this process alone with
/// `per_rank · size`; checks parameters, losses and metrics agree to `tol`.
fn same_as_one_process<E: Element>(comm: &Arc<Mpi>, config: DataParallelConfig, tol: f64) {
    let size = comm.size();
    let per_rank = 4;
    let n = per_rank * size * 4;
    let (x, y) = text_data::<E>(n, 3);
    let (xv, yv) = text_data::<E>(13, 4); // 13: ranks evaluate unequal shares
    let options = FitOptions {
        epochs: 5,
        batch_size: per_rank,
        seed: 11,
        verbose: false,
        validation: Validation::Data(&xv, &yv),
        ..FitOptions::default()
    };
    let metrics = [Metric::Accuracy, Metric::Auc];
    let adam = AdamConfig { lr: 0.01, ..AdamConfig::default() };

    // Every rank starts from its own weights: rank 0's are broadcast.
    let model = flagship::<E>(100 + comm.rank() as u64);
    let opt = Adam::new(model.named_parameters(), adam);
    let ddp = DataParallel::with_config(comm.clone(), config);
    let mut trainer = Trainer::new(model, opt, bce::<E>).metrics(&metrics).distributed(ddp);
    let history = trainer.fit(&x, &y, &options).expect("distributed fit");
    trainer.data_parallel().unwrap().check_parameters(trainer.model()).expect("ranks agree");

    let model = flagship::<E>(100);
    let opt = Adam::new(model.named_parameters(), adam);
    let mut single = Trainer::new(model, opt, bce::<E>).metrics(&metrics);
    let reference = single.fit(&x, &y, &FitOptions { batch_size: per_rank * size, ..options.clone() }).unwrap();

    let diff = max_rel_diff(&trainer.model().named_parameters(), &single.model().named_parameters());
    assert!(diff <= tol, "rank {}: parameters differ by {diff:e} (relative) after 20 steps", comm.rank());
    assert!(diff > 0.0 || E::NAME == "f32", "the sums were added in another order, so some last bit should differ");
    if comm.rank() == 0 {
        println!("  {}: largest relative parameter difference {diff:.1e} (tolerance {tol:e})", E::NAME);
    }
    assert_eq!(history.names(), reference.names());
    for name in ["loss", "val_loss"] {
        for (a, b) in history.get(name).unwrap().iter().zip(reference.get(name).unwrap()) {
            assert!((a - b).abs() <= tol * b.abs(), "{name}: {a} vs {b}");
        }
    }
    for name in ["accuracy", "auc", "val_accuracy", "val_auc"] {
        for (a, b) in history.get(name).unwrap().iter().zip(reference.get(name).unwrap()) {
            assert!((a - b).abs() <= 1e-12, "{name}: {a} vs {b}");
        }
    }
}

fn same_as_one_process_f64(comm: &Arc<Mpi>) {
    // Tiny buckets: one or two parameters each, sent while the backward pass runs.
    same_as_one_process::<f64>(comm, DataParallelConfig { bucket_bytes: 256, overlap: true }, 1e-12);
}

fn same_as_one_process_f32(comm: &Arc<Mpi>) {
    same_as_one_process::<f32>(comm, DataParallelConfig { overlap: false, ..DataParallelConfig::default() }, 1e-5);
}

/// A model `[n, 1] → [n, 1]` whose input is the sample's index, recorded by a gradient hook.
fn index_recorder(comm: &Arc<Mpi>, n: usize, epochs: usize, seed: u64) -> Vec<Vec<Vec<usize>>> {
    let x = Tensor::<f64>::arange(n).reshape(&[n, 1]);
    let y = Tensor::<f64>::zeros(&[n, 1]);
    let model: Linear<f64> = Linear::new(1, 1, 0);
    let opt = Adam::new(model.named_parameters(), AdamConfig::default());
    let mse = |p: &Tensor<f64>, t: &Tensor<f64>| loss::mse(p, t, loss::Reduction::Mean);
    let mut seen: Vec<Vec<usize>> = vec![Vec::new(); epochs];
    Trainer::new(model, opt, mse)
        .grad_hook(|_, step| {
            seen[step.key.epoch].extend(step.inputs.to_vec().iter().map(|&v| v as usize));
            Ok(())
        })
        .distributed(DataParallel::new(comm.clone()))
        .fit(&x, &y, &FitOptions { epochs, batch_size: 3, seed, verbose: false, ..Default::default() })
        .unwrap();
    // Every rank's samples of each epoch (equal shares), by rank.
    seen.iter()
        .map(|local| {
            let all = comm.all_gather(&local.iter().map(|&i| i as f64).collect::<Vec<_>>());
            all.chunks(local.len()).map(|c| c.iter().map(|&v| v as usize).collect()).collect()
        })
        .collect()
}

fn samples_once_per_epoch(comm: &Arc<Mpi>) {
    let size = comm.size();
    for n in [12 * size, 12 * size + 1] {
        let epochs = 3;
        let shards = index_recorder(comm, n, epochs, 5);
        let mut orders = Vec::new();
        for (e, ranks) in shards.iter().enumerate() {
            let per = n.div_ceil(size);
            assert!(ranks.iter().all(|s| s.len() == per), "equal shares of {per}");
            let mut all: Vec<usize> = ranks.concat();
            all.sort();
            let mut distinct = all.clone();
            distinct.dedup();
            assert_eq!(distinct, (0..n).collect::<Vec<_>>(), "epoch {e}: every sample seen");
            assert_eq!(all.len() - n, per * size - n, "only the padding repeats");
            // The ranks take turns through one shared shuffle of the epoch.
            let order = permutation(n, 5 + e as u64);
            for k in 0..per * size {
                assert_eq!(ranks[k % size][k / size], order[k % n]);
            }
            orders.push(order);
        }
        assert_ne!(orders[0], orders[1], "each epoch shuffles anew");
    }
}

fn fit_loader_shards(comm: &Arc<Mpi>) {
    // fit_loader over a TensorDataset trains as fit does, in distributed mode too.
    let (x, y) = text_data::<f64>(8 * comm.size(), 8);
    let options = FitOptions { epochs: 2, batch_size: 2, seed: 4, verbose: false, ..FitOptions::default() };
    let run = |use_loader: bool| {
        let model = flagship::<f64>(1);
        let opt = Adam::new(model.named_parameters(), AdamConfig::default());
        let mut t = Trainer::new(model, opt, bce::<f64>).distributed(DataParallel::new(comm.clone()));
        let h = if use_loader {
            let loader = DataLoader::new(TensorDataset::new(&x, &y), 2).shuffle(true).seed(4);
            t.fit_loader(&loader, &options).unwrap()
        } else {
            t.fit(&x, &y, &options).unwrap()
        };
        (t.model().named_parameters(), h.get("loss").unwrap().to_vec())
    };
    let (a, la) = run(true);
    let (b, lb) = run(false);
    assert_eq!(max_rel_diff(&a, &b), 0.0);
    assert_eq!(la, lb);
}

fn shared_path(comm: &Arc<Mpi>, name: &str) -> PathBuf {
    // Rank 0's process id names the file on every rank.
    let pid = comm.all_gather(&[std::process::id() as f64])[0] as u64;
    std::env::temp_dir().join(format!("tensorgrad-distributed-{pid}-{name}"))
}

fn resume_is_bit_identical(comm: &Arc<Mpi>) {
    let (x, y) = text_data::<f64>(10 * comm.size() + 1, 6);
    let (xv, yv) = text_data::<f64>(7, 7);
    let options = FitOptions {
        epochs: 4,
        batch_size: 3,
        seed: 2,
        verbose: false,
        validation: Validation::Data(&xv, &yv),
        ..FitOptions::default()
    };
    let trainer = |seed: u64| {
        let model = flagship::<f64>(seed);
        let opt = Adam::new(model.named_parameters(), AdamConfig::default());
        Trainer::new(model, opt, bce::<f64>).metrics(&[Metric::Accuracy]).distributed(DataParallel::new(comm.clone()))
    };
    let path = shared_path(comm, "resume.safetensors");
    let mut whole = trainer(1);
    let full = whole.fit(&x, &y, &options).unwrap();

    // Stop after 2 epochs, then resume from rank 0's checkpoint in fresh trainers.
    let mut first = trainer(1).callback(Checkpoint::new(&path));
    first.fit(&x, &y, &FitOptions { epochs: 2, ..options.clone() }).unwrap();
    comm.barrier(); // rank 0 has written the file
    let model = flagship::<f64>(9);
    let mut opt = Adam::new(model.named_parameters(), AdamConfig::default());
    let resume = load_checkpoint(&path, &model, &mut opt).unwrap();
    let mut second =
        Trainer::new(model, opt, bce::<f64>).metrics(&[Metric::Accuracy]).distributed(DataParallel::new(comm.clone()));
    let rest = second.fit(&x, &y, &resume.fit_options(options.clone())).unwrap();

    let (a, b) = (whole.model().named_parameters(), second.model().named_parameters());
    for ((name, ta), (_, tb)) in a.iter().zip(&b) {
        assert_eq!(ta.to_vec(), tb.to_vec(), "{name} differs after resuming");
    }
    for name in full.names() {
        assert_eq!(&full.get(name).unwrap()[2..], rest.get(name).unwrap(), "{name} after resuming");
    }
    comm.barrier();
    if comm.rank() == 0 {
        std::fs::remove_file(&path).ok();
    }
}

fn broadcast_and_check(comm: &Arc<Mpi>) {
    let model = flagship::<f32>(comm.rank() as u64);
    let ddp: DataParallel<f32> = DataParallel::new(comm.clone());
    let err = ddp.check_parameters(&model).unwrap_err();
    assert!(matches!(&err, Error::Distributed { .. }));
    assert!(err.to_string().contains("`embedding.weight` on rank 1 differs from rank 0's"), "{err}");
    ddp.broadcast_state(&model);
    ddp.check_parameters(&model).unwrap();
    let reference = flagship::<f32>(0);
    assert_eq!(max_rel_diff(&model.named_parameters(), &reference.named_parameters()), 0.0);
    // The single-process communicator is a no-op world of one.
    let one: DataParallel<f32> = DataParallel::new(Arc::new(SingleProcess));
    one.check_parameters(&model).unwrap();
}

fn unused_parameters(comm: &Arc<Mpi>) {
    let layers: Vec<Linear<f64>> = (0..3).map(|s| Linear::new(2, 1, s)).collect();
    // Used through a transpose, so its gradient arrives as a strided view (the transpose's
    // backward returns the incoming gradient transposed).
    let m = Tensor::<f64>::zeros(&[3, 2]).requires_grad();
    let mut params: Vec<(String, Tensor<f64>)> = layers
        .iter()
        .enumerate()
        .flat_map(|(k, l)| l.named_parameters().into_iter().map(move |(n, t)| (format!("{k}.{n}"), t)))
        .collect();
    params.push(("m".into(), m.clone()));
    for overlap in [true, false] {
        // Buckets of one parameter each, so that they fill out of order.
        let mut ddp = DataParallel::with_config(comm.clone(), DataParallelConfig { bucket_bytes: 8, overlap });
        let x = Tensor::<f64>::ones(&[1, 2]);
        let c = Tensor::<f64>::from_vec(vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0], &[2, 3]);
        let mut loss = layers[0].forward(&x).sum() + (m.t() * &c).sum();
        if comm.rank() == 0 {
            loss = loss + layers[1].forward(&x).sum() * 3.0; // layer 2 is never used
        }
        let grads = ddp.backward(&loss, &params);
        let size = comm.size() as f64;
        assert_eq!(grads.get(&params[0].1).unwrap().to_vec(), [1.0, 1.0]);
        assert_eq!(grads.get(&params[2].1).unwrap().to_vec(), [3.0 / size, 3.0 / size]);
        assert_eq!(grads.get(&params[3].1).unwrap().to_vec(), [3.0 / size]);
        assert!(grads.get(&params[4].1).is_none() && grads.get(&params[5].1).is_none());
        assert_eq!(grads.get(&m).unwrap().to_vec(), [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    }
}

/// Rank 1 fails at its third step, by a panic or by an error from a callback (a checkpoint
/// it cannot write); rank 0 would wait for it in the next all-reduce forever.
fn failing_rank(comm: &Arc<Mpi>, as_error: bool) {
    let (x, y) = text_data::<f32>(64, 1);
    let model = flagship::<f32>(0);
    let opt = Adam::new(model.named_parameters(), AdamConfig::default());
    let rank = comm.rank();
    let mut trainer = Trainer::new(model, opt, bce::<f32>).distributed(DataParallel::new(comm.clone()));
    if as_error {
        // Only rank 0 writes checkpoints; make rank 0's impossible.
        trainer = trainer.callback(Checkpoint::new("/nonexistent-dir/tensorgrad/ckpt.safetensors"));
    } else {
        trainer = trainer.grad_hook(move |_, step| {
            if rank == 1 && step.key.step == 2 {
                panic!("injected failure on rank 1");
            }
            Ok(())
        });
    }
    let options = FitOptions { epochs: 1000, batch_size: 4, verbose: false, ..FitOptions::default() };
    let _ = trainer.fit(&x, &y, &options);
    unreachable!("the job ends before this");
}
