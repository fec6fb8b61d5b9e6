//! [`Mpi`]: the [`Communicator`] over the system's MPI library (cargo feature `mpi`).

use std::sync::Mutex;

use ::mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use ::mpi::datatype::PartitionMut;
use ::mpi::environment::{Threading, Universe};
use ::mpi::topology::{Communicator as _, SimpleCommunicator};

use super::{Buffer, Communicator, ReduceOp};
use crate::Element;
use crate::error::{Error, Result};
use crate::kernels::slice::{add_assign, div_assign_scalar};

/// The most values one MPI call moves: MPI counts are C `int`s.
const MAX_COUNT: usize = 1 << 30;

/// The processes of an MPI job (`MPI_COMM_WORLD`), started by `mpirun`, `mpiexec` or Slurm's
/// `srun`: cargo feature `mpi`, over the system's MPI library (Open MPI or MPICH).
///
/// [`init`](Self::init) starts MPI once per process and keeps it until the value is dropped
/// (then MPI is finalised: keep it alive until the end of `main`). It also makes a panic on any
/// thread of any rank end the whole job (`MPI_Abort`), after the panic's message is printed, so
/// a failing rank never leaves the others waiting in a collective.
///
/// ```no_run
/// use std::sync::Arc;
/// use tensorgrad::distributed::{Communicator, Mpi, ReduceOp};
///
/// // mpirun -np 2 target/release/examples/…
/// let comm = Arc::new(Mpi::init()?);
/// let mut v = vec![comm.rank() as f64 + 1.0];
/// comm.all_reduce((&mut v[..]).into(), ReduceOp::Sum);
/// assert_eq!(v[0], (1..=comm.size()).sum::<usize>() as f64);
/// # Ok::<(), tensorgrad::Error>(())
/// ```
pub struct Mpi {
    // Finalises MPI when dropped.
    _universe: Universe,
    rank: usize,
    size: usize,
    threading: Threading,
    // MPI calls go one at a time (what `MPI_THREAD_SERIALIZED` asks of the caller); the lock
    // also guards the ring's receive buffers, kept between calls.
    lock: Mutex<Scratch>,
}

/// The ring's buffer for the share a step receives, one per element type.
#[derive(Default)]
struct Scratch {
    f32: Vec<f32>,
    f64: Vec<f64>,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("threading", &self.threading)
            .finish()
    }
}

impl Mpi {
    /// Starts MPI (asking for `MPI_THREAD_MULTIPLE`) and joins the job's world.
    ///
    /// Run alone (without `mpirun`), a program is a world of one process (MPI's singleton
    /// start), as with [`SingleProcess`](super::SingleProcess).
    ///
    /// # Errors
    /// [`Error::Distributed`] if MPI was already started in this process.
    pub fn init() -> Result<Mpi> {
        let Some((universe, threading)) = ::mpi::initialize_with_threading(Threading::Multiple) else {
            return Err(Error::Distributed {
                op: "Mpi::init",
                reason: "MPI is already initialised in this process (call Mpi::init once, at the start of main)".into(),
            });
        };
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            eprintln!("tensorgrad: rank {rank} of {size} panicked; aborting the MPI job");
            SimpleCommunicator::world().abort(101);
        }));
        Ok(Mpi { _universe: universe, rank, size, threading, lock: Mutex::new(Scratch::default()) })
    }

    /// The thread support the MPI library granted (`Multiple` or `Serialized` lets
    /// [`DataParallel`](super::DataParallel) reduce gradients on a background thread).
    pub fn threading(&self) -> Threading {
        self.threading
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Scratch> {
        // A panic aborts the job, so a poisoned lock is never seen by a running rank.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn op_of(op: ReduceOp) -> SystemOperation {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => SystemOperation::sum(),
        ReduceOp::Max => SystemOperation::max(),
        ReduceOp::Min => SystemOperation::min(),
    }
}

/// A sum is reduced by [`ring_sum`] rather than `MPI_Allreduce` when the buffer has at least
/// this many bytes, and each rank's share at least [`RING_SHARE_BYTES`]: the ring takes
/// `2(p − 1)` steps, so with many processes only large buffers amortise its latency, and
/// smaller ones are better left to the MPI library's logarithmic algorithms.
const RING_BYTES: usize = 64 << 10;

/// See [`RING_BYTES`].
const RING_SHARE_BYTES: usize = 32 << 10;

/// `MPI_Allreduce` of one slice, in pieces of at most [`MAX_COUNT`] values, through a copy
/// (MPI reads the send buffer while it writes the receive buffer).
fn all_reduce_slice<T>(world: &SimpleCommunicator, values: &mut [T], op: SystemOperation)
where
    T: ::mpi::datatype::Equivalence + Copy,
{
    for piece in values.chunks_mut(MAX_COUNT) {
        let send = piece.to_vec();
        world.all_reduce_into(&send[..], piece, op);
    }
}

/// Sums `values` across the ranks with the ring schedule: a reduce-scatter (in `p − 1` steps
/// each rank passes one share of the values to the next rank and adds the share it receives),
/// then an all-gather of the summed shares around the same ring. Every rank sends and receives
/// `2(p − 1)/p` of the buffer, the least an all-reduce can, and each value is summed on one
/// rank, so every rank ends with the same bits.
///
/// Open MPI 4.1's own choice for these sizes on one machine is recursive doubling, measured
/// 2–6× slower from 256 KiB on (see `docs/DISTRIBUTED.md`); its ring algorithm can be had only
/// through a run-time parameter, for every size at once.
fn ring_sum<T>(world: &SimpleCommunicator, values: &mut [T], incoming: &mut Vec<T>)
where
    T: Element + ::mpi::datatype::Equivalence,
{
    let p = world.size() as usize;
    let r = world.rank() as usize;
    let (right, left) = (world.process_at_rank(((r + 1) % p) as i32), world.process_at_rank(((r + p - 1) % p) as i32));
    for piece in values.chunks_mut(MAX_COUNT) {
        let len = piece.len();
        let share = len.div_ceil(p);
        let range = |c: usize| (c * share).min(len)..((c + 1) * share).min(len);
        if incoming.len() < share {
            incoming.resize(share, T::zero());
        }
        for step in 0..p - 1 {
            let (out, into) = ((r + p - step) % p, (r + 2 * p - step - 1) % p);
            let (out, into) = (range(out), range(into));
            let got = &mut incoming[..into.len()];
            ::mpi::point_to_point::send_receive_into(&piece[out], &right, got, &left);
            add_assign(&mut piece[into], got);
        }
        for step in 0..p - 1 {
            let (out, into) = ((r + 1 + p - step) % p, (r + p - step) % p);
            let (out, into) = (range(out), range(into));
            // The two shares are disjoint: receive straight into place.
            let (send, got) = if out.start < into.start {
                let (lo, hi) = piece.split_at_mut(into.start);
                (&lo[out], &mut hi[..into.len()])
            } else {
                let (lo, hi) = piece.split_at_mut(out.start);
                (&hi[..out.len()], &mut lo[into])
            };
            ::mpi::point_to_point::send_receive_into(send, &right, got, &left);
        }
    }
}

/// [`Communicator::all_reduce`] of one buffer: round the ring or through `MPI_Allreduce`, then
/// the division of a mean.
fn reduce_values<T>(world: &SimpleCommunicator, values: &mut [T], op: ReduceOp, ring: bool, incoming: &mut Vec<T>)
where
    T: Element + ::mpi::datatype::Equivalence,
{
    if ring {
        ring_sum(world, values, incoming);
    } else {
        all_reduce_slice(world, values, op_of(op));
    }
    if op == ReduceOp::Mean {
        div_assign_scalar(values, T::of(world.size() as f64));
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce(&self, buf: Buffer<'_>, op: ReduceOp) {
        if self.size == 1 {
            return;
        }
        let mut scratch = self.lock();
        let world = SimpleCommunicator::world();
        let bytes = buf.bytes();
        let ring = matches!(op, ReduceOp::Sum | ReduceOp::Mean)
            && bytes >= RING_BYTES
            && bytes / self.size >= RING_SHARE_BYTES;
        match buf {
            Buffer::F32(b) => reduce_values(&world, b, op, ring, &mut scratch.f32),
            Buffer::F64(b) => reduce_values(&world, b, op, ring, &mut scratch.f64),
        }
    }

    #[track_caller]
    fn broadcast(&self, buf: Buffer<'_>, root: usize) {
        if root >= self.size {
            panic!("broadcast: root {root} is not a rank of {} processes", self.size);
        }
        if self.size == 1 {
            return;
        }
        let _guard = self.lock();
        let world = SimpleCommunicator::world();
        let process = world.process_at_rank(root as i32);
        match buf {
            Buffer::F32(b) => b.chunks_mut(MAX_COUNT).for_each(|p| process.broadcast_into(p)),
            Buffer::F64(b) => b.chunks_mut(MAX_COUNT).for_each(|p| process.broadcast_into(p)),
        }
    }

    fn all_gather(&self, local: &[f64]) -> Vec<f64> {
        if self.size == 1 {
            return local.to_vec();
        }
        let _guard = self.lock();
        let world = SimpleCommunicator::world();
        let count = i32::try_from(local.len()).expect("all_gather: fewer than 2^31 values per rank");
        let mut counts = vec![0i32; self.size];
        world.all_gather_into(&count, &mut counts[..]);
        let displs: Vec<i32> = counts
            .iter()
            .scan(0i32, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let mut out = vec![0.0f64; total];
        {
            let mut partition = PartitionMut::new(&mut out[..], &counts[..], &displs[..]);
            world.all_gather_varcount_into(local, &mut partition);
        }
        out
    }

    fn barrier(&self) {
        if self.size > 1 {
            let _guard = self.lock();
            SimpleCommunicator::world().barrier();
        }
    }

    fn abort(&self, code: i32) -> ! {
        SimpleCommunicator::world().abort(code)
    }

    fn threads_allowed(&self) -> bool {
        self.threading >= Threading::Serialized
    }
}
