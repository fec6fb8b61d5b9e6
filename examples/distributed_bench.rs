//! Timings of data-parallel training over MPI (cargo feature `mpi`), for
//! `docs/DISTRIBUTED.md`:
//!
//! ```text
//! cargo build --release --features mpi --example distributed_bench
//! # all-reduce latency and bandwidth, 4 B to 64 MiB (an OSU-style sweep)
//! mpirun -np 2 target/release/examples/distributed_bench allreduce
//! # a training step of the seed LSTM (or the MLP) on 2 ranks of one thread each …
//! RAYON_NUM_THREADS=1 mpirun -np 2 target/release/examples/distributed_bench step --workload lstm --per-rank-batch 64
//! # … against one process of two threads on the same global batch
//! RAYON_NUM_THREADS=2 target/release/examples/distributed_bench step --workload lstm --per-rank-batch 128
//! ```
//!
//! Each result is one line, `ALLREDUCE …` or `RESULT …`, printed by rank 0; times are the
//! slowest rank's.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use tensorgrad::distributed::{Communicator, DataParallel, DataParallelConfig, Mpi, ReduceOp};
use tensorgrad::loss::{Reduction, bce_with_logits, cross_entropy};
use tensorgrad::nn::{Embedding, Linear, Lstm, LstmConfig, Module, Relu, Sequential};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use tensorgrad::rand::{Rng, SeedableRng, rngs::StdRng};
use tensorgrad::{Error, Tensor};

const USAGE: &str = "usage: distributed_bench allreduce [--max-bytes N]\n       distributed_bench step --workload lstm|mlp \
                     [--per-rank-batch B] [--iters N] [--warmup N] [--bucket-mb X] [--no-overlap]";

struct StepArgs {
    workload: String,
    per_rank_batch: Option<usize>,
    iters: usize,
    warmup: usize,
    bucket_mb: f64,
    overlap: bool,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let comm: Arc<dyn Communicator> = match Mpi::init() {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("allreduce") => parse_max_bytes(&args[1..]).map(|max| allreduce_sweep(&*comm, max)),
        Some("step") => parse_step(&args[1..]).and_then(|a| step_timing(&comm, &a).map_err(|e| e.to_string())),
        _ => Err(String::new()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse_max_bytes(args: &[String]) -> Result<usize, String> {
    match args {
        [] => Ok(64 << 20),
        [flag, v] if flag == "--max-bytes" => v.parse().map_err(|_| format!("--max-bytes {v} is not a number")),
        _ => Err(format!("unexpected arguments {args:?}")),
    }
}

fn parse_step(args: &[String]) -> Result<StepArgs, String> {
    let mut a = StepArgs {
        workload: String::new(),
        per_rank_batch: None,
        iters: 30,
        warmup: 5,
        bucket_mb: 25.0,
        overlap: true,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|_| format!("{flag} {v} is not a number"));
        match flag.as_str() {
            "--workload" => a.workload = value()?,
            "--per-rank-batch" => a.per_rank_batch = Some(number(value()?)?),
            "--iters" => a.iters = number(value()?)?.max(1),
            "--warmup" => a.warmup = number(value()?)?,
            "--bucket-mb" => {
                let v = value()?;
                a.bucket_mb = v.parse().map_err(|_| format!("--bucket-mb {v} is not a number"))?;
            }
            "--no-overlap" => a.overlap = false,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !matches!(a.workload.as_str(), "lstm" | "mlp") {
        return Err("--workload is lstm or mlp".into());
    }
    Ok(a)
}

/// The slowest rank's value of `seconds`.
fn slowest(comm: &dyn Communicator, seconds: f64) -> f64 {
    let mut v = [seconds];
    comm.all_reduce((&mut v[..]).into(), ReduceOp::Max);
    v[0]
}

/// All-reduce (sum, f32) of 4 B to `max` bytes, doubling: the mean time per call over many
/// calls after a warm-up, and the bus bandwidth `bytes · 2(p − 1)/p / time` (what each link
/// of a ring carries).
fn allreduce_sweep(comm: &dyn Communicator, max: usize) {
    let p = comm.size() as f64;
    let mut bytes = 4;
    while bytes <= max {
        let mut buf = vec![1.0f32; bytes / 4];
        let iters = if bytes <= 64 << 10 {
            1000
        } else if bytes <= 4 << 20 {
            100
        } else {
            20
        };
        for _ in 0..10 {
            comm.all_reduce((&mut buf[..]).into(), ReduceOp::Sum);
        }
        comm.barrier();
        let started = Instant::now();
        for _ in 0..iters {
            comm.all_reduce((&mut buf[..]).into(), ReduceOp::Sum);
        }
        let each = slowest(comm, started.elapsed().as_secs_f64() / iters as f64);
        if comm.rank() == 0 {
            let busbw = bytes as f64 * 2.0 * (p - 1.0) / p / each / 1e9;
            println!(
                "ALLREDUCE impl=tensorgrad_mpi world={p} bytes={bytes} avg_us={:.2} busbw_GBps={busbw:.3}",
                each * 1e6
            );
        }
        bytes *= 2;
    }
}

/// One training step, timed: forward, loss, backward with the gradients averaged across the
/// ranks, optimizer step.
fn step_timing(comm: &Arc<dyn Communicator>, a: &StepArgs) -> Result<(), Error> {
    let mut rng = StdRng::seed_from_u64(1 + comm.rank() as u64);
    let lstm = a.workload == "lstm";
    let batch = a.per_rank_batch.unwrap_or(if lstm { 64 } else { 128 });
    let (model, x, y, classes): (Sequential, Tensor, Tensor, Vec<usize>) = if lstm {
        let model = Sequential::new()
            .add_named("embedding", Embedding::new(10_000, 16, &mut rng))
            .add_named("lstm", Lstm::new(LstmConfig::new(16, 128), &mut rng))
            .add_named("fc", Linear::new(128, 1, &mut rng));
        let ids: Vec<f32> = (0..batch * 100).map(|_| rng.random_range(0..10_000) as f32).collect();
        let labels: Vec<f32> = (0..batch).map(|_| rng.random_range(0..2u8) as f32).collect();
        (model, Tensor::from_vec(ids, &[batch, 100]), Tensor::from_vec(labels, &[batch, 1]), Vec::new())
    } else {
        let model = Sequential::new()
            .add_named("fc1", Linear::new(784, 512, &mut rng))
            .add(Relu)
            .add_named("fc2", Linear::new(512, 512, &mut rng))
            .add(Relu)
            .add_named("fc3", Linear::new(512, 10, &mut rng));
        let x = Tensor::randn(&[batch, 784], 0.0, 1.0, &mut rng);
        let classes = (0..batch).map(|_| rng.random_range(0..10)).collect();
        (model, x, Tensor::zeros(&[batch]), classes)
    };
    let config = DataParallelConfig { bucket_bytes: (a.bucket_mb * (1 << 20) as f64) as usize, overlap: a.overlap };
    let mut ddp = DataParallel::with_config(Arc::clone(comm), config);
    ddp.broadcast_state(&model);
    let params = model.named_parameters();
    let mut opt: Box<dyn Optimizer> = if lstm {
        Box::new(Adam::new(model.named_parameters(), AdamConfig { lr: 1e-3, ..Default::default() }))
    } else {
        Box::new(Sgd::new(model.named_parameters(), SgdConfig { lr: 0.01, ..Default::default() }))
    };
    let mut times = Vec::with_capacity(a.iters);
    for i in 0..a.warmup + a.iters {
        if i == a.warmup {
            comm.barrier();
        }
        let started = Instant::now();
        let out = model.forward(&x);
        let loss = if lstm {
            bce_with_logits(&out, &y, None, Reduction::Mean)
        } else {
            cross_entropy(&out, &classes, 0.0, Reduction::Mean)
        };
        let grads = ddp.backward(&loss, &params);
        drop(out);
        drop(loss);
        opt.step(&grads);
        if i >= a.warmup {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    // Each step's time is the slowest rank's.
    comm.all_reduce((&mut times[..]).into(), ReduceOp::Max);
    ddp.check_parameters(&model)?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    if comm.rank() == 0 {
        println!(
            "RESULT impl=tensorgrad_mpi workload={}_train world={} threads={} per_rank_batch={batch} bucket_mb={} overlap={} \
             median_s={median:.6} min_s={:.6} samples_s={:.1}",
            a.workload,
            comm.size(),
            rayon::current_num_threads(),
            a.bucket_mb,
            a.overlap,
            times[0],
            (batch * comm.size()) as f64 / median
        );
    }
    Ok(())
}
