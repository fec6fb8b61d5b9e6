//! Packing: copying a block of an operand, read with any strides, into the panel order the
//! micro-kernels stream through. A block of A (`rows × kc`) becomes panels of `mr` rows, each
//! stored step by step (`mr` values of one column, then the next column); a block of B
//! (`kc × cols`) becomes panels of `nr` columns, each stored row by row. Panels past the edge
//! of the matrix are padded with zeros, so the kernels only ever see whole tiles.
//!
//! The loop order follows the operand's smaller stride, so a row-major, a transposed (column-
//! major) or a broadcast (stride 0) operand is read in memory order and never copied first.

use std::ops::Range;

use crate::kernels::matmul::MatRef;
use crate::tensor::element::Element;

/// One whole panel of a row-major A (or of a column-major B): `MR` rows of `kc` values from
/// `base`, `rs` apart, interleaved step by step.
fn pack_rows<E: Element, const MR: usize>(out: &mut [E], a: &[E], base: usize, rs: usize, kc: usize) {
    let rows: [&[E]; MR] = std::array::from_fn(|i| &a[base + i * rs..base + i * rs + kc]);
    for (p, o) in out[..kc * MR].chunks_exact_mut(MR).enumerate() {
        for i in 0..MR {
            // SAFETY: every row slice holds `kc` values and `p < kc`; without the check the
            // loop is one load and one store per value.
            o[i] = unsafe { *rows[i].get_unchecked(p) };
        }
    }
}

/// One whole panel of a column-major A: `kc` columns of `MR` contiguous values from `base`,
/// `cs` apart, each copied as one block.
fn pack_columns<E: Element, const MR: usize>(out: &mut [E], a: &[E], base: usize, cs: usize, kc: usize) {
    for (p, o) in out[..kc * MR].chunks_exact_mut(MR).enumerate() {
        let start = base + p * cs;
        let column: &[E; MR] = a[start..start + MR].try_into().expect("a panel column holds MR values");
        let o: &mut [E; MR] = o.try_into().expect("a packed step holds MR values");
        *o = *column;
    }
}

/// Packs rows `rows` and columns `cols` (the `k` range) of A into `dst`: `⌈rows/mr⌉` panels of
/// `mr × cols.len()` values.
pub(crate) fn pack_a<E: Element>(
    dst: &mut [E],
    a: &[E],
    ma: MatRef,
    rows: Range<usize>,
    cols: Range<usize>,
    mr: usize,
) {
    let kc = cols.len();
    for (panel, out) in dst[..rows.len().div_ceil(mr) * mr * kc].chunks_exact_mut(mr * kc).enumerate() {
        let i0 = rows.start + panel * mr;
        let h = mr.min(rows.end - i0);
        if ma.cs == 1 && ma.rs > 1 && h == mr && matches!(mr, 4 | 6 | 12) {
            // Row-major A, a whole panel: step by step one value from each row (contiguous
            // writes; the reads walk the `mr` rows side by side), with `mr` known at compile time.
            let base = ma.offset + i0 * ma.rs + cols.start;
            match mr {
                12 => pack_rows::<E, 12>(out, a, base, ma.rs, kc),
                6 => pack_rows::<E, 6>(out, a, base, ma.rs, kc),
                _ => pack_rows::<E, 4>(out, a, base, ma.rs, kc),
            }
        } else if ma.cs <= ma.rs {
            // Along the rows of A: each row's `kc` values are (nearly) contiguous.
            for i in 0..h {
                let base = ma.offset + (i0 + i) * ma.rs + cols.start * ma.cs;
                if ma.cs == 1 {
                    for (p, &v) in a[base..base + kc].iter().enumerate() {
                        out[p * mr + i] = v;
                    }
                } else {
                    for p in 0..kc {
                        out[p * mr + i] = a[base + p * ma.cs];
                    }
                }
            }
        } else if ma.rs == 1 && h == mr && matches!(mr, 4 | 6 | 12) {
            // Column-major A (a transposed operand), a whole panel: `mr` contiguous values per
            // step, copied as a fixed-size block (a `copy_from_slice` of a dozen values is a
            // library call each, which was 8 % of an LSTM training step).
            let base = ma.offset + i0 + cols.start * ma.cs;
            match mr {
                12 => pack_columns::<E, 12>(out, a, base, ma.cs, kc),
                6 => pack_columns::<E, 6>(out, a, base, ma.cs, kc),
                _ => pack_columns::<E, 4>(out, a, base, ma.cs, kc),
            }
        } else {
            // Down the columns of A (a transposed operand): `h` values per step.
            for p in 0..kc {
                let base = ma.offset + i0 * ma.rs + (cols.start + p) * ma.cs;
                let o = &mut out[p * mr..p * mr + h];
                if ma.rs == 1 {
                    o.copy_from_slice(&a[base..base + h]);
                } else {
                    for (i, x) in o.iter_mut().enumerate() {
                        *x = a[base + i * ma.rs];
                    }
                }
            }
        }
        zero_pad(out, mr, h);
    }
}

/// Packs rows `rows` (the `k` range) and columns `cols` of B into `dst`: `⌈cols/nr⌉` panels of
/// `rows.len() × nr` values. A B with unit column stride is read row by row across all the
/// panels (each row once, in memory order); otherwise panel by panel.
pub(crate) fn pack_b<E: Element>(
    dst: &mut [E],
    b: &[E],
    mb: MatRef,
    rows: Range<usize>,
    cols: Range<usize>,
    nr: usize,
) {
    let kc = rows.len();
    let panels = cols.len().div_ceil(nr);
    let dst = &mut dst[..panels * nr * kc];
    if mb.cs == 1 && mb.rs > 1 {
        for p in 0..kc {
            let src = &b[mb.offset + (rows.start + p) * mb.rs + cols.start..][..cols.len()];
            for (panel, chunk) in src.chunks(nr).enumerate() {
                let o = &mut dst[panel * nr * kc + p * nr..][..nr];
                // A whole panel's row is a fixed-size copy (moves in registers): with
                // `copy_from_slice` each row of 32 values was a `memmove` call, a fifth of a
                // 3×3 convolution's forward pass.
                match (chunk.len(), nr) {
                    (32, 32) => copy_fixed::<E, 32>(o, chunk),
                    (16, 16) => copy_fixed::<E, 16>(o, chunk),
                    (8, 8) => copy_fixed::<E, 8>(o, chunk),
                    _ => {
                        o[..chunk.len()].copy_from_slice(chunk);
                        o[chunk.len()..].fill(E::zero());
                    }
                }
            }
        }
        return;
    }
    for (panel, out) in dst.chunks_exact_mut(nr * kc).enumerate() {
        pack_b_panel(out, b, mb, rows.clone(), cols.start + panel * nr, cols.end, nr);
    }
}

/// `dst[..N] = src[..N]` as one fixed-size move.
#[inline(always)]
fn copy_fixed<E: Element, const N: usize>(dst: &mut [E], src: &[E]) {
    let d: &mut [E; N] = (&mut dst[..N]).try_into().expect("N values");
    *d = src[..N].try_into().expect("N values");
}

/// One panel of B: columns `j0..min(j0 + nr, end)`, rows `rows`.
fn pack_b_panel<E: Element>(out: &mut [E], b: &[E], mb: MatRef, rows: Range<usize>, j0: usize, end: usize, nr: usize) {
    let kc = rows.len();
    let w = nr.min(end - j0);
    if mb.cs <= mb.rs {
        // Along the rows of B: `w` values per step.
        for p in 0..kc {
            let base = mb.offset + (rows.start + p) * mb.rs + j0 * mb.cs;
            let o = &mut out[p * nr..p * nr + w];
            if mb.cs == 1 {
                o.copy_from_slice(&b[base..base + w]);
            } else {
                for (j, x) in o.iter_mut().enumerate() {
                    *x = b[base + j * mb.cs];
                }
            }
        }
    } else if mb.rs == 1 && w == nr && matches!(nr, 4 | 8 | 16 | 32) {
        // A transposed B (a weight `W` used as `Wᵀ`), a whole panel: its columns are contiguous,
        // so this is A's row-major packing with columns for rows.
        let base = mb.offset + rows.start + j0 * mb.cs;
        match nr {
            32 => pack_rows::<E, 32>(out, b, base, mb.cs, kc),
            16 => pack_rows::<E, 16>(out, b, base, mb.cs, kc),
            8 => pack_rows::<E, 8>(out, b, base, mb.cs, kc),
            _ => pack_rows::<E, 4>(out, b, base, mb.cs, kc),
        }
    } else {
        // Down the columns of B (a transposed operand, e.g. a weight `W` used as `Wᵀ`).
        for j in 0..w {
            let base = mb.offset + rows.start * mb.rs + (j0 + j) * mb.cs;
            if mb.rs == 1 {
                for (p, &v) in b[base..base + kc].iter().enumerate() {
                    out[p * nr + j] = v;
                }
            } else {
                for p in 0..kc {
                    out[p * nr + j] = b[base + p * mb.rs];
                }
            }
        }
    }
    zero_pad(out, nr, w);
}

/// Zeros the values past the first `used` of every step of a packed panel `width` wide, so a
/// panel at the edge of the matrix adds nothing for the rows or columns it does not have.
fn zero_pad<E: Element>(panel: &mut [E], width: usize, used: usize) {
    if used < width {
        for step in panel.chunks_exact_mut(width) {
            step[used..].fill(E::zero());
        }
    }
}
