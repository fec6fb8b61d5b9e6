//! Scaled dot-product attention: a module with several inputs.

use super::module::{Module, Param};
use crate::shape::try_broadcast_shapes;
use crate::{AttnMask, Element, SdpaOptions, Tensor};

/// Scaled dot-product attention, `softmax(q·kᵀ·scale) · v`, as PyTorch's
/// `torch.nn.functional.scaled_dot_product_attention` (without its dropout), with no
/// parameters: a module around the fused [`Tensor::scaled_dot_product_attention`]. It takes
/// several inputs through [`Module::forward_many`]:
///
/// - `[query, key, value]`, or
/// - `[query, key, value, mask]`: `mask` is 1 where a query may attend to a key and 0 where
///   it may not (PyTorch's boolean `attn_mask`, Keras's `attention_mask`). Blocked keys get no
///   weight and no gradient; a query with every key blocked gets zeros, as in PyTorch 2.15.
///
/// [`Module::forward`] is self-attention: `forward(x)` is `forward_many(&[x, x, x])`.
///
/// # Shapes
/// - query `[…, Lq, d]`, key `[…, Lk, d]`, value `[…, Lk, dv]`; the leading (batch, head)
///   dims broadcast as in [`Tensor::matmul`]
/// - mask: broadcastable to the scores `[…, Lq, Lk]` (`[Lq, Lk]` for a causal mask,
///   `[B, 1, Lk]` for key padding)
/// - output `[…, Lq, dv]`
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Module, ScaledDotProductAttention};
/// let attn = ScaledDotProductAttention::new();
/// let q = Tensor::<f32>::ones(&[2, 3, 4]); // batch 2, 3 queries of size 4
/// let k = Tensor::ones(&[2, 5, 4]); // 5 keys
/// let v = Tensor::from_vec((0..2 * 5 * 6).map(|i| i as f32).collect(), &[2, 5, 6]);
/// assert_eq!(attn.forward_many(&[&q, &k, &v]).shape(), &[2, 3, 6]);
/// // Only the first key may be attended to: every query returns its value.
/// let mask = Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.0, 0.0], &[1, 5]);
/// let out = attn.forward_many(&[&q, &k, &v, &mask]);
/// assert_eq!(out.narrow(1, 0, 1).to_vec(), v.narrow(1, 0, 1).to_vec());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScaledDotProductAttention {
    scale: Option<f64>,
}

impl ScaledDotProductAttention {
    /// Attention scaled by `1/√d`, `d` the size of a query.
    pub fn new() -> Self {
        ScaledDotProductAttention { scale: None }
    }

    /// Attention with the scores multiplied by `scale` (PyTorch's `scale=` argument).
    ///
    /// # Panics
    /// If `scale` is not finite.
    #[track_caller]
    pub fn with_scale(scale: f64) -> Self {
        if !scale.is_finite() {
            panic!("ScaledDotProductAttention: scale must be finite, got {scale:?}");
        }
        ScaledDotProductAttention { scale: Some(scale) }
    }

    /// The attention of `query` over `key`/`value`, with an optional 0/1 mask (see the type's
    /// documentation). What [`Module::forward_many`] calls.
    ///
    /// # Panics
    /// If a tensor has fewer than 2 dims, the query and key sizes differ, key and value have
    /// different numbers of steps, the batch dims do not broadcast, or the mask does not
    /// broadcast to the scores.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::nn::ScaledDotProductAttention;
    ///
    /// // A causal mask over 3 steps: step t sees steps 0..=t.
    /// let causal = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0], &[3, 3]);
    /// let x = Tensor::<f32>::zeros(&[1, 3, 2]); // equal scores: each step averages what it sees
    /// let v = Tensor::from_vec(vec![3.0f32, 6.0, 9.0], &[1, 3, 1]);
    /// let out = ScaledDotProductAttention::new().attend(&x, &x, &v, Some(&causal));
    /// let means = out.to_vec();
    /// assert!([3.0, 4.5, 6.0].iter().zip(&means).all(|(e, m)| (e - m).abs() < 1e-5));
    /// ```
    #[track_caller]
    pub fn attend<E: Element>(
        &self,
        query: &Tensor<E>,
        key: &Tensor<E>,
        value: &Tensor<E>,
        mask: Option<&Tensor<E>>,
    ) -> Tensor<E> {
        const OP: &str = "ScaledDotProductAttention";
        let (q, k, v) = (query.shape(), key.shape(), value.shape());
        if q.len() < 2 || k.len() < 2 || v.len() < 2 {
            panic!("{OP}: query, key and value need at least 2 dims [steps, size], got {q:?}, {k:?} and {v:?}");
        }
        let (d, dk) = (q[q.len() - 1], k[k.len() - 1]);
        if d != dk {
            panic!("{OP}: query size {d} ≠ key size {dk} (query {q:?}, key {k:?})");
        }
        let (lk, lv) = (k[k.len() - 2], v[v.len() - 2]);
        if lk != lv {
            panic!("{OP}: key has {lk} steps but value has {lv} (key {k:?}, value {v:?})");
        }
        if let Some(m) = mask {
            let lead = |s: &[usize]| s[..s.len() - 2].to_vec();
            let mut scores = try_broadcast_shapes(&lead(q), &lead(k)).unwrap_or_else(|| lead(q));
            scores.extend([q[q.len() - 2], lk]);
            if try_broadcast_shapes(m.shape(), &scores).as_deref() != Some(&scores[..]) {
                panic!("{OP}: mask of shape {:?} does not broadcast to the scores {scores:?}", m.shape());
            }
        }
        let options = SdpaOptions { attn_mask: mask.map(AttnMask::Bool), scale: self.scale, ..Default::default() };
        query.scaled_dot_product_attention(key, value, options)
    }
}

impl<E: Element> Module<E> for ScaledDotProductAttention {
    /// Self-attention: `x` is the query, the key and the value.
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.attend(x, x, x, None)
    }

    /// `[query, key, value]` or `[query, key, value, mask]`.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        match inputs {
            [q, k, v] => self.attend(q, k, v, None),
            [q, k, v, m] => self.attend(q, k, v, Some(m)),
            _ => panic!(
                "ScaledDotProductAttention: takes 3 or 4 inputs (query, key, value[, mask]), got {}",
                inputs.len()
            ),
        }
    }

    fn describe(&self) -> String {
        match self.scale {
            Some(scale) => format!("ScaledDotProductAttention(scale={scale})"),
            None => "ScaledDotProductAttention".into(),
        }
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}
}
