//! The differentiable ops, one file per family. Each op's forward kernel call and its backward
//! rule sit side by side in one method; backward rules are written with tensor ops, so they can
//! themselves be recorded and differentiated again.

mod activation;
pub(crate) mod attention;
pub(crate) mod conv;
mod elementwise;
mod index;
mod loss;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod pad;
pub(crate) mod pool;
mod reduce;
mod rnn;
mod view;

pub(crate) use rnn::{LstmOp, LstmPack};
