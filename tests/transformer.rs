//! `MultiheadAttention`, the Transformer encoder/decoder layers and stacks, and the sinusoidal
//! positional encoding: values and gradients (inputs and every parameter) against PyTorch
//! (float64, `tests/fixtures/transformer/reference.txt`, made by `make_reference.py` in that
//! folder) with PyTorch's parameter names loaded 1:1; gradients against central differences
//! (with a transposed input); dropout reproducible under a `StepKey` and absent in eval mode;
//! PyTorch's initialisation; and the messages of bad calls.

use tensorgrad::nn::{
    DecoderArgs, EncoderArgs, LayerNorm, MhaArgs, MhaMask, Module, MultiheadAttention, MultiheadAttentionConfig,
    SinusoidalPositionalEncoding, StepKey, TransformerActivation, TransformerDecoder, TransformerDecoderLayer,
    TransformerEncoder, TransformerEncoderLayer, TransformerLayerConfig,
};
use tensorgrad::{Tensor, gradcheck};

type T = Tensor<f64>;

const FIXTURE: &str = include_str!("fixtures/transformer/reference.txt");

mod common;
use common::close;

/// A named tensor of the reference file: `name [shape] [values]`.
fn reference(name: &str) -> T {
    common::named_tensor(FIXTURE, name)
}

fn linspace(n: usize, a: f64, b: f64, shape: &[usize]) -> T {
    Tensor::from_vec((0..n).map(|i| a + (b - a) * i as f64 / (n - 1) as f64).collect(), shape)
}

/// Loads PyTorch's state dict of case `case` into `m` by name, checking that the names and their
/// order are PyTorch's.
fn load(case: &str, m: &dyn Module<f64>) {
    let prefix = format!("{case}.");
    let torch_names: Vec<&str> = FIXTURE
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|l| l.split_once(' ').unwrap().0)
        .filter(|n| !n.ends_with(".grad"))
        .collect();
    let ours: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(ours, torch_names, "{case}: parameter names and order");
    m.visit_params("", &mut |name, p| p.bind(reference(&format!("{case}.{name}"))));
}

/// Runs case `case`: loads the parameters, feeds the named inputs (as leaves needing gradients),
/// and compares the output, the weights if any, and the gradients of
/// `sum(out · linspace(−1, 1.3)) + sum(weights · linspace(0.5, −0.7))` with respect to the
/// inputs and every parameter.
fn check_case(case: &str, m: &dyn Module<f64>, inputs: &[&str], run: impl Fn(&[T]) -> (T, Option<T>)) {
    load(case, m);
    let xs: Vec<T> = inputs.iter().map(|n| reference(&format!("{case}_{n}")).requires_grad()).collect();
    let (out, weights) = run(&xs);
    close(&out, &reference(&format!("{case}_out")), &format!("{case} out"));
    let mut loss = (&out * &linspace(out.numel(), -1.0, 1.3, out.shape())).sum();
    if let Some(w) = &weights {
        close(w, &reference(&format!("{case}_weights")), &format!("{case} weights"));
        loss = loss + (w * &linspace(w.numel(), 0.5, -0.7, w.shape())).sum();
    }
    let grads = loss.backward();
    for (x, n) in xs.iter().zip(inputs) {
        close(grads.get(x).unwrap(), &reference(&format!("{case}_d{n}")), &format!("{case} d{n}"));
    }
    for (name, p) in m.named_parameters() {
        let g = grads.get(&p).unwrap_or_else(|| panic!("{case}: no gradient for {name}"));
        close(g, &reference(&format!("{case}.{name}.grad")), &format!("{case} {name}.grad"));
    }
}

/// A fixture mask, constant.
fn mask(case: &str, name: &str) -> T {
    reference(&format!("{case}_{name}"))
}

/// The causal mask of `n` steps: 1 above the diagonal (blocked), as a boolean mask.
fn causal_blocked(n: usize) -> T {
    Tensor::ones(&[n, n]).triu(1)
}

/// The same as an additive mask (`−∞` above the diagonal), as PyTorch's
/// `generate_square_subsequent_mask`.
fn causal_additive(n: usize) -> T {
    Tensor::zeros(&[n, n]).masked_fill(&causal_blocked(n), f64::NEG_INFINITY)
}

fn mha(config: MultiheadAttentionConfig) -> MultiheadAttention<f64> {
    MultiheadAttention::new(config, 0)
}

fn layer_config(d_model: usize, ff: usize) -> TransformerLayerConfig {
    TransformerLayerConfig { dim_feedforward: ff, dropout: 0.0, ..TransformerLayerConfig::new(d_model, 2) }
}

#[test]
fn self_attention_with_key_padding_and_averaged_weights_matches_pytorch() {
    let m = mha(MultiheadAttentionConfig::new(8, 2));
    let kpm = mask("mha_self", "key_padding_mask");
    check_case("mha_self", &m, &["x"], |v| {
        let args = MhaArgs { key_padding_mask: Some(MhaMask::Blocked(&kpm)), need_weights: true, ..Default::default() };
        m.forward_with(&v[0], &v[0], &v[0], args)
    });
}

#[test]
fn kdim_vdim_without_bias_with_a_3d_float_mask_and_per_head_weights_matches_pytorch() {
    let config = MultiheadAttentionConfig {
        bias: false,
        kdim: Some(5),
        vdim: Some(3),
        batch_first: true,
        ..MultiheadAttentionConfig::new(8, 2)
    };
    let m = mha(config);
    let kpm = mask("mha_kv", "key_padding_mask");
    // A float attn_mask with a boolean key padding mask, as the fixture mixes them; the float
    // mask gets its gradient.
    check_case("mha_kv", &m, &["q", "k", "v", "attn_mask"], |v| {
        let args = MhaArgs {
            key_padding_mask: Some(MhaMask::Blocked(&kpm)),
            attn_mask: Some(MhaMask::Additive(&v[3])),
            average_attn_weights: false,
            ..Default::default()
        };
        m.forward_with(&v[0], &v[1], &v[2], args)
    });
}

#[test]
fn causal_hint_and_boolean_masks_on_unbatched_input_match_pytorch() {
    let m = mha(MultiheadAttentionConfig::new(8, 2));
    let causal = causal_additive(5);
    check_case("mha_causal", &m, &["x"], |v| {
        let args = MhaArgs {
            attn_mask: Some(MhaMask::Additive(&causal)),
            is_causal: true,
            need_weights: false,
            ..Default::default()
        };
        m.forward_with(&v[0], &v[0], &v[0], args)
    });
    let m = mha(MultiheadAttentionConfig::new(8, 2));
    let blocked = mask("mha_unbatched", "attn_mask");
    check_case("mha_unbatched", &m, &["q", "kv"], |v| {
        let args = MhaArgs { attn_mask: Some(MhaMask::Blocked(&blocked)), ..Default::default() };
        m.forward_with(&v[0], &v[1], &v[1], args)
    });
}

#[test]
fn encoder_layers_post_and_pre_norm_relu_gelu_and_tanh_gelu_match_pytorch() {
    let config = TransformerLayerConfig { batch_first: true, ..layer_config(8, 12) };
    let layer = TransformerEncoderLayer::new(config, 0);
    let (src_mask, kpm) = (mask("enc_post_relu", "src_mask"), mask("enc_post_relu", "src_key_padding_mask"));
    check_case("enc_post_relu", &layer, &["x"], |v| {
        let args = EncoderArgs {
            src_mask: Some(MhaMask::Blocked(&src_mask)),
            src_key_padding_mask: Some(MhaMask::Blocked(&kpm)),
            ..Default::default()
        };
        (layer.forward_with(&v[0], args), None)
    });

    let config =
        TransformerLayerConfig { activation: TransformerActivation::Gelu, norm_first: true, ..layer_config(8, 12) };
    let layer = TransformerEncoderLayer::new(config, 0);
    let float_mask = mask("enc_pre_gelu", "src_mask");
    check_case("enc_pre_gelu", &layer, &["x"], |v| {
        let args = EncoderArgs { src_mask: Some(MhaMask::Additive(&float_mask)), ..Default::default() };
        (layer.forward_with(&v[0], args), None)
    });

    // PyTorch was given the causal mask and the hint; here is_causal alone makes the mask.
    let config = TransformerLayerConfig {
        activation: TransformerActivation::GeluTanh,
        batch_first: true,
        ..layer_config(8, 12)
    };
    let layer = TransformerEncoderLayer::new(config, 0);
    check_case("enc_gelu_tanh", &layer, &["x"], |v| {
        (layer.forward_with(&v[0], EncoderArgs { is_causal: true, ..Default::default() }), None)
    });
}

#[test]
fn decoder_layers_post_and_pre_norm_with_causal_and_padding_masks_match_pytorch() {
    let config = TransformerLayerConfig { batch_first: true, ..layer_config(8, 12) };
    let layer = TransformerDecoderLayer::new(config, 0);
    let (causal, mem_kpm) = (causal_blocked(4), mask("dec_post", "memory_key_padding_mask"));
    check_case("dec_post", &layer, &["tgt", "memory"], |v| {
        let args = DecoderArgs {
            tgt_mask: Some(MhaMask::Blocked(&causal)),
            tgt_is_causal: true,
            memory_key_padding_mask: Some(MhaMask::Blocked(&mem_kpm)),
            ..Default::default()
        };
        (layer.forward_with(&v[0], &v[1], args), None)
    });

    let config =
        TransformerLayerConfig { activation: TransformerActivation::Gelu, norm_first: true, ..layer_config(8, 12) };
    let layer = TransformerDecoderLayer::new(config, 0);
    let causal = causal_additive(4);
    let (tgt_kpm, mem_kpm) =
        (mask("dec_pre_gelu", "tgt_key_padding_mask"), mask("dec_pre_gelu", "memory_key_padding_mask"));
    check_case("dec_pre_gelu", &layer, &["tgt", "memory"], |v| {
        let args = DecoderArgs {
            tgt_mask: Some(MhaMask::Additive(&causal)),
            tgt_key_padding_mask: Some(MhaMask::Blocked(&tgt_kpm)),
            memory_key_padding_mask: Some(MhaMask::Blocked(&mem_kpm)),
            ..Default::default()
        };
        (layer.forward_with(&v[0], &v[1], args), None)
    });
}

#[test]
fn two_layer_encoder_with_final_norm_and_two_layer_decoder_match_pytorch() {
    let config = TransformerLayerConfig { batch_first: true, ..layer_config(4, 8) };
    let encoder = TransformerEncoder::new(TransformerEncoderLayer::new(config, 0), 2, Some(LayerNorm::new(&[4])));
    let kpm = mask("enc_stack", "src_key_padding_mask");
    check_case("enc_stack", &encoder, &["x"], |v| {
        let args = EncoderArgs { src_key_padding_mask: Some(MhaMask::Blocked(&kpm)), ..Default::default() };
        (encoder.forward_with(&v[0], args), None)
    });

    let config = TransformerLayerConfig { norm_first: true, ..layer_config(4, 8) };
    let decoder = TransformerDecoder::new(TransformerDecoderLayer::new(config, 0), 2, None);
    let causal = causal_additive(3);
    check_case("dec_stack", &decoder, &["tgt", "memory"], |v| {
        let args =
            DecoderArgs { tgt_mask: Some(MhaMask::Additive(&causal)), tgt_is_causal: true, ..Default::default() };
        (decoder.forward_with(&v[0], &v[1], args), None)
    });
}

#[test]
fn initialisation_shapes_and_names_are_pytorchs() {
    let m: MultiheadAttention<f64> = MultiheadAttention::new(MultiheadAttentionConfig::new(16, 4), 3);
    let params = m.named_parameters();
    let shapes: Vec<(&str, &[usize])> = params.iter().map(|(n, t)| (n.as_str(), t.shape())).collect();
    assert_eq!(
        shapes,
        [
            ("in_proj_weight", &[48, 16][..]),
            ("in_proj_bias", &[48][..]),
            ("out_proj.weight", &[16, 16][..]),
            ("out_proj.bias", &[16][..])
        ]
    );
    // Xavier uniform on [3E, E]: bound √(6 / (E + 3E)); zero biases; out_proj bound 1/√E.
    let w = params[0].1.to_vec();
    let bound = (6.0f64 / 64.0).sqrt();
    assert!(w.iter().all(|x| x.abs() <= bound) && w.iter().any(|x| x.abs() > 0.9 * bound));
    assert!(params[1].1.to_vec().iter().all(|&x| x == 0.0) && params[3].1.to_vec().iter().all(|&x| x == 0.0));
    assert!(params[2].1.to_vec().iter().all(|x| x.abs() <= 0.25));
    assert_eq!(m.describe(), "MultiheadAttention(embed_dim=16, num_heads=4, bias=true, batch_first=false)");

    // An encoder layer has PyTorch's parameter count: 4·E² + 4·E (attention) + 2·E·F + F + E
    // (feed-forward) + 4·E (norms).
    let (e, f) = (16, 32);
    let layer: TransformerEncoderLayer = TransformerEncoderLayer::new(layer_config(e, f), 0);
    assert_eq!(layer.num_parameters(), 4 * e * e + 4 * e + 2 * e * f + f + e + 4 * e);
    let no_bias: TransformerDecoderLayer =
        TransformerDecoderLayer::new(TransformerLayerConfig { bias: false, ..layer_config(e, f) }, 0);
    assert!(no_bias.named_parameters().iter().all(|(n, _)| !n.ends_with("bias")));
    assert_eq!(no_bias.num_parameters(), 2 * 4 * e * e + 2 * e * f + 3 * e);
}

#[test]
fn boolean_and_additive_masks_agree_and_module_forward_is_plain_self_attention() {
    let m = mha(MultiheadAttentionConfig { batch_first: true, ..MultiheadAttentionConfig::new(8, 2) });
    let x = Tensor::randn(&[2, 4, 8], 0.0, 1.0, 5);
    let pad = Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0], &[2, 4]);
    let additive = Tensor::zeros(&[2, 4]).masked_fill(&pad, f64::NEG_INFINITY);
    let causal = causal_blocked(4);
    let run = |kpm: MhaMask<'_, f64>, attn: MhaMask<'_, f64>| {
        m.forward_with(&x, &x, &x, MhaArgs { key_padding_mask: Some(kpm), attn_mask: Some(attn), ..Default::default() })
    };
    let (a, wa) = run(MhaMask::Blocked(&pad), MhaMask::Blocked(&causal));
    let (b, wb) = run(MhaMask::Additive(&additive), MhaMask::Blocked(&causal));
    let (c, wc) = run(MhaMask::Blocked(&pad), MhaMask::Additive(&causal_additive(4)));
    for (got, want) in
        [(&b, &a), (&c, &a), (wb.as_ref().unwrap(), wa.as_ref().unwrap()), (wc.as_ref().unwrap(), wa.as_ref().unwrap())]
    {
        for (g, w) in got.to_vec().iter().zip(want.to_vec()) {
            assert!((g - w).abs() < 1e-14, "{g} vs {w}");
        }
    }
    // is_causal with a key padding mask materialises the causal mask.
    let args = MhaArgs {
        key_padding_mask: Some(MhaMask::Blocked(&pad)),
        is_causal: true,
        need_weights: false,
        ..Default::default()
    };
    assert_eq!(m.forward_with(&x, &x, &x, args).0.to_vec(), a.to_vec());
    // Self-attention projects q, k and v with one product, key = value with one for both:
    // the same numbers as three separate products (copies of x are other tensors).
    let (x2, x3) = (Tensor::from_vec(x.to_vec(), x.shape()), Tensor::from_vec(x.to_vec(), x.shape()));
    let (fused, _) = m.forward_with(&x, &x, &x, MhaArgs::default());
    for (k, v) in [(&x2, &x2), (&x2, &x3)] {
        let (separate, _) = m.forward_with(&x, k, v, MhaArgs::default());
        for (g, w) in separate.to_vec().iter().zip(fused.to_vec()) {
            assert!((g - w).abs() < 1e-14, "{g} vs {w}");
        }
    }
    // Module::forward and forward_many: no masks, no weights.
    let (plain, _) = m.forward_with(&x, &x, &x, MhaArgs::default());
    assert_eq!(m.forward(&x).to_vec(), plain.to_vec());
    assert_eq!(m.forward_many(&[&x, &x, &x]).to_vec(), plain.to_vec());
}

#[test]
fn attention_and_encoder_layer_gradients_match_central_differences() {
    // MHA, sequence first, fed a transposed (non-contiguous) batch-first input; the parameters
    // are inputs of the check too.
    let m = mha(MultiheadAttentionConfig::new(4, 2));
    let kpm = Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0], &[2, 4]);
    let mut inputs = vec![Tensor::randn(&[2, 3, 4], 0.0, 1.0, 11), Tensor::randn(&[4, 4], 0.0, 1.0, 12)];
    inputs.extend(m.named_parameters().into_iter().map(|(_, p)| Tensor::randn(p.shape(), 0.0, 0.5, 13)));
    gradcheck(
        |v| {
            m.bind_parameters(&v[2..]);
            let x = v[0].transpose(0, 1); // [L, B, E], not contiguous
            let kv = v[1].unsqueeze(1).broadcast_to(&[4, 2, 4]); // [S, B, E]: one memory broadcast over the batch
            let args = MhaArgs { key_padding_mask: Some(MhaMask::Blocked(&kpm)), ..Default::default() };
            let (out, weights) = m.forward_with(&x, &kv, &kv, args);
            // The output and the weights, both checked.
            Tensor::cat(&[out.flatten(0, 2), weights.unwrap().flatten(0, 2)], 0)
        },
        &inputs,
    )
    .unwrap();

    // Encoder layers, post- and pre-norm, with a causal mask.
    for norm_first in [false, true] {
        let config = TransformerLayerConfig {
            activation: TransformerActivation::Gelu,
            norm_first,
            batch_first: true,
            ..layer_config(4, 6)
        };
        let layer: TransformerEncoderLayer<f64> = TransformerEncoderLayer::new(config, 1);
        let mut inputs = vec![Tensor::randn(&[3, 2, 4], 0.0, 1.0, 21)];
        inputs.extend(layer.named_parameters().into_iter().map(|(_, p)| Tensor::randn(p.shape(), 0.0, 0.5, 22)));
        gradcheck(
            |v| {
                layer.bind_parameters(&v[1..]);
                let x = v[0].transpose(0, 1); // [B, L, E] from [L, B, E]: not contiguous
                layer.forward_with(&x, EncoderArgs { is_causal: true, ..Default::default() })
            },
            &inputs,
        )
        .unwrap_or_else(|e| panic!("norm_first={norm_first}: {e}"));
    }
}

#[test]
fn dropout_is_reproducible_under_a_step_key_and_absent_in_eval_mode() {
    let config = TransformerLayerConfig { dropout: 0.3, batch_first: true, ..layer_config(8, 16) };
    let mut layer: TransformerEncoderLayer<f64> = TransformerEncoderLayer::new(config, 0);
    layer.reseed(42);
    let x = Tensor::randn(&[2, 5, 8], 0.0, 1.0, 1);
    let key = StepKey::new(42, 0, 3, 0);
    let a = key.scope(|| layer.forward(&x)).to_vec();
    let b = std::thread::scope(|s| s.spawn(|| key.scope(|| layer.forward(&x))).join().unwrap()).to_vec();
    assert_eq!(a, b, "the same key draws the same masks, on any thread");
    let other = StepKey { step: 4, ..key }.scope(|| layer.forward(&x)).to_vec();
    assert_ne!(a, other, "another step draws other masks");

    // Outside a scope: fresh masks per call, restarted by reseed.
    let first = layer.forward(&x).to_vec();
    assert_ne!(first, layer.forward(&x).to_vec());
    layer.reseed(42);
    assert_eq!(first, layer.forward(&x).to_vec());

    // Eval: no dropout anywhere, equal to the same layer built with dropout 0.
    layer.eval();
    let eval = key.scope(|| layer.forward(&x)).to_vec();
    assert_eq!(eval, layer.forward(&x).to_vec());
    let plain: TransformerEncoderLayer<f64> =
        TransformerEncoderLayer::new(TransformerLayerConfig { dropout: 0.0, ..config }, 0);
    assert_eq!(eval, plain.forward(&x).to_vec());
    assert_ne!(eval, a);

    // Attention dropout alone (MHA): the weights show the dropped entries, reproducibly.
    let mut m =
        mha(MultiheadAttentionConfig { dropout: 0.5, batch_first: true, ..MultiheadAttentionConfig::new(8, 2) });
    let args = MhaArgs { average_attn_weights: false, ..Default::default() };
    let (o1, w1) = key.scope(|| m.forward_with(&x, &x, &x, args));
    let (o2, w2) = key.scope(|| m.forward_with(&x, &x, &x, args));
    assert_eq!((o1.to_vec(), w1.as_ref().unwrap().to_vec()), (o2.to_vec(), w2.unwrap().to_vec()));
    let zeros = w1.unwrap().to_vec().iter().filter(|&&w| w == 0.0).count();
    assert!(zeros > 20 && zeros < 80, "about half of 100 weights dropped, got {zeros}");
    m.eval();
    let (e1, we) = key.scope(|| m.forward_with(&x, &x, &x, args));
    assert!(we.unwrap().to_vec().iter().all(|&w| w > 0.0));
    assert_ne!(e1.to_vec(), o1.to_vec());

    // A stack in eval mode is deterministic; in training its layers draw different masks.
    let mut stack = TransformerEncoder::new(TransformerEncoderLayer::new(config, 0), 2, None);
    stack.reseed(5);
    let (t1, t2) = (key.scope(|| stack.forward(&x)), key.scope(|| stack.forward(&x)));
    assert_eq!(t1.to_vec(), t2.to_vec());
    stack.eval();
    assert_eq!(stack.forward(&x).to_vec(), stack.forward(&x).to_vec());
    assert_ne!(stack.forward(&x).to_vec(), t1.to_vec());
}

/// `x · wᵀ + b`, for rebuilding the attention by hand.
fn affine(x: &T, w: &T, b: &T) -> T {
    x.matmul(&w.t()) + b
}

#[test]
fn with_attention_dropout_the_returned_weights_are_the_ones_the_output_used() {
    let mut m =
        mha(MultiheadAttentionConfig { dropout: 0.4, batch_first: true, ..MultiheadAttentionConfig::new(8, 2) });
    m.reseed(9);
    let x = Tensor::randn(&[2, 5, 8], 0.0, 1.0, 3);
    let args = MhaArgs { average_attn_weights: false, ..Default::default() };
    let (out, weights) = StepKey::new(1, 0, 0, 0).scope(|| m.forward_with(&x, &x, &x, args));
    let weights = weights.unwrap(); // [B, H, L, S], dropped entries zero, the rest scaled by 1/(1 − p)
    assert!(weights.to_vec().contains(&0.0));
    // out = out_proj(concat_heads(weights · v_heads)), with v = x·W_vᵀ + b_v.
    let p: Vec<T> = m.named_parameters().into_iter().map(|(_, t)| t).collect();
    let (w_in, b_in, w_out, b_out) = (&p[0], &p[1], &p[2], &p[3]);
    let v = affine(&x, &w_in.narrow(0, 16, 8), &b_in.narrow(0, 16, 8));
    let vh = v.reshape(&[2, 5, 2, 4]).transpose(1, 2);
    let heads = weights.matmul(&vh).transpose(1, 2).reshape(&[2, 5, 8]);
    let want = affine(&heads, w_out, b_out);
    for (a, b) in out.to_vec().iter().zip(want.to_vec()) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

#[test]
fn stacks_clone_the_layer_and_name_parameters_like_pytorch() {
    let layer: TransformerEncoderLayer = TransformerEncoderLayer::new(layer_config(8, 16), 0);
    let encoder = TransformerEncoder::new(layer.clone(), 3, Some(LayerNorm::new(&[8])));
    let params = encoder.named_parameters();
    assert_eq!(params.len(), 3 * 12 + 2);
    assert_eq!(params[12].0, "layers.1.self_attn.in_proj_weight");
    // The copies start equal (PyTorch deep-copies) but are separate parameters.
    assert_eq!(params[0].1.to_vec(), params[12].1.to_vec());
    encoder.layers()[0].self_attn().out_proj().weight().value().update_(|v| v[0] += 1.0);
    assert_ne!(encoder.named_parameters()[2].1.to_vec(), encoder.named_parameters()[14].1.to_vec());
    assert_eq!(encoder.layers().len(), 3);
    assert!(
        encoder
            .describe()
            .starts_with("TransformerEncoder(\n  (layers): ModuleList(\n    (0): TransformerEncoderLayer(d_model=8")
    );

    let decoder: TransformerDecoder =
        TransformerDecoder::new(TransformerDecoderLayer::new(layer_config(8, 16), 0), 2, None);
    let names: Vec<String> = decoder.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 2 * 18);
    assert_eq!(names[4], "layers.0.multihead_attn.in_proj_weight");
    assert_eq!(names[35], "layers.1.norm3.bias");
}

#[test]
fn sinusoidal_positional_encoding_is_the_papers_table() {
    let pe: SinusoidalPositionalEncoding<f64> = SinusoidalPositionalEncoding::new(50, 6);
    let t = pe.table().to_vec();
    for pos in [0usize, 1, 7, 49] {
        for i in 0..3 {
            let angle = pos as f64 / 10000f64.powf(2.0 * i as f64 / 6.0);
            assert!((t[pos * 6 + 2 * i] - angle.sin()).abs() < 1e-12);
            assert!((t[pos * 6 + 2 * i + 1] - angle.cos()).abs() < 1e-12);
        }
    }
    // Sequence first [L, B, d]: every batch entry gets the same row.
    let x = Tensor::randn(&[4, 3, 6], 0.0, 1.0, 0);
    let y = pe.forward(&x);
    let row = |v: &T, l: usize, b: usize| v.narrow(0, l, 1).narrow(1, b, 1).to_vec();
    for (l, b) in [(0, 0), (2, 1), (3, 2)] {
        let want: Vec<f64> = row(&x, l, b).iter().zip(&t[l * 6..l * 6 + 6]).map(|(a, p)| a + p).collect();
        assert_eq!(row(&y, l, b), want);
    }
    // Odd d_model: the last column is a sine.
    let odd: SinusoidalPositionalEncoding<f64> = SinusoidalPositionalEncoding::new(3, 5);
    assert!((odd.table().get(&[1, 4]) - (1.0 / 10000f64.powf(0.8)).sin()).abs() < 1e-15);
    assert!(pe.named_parameters().is_empty());
    // Gradients pass through.
    let x = x.requires_grad();
    let g = pe.forward(&x).sum().backward();
    assert!(g.get(&x).unwrap().to_vec().iter().all(|&v| v == 1.0));
}

#[test]
#[should_panic(expected = "MultiheadAttention: embed_dim 6 must be a positive multiple of num_heads 4")]
fn heads_must_divide_the_embedding() {
    let _: MultiheadAttention = MultiheadAttention::new(MultiheadAttentionConfig::new(6, 4), 0);
}

#[test]
#[should_panic(
    expected = "MultiheadAttention: expected feature sizes embed_dim 8, kdim 8 and vdim 8, got query [3, 2, 7]"
)]
fn query_of_the_wrong_size_is_named() {
    let m = mha(MultiheadAttentionConfig::new(8, 2));
    let (q, kv) = (Tensor::zeros(&[3, 2, 7]), Tensor::zeros(&[3, 2, 8]));
    m.forward_with(&q, &kv, &kv, MhaArgs::default());
}

#[test]
#[should_panic(expected = "MultiheadAttention: key_padding_mask has shape [3, 2], expected [2, 3]")]
fn key_padding_mask_of_the_wrong_shape_is_named() {
    let m = mha(MultiheadAttentionConfig::new(8, 2));
    let x = Tensor::zeros(&[3, 2, 8]);
    let pad = Tensor::zeros(&[3, 2]);
    m.forward_with(&x, &x, &x, MhaArgs { key_padding_mask: Some(MhaMask::Blocked(&pad)), ..Default::default() });
}

#[test]
#[should_panic(expected = "MultiheadAttention: attn_mask has shape [3, 4], expected [3, 3] or [4, 3, 3]")]
fn attn_mask_of_the_wrong_shape_is_named() {
    let m = mha(MultiheadAttentionConfig::new(8, 2));
    let x = Tensor::zeros(&[3, 2, 8]);
    let bad = Tensor::zeros(&[3, 4]);
    m.forward_with(&x, &x, &x, MhaArgs { attn_mask: Some(MhaMask::Additive(&bad)), ..Default::default() });
}

#[test]
#[should_panic(expected = "MultiheadAttention: a boolean (Blocked) attn_mask holds 0 and 1 only, found 0.5")]
fn blocked_masks_hold_zeros_and_ones() {
    let m = mha(MultiheadAttentionConfig::new(8, 2));
    let x = Tensor::zeros(&[3, 2, 8]);
    let bad = Tensor::full(&[3, 3], 0.5);
    m.forward_with(&x, &x, &x, MhaArgs { attn_mask: Some(MhaMask::Blocked(&bad)), ..Default::default() });
}

#[test]
#[should_panic(expected = "MultiheadAttention: key has 4 steps but value has 5")]
fn key_and_value_lengths_must_agree() {
    let m = mha(MultiheadAttentionConfig { batch_first: true, ..MultiheadAttentionConfig::new(8, 2) });
    let (q, k, v) = (Tensor::zeros(&[2, 3, 8]), Tensor::zeros(&[2, 4, 8]), Tensor::zeros(&[2, 5, 8]));
    m.forward_with(&q, &k, &v, MhaArgs::default());
}

#[test]
#[should_panic(
    expected = "TransformerEncoderLayer: src must be [batch, seq, 8], [seq, batch, 8] or [seq, 8], got [2, 3, 4]"
)]
fn encoder_layer_input_of_the_wrong_size_is_named() {
    let layer: TransformerEncoderLayer = TransformerEncoderLayer::new(layer_config(8, 16), 0);
    layer.forward(&Tensor::zeros(&[2, 3, 4]));
}

#[test]
#[should_panic(expected = "TransformerDecoderLayer: takes 2 inputs (tgt, memory)")]
fn decoder_layer_needs_a_memory() {
    let layer: TransformerDecoderLayer = TransformerDecoderLayer::new(layer_config(8, 16), 0);
    layer.forward(&Tensor::zeros(&[2, 3, 8]));
}

#[test]
#[should_panic(expected = "TransformerEncoderLayer: d_model 10 must be a positive multiple of nhead 4")]
fn layer_heads_must_divide_d_model() {
    let _: TransformerEncoderLayer = TransformerEncoderLayer::new(TransformerLayerConfig::new(10, 4), 0);
}

#[test]
#[should_panic(expected = "SinusoidalPositionalEncoding: expected input [seq, batch, 4]")]
fn positional_encoding_longer_than_max_len_is_named() {
    let pe: SinusoidalPositionalEncoding = SinusoidalPositionalEncoding::new(3, 4);
    pe.forward(&Tensor::zeros(&[5, 1, 4]));
}

thread_local! {
    static CAPTURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LOCATION: std::cell::RefCell<Option<(String, u32)>> = const { std::cell::RefCell::new(None) };
}

/// The file and line a panic of `f` reports. The hook is installed once and records only the
/// panics of a thread inside this function (other tests panic in parallel).
fn panic_location(f: impl FnOnce()) -> (String, u32) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CAPTURING.with(|c| c.get()) {
                return default(info);
            }
            let loc = info.location().unwrap();
            LOCATION.with(|l| *l.borrow_mut() = Some((loc.file().to_string(), loc.line())));
        }))
    });
    CAPTURING.with(|c| c.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(false));
    assert!(r.is_err(), "expected a panic");
    LOCATION.with(|l| l.borrow_mut().take()).unwrap()
}

#[test]
fn panics_report_the_callers_line() {
    let m = mha(MultiheadAttentionConfig::new(8, 2));
    let x = Tensor::zeros(&[3, 2, 8]);
    let bad = Tensor::full(&[2, 3], 0.5);
    let bad_mask = MhaArgs { key_padding_mask: Some(MhaMask::Blocked(&bad)), ..Default::default() };
    let layer = TransformerDecoderLayer::new(layer_config(8, 16), 0);
    let bad_memory = DecoderArgs { memory_key_padding_mask: Some(MhaMask::Blocked(&bad)), ..Default::default() };
    let encoder: TransformerEncoder<f64> =
        TransformerEncoder::new(TransformerEncoderLayer::new(layer_config(8, 16), 0), 2, None);
    let cases: Vec<(u32, Box<dyn FnOnce()>)> = vec![
        (line!(), Box::new(|| drop(m.forward_with(&x, &x, &Tensor::zeros(&[3, 2, 5]), MhaArgs::default())))),
        (line!(), Box::new(|| drop(m.forward_with(&x, &x, &x, bad_mask)))),
        (line!(), Box::new(|| drop(layer.forward_with(&x, &x, bad_memory)))),
        (line!(), Box::new(|| drop(encoder.forward(&Tensor::zeros(&[3, 2, 4]))))),
        (line!(), Box::new(|| drop(layer.forward(&x)))),
    ];
    for (line, f) in cases {
        let (file, got) = panic_location(f);
        assert!(
            file.ends_with("transformer.rs") && file.starts_with("tests") && got == line,
            "panic at {file}:{got}, expected line {line}"
        );
    }
}

#[test]
fn the_modules_sit_in_a_sequential_model() {
    use tensorgrad::nn::{Linear, Sequential};
    let config = TransformerLayerConfig { dim_feedforward: 16, batch_first: true, ..TransformerLayerConfig::new(8, 2) };
    let mut model: Sequential = Sequential::new()
        .add_named("pos", SinusoidalPositionalEncoding::new(32, 8).batch_first(true))
        .add_named("encoder", TransformerEncoder::new(TransformerEncoderLayer::new(config, 0), 2, None))
        .add_named("head", Linear::new(8, 3, 1));
    model.reseed(3);
    model.eval();
    let summary = model.summary(&[2, 10, 8]);
    assert_eq!(summary.layers[1].output_shape, [2, 10, 8]);
    assert_eq!(summary.layers[1].kind, "TransformerEncoder");
    assert_eq!(model.forward(&tensorgrad::Tensor::zeros(&[2, 10, 8])).shape(), &[2, 10, 3]);
    assert!(model.named_parameters()[0].0.starts_with("encoder.layers.0.self_attn.in_proj_weight"));
}

#[test]
fn a_keras_padding_mask_from_an_embedding_is_the_key_padding_mask() {
    use tensorgrad::nn::{Embedding, Sequential};
    let config = TransformerLayerConfig { batch_first: true, ..layer_config(8, 16) };
    let encoder: TransformerEncoder<f64> = TransformerEncoder::new(TransformerEncoderLayer::new(config, 0), 2, None);
    let embedding: Embedding<f64> = Embedding::new(10, 8, 0).with_mask_zero(true);
    // Sequence 1 has two padding ids (0) at the end.
    let ids = Tensor::from_vec(vec![3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 0.0, 0.0, 0.0], &[2, 5]);
    let vectors = embedding.forward(&ids);
    let pad = Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[2, 5]);
    let args = EncoderArgs { src_key_padding_mask: Some(MhaMask::Blocked(&pad)), ..Default::default() };
    let want = encoder.forward_with(&vectors, args).to_vec();
    let layer = encoder.layers()[0].clone();
    let model: Sequential<f64> = Sequential::new().add(embedding).add(encoder);
    let (got, mask) = model.forward_masked(&ids, None);
    assert_eq!(got.to_vec(), want);
    assert_eq!(mask.unwrap().lengths(), [5, 2]);
    // One layer alone, too; without a mask it is the plain forward pass.
    let (one, _) = layer.forward_masked(&vectors, Some(&tensorgrad::nn::Mask::from_lengths(&[5, 2], 5)));
    assert_eq!(one.to_vec(), layer.forward_with(&vectors, args).to_vec());
    assert_eq!(layer.forward_masked(&vectors, None).0.to_vec(), layer.forward(&vectors).to_vec());
}
