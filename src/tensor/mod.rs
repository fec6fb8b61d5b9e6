//! The tensor core: the element type, shapes and layouts, buffers and their cache, the
//! `Tensor` handle with the op contract, the graph modes, the backward walk and the gradient
//! checker.
//!
//! The modules here sit in three bands of the crate's layers (see `docs/ARCHITECTURE.md`):
//! `element`, `shape` and `layout` (numbers and index arithmetic) and `memory` and `storage`
//! (buffers) are below the kernels; `mode` and `handle` are above the kernels and below the ops;
//! `autograd` and `gradcheck` are above the ops, whose tensor arithmetic they use.

pub(crate) mod autograd;
pub(crate) mod element;
pub(crate) mod gradcheck;
pub(crate) mod handle;
pub(crate) mod layout;
pub mod memory;
pub(crate) mod mode;
pub(crate) mod rng;
pub mod shape;
pub(crate) mod storage;
