//! `load_model` into a small fixed model (Embedding + Lstm + Linear) from a file of arbitrary
//! bytes. Never a panic; a load that fails leaves every parameter bit-identical, and one that
//! succeeds leaves exactly the file's tensors in the model.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorgrad::nn::Module;
use tensorgrad::{Tensor, io, no_grad};
use tensorgrad_fuzz::{bits, model_bits, small_model, write_scratch};

fuzz_target!(|data: &[u8]| {
    let model = small_model(7);
    let before = model_bits(&model);
    let path = write_scratch("model.safetensors", data);
    match io::load_model(&model, &path) {
        Ok(()) => {
            let file = io::load_tensors::<f32>(&path).expect("a file load_model accepts loads as tensors");
            assert_eq!(model_bits(&model), bits(&file), "the model does not hold the file's tensors");
            // The loaded model runs (whatever the values: NaN and infinities are allowed).
            let ids = Tensor::from_vec(vec![1.0f32, 9.0, 0.0, 4.0], &[2, 2]);
            let y = no_grad(|| model.forward(&ids));
            assert_eq!(y.shape(), &[2, 1]);
        }
        Err(_) => assert!(model_bits(&model) == before, "a failed load_model changed the model"),
    }
});
