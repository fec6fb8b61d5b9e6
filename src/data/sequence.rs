//! `pad_sequences`: Keras's padding and truncation of id sequences to one length.

use crate::Tensor;

/// Where [`pad_sequences`] adds padding to a short sequence (Keras's `padding`).
///
/// ```
/// use tensorgrad::data::{Padding, Truncating, pad_sequences_ids};
/// let seqs = [vec![1, 2]];
/// assert_eq!(pad_sequences_ids(&seqs, Some(4), Padding::Pre, Truncating::Pre, 0), [vec![0, 0, 1, 2]]);
/// assert_eq!(pad_sequences_ids(&seqs, Some(4), Padding::Post, Truncating::Pre, 0), [vec![1, 2, 0, 0]]);
/// assert_eq!(Padding::default(), Padding::Pre); // Keras's default
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Before the sequence: `[0, 0, 1, 2]` (Keras's default, `'pre'`).
    #[default]
    Pre,
    /// After the sequence: `[1, 2, 0, 0]` (`'post'`).
    Post,
}

/// Which end [`pad_sequences`] cuts from a long sequence (Keras's `truncating`).
///
/// ```
/// use tensorgrad::data::{Padding, Truncating, pad_sequences_ids};
/// let seqs = [vec![1, 2, 3, 4, 5]];
/// assert_eq!(pad_sequences_ids(&seqs, Some(3), Padding::Pre, Truncating::Pre, 0), [vec![3, 4, 5]]);
/// assert_eq!(pad_sequences_ids(&seqs, Some(3), Padding::Pre, Truncating::Post, 0), [vec![1, 2, 3]]);
/// assert_eq!(Truncating::default(), Truncating::Pre); // Keras's default
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Truncating {
    /// Drop the first values, keep the last `maxlen` (Keras's default, `'pre'`).
    #[default]
    Pre,
    /// Drop the last values, keep the first `maxlen` (`'post'`).
    Post,
}

/// The length every sequence is brought to: `maxlen`, or the longest sequence's length.
fn target_len<S: AsRef<[usize]>>(sequences: &[S], maxlen: Option<usize>) -> usize {
    maxlen.unwrap_or_else(|| sequences.iter().map(|s| s.as_ref().len()).max().unwrap_or(0))
}

/// Writes `seq`, truncated and padded to `row.len()`, into `row` (already filled with padding).
fn fill_row<T: Copy>(row: &mut [T], seq: &[usize], padding: Padding, truncating: Truncating, map: impl Fn(usize) -> T) {
    let len = row.len();
    let kept = match truncating {
        Truncating::Pre => &seq[seq.len().saturating_sub(len)..],
        Truncating::Post => &seq[..seq.len().min(len)],
    };
    let start = match padding {
        Padding::Pre => len - kept.len(),
        Padding::Post => 0,
    };
    for (dst, &id) in row[start..start + kept.len()].iter_mut().zip(kept) {
        *dst = map(id);
    }
}

/// Pads and truncates sequences of ids to one length, as Keras's `pad_sequences`, and returns
/// them as a `[sequences.len(), maxlen]` tensor of ids — the input of an
/// [`Embedding`](crate::nn::Embedding).
///
/// - `maxlen`: the length of every row; `None` means the length of the longest sequence.
/// - `padding`: a shorter sequence gets `value`s before it ([`Padding::Pre`], Keras's default)
///   or after it ([`Padding::Post`]).
/// - `truncating`: a longer sequence loses its first values ([`Truncating::Pre`], Keras's
///   default) or its last ([`Truncating::Post`]).
/// - `value`: the padding value, usually `0.0` (the id a [`Tokenizer`](super::Tokenizer) never
///   assigns). An empty sequence becomes a row of `value`.
///
/// With no sequences the result has shape `[0, maxlen]` (`[0, 0]` if `maxlen` is `None`);
/// `maxlen = Some(0)` gives empty rows. (Keras raises an error in both cases.)
///
/// # Panics
/// If an id is above 2²⁴ = 16 777 216, beyond which `f32` cannot hold every whole number; use
/// [`pad_sequences_ids`] for such ids.
///
/// ```
/// use tensorgrad::data::{Padding, Truncating, pad_sequences};
///
/// let seqs = vec![vec![1], vec![2, 3], vec![4, 5, 6]];
/// let x = pad_sequences(&seqs, None, Padding::Pre, Truncating::Pre, 0.0);
/// assert_eq!(x.shape(), &[3, 3]);
/// assert_eq!(x.to_vec(), [0.0, 0.0, 1.0, 0.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
///
/// let x = pad_sequences(&seqs, Some(2), Padding::Post, Truncating::Post, -1.0);
/// assert_eq!(x.to_vec(), [1.0, -1.0, 2.0, 3.0, 4.0, 5.0]);
/// ```
#[track_caller]
pub fn pad_sequences<S: AsRef<[usize]>>(
    sequences: &[S],
    maxlen: Option<usize>,
    padding: Padding,
    truncating: Truncating,
    value: f32,
) -> Tensor<f32> {
    const EXACT: usize = 1 << 24;
    let len = target_len(sequences, maxlen);
    let mut data = vec![value; sequences.len() * len];
    if len > 0 {
        for (row, seq) in data.chunks_exact_mut(len).zip(sequences) {
            let seq = seq.as_ref();
            if let Some(&big) = seq.iter().find(|&&id| id > EXACT) {
                panic!("pad_sequences: id {big} is above 2^24 and cannot be stored exactly in an f32 tensor");
            }
            fill_row(row, seq, padding, truncating, |id| id as f32);
        }
    }
    Tensor::from_vec(data, &[sequences.len(), len])
}

/// Like [`pad_sequences`], but returns the rows as vectors of ids, padded with `value`.
///
/// ```
/// use tensorgrad::data::{Padding, Truncating, pad_sequences_ids};
///
/// let seqs = [vec![1, 2, 3, 4], vec![5]];
/// let rows = pad_sequences_ids(&seqs, Some(3), Padding::Pre, Truncating::Pre, 0);
/// assert_eq!(rows, [vec![2, 3, 4], vec![0, 0, 5]]);
/// ```
pub fn pad_sequences_ids<S: AsRef<[usize]>>(
    sequences: &[S],
    maxlen: Option<usize>,
    padding: Padding,
    truncating: Truncating,
    value: usize,
) -> Vec<Vec<usize>> {
    let len = target_len(sequences, maxlen);
    sequences
        .iter()
        .map(|seq| {
            let mut row = vec![value; len];
            fill_row(&mut row, seq.as_ref(), padding, truncating, |id| id);
            row
        })
        .collect()
}
