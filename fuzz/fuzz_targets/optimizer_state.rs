//! Optimizer state files: the tensors of the input (as a safetensors file) fed to
//! `load_state_dict` of an Adam (AMSGrad) and of an SGD with momentum, each over three small
//! parameters and already stepped once. Never a panic; a refused state leaves the optimizer's
//! state unchanged; an accepted one is what `state_dict` gives back, and a step after it runs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorgrad::optim::Optimizer;
use tensorgrad::{Tensor, io};
use tensorgrad_fuzz::{adam, bits, grads, params, sgd};

fn check<O: Optimizer<f32>>(make: impl Fn(Vec<Tensor<f32>>) -> O, state: &[(String, Tensor<f32>)]) {
    let params = params();
    let mut opt = make(params.clone());
    opt.step(&grads(&params));
    let before = bits(&opt.state_dict());
    match opt.load_state_dict(state) {
        Ok(()) => {
            // Every entry given is kept as given (step counts as numbers: -0 reads as 0).
            let after = opt.state_dict();
            assert_eq!(after.len(), state.len(), "the loaded state lost or gained entries");
            for (name, t) in state {
                let (_, kept) = after.iter().find(|(n, _)| n == name).expect("an accepted entry is kept");
                assert_eq!(kept.shape(), t.shape(), "{name}");
                if name.ends_with(".step") {
                    assert_eq!(kept.item(), t.item(), "{name}");
                } else {
                    let b = |t: &Tensor<f32>| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(b(kept), b(t), "{name}");
                }
            }
            opt.step(&grads(&params));
        }
        Err(_) => assert!(bits(&opt.state_dict()) == before, "a refused state changed the optimizer"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(state) = io::load_tensors_from_bytes::<f32>(data) else { return };
    check(adam, &state);
    check(sgd, &state);
});
