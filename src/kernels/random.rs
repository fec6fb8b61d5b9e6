//! Counter-based random masks: each element's draw is a hash of `(stream, index)` (SplitMix64's
//! finaliser), so a mask does not depend on how the work is split across threads, the fill
//! vectorises and runs in parallel, and a fused kernel can draw the same mask again in its
//! backward pass instead of storing it. A generator such as ChaCha, drawn element by element,
//! was 15 % of a Transformer encoder's training step on one thread (and all of it serial).

use rayon::prelude::*;

use super::{PAR_CHUNK, Par};
use crate::tensor::element::Element;
use crate::tensor::memory;

/// Whether draw number `index` of stream `seed` falls below `threshold` = `p · 2⁶⁴` (see
/// [`drop_threshold`]): true with probability `p`.
#[inline]
pub(crate) fn dropped(seed: u64, index: u64, threshold: u64) -> bool {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) < threshold
}

/// The [`dropped`] threshold of drop probability `p` in `[0, 1)`: `p · 2⁶⁴`, rounded down.
pub(crate) fn drop_threshold(p: f64) -> u64 {
    (p * 18_446_744_073_709_551_616.0) as u64
}

/// An inverted-dropout mask of `n` elements from `stream`: element `i` is 0 when draw `i` is
/// dropped (probability `p`), else `1 / (1 − p)`.
pub(crate) fn dropout_mask<E: Element>(par: Par, n: usize, stream: u64, p: f64) -> Vec<E> {
    let (keep, threshold) = (E::of(1.0 / (1.0 - p)), drop_threshold(p));
    let mut out: Vec<E> = memory::take(n);
    let fill = |(c, chunk): (usize, &mut [E])| {
        let base = (c * PAR_CHUNK) as u64;
        for (i, x) in chunk.iter_mut().enumerate() {
            *x = if dropped(stream, base + i as u64, threshold) { E::zero() } else { keep };
        }
    };
    if par.for_elems(n).is_parallel() {
        out.par_chunks_mut(PAR_CHUNK).enumerate().for_each(fill);
    } else {
        out.chunks_mut(PAR_CHUNK).enumerate().for_each(fill);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_drop_about_p_and_do_not_depend_on_the_split() {
        let n = 100_000;
        let a: Vec<f32> = dropout_mask(Par::Seq, n, 7, 0.3);
        let b: Vec<f32> = dropout_mask(Par::Rayon { threads: 2 }, n, 7, 0.3);
        assert_eq!(a, b);
        let dropped = a.iter().filter(|&&x| x == 0.0).count() as f64 / n as f64;
        assert!((dropped - 0.3).abs() < 0.01, "{dropped}");
        assert!(a.iter().all(|&x| x == 0.0 || x == 1.0 / 0.7));
        let c: Vec<f32> = dropout_mask(Par::Seq, n, 8, 0.3);
        assert_ne!(a, c);
        assert!(dropout_mask::<f64>(Par::Seq, 1000, 1, 0.0).iter().all(|&x| x == 1.0));
    }
}
