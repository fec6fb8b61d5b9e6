//! Data-parallel training across processes and machines.
//!
//! Every process (a *rank*) holds a whole copy of the model and trains on its own shard of the
//! data; after each backward pass the gradients are averaged across the ranks, so every rank
//! takes the same optimizer step and the copies stay equal. This is PyTorch's
//! `DistributedDataParallel`, on MPI, the engine CPU clusters already run (`mpirun`, Slurm's
//! `srun`).
//!
//! - [`Communicator`]: rank, size and the collective operations (all-reduce, broadcast,
//!   all-gather, barrier). `Mpi` (cargo feature `mpi`, over the system's MPI library) is the
//!   one that spans processes; [`SingleProcess`] is the world of one, so the same training
//!   code runs unchanged without MPI.
//! - [`DataParallel`]: broadcasts rank 0's parameters and buffers, then averages gradients in
//!   buckets that start travelling while the backward pass is still running.
//! - [`Trainer::distributed`](crate::train::Trainer::distributed): `fit` in data-parallel mode
//!   (each rank its [`DistributedSampler`](crate::data::DistributedSampler) shard, metrics
//!   reduced exactly, only rank 0 prints and writes).
//!
//! ```
//! use std::sync::Arc;
//! use tensorgrad::distributed::{Communicator, ReduceOp, SingleProcess};
//!
//! // With the `mpi` feature, under `mpirun -np 4`: `let comm = Arc::new(Mpi::init()?);`
//! let comm: Arc<dyn Communicator> = Arc::new(SingleProcess);
//! let mut grads = vec![1.0f32, 2.0, 3.0];
//! comm.all_reduce((&mut grads[..]).into(), ReduceOp::Mean);
//! assert_eq!(grads, [1.0, 2.0, 3.0]); // one process: the mean of one copy
//! assert_eq!((comm.rank(), comm.size()), (0, 1));
//! ```
//!
//! See `docs/DISTRIBUTED.md` for the design, the measurements and the scaling model, and the
//! README's "Training on several machines" for the commands.

mod ddp;
#[cfg(feature = "mpi")]
mod mpi_comm;

pub use ddp::{DataParallel, DataParallelConfig};
#[cfg(feature = "mpi")]
pub use mpi_comm::Mpi;

use crate::Element;
pub use crate::tensor::element::Buffer;

/// The values of a slice of `E` (`f32` or `f64`) as a [`Buffer`], for code generic over the
/// element type.
pub fn buffer<E: Element>(values: &mut [E]) -> Buffer<'_> {
    E::comm_buffer(values)
}

/// How an all-reduce combines the ranks' values, element by element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// The sum over the ranks.
    Sum,
    /// The sum divided by the number of ranks (a gradient average).
    Mean,
    /// The largest value.
    Max,
    /// The smallest value.
    Min,
}

/// The processes of a data-parallel job and the collective operations between them.
///
/// Every rank must call the same collective operations in the same order with buffers of the
/// same length (as in MPI); a rank that skips one leaves the others waiting. Implementations
/// serialise their own calls, so one communicator can be shared between threads (the gradient
/// buckets of [`DataParallel`] are reduced on a background thread).
pub trait Communicator: Send + Sync {
    /// This process's rank, from 0 to `size() - 1`.
    fn rank(&self) -> usize;

    /// The number of processes.
    fn size(&self) -> usize;

    /// Combines `buf` element-wise across all ranks and leaves the result in every rank's
    /// `buf`. The ranks' buffers must have the same length and type.
    fn all_reduce(&self, buf: Buffer<'_>, op: ReduceOp);

    /// Copies rank `root`'s `buf` into every other rank's `buf`.
    fn broadcast(&self, buf: Buffer<'_>, root: usize);

    /// Every rank's `local` values, concatenated in rank order, on every rank. The ranks may
    /// give different numbers of values (small amounts: metric states, sizes, checks).
    fn all_gather(&self, local: &[f64]) -> Vec<f64>;

    /// Waits until every rank has called it.
    fn barrier(&self);

    /// Ends the whole job (every rank) with exit code `code`: what to do when one rank cannot
    /// go on, instead of leaving the others waiting forever.
    fn abort(&self, code: i32) -> !;

    /// Whether collective calls may come from a thread other than the one that created the
    /// communicator (for [`DataParallel`]'s overlap of communication with the backward pass).
    fn threads_allowed(&self) -> bool {
        true
    }
}

/// The world of one process: rank 0 of 1, every collective a no-op. Training code written for
/// a [`Communicator`] runs unchanged, and exactly as without one, in a single process.
///
/// ```
/// use tensorgrad::distributed::{Communicator, ReduceOp, SingleProcess};
///
/// let mut v = vec![2.0f64, -1.0];
/// SingleProcess.all_reduce((&mut v[..]).into(), ReduceOp::Sum);
/// SingleProcess.broadcast((&mut v[..]).into(), 0);
/// assert_eq!(v, [2.0, -1.0]);
/// assert_eq!(SingleProcess.all_gather(&[7.0]), [7.0]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Communicator for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce(&self, _buf: Buffer<'_>, _op: ReduceOp) {}

    #[track_caller]
    fn broadcast(&self, _buf: Buffer<'_>, root: usize) {
        if root != 0 {
            panic!("broadcast: root {root} is not a rank of a single process");
        }
    }

    fn all_gather(&self, local: &[f64]) -> Vec<f64> {
        local.to_vec()
    }

    fn barrier(&self) {}

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}
