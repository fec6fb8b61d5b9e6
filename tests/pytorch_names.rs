//! The names and small ops a PyTorch user reaches for (issue 12, item 8) and the model
//! descriptions (item 9): values against hand computations, shapes, ties, and messages.

use approx::assert_relative_eq;
use tensorgrad::Tensor;
use tensorgrad::nn::{
    Activation, Dense, Dropout, Embedding, Flatten, Gru, GruConfig, Linear, Lstm, LstmConfig, Module, Relu, Sequential,
};

#[test]
fn log_is_ln_and_sin_cos_match_std() {
    let x = Tensor::from_vec(vec![0.25f64, 1.0, 2.5, 7.0], &[2, 2]);
    assert_eq!(x.log().to_vec(), x.ln().to_vec());
    for (s, v) in x.sin().to_vec().iter().zip(x.to_vec()) {
        assert_relative_eq!(*s, v.sin(), max_relative = 1e-15);
    }
    for (c, v) in x.t().cos().to_vec().iter().zip(x.t().contiguous().to_vec()) {
        assert_relative_eq!(*c, v.cos(), max_relative = 1e-15);
    }
}

#[test]
fn pow_broadcasts_and_its_exponent_gradient_is_zero_at_a_zero_base() {
    let base = Tensor::from_vec(vec![2.0f64, 0.0, 3.0, 0.5], &[2, 2]).requires_grad();
    let e = Tensor::from_vec(vec![2.0f64, 3.0], &[2]).requires_grad();
    let y = base.pow(&e);
    assert_eq!(y.to_vec(), vec![4.0, 0.0, 9.0, 0.125]);
    let g = y.sum().backward();
    // d/dbase = e · base^(e−1)
    assert_eq!(g.get(&base).unwrap().to_vec(), vec![4.0, 0.0, 6.0, 0.75]);
    // d/de = Σ over rows of base^e · ln base, with 0^e · ln 0 taken as 0.
    let de = g.get(&e).unwrap().to_vec();
    assert_relative_eq!(de[0], 4.0 * 2f64.ln() + 9.0 * 3f64.ln(), max_relative = 1e-14);
    assert_relative_eq!(de[1], 0.125 * 0.5f64.ln(), max_relative = 1e-14);
    assert!(de.iter().all(|v| v.is_finite()));
}

#[test]
fn argmax_argmin_and_min_dim_take_the_first_of_ties() {
    let x = Tensor::from_vec(vec![1.0f32, 3.0, 3.0, -2.0, -2.0, 0.0], &[2, 3]);
    assert_eq!(x.argmax(1, false).to_vec(), vec![1.0, 2.0]);
    assert_eq!(x.argmin(1, false).to_vec(), vec![0.0, 0.0]);
    assert_eq!(x.argmax(0, true).shape(), &[1, 3]);
    assert_eq!(x.argmax(0, true).to_vec(), vec![0.0, 0.0, 0.0]);
    let (m, idx) = x.min_dim(0, false);
    assert_eq!((m.to_vec(), idx), (vec![-2.0, -2.0, 0.0], vec![1, 1, 1]));
    // Argmax of a non-contiguous view.
    assert_eq!(x.t().argmax(0, false).to_vec(), vec![1.0, 2.0]);
    // Not differentiable: a constant even when the input requires a gradient.
    assert!(!x.requires_grad().argmax(1, false).needs_grad());
}

#[test]
#[should_panic(expected = "argmax: dim 1 of shape [2, 0] is empty")]
fn argmax_of_an_empty_dim_names_the_op() {
    let _ = Tensor::<f32>::zeros(&[2, 0]).argmax(1, false);
}

#[test]
fn flatten_size_and_cat_of_references() {
    let x = Tensor::<f32>::arange(24).reshape(&[2, 3, 4]);
    assert_eq!(x.flatten(1, 2).shape(), &[2, 12]);
    assert_eq!(x.flatten(0, 2).to_vec(), x.to_vec());
    assert_eq!(x.permute(&[2, 0, 1]).flatten(1, 2).shape(), &[4, 6]);
    assert_eq!(x.permute(&[2, 0, 1]).flatten(1, 2).get(&[1, 5]), x.get(&[1, 2, 1]));
    assert_eq!((x.size(0), x.size(2)), (2, 4));
    let (a, b) = (Tensor::<f32>::ones(&[2, 2]), Tensor::<f32>::zeros(&[1, 2]));
    assert_eq!(Tensor::cat(&[&a, &b], 0).to_vec(), Tensor::cat(&[a.clone(), b.clone()], 0).to_vec());
    let parts = vec![a.clone(), a.clone()];
    assert_eq!(Tensor::stack(&parts, 0).shape(), &[2, 2, 2]);
    let refs: Vec<&Tensor> = parts.iter().collect();
    assert_eq!(Tensor::stack(&refs, 2).shape(), &[2, 2, 2]);
}

#[test]
#[should_panic(expected = "flatten: start_dim 2 is after end_dim 1")]
fn flatten_with_reversed_dims_names_the_op() {
    let _ = Tensor::<f32>::zeros(&[2, 3, 4]).flatten(2, 1);
}

#[test]
fn flatten_module_keeps_the_batch_dim() {
    let x = Tensor::<f32>::zeros(&[5, 2, 3, 4]);
    assert_eq!(Module::<f32>::forward(&Flatten::new(), &x).shape(), &[5, 24]);
    assert_eq!(Module::<f32>::forward(&Flatten::range(1, 2), &x).shape(), &[5, 6, 4]);
    assert_eq!(Module::<f32>::describe(&Flatten::new()), "Flatten(start_dim=1, end_dim=-1)");
}

fn text_model() -> Sequential {
    let lstm = LstmConfig { dropout: 0.2, recurrent_dropout: 0.2, ..LstmConfig::new(16, 32) };
    Sequential::new()
        .add_named("embedding", Embedding::new(1000, 16, 0).with_mask_zero(true))
        .add_named("lstm", Lstm::new(lstm, 1))
        .add_named("dense", Dense::new(32, 1, Some(Activation::Sigmoid), 2))
}

#[test]
fn display_shows_each_layer_in_pytorch_style() {
    let model = text_model();
    let expected = "Sequential(\n  (embedding): Embedding(1000, 16, mask_zero=true)\n  \
                    (lstm): LSTM(16, 32, dropout=0.2, recurrent_dropout=0.2)\n  \
                    (dense): Dense(in_features=32, units=1, activation=Sigmoid)\n)";
    assert_eq!(model.to_string(), expected);
    assert_eq!(format!("{model:?}"), expected);
    // A lent model (`Trainer::new(&mut model, …)`) describes itself the same way.
    let mut owned = text_model();
    let lent = &mut owned;
    assert_eq!(Module::describe(&lent), expected);
    let nested: Sequential = Sequential::new().add(text_model()).add(Relu);
    assert!(nested.to_string().starts_with("Sequential(\n  (0): Sequential(\n    (embedding): Embedding"), "{nested}");
    let gru: Gru = Gru::new(GruConfig { bidirectional: true, num_layers: 2, ..GruConfig::new(3, 4) }, 0);
    assert_eq!(Module::describe(&gru), "GRU(3, 4, num_layers=2, bidirectional=true)");
    assert_eq!(Module::<f32>::describe(&Dropout::new(0.1, 0)), "Dropout(p=0.1)");
}

#[test]
fn summary_gives_output_shapes_and_trainable_counts_and_changes_nothing() {
    let model = text_model();
    assert!(model.set_trainable("embedding.weight", false));
    let s = model.summary(&[2, 10]);
    let shapes: Vec<&[usize]> = s.layers.iter().map(|l| l.output_shape.as_slice()).collect();
    assert_eq!(shapes, [&[2, 10, 16][..], &[2, 32], &[2, 1]]);
    let kinds: Vec<&str> = s.layers.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["Embedding", "LSTM", "Dense"]);
    let lstm = 4 * 32 * (16 + 32) + 2 * 4 * 32;
    assert_eq!((s.total_params(), s.trainable_params(), s.frozen_params()), (16_000 + lstm + 33, lstm + 33, 16_000));
    assert_eq!(s.total_params(), model.num_parameters());
    let text = s.to_string();
    for line in
        ["embedding (Embedding)", "[2, 10, 16]", "16,000", "Total params: 22,433", "Non-trainable params: 16,000"]
    {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    // The summary's forward pass (in training mode, with dropout) leaves the dropout streams
    // where they were: a forward after it gives what a forward without it gives.
    let x = Tensor::from_vec((1..=20).map(|i| i as f32).collect(), &[2, 10]);
    let (m1, m2) = (text_model(), text_model());
    let _ = m1.summary(&[2, 10]);
    assert_eq!(m1.forward(&x).to_vec(), m2.forward(&x).to_vec());
    // A model that cannot take the input panics at this line.
    let mlp: Sequential = Sequential::new().add(Linear::new(4, 2, 0));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mlp.summary(&[3, 5])));
    assert!(r.is_err());
}

/// `gelu_tanh` against PyTorch 2.15's `F.gelu(x, approximate='tanh')` (float64; values printed
/// by PyTorch for these inputs).
#[test]
fn gelu_tanh_matches_pytorch() {
    let x = Tensor::from_vec(vec![1.0f64, -3.0, 0.5, 2.5], &[4]).requires_grad();
    let y = x.gelu_tanh();
    let want = [0.8411919906082768, -0.0036373920817729943, 0.34571400982514394, 2.484915733910001];
    let dwant = [1.0829640838457826, -0.011584166630969648, 0.8673699035346424, 1.037951576212666];
    let g = y.sum().backward();
    for ((a, b), (da, db)) in y.to_vec().iter().zip(want).zip(g.get(&x).unwrap().to_vec().iter().zip(dwant)) {
        assert_relative_eq!(*a, b, max_relative = 1e-13);
        assert_relative_eq!(*da, db, max_relative = 1e-13);
    }
}

/// `gelu` against PyTorch 2.15's `F.gelu(x)` (exact, float64; values printed by PyTorch).
#[test]
fn gelu_matches_pytorch() {
    let x = Tensor::from_vec(vec![1.0f64, -3.0, 0.5, 2.5], &[4]).requires_grad();
    let y = x.gelu();
    let want = [0.841344746068543, -0.00404969409489031, 0.34573123063700656, 2.4844758366855597];
    let dwant = [1.0833154705876864, -0.01194564720418392, 0.8674951246561629, 1.037611085908145];
    let g = y.sum().backward();
    for ((a, b), (da, db)) in y.to_vec().iter().zip(want).zip(g.get(&x).unwrap().to_vec().iter().zip(dwant)) {
        assert_relative_eq!(*a, b, max_relative = 1e-13);
        assert_relative_eq!(*da, db, max_relative = 1e-13);
    }
}

#[test]
fn masked_scores_give_zero_probability_and_finite_gradients() {
    let scores = Tensor::from_vec(vec![0.5f64, 1.0, 2.0, -1.0, 0.0, 3.0], &[2, 3]).requires_grad();
    let causal = Tensor::<f64>::ones(&[3, 3]).triu(1).narrow(0, 1, 2); // rows 1, 2 of the future mask
    let p = scores.masked_fill(&causal, f64::NEG_INFINITY).softmax(1);
    let v = p.to_vec();
    assert_eq!(v[2], 0.0);
    assert_relative_eq!(v[5], 1.0 - v[3] - v[4], max_relative = 1e-14);
    assert!((v[0] + v[1] - 1.0).abs() < 1e-15);
    let g = (&p * &Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])).sum().backward();
    let gs = g.get(&scores).unwrap().to_vec();
    assert!(gs.iter().all(|v| v.is_finite()), "{gs:?}");
    assert_eq!(gs[2], 0.0);
}

#[test]
fn a_fully_masked_row_softmaxes_to_zeros_with_zero_gradients() {
    let scores = Tensor::from_vec(vec![0.5f64, 1.0, 2.0, -1.0, 0.0, 3.0], &[2, 3]).requires_grad();
    let blocked = Tensor::from_vec(vec![0.0f64, 0.0, 0.0, 1.0, 1.0, 1.0], &[2, 3]);
    let p = scores.masked_fill(&blocked, f64::NEG_INFINITY).softmax(1);
    let v = p.to_vec();
    assert!((v[0] + v[1] + v[2] - 1.0).abs() < 1e-15);
    assert_eq!(&v[3..], &[0.0, 0.0, 0.0]);
    let g = (&p * &Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])).sum().backward();
    let gs = g.get(&scores).unwrap().to_vec();
    assert!(gs.iter().all(|v| v.is_finite()), "{gs:?}");
    assert_eq!(&gs[3..], &[0.0, 0.0, 0.0]);
    // Second order stays finite too.
    let x = Tensor::from_vec(vec![f64::NEG_INFINITY; 3], &[1, 3]).requires_grad();
    let gx = x.softmax(1).sum().backward_with_graph().get(&x).unwrap().clone();
    assert!(gx.to_vec().iter().all(|v| *v == 0.0));
}

#[test]
fn where_cond_broadcasts_and_tril_keeps_the_lower_triangle() {
    let cond = Tensor::from_vec(vec![1.0f32, 0.0], &[2, 1]);
    let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]);
    let b = Tensor::from_vec(vec![-1.0f32], &[1]);
    assert_eq!(Tensor::where_cond(&cond, &a, &b).to_vec(), vec![1.0, 2.0, 3.0, -1.0, -1.0, -1.0]);
    let x = Tensor::<f32>::arange(6).reshape(&[2, 3]);
    assert_eq!(x.tril(0).to_vec(), vec![0.0, 0.0, 0.0, 3.0, 4.0, 0.0]);
    assert_eq!(x.tril(-1).to_vec(), vec![0.0, 0.0, 0.0, 3.0, 0.0, 0.0]);
    assert_eq!(x.triu(0).to_vec(), vec![0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
}

#[test]
#[should_panic(expected = "masked_fill: shapes [2, 4] and [2, 3] cannot be broadcast together")]
fn masked_fill_with_a_wrong_mask_names_both_shapes() {
    let _ = Tensor::<f32>::zeros(&[2, 3]).masked_fill(&Tensor::ones(&[2, 4]), 0.0);
}
