//! `--distributed` for the examples: the MPI communicator when the example was built with the
//! `mpi` feature and started under `mpirun`/`srun`, a clear error otherwise.

use std::sync::Arc;

use tensorgrad::distributed::Communicator;

/// The job's communicator if `distributed`, else `None` (one process, as always).
pub fn communicator(distributed: bool, example: &str) -> Result<Option<Arc<dyn Communicator>>, String> {
    if !distributed {
        return Ok(None);
    }
    #[cfg(feature = "mpi")]
    {
        let _ = example;
        match tensorgrad::distributed::Mpi::init() {
            Ok(mpi) => Ok(Some(Arc::new(mpi))),
            Err(e) => Err(e.to_string()),
        }
    }
    #[cfg(not(feature = "mpi"))]
    Err(format!(
        "--distributed needs the `mpi` feature: cargo build --release --features mpi --example {example}, then \
         mpirun -np 2 target/release/examples/{example} --distributed …"
    ))
}

/// Ends the whole job after a rank's error, so that no rank waits for it forever; in one
/// process, nothing.
pub fn abort_on_error(comm: Option<&Arc<dyn Communicator>>) {
    if let Some(c) = comm.filter(|c| c.size() > 1) {
        eprintln!("rank {} of {}: aborting the job", c.rank(), c.size());
        c.abort(1);
    }
}
