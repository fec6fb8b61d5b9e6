//! The packed matrix multiply, BLIS-style: `C (+)= A·B` for `f32` and `f64`.
//!
//! The loops, outermost first (`kc`, `mc`, `nc` come from this CPU's caches, see [`Blocking`]):
//!
//! ```text
//! for each block of nc columns of B and C            (B block: kc × nc, lives in L3)
//!   for each block of kc steps of the inner dim      → pack B block (shared by all threads)
//!     for each block of mc rows of A (per thread)    → pack A block (mc × kc, lives in L2)
//!       for each panel of nr columns                 (B panel: kc × nr, lives in L1)
//!         for each panel of mr rows                  → micro-kernel on one mr × nr tile of C
//! ```
//!
//! The micro-kernel is the widest this CPU runs (`micro.rs`: AVX-512, AVX2 + FMA, portable).
//! Packing reads the operands with their own strides (`pack.rs`). A right operand used many
//! times (a layer's weight) can be packed once, [`PackedB`], and reused.
//!
//! **Threads.** Each B block is packed once and shared; the threads then split its rows of C
//! (each packing only its own rows of A) or, when C has few rows, its panels of columns. The
//! split is taken only when the time it saves, estimated from the work and the kernel's speed,
//! is well above what its fork-joins cost on this machine ([`cpu::fork_join_ns`]).
//!
//! **Bits.** Every element of C is one chain of multiply-adds over `k` in order, in blocks of
//! `kc` steps added to C in turn; neither the split nor a tile's position changes that chain,
//! so the result does not depend on the number of threads. (`kc` depends on the CPU's L1 size,
//! so two different CPUs may differ in the last bits, as they do with any BLAS.)
//!
//! **Epilogues** run on each block of rows of C (at most `mc` rows, the task's columns) right
//! after its last block of steps, while it is still in L2: one call per row with the row index,
//! the first column and the row's values. (Per tile of the micro-kernel was tried first: with
//! 32-column pieces the calls' overhead made the LSTM's forward pass 25 % slower.)

pub(crate) mod micro;
mod pack;

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use self::micro::{Kernel, kernel};
use self::pack::{pack_a, pack_b};
use super::entry::instance;
use super::matmul::MatRef;
use super::{Par, cpu};
use crate::tensor::element::Element;

/// Work applied to each finished row of a tile of C: `f(row, first_col, values)`.
pub(crate) type Epilogue<'a, E> = &'a (dyn Fn(usize, usize, &mut [E]) + Sync);

/// Cache blocking for one kernel on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blocking {
    /// Steps of the inner dimension per block: a `kc × nr` panel of B fills about two thirds
    /// of L1.
    pub kc: usize,
    /// Rows of A per block: an `mc × kc` block fills about an eighth of L2 (on a 2 MiB L2,
    /// blocks filling half of it ran 35 % slower at n = 1024; an eighth to a sixteenth were
    /// equally fast).
    pub mc: usize,
    /// Columns of B per block: a `kc × nc` block fills about a quarter of L3 (at most 4096).
    pub nc: usize,
}

impl Blocking {
    /// The blocking for kernel `k` on this CPU's caches.
    pub(crate) fn for_kernel<E>(k: &Kernel<E>) -> Blocking {
        let c = cpu::caches();
        let size = std::mem::size_of::<E>();
        let kc = (c.l1d * 2 / 3 / (k.nr * size)).clamp(64, 512) / 16 * 16;
        let mc = ((c.l2 / 8 / (kc * size)) / k.mr * k.mr).clamp(2 * k.mr, 1024 / k.mr * k.mr);
        let nc = ((c.l3 / 4 / (kc * size)) / k.nr * k.nr).clamp(k.nr * 8, 4096 / k.nr * k.nr);
        #[cfg(test)]
        if let Some((kc, mc, nc)) = tests::FORCED_BLOCKING.with(|f| f.get()) {
            return Blocking { kc, mc: mc.div_ceil(k.mr) * k.mr, nc: nc.div_ceil(k.nr) * k.nr };
        }
        Blocking { kc, mc, nc }
    }
}

/// The kernel and blocking the packed GEMM uses for `E` on this CPU, at the widest SIMD level
/// allowed on this thread.
pub(crate) fn plan<E: Element>() -> (Kernel<E>, Blocking) {
    let k = kernel::<E>(2);
    (k, Blocking::for_kernel(&k))
}

/// A right operand `B` (`k × n`) packed once, for products with many left operands: a layer's
/// weight over the steps of a sequence, or over the calls of an inference loop.
pub(crate) struct PackedB<E> {
    k: usize,
    n: usize,
    kernel: Kernel<E>,
    bl: Blocking,
    data: Vec<E>,
    /// Where the packed values start in `data` (its first 64-byte boundary).
    start: usize,
}

impl<E: Element> PackedB<E> {
    /// Packs `B`, read with its strides at `mb` in `b`, for this thread's kernel.
    pub(crate) fn new(k: usize, n: usize, b: &[E], mb: MatRef) -> PackedB<E> {
        PackedB::new_par(Par::Seq, k, n, b, mb)
    }

    /// [`PackedB::new`], with the blocks (or, for a single block, runs of its panels) packed
    /// in parallel when `par` allows.
    pub(crate) fn new_par(par: Par, k: usize, n: usize, b: &[E], mb: MatRef) -> PackedB<E> {
        // The instances compiled in this crate (see `kernels::entry`).
        type F<T> = fn(Par, usize, usize, &[T], MatRef) -> PackedB<T>;
        static F32: F<f32> = PackedB::<f32>::new_par_impl;
        static F64: F<f64> = PackedB::<f64>::new_par_impl;
        instance::<E, F<E>>(&F32, &F64)(par, k, n, b, mb)
    }

    /// [`PackedB::new_par`]'s body, instantiated in this crate only.
    fn new_par_impl(par: Par, k: usize, n: usize, b: &[E], mb: MatRef) -> PackedB<E> {
        check_bounds("B", b.len(), k, n, mb);
        let (kernel, bl) = plan::<E>();
        let nr = kernel.nr;
        let len = n.div_ceil(nr) * nr * k;
        let mut data = vec![E::zero(); len + ALIGN];
        let start = data.as_ptr().align_offset(64).min(ALIGN);
        // The blocks in packed order, each with the columns and steps of B it holds.
        let mut blocks = Vec::new();
        let mut rest = &mut data[start..start + len];
        for j0 in (0..n).step_by(bl.nc) {
            let ncb = bl.nc.min(n - j0);
            let width = ncb.div_ceil(nr) * nr;
            for p0 in (0..k).step_by(bl.kc) {
                let kcb = bl.kc.min(k - p0);
                let (block, tail) = rest.split_at_mut(width * kcb);
                blocks.push((block, j0..j0 + ncb, p0..p0 + kcb));
                rest = tail;
            }
        }
        let threads = par.threads();
        if threads < 2 {
            for (block, cols, steps) in blocks {
                pack_b(block, b, mb, steps, cols, nr);
            }
        } else if blocks.len() >= 2 * threads {
            blocks.into_par_iter().for_each(|(block, cols, steps)| pack_b(block, b, mb, steps, cols, nr));
        } else {
            for (block, cols, steps) in blocks {
                let per = cols.len().div_ceil(nr).div_ceil(threads) * nr; // columns per task
                block.par_chunks_mut(per * steps.len()).enumerate().for_each(|(t, out)| {
                    let c0 = cols.start + t * per;
                    pack_b(out, b, mb, steps.clone(), c0..cols.end.min(c0 + per), nr);
                });
            }
        }
        PackedB { k, n, kernel, bl, data, start }
    }

    /// The packed block of columns from `j0` (a multiple of `nc`) and steps from `p0`.
    fn block(&self, j0: usize, ncb: usize, p0: usize, kcb: usize) -> &[E] {
        let width = ncb.div_ceil(self.kernel.nr) * self.kernel.nr;
        let off = self.start + j0 * self.k + width * p0;
        &self.data[off..off + width * kcb]
    }
}

/// The right operand of a product: read with strides (packed block by block as it goes), or
/// packed beforehand.
#[derive(Clone, Copy)]
pub(crate) enum BOperand<'a, E> {
    /// `B` at these strides inside a buffer.
    Strided(&'a [E], MatRef),
    /// `B` packed by [`PackedB::new`].
    Packed(&'a PackedB<E>),
}

#[track_caller]
pub(crate) fn check_bounds(what: &str, len: usize, rows: usize, cols: usize, m: MatRef) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = (rows - 1)
        .checked_mul(m.rs)
        .and_then(|r| (cols - 1).checked_mul(m.cs).and_then(|c| r.checked_add(c)))
        .and_then(|rc| rc.checked_add(m.offset))
        .unwrap_or(usize::MAX);
    assert!(last < len, "matmul kernel: operand {what} addresses element {last} of a buffer of {len}");
}

/// A raw pointer that may cross to rayon tasks; each task writes a disjoint part of C.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<E>(pub(crate) *mut E);
// SAFETY: only used to hand disjoint tiles of C to tasks that all finish before the owning
// `&mut [E]` is used again (rayon's `for_each` joins them).
unsafe impl<E> Send for SendPtr<E> {}
// SAFETY: as above; the pointer itself is only copied.
unsafe impl<E> Sync for SendPtr<E> {}

/// `C (+)= A·B`, then `epilogue` on every row of C.
///
/// `A` is `m × k` at `ma` in `a`; `B` is `k × n`; `C` is `m × n` with row stride `rsc` (≥ n) and
/// unit column stride in `c`. With `accumulate`, the product is added to C; otherwise C is
/// overwritten (and need not be initialised).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<E: Element>(
    par: Par,
    m: usize,
    k: usize,
    n: usize,
    a: &[E],
    ma: MatRef,
    b: BOperand<'_, E>,
    c: &mut [E],
    rsc: usize,
    accumulate: bool,
    epilogue: Option<Epilogue<'_, E>>,
) {
    // The instances compiled in this crate (see `kernels::entry`).
    type F<T> =
        fn(Par, usize, usize, usize, &[T], MatRef, BOperand<'_, T>, &mut [T], usize, bool, Option<Epilogue<'_, T>>);
    static F32: F<f32> = gemm_impl::<f32>;
    static F64: F<f64> = gemm_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, m, k, n, a, ma, b, c, rsc, accumulate, epilogue)
}

/// [`gemm`]'s body, instantiated in this crate only.
#[allow(clippy::too_many_arguments)]
fn gemm_impl<E: Element>(
    par: Par,
    m: usize,
    k: usize,
    n: usize,
    a: &[E],
    ma: MatRef,
    b: BOperand<'_, E>,
    c: &mut [E],
    rsc: usize,
    accumulate: bool,
    epilogue: Option<Epilogue<'_, E>>,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(rsc >= n && (m - 1) * rsc + n <= c.len(), "matmul kernel: output buffer too small");
    check_bounds("A", a.len(), m, k, ma);
    let (kern, bl) = match b {
        BOperand::Strided(b, mb) => {
            check_bounds("B", b.len(), k, n, mb);
            plan::<E>()
        }
        BOperand::Packed(p) => {
            assert!(p.k == k && p.n == n, "matmul kernel: packed operand is {}×{}, not {k}×{n}", p.k, p.n);
            (p.kernel, p.bl)
        }
    };
    if k == 0 {
        for (i, row) in c.chunks_mut(rsc).take(m).enumerate() {
            if !accumulate {
                row[..n].fill(E::zero());
            }
            if let Some(f) = epilogue {
                f(i, 0, &mut row[..n]);
            }
        }
        return;
    }
    let job = Job { kern, bl, k, n, a, ma, c: SendPtr(c.as_mut_ptr()), rsc, accumulate, epilogue };
    let panels = n.div_ceil(kern.nr);
    // The threads split C's column panels (each packs its own panels of B, and the rows of A it
    // needs: one fork-join) or, when the rows share out better, its rows (B packed whole first,
    // in parallel: two).
    // A split is charged four fork-joins: beyond the wake-ups the probe measures, the second
    // thread starts with cold caches. On the Intel VM, [128, 144] × [144, 512] split at twice
    // one fork-join's cost ran 156 µs on two threads against 137 µs on one.
    let threads = threads_for(par, m * k * n, 4, &kern);
    if threads == 1 {
        // SAFETY: this call alone writes C, whose bounds were checked above.
        unsafe { job.run(b, 0..m, 0..panels) };
    } else if split_columns(m, panels, threads, kern.mr) {
        let per = panels.div_ceil(threads);
        (0..panels.div_ceil(per)).into_par_iter().for_each(|t| {
            // SAFETY: each task writes only the columns of its panels.
            unsafe { job.run(b, 0..m, t * per..panels.min((t + 1) * per)) };
        });
    } else {
        let owned;
        let packed = match b {
            BOperand::Packed(p) => p,
            BOperand::Strided(b, mb) => {
                owned = PackedB::new_par(par, k, n, b, mb);
                &owned
            }
        };
        let per = m.div_ceil(threads).div_ceil(kern.mr) * kern.mr;
        (0..m.div_ceil(per)).into_par_iter().for_each(|t| {
            // SAFETY: each task writes only its rows of C.
            unsafe { job.run(BOperand::Packed(packed), t * per..m.min((t + 1) * per), 0..panels) };
        });
    }
}

/// Whether `threads` tasks should split C's column panels (each packing its own panels of B)
/// rather than its rows (B packed whole first, in parallel): columns unless there are fewer
/// panels than threads or the rows share out more evenly. A weight gradient `[512, B·T] ×
/// [B·T, 144]` has 4.5 panels of 32 columns: split by columns one thread did 3 and the other 2.
fn split_columns(m: usize, panels: usize, threads: usize, mr: usize) -> bool {
    let row_panels = m.div_ceil(mr);
    // The busiest task's share over an even share (1 = perfectly even).
    let uneven = |units: usize| (units.div_ceil(threads) * threads) as f64 / units as f64;
    row_panels < threads || (panels >= threads && uneven(panels) <= uneven(row_panels))
}

/// How many threads a product of `macs` multiply-adds with `joins` fork-joins should use: all
/// of the pool's when the time saved is at least twice what the fork-joins cost on this
/// machine, else one.
fn threads_for<E>(par: Par, macs: usize, joins: usize, kern: &Kernel<E>) -> usize {
    #[cfg(test)]
    if tests::FORCE_SPLIT.with(|f| f.get()) {
        return par.threads();
    }
    par.for_work(macs as f64 / kern.macs_per_ns / joins as f64).threads()
}

/// The parts of a product that every task shares.
struct Job<'a, E> {
    kern: Kernel<E>,
    bl: Blocking,
    k: usize,
    n: usize,
    a: &'a [E],
    ma: MatRef,
    c: SendPtr<E>,
    rsc: usize,
    accumulate: bool,
    epilogue: Option<Epilogue<'a, E>>,
}

// SAFETY: `Job` is shared by tasks that write disjoint parts of C (see `SendPtr`); everything
// else in it is read-only and `Sync` (`E: Sync`, the epilogue is `Sync`).
unsafe impl<E: Sync> Sync for Job<'_, E> {}

impl<E: Element> Job<'_, E> {
    /// Rows `rows` of C times the column panels `panels` (of `nr` columns each) of B, through
    /// every block of `nc` columns and `kc` steps.
    ///
    /// # Safety
    /// No other task may write rows `rows` × the columns of `panels` of C at the same time.
    unsafe fn run(&self, b: BOperand<'_, E>, rows: Range<usize>, panels: Range<usize>) {
        let Kernel { mr, nr, .. } = self.kern;
        let Blocking { kc, mc, nc } = self.bl;
        let (k, n) = (self.k, self.n);
        let (c0, c1) = (panels.start * nr, n.min(panels.end * nr));
        if c0 >= c1 || rows.is_empty() {
            return;
        }
        let b_len = match b {
            BOperand::Packed(_) => 0,
            BOperand::Strided(..) => nc.min(c1 - c0).div_ceil(nr) * nr * kc.min(k),
        };
        let a_len = mc.min(rows.len()).div_ceil(mr) * mr * kc.min(k);
        with_scratch(Slot::B, b_len, |bbuf| {
            with_scratch(Slot::A, a_len, |apack| {
                let mut tmp = Tile([E::zero(); 512]);
                let tmp = &mut tmp.0;
                debug_assert!(mr * nr <= tmp.len());
                // Blocks of nc columns on the grid from column 0 (so that a packed B's blocks
                // line up), cut to this task's columns.
                for j0 in (c0 / nc * nc..c1).step_by(nc) {
                    let ncb = nc.min(n - j0);
                    let (lo, hi) = (c0.max(j0), c1.min(j0 + ncb));
                    for p0 in (0..k).step_by(kc) {
                        let kcb = kc.min(k - p0);
                        // The packed panels of columns lo..hi and their index in `bpack`.
                        let (bpack, first): (&[E], usize) = match b {
                            BOperand::Packed(p) => (p.block(j0, ncb, p0, kcb), (lo - j0) / nr),
                            BOperand::Strided(b, mb) => {
                                pack_b(bbuf, b, mb, p0..p0 + kcb, lo..hi, nr);
                                (&*bbuf, 0)
                            }
                        };
                        let acc = self.accumulate || p0 > 0;
                        let last = p0 + kcb == k;
                        for i0 in rows.clone().step_by(mc) {
                            let mh = mc.min(rows.end - i0);
                            if mh < mr {
                                // Fewer rows than a tile (batch-1 inference): row by row, A read
                                // in place, so a one-row product pays neither for a whole tile
                                // of rows nor for packing A.
                                // SAFETY: rows i0..i0 + mh, columns lo..hi are this task's.
                                unsafe { self.thin(kcb, p0, (i0, mh), (lo, hi), &bpack[first * nr * kcb..], acc, tmp) };
                            } else {
                                pack_a(apack, self.a, self.ma, i0..i0 + mh, p0..p0 + kcb, mr);
                                for (jp, j) in (lo..hi).step_by(nr).enumerate() {
                                    let w = nr.min(hi - j);
                                    let bp = &bpack[(first + jp) * nr * kcb..][..nr * kcb];
                                    for ip in 0..mh.div_ceil(mr) {
                                        let i = i0 + ip * mr;
                                        let h = mr.min(i0 + mh - i);
                                        let ap = &apack[ip * mr * kcb..][..mr * kcb];
                                        // SAFETY: `ap` and `bp` are whole packed panels; the tile
                                        // (i, j, h, w) lies in rows `rows` and panels `panels` of C,
                                        // which the caller gave to this task alone.
                                        unsafe { self.tile(kcb, ap, bp, (i, j), (h, w), acc, tmp) };
                                    }
                                }
                            }
                            if last && let Some(f) = self.epilogue {
                                for i in i0..i0 + mh {
                                    // SAFETY: row i, columns lo..hi: inside C (bounds checked by
                                    // `gemm`) and this task's alone.
                                    let row = unsafe {
                                        std::slice::from_raw_parts_mut(self.c.0.add(i * self.rsc + lo), hi - lo)
                                    };
                                    f(i, lo, row);
                                }
                            }
                        }
                    }
                }
            })
        })
    }

    /// Rows `i0..i0 + mh` (fewer than a tile) of C, columns `lo..hi`, steps `p0..p0 + kcb`, with
    /// the one-row kernel over up to four B panels at a time, reading A in place; `bpack` holds
    /// the panels from column `lo`. A last, partial panel goes through `tmp`.
    ///
    /// # Safety
    /// Rows `i0..i0 + mh` × columns `lo..hi` must lie inside C and be this task's alone.
    #[allow(clippy::too_many_arguments)]
    unsafe fn thin(
        &self,
        kcb: usize,
        p0: usize,
        (i0, mh): (usize, usize),
        (lo, hi): (usize, usize),
        bpack: &[E],
        acc: bool,
        tmp: &mut [E],
    ) {
        let Kernel { nr, row, .. } = self.kern;
        let panels = (hi - lo).div_ceil(nr);
        let whole = (hi - lo) / nr; // panels whose nr columns are all inside C
        let ma = self.ma;
        assert!(bpack.len() >= panels * nr * kcb && tmp.len() >= nr);
        for r in 0..mh {
            // Row i0 + r of A from step p0: kcb values, ma.cs apart (inside A: `gemm` checked
            // the bounds of all its m × k values).
            let a = self.a[ma.offset + (i0 + r) * ma.rs + p0 * ma.cs..].as_ptr();
            // SAFETY: (i0 + r, lo) is inside C (the caller's contract).
            let crow = unsafe { self.c.0.add((i0 + r) * self.rsc + lo) };
            let mut q = 0;
            while q < whole {
                let np = (whole - q).min(4);
                // SAFETY: `a` reads kcb values at stride ma.cs inside A; panels q..q + np lie
                // inside `bpack`; their np·nr columns of row i0 + r are inside C and this task's.
                unsafe { row(kcb, a, ma.cs, bpack[q * nr * kcb..].as_ptr(), nr * kcb, np, crow.add(q * nr), acc) };
                q += np;
            }
            if whole < panels {
                let w = hi - lo - whole * nr;
                // SAFETY: as above, the last panel into `tmp` (nr values).
                unsafe { row(kcb, a, ma.cs, bpack[whole * nr * kcb..].as_ptr(), nr * kcb, 1, tmp.as_mut_ptr(), false) };
                // SAFETY: the row's last w columns: inside C and this task's.
                let c = unsafe { std::slice::from_raw_parts_mut(crow.add(whole * nr), w) };
                for (x, &v) in c.iter_mut().zip(&tmp[..w]) {
                    *x = if acc { v + *x } else { v };
                }
            }
        }
    }

    /// One tile of C at `(i, j)`, `h × w` (≤ mr × nr). An edge tile is computed into `tmp` and
    /// copied.
    ///
    /// # Safety
    /// The tile must lie inside C and no other task may write it at the same time; `ap` and
    /// `bp` must hold `kcb·mr` and `kcb·nr` values.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    unsafe fn tile(
        &self,
        kcb: usize,
        ap: &[E],
        bp: &[E],
        (i, j): (usize, usize),
        (h, w): (usize, usize),
        acc: bool,
        tmp: &mut [E],
    ) {
        let Kernel { mr, nr, run, .. } = self.kern;
        debug_assert!(ap.len() >= kcb * mr && bp.len() >= kcb * nr && tmp.len() >= mr * nr);
        // SAFETY: (i, j) is inside C (the caller's contract), so the offset stays in its buffer.
        let ci = unsafe { self.c.0.add(i * self.rsc + j) };
        if h == mr && w == nr {
            // SAFETY: the panels hold what the kernel reads; the whole mr × nr tile is inside C
            // at row stride rsc and is this task's alone.
            unsafe { run(kcb, ap.as_ptr(), bp.as_ptr(), ci, self.rsc, acc) };
        } else {
            // SAFETY: as above, writing the mr × nr scratch tile instead (row stride nr).
            unsafe { run(kcb, ap.as_ptr(), bp.as_ptr(), tmp.as_mut_ptr(), nr, false) };
            for r in 0..h {
                // SAFETY: row r of the tile, w columns: inside C and this task's alone.
                let row = unsafe { std::slice::from_raw_parts_mut(ci.add(r * self.rsc), w) };
                for (x, &v) in row.iter_mut().zip(&tmp[r * nr..r * nr + w]) {
                    *x = if acc { v + *x } else { v };
                }
            }
        }
    }
}

/// Elements of slack that let a packed buffer start on a 64-byte boundary (a cache line, and an
/// AVX-512 vector), so that no vector load from a packed panel splits across two lines.
const ALIGN: usize = 16;

/// The `len` elements of `v` (which holds at least `len + ALIGN`) from its first 64-byte boundary.
fn aligned<E>(v: &mut [E], len: usize) -> &mut [E] {
    let skip = v.as_ptr().align_offset(64).min(ALIGN);
    &mut v[skip..skip + len]
}

/// An edge tile's scratch, on a cache-line boundary like the packed panels.
#[repr(align(64))]
struct Tile<E>([E; 512]);

/// The two packing buffers a thread may hold at once: B's (on the calling thread) and A's.
#[derive(Clone, Copy)]
enum Slot {
    A,
    B,
}

thread_local! {
    static SCRATCH_F32: [RefCell<Vec<f32>>; 2] = const { [RefCell::new(Vec::new()), RefCell::new(Vec::new())] };
    static SCRATCH_F64: [RefCell<Vec<f64>>; 2] = const { [RefCell::new(Vec::new()), RefCell::new(Vec::new())] };
}

/// Runs `f` on a buffer of at least `len` values kept by this thread between calls, so that a
/// product in steady state allocates nothing. (A nested use of the same slot, which the kernels
/// never make, would get a fresh buffer.)
fn with_scratch<E: Element, R>(slot: Slot, len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
    fn run<T: Element, E: Element, R>(cell: &RefCell<Vec<T>>, len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
        match cell.try_borrow_mut() {
            Ok(mut v) => {
                if v.len() < len + ALIGN {
                    v.resize(len + ALIGN, T::zero());
                }
                let v: &mut dyn std::any::Any = &mut *v;
                let v = v.downcast_mut::<Vec<E>>().expect("same element type");
                f(aligned(v, len))
            }
            Err(_) => f(aligned(&mut vec![E::zero(); len + ALIGN], len)),
        }
    }
    let i = slot as usize;
    if E::NAME == "f32" {
        SCRATCH_F32.with(|s| run::<f32, E, R>(&s[i], len, f))
    } else {
        SCRATCH_F64.with(|s| run::<f64, E, R>(&s[i], len, f))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The packed GEMM against a plain triple loop in `f64`, with each micro-kernel this CPU
    //! runs forced in turn, with blockings small enough that every loop of the driver takes
    //! several turns, on every kind of operand stride.

    use std::cell::Cell;

    use super::*;
    #[cfg(target_arch = "x86_64")]
    use crate::kernels::tests::with_level;

    thread_local! {
        /// In unit tests: `(kc, mc, nc)` to use instead of the CPU's (rounded to the tile).
        pub(crate) static FORCED_BLOCKING: Cell<Option<(usize, usize, usize)>> = const { Cell::new(None) };
        /// In unit tests: split every product across the pool, whatever its size.
        pub(crate) static FORCE_SPLIT: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `f` once per SIMD level this CPU has (0 portable, 1 AVX2 + FMA, 2 AVX-512).
    fn each_level(mut f: impl FnMut(u8)) {
        #[cfg(target_arch = "x86_64")]
        for level in 0..=2 {
            with_level(level, || f(level));
        }
        #[cfg(not(target_arch = "x86_64"))]
        f(0);
    }

    fn with_blocking<R>(b: (usize, usize, usize), f: impl FnOnce() -> R) -> R {
        FORCED_BLOCKING.with(|c| c.set(Some(b)));
        let r = f();
        FORCED_BLOCKING.with(|c| c.set(None));
        r
    }

    fn values<E: Element>(n: usize, seed: usize) -> Vec<E> {
        (0..n).map(|i| E::of((((i * 7919 + seed * 104_729) % 2003) as f64 - 1001.0) / 1000.0)).collect()
    }

    /// A and B stored with the given strides (`trans`: column-major) plus junk around them.
    fn operand<E: Element>(rows: usize, cols: usize, trans: bool, seed: usize) -> (Vec<E>, MatRef) {
        let off = 3;
        let m = if trans {
            MatRef { offset: off, rs: 1, cs: rows + 2 }
        } else {
            MatRef { offset: off, rs: cols + 1, cs: 1 }
        };
        let len = off + rows * cols.max(1) * 2 + 4 * (rows + cols) + 8;
        (values(len, seed), m)
    }

    fn at<E: Element>(v: &[E], m: MatRef, i: usize, j: usize) -> f64 {
        v[m.offset + i * m.rs + j * m.cs].to_f64().unwrap()
    }

    fn reference<E: Element>(m: usize, k: usize, n: usize, a: &[E], ma: MatRef, b: &[E], mb: MatRef) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| at(a, ma, i, p) * at(b, mb, p, j)).sum();
            }
        }
        c
    }

    fn close<E: Element>(got: &[E], want: &[f64], k: usize, what: &str) {
        let eps = if E::NAME == "f32" { 1e-6 } else { 1e-14 };
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let g = g.to_f64().unwrap();
            assert!((g - w).abs() <= eps * (k as f64 + 1.0) * (1.0 + w.abs()), "{what}: element {i}: {g} vs {w}");
        }
    }

    fn sizes_and_strides<E: Element>() {
        let blockings = [(8, 8, 16), (16, 24, 64), (5, 13, 33)];
        each_level(|level| {
            for &bl in &blockings {
                with_blocking(bl, || {
                    for (m, k, n) in
                        [(1, 1, 1), (3, 5, 7), (13, 17, 35), (17, 9, 16), (25, 40, 70), (12, 0, 5), (40, 33, 1)]
                    {
                        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                            let (a, ma) = operand::<E>(m, k, ta, 1);
                            let (b, mb) = operand::<E>(k, n, tb, 2);
                            let want = reference(m, k, n, &a, ma, &b, mb);
                            let mut c = vec![E::nan(); m * n];
                            gemm(Par::Seq, m, k, n, &a, ma, BOperand::Strided(&b, mb), &mut c, n, false, None);
                            let what = format!("level {level} blocking {bl:?} {m}x{k}x{n} trans {ta}/{tb}");
                            close(&c, &want, k, &what);
                            // Packed once: the same bits.
                            let packed = PackedB::new(k, n, &b, mb);
                            let mut c2 = vec![E::nan(); m * n];
                            gemm(Par::Seq, m, k, n, &a, ma, BOperand::Packed(&packed), &mut c2, n, false, None);
                            assert!(c.iter().zip(&c2).all(|(x, y)| x.to_bits_eq(y)), "{what}: packed once differs");
                        }
                    }
                })
            }
        });
    }

    trait BitsEq {
        fn to_bits_eq(&self, other: &Self) -> bool;
    }
    impl<E: Element> BitsEq for E {
        fn to_bits_eq(&self, other: &Self) -> bool {
            self.to_f64().unwrap().to_bits() == other.to_f64().unwrap().to_bits()
        }
    }

    #[test]
    fn every_kernel_every_size_and_stride_f32() {
        sizes_and_strides::<f32>();
    }

    #[test]
    fn every_kernel_every_size_and_stride_f64() {
        sizes_and_strides::<f64>();
    }

    /// A product with fewer rows than a tile (the one-row kernel, up to four panels at a time,
    /// a partial last panel) gives each row the bits it gets inside a tall product.
    #[test]
    fn thin_products_equal_rows_of_tall_ones() {
        each_level(|level| {
            with_blocking((8, 48, 1024), || {
                let (m, k) = (30, 21);
                let n = plan::<f32>().0.nr * 5 + 3; // four panels, one, and a partial one
                let (a, ma) = operand::<f32>(m, k, false, 12);
                let (b, mb) = operand::<f32>(k, n, true, 13);
                let mut tall = vec![0.0f32; m * n];
                gemm(Par::Seq, m, k, n, &a, ma, BOperand::Strided(&b, mb), &mut tall, n, false, None);
                for rows in [1, 2, 3] {
                    for i0 in [0, 7, m - rows] {
                        let sub = MatRef { offset: ma.offset + i0 * ma.rs, ..ma };
                        let mut thin = vec![f32::NAN; rows * n];
                        gemm(Par::Seq, rows, k, n, &a, sub, BOperand::Strided(&b, mb), &mut thin, n, false, None);
                        let want = &tall[i0 * n..(i0 + rows) * n];
                        assert!(
                            thin.iter().zip(want).all(|(x, y)| x.to_bits() == y.to_bits()),
                            "level {level}: rows {i0}..{}",
                            i0 + rows
                        );
                    }
                }
            });
        });
    }

    /// A broadcast operand (stride 0) is read in place.
    #[test]
    fn zero_strides() {
        each_level(|level| {
            let (m, k, n) = (9, 20, 37);
            let a = values::<f64>(k, 3);
            let ma = MatRef { offset: 0, rs: 0, cs: 1 }; // every row the same
            let b = values::<f64>(n, 4);
            let mb = MatRef { offset: 0, rs: 0, cs: 1 }; // every row the same
            let mut c = vec![0.0; m * n];
            gemm(Par::Seq, m, k, n, &a, ma, BOperand::Strided(&b, mb), &mut c, n, false, None);
            close(&c, &reference(m, k, n, &a, ma, &b, mb), k, &format!("level {level}"));
        });
    }

    /// Accumulating into C, a row stride wider than C, and an epilogue give what the unfused
    /// operations give, bit for bit.
    #[test]
    fn accumulate_row_stride_and_epilogue_equal_the_unfused_ops() {
        each_level(|level| {
            with_blocking((8, 16, 32), || {
                let (m, k, n, rsc) = (19, 30, 45, 50);
                let (a, ma) = operand::<f32>(m, k, false, 5);
                let (b, mb) = operand::<f32>(k, n, true, 6);
                let bias = values::<f32>(n, 7);
                let c0 = values::<f32>(m * rsc, 8);
                // Unfused: the product alone, then C + product, then + bias, then relu.
                let unfused = || {
                    let mut prod = vec![0.0f32; m * n];
                    gemm(Par::Seq, m, k, n, &a, ma, BOperand::Strided(&b, mb), &mut prod, n, false, None);
                    let mut want = c0.clone();
                    for i in 0..m {
                        for j in 0..n {
                            let x = &mut want[i * rsc + j];
                            *x = (prod[i * n + j] + *x + bias[j]).max(0.0);
                        }
                    }
                    want
                };
                let epi = |_: usize, j0: usize, row: &mut [f32]| {
                    for (x, &b) in row.iter_mut().zip(&bias[j0..]) {
                        *x = (*x + b).max(0.0);
                    }
                };
                let fused = || {
                    let mut c = c0.clone();
                    gemm(Par::Seq, m, k, n, &a, ma, BOperand::Strided(&b, mb), &mut c, rsc, true, Some(&epi));
                    c
                };
                // Several blocks of steps: the product's blocks are added to C one by one, so
                // the sum is rounded differently; compare within rounding, and the gaps exactly.
                let (c, want) = (fused(), unfused());
                for i in 0..m {
                    for j in 0..rsc {
                        let (g, w) = (c[i * rsc + j], want[i * rsc + j]);
                        if j >= n {
                            assert_eq!(g.to_bits(), c0[i * rsc + j].to_bits(), "level {level}: gap written");
                        } else {
                            assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "level {level} ({i},{j}): {g} vs {w}");
                        }
                    }
                }
                // One block of steps: fused equals unfused bit for bit.
                with_blocking((64, 16, 32), || {
                    let (c, want) = (fused(), unfused());
                    assert!(c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()), "level {level}");
                });
            });
        });
    }

    /// The split across threads (columns or rows) gives the same bits as one thread.
    #[test]
    fn threads_do_not_change_the_bits() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        // Rows (B too narrow for three column tasks), columns, columns (evener), rows (evener:
        // B packed in parallel over the panels of each block), and rows with B packed in
        // parallel over its many blocks.
        for (m, k, n) in
            [(300, 200, 40), (40, 200, 700), (130, 300, 260), (512, 600, 144), (512, 100, 144), (512, 2000, 40)]
        {
            let (a, ma) = operand::<f32>(m, k, false, 9);
            let (b, mb) = operand::<f32>(k, n, false, 10);
            let mut one = vec![0.0f32; m * n];
            gemm(Par::Seq, m, k, n, &a, ma, BOperand::Strided(&b, mb), &mut one, n, false, None);
            let mut three = vec![0.0f32; m * n];
            pool.install(|| {
                FORCE_SPLIT.with(|f| f.set(true));
                let par = Par::Rayon { threads: 3 };
                gemm(par, m, k, n, &a, ma, BOperand::Strided(&b, mb), &mut three, n, false, None);
                FORCE_SPLIT.with(|f| f.set(false));
            });
            assert!(one.iter().zip(&three).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}x{k}x{n}");
        }
    }
}
