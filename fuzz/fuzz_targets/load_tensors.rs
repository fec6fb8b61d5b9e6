//! Weight files: `load_tensors_from_bytes` (f32 and f64), and `load_tensors` / `load_metadata`
//! from a file. Any input must give `Ok` or `Err`, never a panic, an abort or a huge
//! allocation; a file that loads must save and load back to the same bits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorgrad::io;
use tensorgrad_fuzz::{bits, write_scratch};

fuzz_target!(|data: &[u8]| {
    let as_f64 = io::load_tensors_from_bytes::<f64>(data);
    let as_f32 = io::load_tensors_from_bytes::<f32>(data);
    if let Ok(tensors) = &as_f32 {
        for (name, t) in tensors {
            assert_eq!(t.numel(), t.shape().iter().product::<usize>(), "{name}");
        }
        // Every tensor is F32, so as f64 the file loads only if it holds no tensor.
        assert_eq!(as_f64.is_ok(), tensors.is_empty());
        let bytes = io::save_tensors_to_bytes(tensors, &[]).expect("re-saving tensors that loaded");
        let back = io::load_tensors_from_bytes::<f32>(&bytes).expect("loading re-saved tensors");
        assert_eq!(bits(tensors), bits(&back));
    }

    // The same bytes from a file: the same verdict.
    let path = write_scratch("weights.safetensors", data);
    let from_file = io::load_tensors::<f32>(&path);
    assert_eq!(from_file.is_ok(), as_f32.is_ok());
    if let (Ok(a), Ok(b)) = (&from_file, &as_f32) {
        assert_eq!(bits(a), bits(b));
    }
    let metadata = io::load_metadata(&path);
    if as_f32.is_ok() || as_f64.is_ok() {
        assert!(metadata.is_ok(), "a file that loads has readable metadata: {metadata:?}");
    }
});
