//! Tokenizer vocabularies: `Tokenizer::load` of arbitrary bytes. Never a panic; a vocabulary
//! that loads can be used, and saves and loads back to the same tokenizer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorgrad::data::Tokenizer;
use tensorgrad_fuzz::{scratch, write_scratch};

fuzz_target!(|data: &[u8]| {
    let path = write_scratch("vocab.txt", data);
    let Ok(t) = Tokenizer::load(&path) else { return };

    let text = String::from_utf8_lossy(data);
    let seqs = t.texts_to_sequences([text.as_ref(), "the cat sat on the mat"]);
    let vocab = t.vocab_size();
    assert!(seqs.iter().flatten().all(|&id| id > 0 && id < vocab), "an id outside 1..{vocab}");
    let _ = t.sequences_to_texts(&[vec![0, 1, 2, 3, vocab, usize::MAX]]);

    let again = scratch("vocab-saved.txt");
    t.save(&again).expect("saving a loaded tokenizer");
    let back = Tokenizer::load(&again).expect("loading a saved tokenizer");
    assert_eq!(back.word_counts(), t.word_counts());
    assert_eq!(back.word_index(), t.word_index());
    assert_eq!(back.num_words(), t.num_words());
    assert_eq!(back.oov_token(), t.oov_token());
    assert_eq!(back.lower(), t.lower());
    assert_eq!(back.filters(), t.filters());
    assert_eq!(back.document_count(), t.document_count());
});
