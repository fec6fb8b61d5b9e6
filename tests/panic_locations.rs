//! Wrong input to a layer panics at the caller's line, not inside the crate: `#[track_caller]`
//! runs from `Module::forward` (and `forward_masked`, `forward_many`) through containers such as
//! `Sequential` down to the check that fails. Each case records the location the panic reports
//! and compares it with the line of the call in this file.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use tensorgrad::Tensor;
use tensorgrad::loss::{Reduction, cross_entropy};
use tensorgrad::nn::{
    Activation, Dense, Dropout, Embedding, Gru, GruConfig, Linear, Lstm, LstmConfig, Module, Relu,
    ScaledDotProductAttention, Sequential,
};

thread_local! {
    static LOCATION: Cell<Option<(&'static str, u32)>> = const { Cell::new(None) };
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, which must panic, and returns the file and line the panic reports.
fn panic_location(f: impl FnOnce()) -> (String, u32) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CAPTURING.with(|c| c.get()) {
                return default(info);
            }
            let loc = info.location().expect("panics carry a location");
            // `Location::file` is 'static for the locations the compiler embeds.
            let file: &'static str = Box::leak(loc.file().to_string().into_boxed_str());
            LOCATION.with(|l| l.set(Some((file, loc.line()))));
        }))
    });
    LOCATION.with(|l| l.set(None));
    CAPTURING.with(|c| c.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(false));
    assert!(r.is_err(), "expected a panic");
    let (file, line) = LOCATION.with(|l| l.get()).expect("the hook saw the panic");
    (file.to_string(), line)
}

/// Asserts that the panic of the closure is reported at `line` of this file.
#[track_caller]
fn assert_here(line: u32, f: impl FnOnce()) {
    let (file, got) = panic_location(f);
    assert!(
        file.ends_with("panic_locations.rs") && got == line,
        "panic reported at {file}:{got}, expected this file's line {line}"
    );
}

#[test]
fn wrong_input_to_a_layer_panics_at_the_callers_line() {
    let bad = Tensor::<f32>::zeros(&[2, 7]);
    let lin: Linear = Linear::new(5, 3, 0);
    assert_here(line!(), || drop(lin.forward(&bad)));
    let dense: Dense = Dense::new(5, 3, Some(Activation::Relu), 0);
    assert_here(line!(), || drop(dense.forward(&bad)));
    let lstm: Lstm = Lstm::new(LstmConfig::new(5, 4), 0);
    assert_here(line!(), || drop(lstm.forward(&Tensor::zeros(&[2, 3, 7]))));
    assert_here(line!(), || drop(lstm.forward(&bad)));
    let gru: Gru = Gru::new(GruConfig::new(5, 4), 0);
    assert_here(line!(), || drop(gru.forward(&Tensor::zeros(&[2, 3, 7]))));
    let emb: Embedding = Embedding::new(10, 4, 0);
    assert_here(line!(), || drop(emb.forward(&Tensor::from_vec(vec![1.0, 12.0], &[1, 2]))));
    assert_here(line!(), || drop(emb.forward(&Tensor::from_vec(vec![1.5, 2.0], &[1, 2]))));
    assert_here(line!(), || _ = Dropout::new(1.5, 0));
    let (p, q) = (Tensor::<f32>::zeros(&[2, 3]), Tensor::<f32>::zeros(&[4]));
    assert_here(line!(), || drop(&p + &q)); // shapes that do not broadcast
    assert_here(line!(), || drop(p.masked_fill(&q, 0.0)));
    let (logits, bad_ids) = (Tensor::<f32>::zeros(&[2, 3]), Tensor::<f32>::from_vec(vec![1.0, 0.5], &[2]));
    assert_here(line!(), || drop(cross_entropy(&logits, &bad_ids, 0.0, Reduction::Mean)));
    let attn = ScaledDotProductAttention::new();
    let (q, k) = (Tensor::<f32>::zeros(&[2, 3, 4]), Tensor::<f32>::zeros(&[2, 5, 6]));
    assert_here(line!(), || drop(attn.forward_many(&[&q, &k, &k])));
    assert_here(line!(), || drop(attn.forward_many(&[&q, &q])));
}

#[test]
fn wrong_input_to_a_model_panics_at_the_callers_line() {
    let mlp: Sequential = Sequential::new().add(Linear::new(5, 8, 0)).add(Relu).add(Linear::new(8, 2, 1));
    let bad = Tensor::<f32>::zeros(&[2, 7]);
    assert_here(line!(), || drop(mlp.forward(&bad)));
    assert_here(line!(), || drop(mlp.forward_masked(&bad, None)));
    assert_here(line!(), || drop(mlp.forward_many(&[&bad])));
    assert_here(line!(), || drop(mlp.forward_many(&[&bad, &bad])));
    let text: Sequential = Sequential::new()
        .add(Embedding::new(10, 4, 0).with_mask_zero(true))
        .add(Lstm::new(LstmConfig::new(3, 4), 1))
        .add(Dense::new(4, 1, Some(Activation::Sigmoid), 2));
    let ids = Tensor::from_vec(vec![1.0, 2.0, 0.0], &[1, 3]);
    assert_here(line!(), || drop(text.forward(&ids)));
    let boxed: Box<dyn Module> = Box::new(text);
    assert_here(line!(), || drop(boxed.forward(&ids)));
}
