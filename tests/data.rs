//! The `data` module against Keras's documented behaviour, file reading, and splitting.
//!
//! Keras references: the `tf.keras.preprocessing.text.Tokenizer` docs (TF 2.3–2.5 API pages)
//! and the `tf.keras.preprocessing.sequence.pad_sequences` docs, whose examples are copied
//! below as expected outputs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use tensorgrad::data::{
    Column, CsvOptions, DEFAULT_FILTERS, Format, Padding, ReadOptions, SkippedRow, Table, Tokenizer, Truncating,
    batches, batches_from, pad_sequences, pad_sequences_ids, permutation, read_csv, read_csv_from_reader,
    read_labelled, text_to_word_sequence, train_test_split, train_val_test_split,
};
use tensorgrad::{Error, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data").join(name)
}

/// A fresh directory under the system temp dir, unique to this process and test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tensorgrad-data-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn index(pairs: &[(&str, usize)]) -> HashMap<String, usize> {
    pairs.iter().map(|&(w, i)| (w.to_owned(), i)).collect()
}

// ---------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------

#[test]
fn tokenizer_ranks_by_frequency_with_ties_in_first_seen_order() {
    // Rules: ids start at 1 ("0 is a reserved index that won't be assigned to any word"); the
    // vocabulary is sorted by count, most frequent first, ties in order of first appearance
    // (Keras stably sorts its OrderedDict of counts); `word_index` holds every word whatever
    // `num_words`. Texts and `word_index` are those of a widely quoted Q&A ("Keras Tokenizer
    // num_words doesn't seem to work"), where Keras printed exactly this dict for
    // `Tokenizer(num_words=3)` — "so&#$" becomes "so" because `&`, `#`, `$` are filtered.
    let texts = ["Hello, World! This is so&#$ fantastic!", "There is no other world like this one"];
    let mut t = Tokenizer::new().with_num_words(3);
    t.fit_on_texts(texts);
    let expected = index(&[
        ("world", 1),
        ("this", 2),
        ("is", 3),
        ("hello", 4),
        ("so", 5),
        ("fantastic", 6),
        ("there", 7),
        ("no", 8),
        ("other", 9),
        ("like", 10),
        ("one", 11),
    ]);
    assert_eq!(t.word_index(), &expected);
    for (word, id) in &expected {
        assert_eq!(&t.index_word()[id], word);
    }
    assert_eq!(t.document_count(), 2);
    assert_eq!(t.word_counts()[0], ("hello".to_owned(), 1));
    assert_eq!(t.word_counts()[1], ("world".to_owned(), 2));
}

#[test]
fn tokenizer_num_words_counts_the_padding_id() {
    // Rule: "Only the most common num_words-1 words will be kept": texts_to_sequences emits
    // only ids < num_words; other known words are dropped when there is no oov_token.
    let texts = ["Hello, World! This is so&#$ fantastic!", "There is no other world like this one"];
    let mut t = Tokenizer::new().with_num_words(3);
    t.fit_on_texts(texts);
    assert_eq!(t.texts_to_sequences(texts), [vec![1, 2], vec![1, 2]]);
    assert_eq!(t.vocab_size(), 3);

    // Without a cap every word is used.
    let mut full = Tokenizer::new();
    full.fit_on_texts(texts);
    assert_eq!(full.texts_to_sequences(texts), [vec![4, 1, 2, 3, 5, 6], vec![7, 3, 8, 9, 1, 10, 2, 11]]);
    assert_eq!(full.vocab_size(), 12);
    // `num_words=0` is falsy in Keras's `if num_words and i >= num_words`: no cap.
    let mut zero = Tokenizer::new().with_num_words(0);
    zero.fit_on_texts(texts);
    assert_eq!(zero.num_words(), None);
    assert_eq!(zero.texts_to_sequences(texts), full.texts_to_sequences(texts));
}

#[test]
fn tokenizer_oov_token_gets_id_one_and_replaces_unknown_words() {
    // Rule: "oov_token: if given, it will be added to word_index and used to replace
    // out-of-vocabulary words during text_to_sequence calls"; it is placed first (id 1).
    // The texts are those of common tutorials; the expected ids are worked out by hand from the
    // documented rules (eat ×3; i, fish ×2 in order of first appearance; then the rest).
    let sentences = ["I eat chicken", "I do not eat fish", "Did you eat fish?"];
    let mut t = Tokenizer::new().with_num_words(100).with_oov_token("<OOV>");
    t.fit_on_texts(sentences);
    let expected = index(&[
        ("<OOV>", 1),
        ("eat", 2),
        ("i", 3),
        ("fish", 4),
        ("chicken", 5),
        ("do", 6),
        ("not", 7),
        ("did", 8),
        ("you", 9),
    ]);
    assert_eq!(t.word_index(), &expected);
    assert_eq!(t.texts_to_sequences(["Did you eat a sandwich?"]), [vec![8, 9, 2, 1, 1]]);

    let sentences = ["Apples are red", "Apples are round", "Oranges are round", "Grapes are green"];
    let mut t = Tokenizer::new().with_num_words(100).with_oov_token("<some-word>");
    t.fit_on_texts(sentences);
    assert_eq!(t.texts_to_sequences(["Grapes are sour but oranges are sweet"]), [vec![7, 2, 1, 1, 6, 2, 1]]);
    assert_eq!(
        t.sequences_to_texts(&[vec![7, 2, 1, 1, 6, 2, 1]]),
        ["grapes are <some-word> <some-word> oranges are <some-word>"]
    );
}

#[test]
fn tokenizer_without_oov_token_drops_unknown_words() {
    // Rule (Keras's texts_to_sequences): a word not in word_index is skipped when there is no
    // oov_token.
    let mut t = Tokenizer::new();
    t.fit_on_texts(["a b", "b"]);
    assert_eq!(t.texts_to_sequences(["a z b z"]), [vec![2, 1]]);
    assert_eq!(t.texts_to_sequences([""]), [Vec::<usize>::new()]);
}

#[test]
fn tokenizer_num_words_with_oov_maps_capped_words_to_the_oov_id() {
    // Rule: with both, a known word whose id is >= num_words becomes the OOV id; the OOV entry
    // is one of the num_words - 1 kept, so num_words=4 keeps <OOV> plus the 2 most common words.
    let mut t = Tokenizer::new().with_num_words(4).with_oov_token("<OOV>");
    t.fit_on_texts(["c c c b b a", "d"]);
    assert_eq!(t.word_index(), &index(&[("<OOV>", 1), ("c", 2), ("b", 3), ("a", 4), ("d", 5)]));
    assert_eq!(t.texts_to_sequences(["a b c d e"]), [vec![1, 3, 2, 1, 1]]);
    assert_eq!(t.vocab_size(), 4);
    // sequences_to_texts: capped and unknown ids (padding 0 included) become the OOV token.
    assert_eq!(t.sequences_to_texts(&[vec![0, 2, 4, 99]]), ["<OOV> c <OOV> <OOV>"]);

    // num_words = 1 still emits the OOV id 1 (Keras appends it unconditionally), so the
    // embedding table needs 2 rows.
    let t1 = t.clone().with_num_words(1);
    assert_eq!(t1.texts_to_sequences(["a b c"]), [vec![1, 1, 1]]);
    assert_eq!(t1.vocab_size(), 2);
}

#[test]
fn tokenizer_lower_cases_unless_told_not_to() {
    // Rule: "lower: boolean. Whether to convert the texts to lowercase" (default True).
    let mut t = Tokenizer::new();
    t.fit_on_texts(["The THE the Cat"]);
    assert_eq!(t.word_index(), &index(&[("the", 1), ("cat", 2)]));

    let mut t = Tokenizer::new().with_lower(false);
    t.fit_on_texts(["The THE the the Cat"]);
    assert_eq!(t.word_index(), &index(&[("the", 1), ("The", 2), ("THE", 3), ("Cat", 4)]));
    assert_eq!(t.texts_to_sequences(["the cat Cat"]), [vec![1, 4]]);
}

#[test]
fn tokenizer_filters_punctuation_but_keeps_apostrophes() {
    // Rule: the default filters are "all punctuation, plus tabs and line breaks, minus the '
    // character"; each filtered character becomes a separator ("words maybe include the '
    // character").
    assert_eq!(DEFAULT_FILTERS, "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n");
    let words =
        text_to_word_sequence("It's a well-made,\tfunny\nfilm (really!) [U.S.A.] #1 ~ok~", DEFAULT_FILTERS, true);
    assert_eq!(words, ["it's", "a", "well", "made", "funny", "film", "really", "u", "s", "a", "1", "ok"]);

    // Every default filter character separates words.
    let all: String = DEFAULT_FILTERS.chars().flat_map(|c| ['x', c]).collect();
    assert_eq!(text_to_word_sequence(&all, DEFAULT_FILTERS, true), vec!["x"; DEFAULT_FILTERS.chars().count()]);

    // Custom filters: "" keeps punctuation attached; any set of characters may be given.
    let mut t = Tokenizer::new().with_filters("");
    t.fit_on_texts(["Wow! wow"]);
    assert_eq!(t.word_index(), &index(&[("wow!", 1), ("wow", 2)]));
    let t = Tokenizer::new().with_filters("x—");
    assert_eq!(t.tokenize("AxB—c, d"), ["a", "b", "c,", "d"]);
}

#[test]
fn tokenizer_fitting_again_accumulates_counts() {
    // Rule (Keras's fit_on_texts): counts accumulate across calls and the ranking is recomputed
    // from all of them, ties still in order of first appearance.
    let mut t = Tokenizer::new();
    t.fit_on_texts(["a b b"]);
    assert_eq!(t.word_index(), &index(&[("b", 1), ("a", 2)]));
    t.fit_on_texts(vec!["a".to_owned()]);
    assert_eq!(t.word_index(), &index(&[("a", 1), ("b", 2)]));
    assert_eq!(t.document_count(), 2);
}

#[test]
fn tokenizer_oov_token_occurring_in_texts_keeps_a_single_id() {
    // Not Keras (which would give such a word a second id and leave id 1 without an
    // index_word entry): the token and the word share id 1.
    let mut t = Tokenizer::new().with_oov_token("unk");
    t.fit_on_texts(["unk unk unk a"]);
    assert_eq!(t.word_index(), &index(&[("unk", 1), ("a", 2)]));
    assert_eq!(t.texts_to_sequences(["a unk z"]), [vec![2, 1, 1]]);
    assert_eq!(t.vocab_size(), 3);
}

// ---------------------------------------------------------------------------------------------
// Vocabulary files
// ---------------------------------------------------------------------------------------------

fn fitted() -> Tokenizer {
    let mut t = Tokenizer::new().with_num_words(5).with_oov_token("<O\tO\\V>").with_filters("!,\t\n\\");
    t.fit_on_texts(["The cat, the hat!", "A cat\\dog sat", "naïve café"]);
    t
}

#[test]
fn tokenizer_equality_compares_settings_and_what_was_learned() {
    // Issue 12: `Tokenizer` is comparable.
    let t = fitted();
    assert_eq!(t, t.clone());
    assert_eq!(t, fitted());
    let dir = temp_dir("tokenizer_eq");
    let path = dir.join("vocab.txt");
    t.save(&path).unwrap();
    assert_eq!(Tokenizer::load(&path).unwrap(), t);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(Tokenizer::new(), Tokenizer::default());

    let fit = |t: Tokenizer, texts: &[&str]| {
        let mut t = t;
        t.fit_on_texts(texts);
        t
    };
    let base = fit(Tokenizer::new(), &["a b b", "c"]);
    assert_eq!(base, fit(Tokenizer::new(), &["a b b", "c"]));
    // Another count, order of first appearance, document count, or setting: not equal.
    for other in [
        fit(Tokenizer::new(), &["a b b b", "c"]),
        fit(Tokenizer::new(), &["b a b", "c"]),
        fit(Tokenizer::new(), &["a b b c"]),
        fit(Tokenizer::new().with_num_words(3), &["a b b", "c"]),
        fit(Tokenizer::new().with_oov_token("<unk>"), &["a b b", "c"]),
        fit(Tokenizer::new().with_filters("!"), &["a b b", "c"]),
        fit(Tokenizer::new().with_lower(false), &["a b b", "c"]),
        Tokenizer::new(),
    ] {
        assert_ne!(other, base, "{other:?}");
    }
}

fn assert_same(a: &Tokenizer, b: &Tokenizer) {
    assert_eq!(a.word_index(), b.word_index());
    assert_eq!(a.index_word(), b.index_word());
    assert_eq!(a.word_counts(), b.word_counts());
    assert_eq!(a.num_words(), b.num_words());
    assert_eq!(a.oov_token(), b.oov_token());
    assert_eq!(a.filters(), b.filters());
    assert_eq!(a.lower(), b.lower());
    assert_eq!(a.document_count(), b.document_count());
    let probe = ["the CAT sat on a hat, naïve dog!"];
    assert_eq!(a.texts_to_sequences(probe), b.texts_to_sequences(probe));
}

#[test]
fn vocabulary_save_load_round_trip() {
    let dir = temp_dir("vocab_round_trip");
    let path = dir.join("vocab.txt");

    let t = fitted();
    t.save(&path).unwrap();
    let loaded = Tokenizer::load(&path).unwrap();
    assert_same(&t, &loaded);

    // Fitting more texts after loading ranks exactly as fitting the original would.
    let (mut a, mut b) = (t.clone(), loaded);
    a.fit_on_texts(["hat hat sat"]);
    b.fit_on_texts(["hat hat sat"]);
    assert_same(&a, &b);

    // No cap, no OOV, no lower-casing, default filters; saving over an existing file.
    let mut plain = Tokenizer::new().with_lower(false);
    plain.fit_on_texts(["Some Words here", "some words"]);
    plain.save(&path).unwrap();
    assert_same(&plain, &Tokenizer::load(&path).unwrap());

    // An empty tokenizer too.
    Tokenizer::new().save(&path).unwrap();
    assert_same(&Tokenizer::new(), &Tokenizer::load(&path).unwrap());

    // The save left no temporary file behind.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["vocab.txt"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn vocabulary_file_is_readable_text() {
    let dir = temp_dir("vocab_text");
    let path = dir.join("vocab.txt");
    let mut t = Tokenizer::new().with_oov_token("<OOV>");
    t.fit_on_texts(["b a a"]);
    t.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let expected = "tensorgrad tokenizer vocabulary v1\n\
                    lower\ttrue\n\
                    filters\t!\"#$%&()*+,-./:;<=>?@[\\\\]^_`{|}~\\t\\n\n\
                    num_words\tnone\n\
                    oov_token\t<OOV>\n\
                    document_count\t1\n\
                    words\t2\n\
                    3\t1\tb\n\
                    2\t2\ta\n\
                    end\n";
    assert_eq!(text, expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Loads `bytes` as a vocabulary file and returns the error.
fn load_err(dir: &Path, bytes: &[u8]) -> Error {
    let path = dir.join("corrupt.txt");
    std::fs::write(&path, bytes).unwrap();
    match Tokenizer::load(&path) {
        Ok(_) => panic!("loaded a corrupt vocabulary: {:?}", String::from_utf8_lossy(bytes)),
        Err(e) => e,
    }
}

#[test]
fn vocabulary_load_rejects_corrupt_files() {
    let dir = temp_dir("vocab_corrupt");
    let path = dir.join("vocab.txt");
    fitted().save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    // Every truncation is an error, except dropping only the final newline.
    for len in 0..good.len() - 1 {
        let e = load_err(&dir, &good[..len]);
        assert!(matches!(e, Error::Vocabulary { .. }), "prefix of {len} bytes: {e}");
    }
    Tokenizer::load(&path).unwrap();

    let text = String::from_utf8(good.clone()).unwrap();
    let cases: Vec<(Vec<u8>, Option<usize>, &str)> = vec![
        (b"hello\n".to_vec(), Some(1), "the first line is \"hello\""),
        (text.replacen("lower\ttrue", "lower\tyes", 1).into_bytes(), Some(2), "`lower` must be"),
        (text.replacen("num_words\t5", "num_words\t-5", 1).into_bytes(), Some(4), "not a non-negative integer"),
        (text.replacen("document_count\t3", "document_count\t3\ndocument_count\t3", 1).into_bytes(), Some(7), "twice"),
        (text.replacen("num_words\t5\n", "", 1).into_bytes(), None, "`num_words` line is missing"),
        (text.replacen("\nwords\t", "\ncolour\t", 1).into_bytes(), Some(7), "unknown key"),
        (text.replacen("\tthe\n", "\tth\\e\n", 1).into_bytes(), Some(8), "unknown escape"),
        (text.replacen("\tthe\n", "\tthe\textra\n", 1).into_bytes(), Some(8), "expected `id<TAB>count<TAB>word`"),
        (text.replacen("2\t2\tthe", "3\t2\tthe", 1).into_bytes(), Some(8), "stored with id 3"),
        (text.replacen("2\t2\tthe", "2\t0\tthe", 1).into_bytes(), Some(8), "count of 0"),
        (text.replacen("\tcat\n", "\tthe\n", 1).into_bytes(), Some(9), "listed twice"),
        (text.replacen("end\n", "end\nmore\n", 1).into_bytes(), Some(17), "unexpected content after `end`"),
        (text.replacen("end\n", "", 1).into_bytes(), None, "truncated"),
        (text.replacen("words\t8", "words\t99999999999999999999", 1).into_bytes(), Some(7), "too large"),
        (text.replacen("words\t8", "words\t1000000", 1).into_bytes(), Some(16), "expected `id<TAB>count<TAB>word`"),
    ];
    for (bytes, line, needle) in cases {
        let e = load_err(&dir, &bytes);
        let Error::Vocabulary { path, line: got, reason } = &e else { panic!("not a vocabulary error: {e}") };
        assert_eq!(path, &dir.join("corrupt.txt"));
        assert_eq!(*got, line, "{e}");
        assert!(reason.contains(needle), "{e}");
        assert!(e.to_string().contains("not a valid tokenizer vocabulary"), "{e}");
    }

    // Bytes that are not UTF-8 name their line.
    let mut bad = good.clone();
    let at = text.find("\tcat\n").unwrap() + 2;
    bad[at] = 0xFF;
    let e = load_err(&dir, &bad);
    assert!(matches!(&e, Error::Vocabulary { line: Some(9), reason, .. } if reason.contains("UTF-8")), "{e}");

    // A missing file is an I/O error.
    let e = Tokenizer::load(dir.join("missing.txt")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    // So is saving into a directory that does not exist.
    let e = fitted().save(dir.join("no/such/dir/vocab.txt")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// pad_sequences
// ---------------------------------------------------------------------------------------------

/// The rows of a `[n, maxlen]` tensor of ids, as integers.
fn rows(t: &tensorgrad::Tensor) -> Vec<Vec<i64>> {
    let (n, m) = (t.shape()[0], t.shape()[1]);
    let v = t.to_vec();
    (0..n).map(|i| v[i * m..(i + 1) * m].iter().map(|&x| x as i64).collect()).collect()
}

#[test]
fn pad_sequences_matches_the_keras_docs() {
    let sequence = vec![vec![1], vec![2, 3], vec![4, 5, 6]];
    let (pre, post) = (Padding::Pre, Padding::Post);
    let (tpre, tpost) = (Truncating::Pre, Truncating::Post);

    // Docs: pad_sequences(sequence) -> [[0, 0, 1], [0, 2, 3], [4, 5, 6]]; the defaults are
    // padding='pre', truncating='pre', value=0, and maxlen=None pads to the longest sequence.
    assert_eq!(Padding::default(), pre);
    assert_eq!(Truncating::default(), tpre);
    let x = pad_sequences(&sequence, None, pre, tpre, 0.0);
    assert_eq!(x.shape(), &[3, 3]);
    assert_eq!(rows(&x), [[0, 0, 1], [0, 2, 3], [4, 5, 6]]);

    // Docs: value=-1 -> [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]] (custom padding value).
    assert_eq!(rows(&pad_sequences(&sequence, None, pre, tpre, -1.0)), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]);

    // Docs: padding='post' -> [[1, 0, 0], [2, 3, 0], [4, 5, 6]].
    assert_eq!(rows(&pad_sequences(&sequence, None, post, tpre, 0.0)), [[1, 0, 0], [2, 3, 0], [4, 5, 6]]);

    // Docs: maxlen=2 -> [[0, 1], [2, 3], [5, 6]] (default 'pre' truncation drops the start).
    assert_eq!(rows(&pad_sequences(&sequence, Some(2), pre, tpre, 0.0)), [[0, 1], [2, 3], [5, 6]]);

    // truncating='post' removes values "in the end of the sequence": [[1,2],[3],[4,5,6]] with
    // maxlen=2 -> [[1, 2], [0, 3], [4, 5]].
    let a = vec![vec![1, 2], vec![3], vec![4, 5, 6]];
    assert_eq!(rows(&pad_sequences(&a, Some(2), pre, tpost, 0.0)), [[1, 2], [0, 3], [4, 5]]);
    // maxlen=3, padding='post' -> [[1, 2, 0], [3, 0, 0], [4, 5, 6]].
    assert_eq!(rows(&pad_sequences(&a, Some(3), post, tpre, 0.0)), [[1, 2, 0], [3, 0, 0], [4, 5, 6]]);
    // Both 'post', maxlen=2.
    assert_eq!(rows(&pad_sequences(&a, Some(2), post, tpost, 0.0)), [[1, 2], [3, 0], [4, 5]]);
    // maxlen longer than every sequence pads every row.
    assert_eq!(rows(&pad_sequences(&a, Some(4), pre, tpre, 9.0)), [[9, 9, 1, 2], [9, 9, 9, 3], [9, 4, 5, 6]]);
}

#[test]
fn pad_sequences_edge_cases() {
    // An empty sequence becomes a row of padding (Keras skips it, leaving the fill value).
    let seqs: Vec<Vec<usize>> = vec![vec![], vec![7, 8]];
    assert_eq!(rows(&pad_sequences(&seqs, None, Padding::Pre, Truncating::Pre, 0.0)), [[0, 0], [7, 8]]);
    // No sequences: shape [0, maxlen].
    let none: Vec<Vec<usize>> = vec![];
    assert_eq!(pad_sequences(&none, None, Padding::Pre, Truncating::Pre, 0.0).shape(), &[0, 0]);
    assert_eq!(pad_sequences(&none, Some(5), Padding::Pre, Truncating::Pre, 0.0).shape(), &[0, 5]);
    // maxlen 0: empty rows.
    assert_eq!(pad_sequences(&seqs, Some(0), Padding::Pre, Truncating::Pre, 0.0).shape(), &[2, 0]);
    // Slices work as input too.
    let slices: [&[usize]; 2] = [&[1, 2, 3], &[4]];
    assert_eq!(rows(&pad_sequences(&slices, Some(2), Padding::Post, Truncating::Pre, 0.0)), [[2, 3], [4, 0]]);
}

#[test]
fn pad_sequences_ids_matches_pad_sequences() {
    let seqs = vec![vec![1, 2, 3, 4, 5], vec![6], vec![], vec![7, 8, 9]];
    for maxlen in [None, Some(0), Some(1), Some(3), Some(6)] {
        for padding in [Padding::Pre, Padding::Post] {
            for truncating in [Truncating::Pre, Truncating::Post] {
                let ids = pad_sequences_ids(&seqs, maxlen, padding, truncating, 0);
                let t = pad_sequences(&seqs, maxlen, padding, truncating, 0.0);
                let width = maxlen.unwrap_or(5);
                assert_eq!(t.shape(), &[4, width]);
                let as_i64: Vec<Vec<i64>> = ids.iter().map(|r| r.iter().map(|&x| x as i64).collect()).collect();
                assert_eq!(rows(&t), as_i64, "{maxlen:?} {padding:?} {truncating:?}");
            }
        }
    }
    // A padding value that is not 0.
    assert_eq!(pad_sequences_ids(&[vec![1]], Some(3), Padding::Post, Truncating::Pre, 99), [vec![1, 99, 99]]);
}

#[test]
#[should_panic(expected = "cannot be stored exactly in an f32 tensor")]
fn pad_sequences_rejects_ids_f32_cannot_hold() {
    pad_sequences(&[vec![(1 << 24) + 1]], None, Padding::Pre, Truncating::Pre, 0.0);
}

// ---------------------------------------------------------------------------------------------
// Labelled files
// ---------------------------------------------------------------------------------------------

#[test]
fn tsv_keeps_double_quotes_as_text() {
    // TSV has no quoting: a `"` anywhere is part of the text, even an unbalanced one.
    let data = read_labelled(fixture("quotes.tsv"), &ReadOptions::new()).unwrap();
    assert_eq!(data.texts, ["A \"great\" film, truly.", "\"Dull\" from start to finish", "He said \"wow"]);
    assert_eq!(data.labels, [1.0, 0.0, 1.0]);
    assert_eq!(data.skipped, 0);
    assert_eq!(data.len(), 3);
}

#[test]
fn csv_handles_quoted_commas_newlines_and_column_order() {
    // RFC 4180: quoted fields may hold commas, newlines and doubled quotes; the header names the
    // columns in any order (here id,text,label) and extra columns are ignored.
    let data = read_labelled(fixture("quoted.csv"), &ReadOptions::new()).unwrap();
    assert_eq!(data.texts, ["Funny, warm, and wise.", "A film in\ntwo lines, with \"quotes\".", "Plain text"]);
    assert_eq!(data.labels, [1.0, 0.0, 1.0]);
}

#[test]
fn format_follows_the_extension_or_the_options() {
    let dir = temp_dir("format");
    // A CSV file with a .txt name: unknown extension is an error, an explicit format works.
    let path = dir.join("reviews.txt");
    std::fs::copy(fixture("quoted.csv"), &path).unwrap();
    let e = read_labelled(&path, &ReadOptions::new()).unwrap_err();
    assert!(matches!(&e, Error::DataFile { line: None, .. }), "{e}");
    assert!(e.to_string().contains("reviews.txt") && e.to_string().contains("extension"), "{e}");
    let data = read_labelled(&path, &ReadOptions::new().with_format(Format::Csv)).unwrap();
    assert_eq!(data.len(), 3);
    // The same bytes read as TSV: the header has no tab, so no `label` column.
    let e = read_labelled(&path, &ReadOptions::new().with_format(Format::Tsv)).unwrap_err();
    assert!(e.to_string().contains(":1: the header has no `label` column"), "{e}");

    // Windows line ends, a byte order mark, blank lines, custom column names, spaces around a
    // label.
    let path = dir.join("windows.tsv");
    std::fs::write(&path, b"\xEF\xBB\xBFtext\tscore\r\n\r\nfine\t 1 \r\n\r\nalso fine\t-0.5\r\n").unwrap();
    let data = read_labelled(&path, &ReadOptions::new().with_columns("score", "text")).unwrap();
    assert_eq!(data.texts, ["fine", "also fine"]);
    assert_eq!(data.labels, [1.0, -0.5]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The message of the error of reading `name` with default options.
fn read_error(name: &str) -> (Option<usize>, String) {
    match read_labelled(fixture(name), &ReadOptions::new()) {
        Ok(d) => panic!("read {name} without error: {d:?}"),
        Err(e @ Error::DataFile { line, .. }) => (line, e.to_string()),
        Err(e) => panic!("{name}: unexpected error {e}"),
    }
}

#[test]
fn malformed_rows_name_the_file_line_and_problem() {
    // The first bad row (line 3: three fields) stops the read.
    let (line, msg) = read_error("bad_rows.tsv");
    assert_eq!(line, Some(3));
    let path = fixture("bad_rows.tsv");
    assert_eq!(msg, format!("{}:3: expected 2 tab-separated fields, found 3", path.display()));

    // A CSV row spanning lines 3–4 is reported at the line where it starts.
    let (line, msg) = read_error("bad_rows.csv");
    assert_eq!(line, Some(3));
    assert!(msg.ends_with("bad_rows.csv:3: expected 2 comma-separated fields, found 3"), "{msg}");

    // Bytes that are not UTF-8.
    let (line, msg) = read_error("non_utf8.tsv");
    assert_eq!(line, Some(3));
    assert!(msg.contains("non_utf8.tsv:3: the line is not valid UTF-8"), "{msg}");

    // A missing column is an error of the header, in skip mode too.
    for skip in [false, true] {
        let e = read_labelled(fixture("no_label.tsv"), &ReadOptions::new().with_skip_bad_rows(skip)).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "no_label.tsv:1: the header has no `label` column (found `score`, `text`; is this tab-separated data?)"
            ),
            "{e}"
        );
    }

    // Labels: not a number, not finite, empty.
    let dir = temp_dir("malformed");
    for (row, reason) in [
        ("abc\tx", "label \"abc\" is not a number"),
        ("nan\tx", "label \"nan\" is not a finite number"),
        ("inf\tx", "label \"inf\" is not a finite number"),
        ("\tx", "the label is empty"),
    ] {
        let path = dir.join("one.tsv");
        std::fs::write(&path, format!("label\ttext\n1\tfine\n{row}\n")).unwrap();
        let e = read_labelled(&path, &ReadOptions::new()).unwrap_err();
        assert_eq!(e.to_string(), format!("{}:3: {reason}", path.display()));
    }
    // An empty file, a duplicate column, a non-UTF-8 CSV field, a missing file.
    let path = dir.join("empty.csv");
    std::fs::write(&path, "").unwrap();
    let e = read_labelled(&path, &ReadOptions::new()).unwrap_err();
    assert!(matches!(&e, Error::DataFile { line: None, .. }) && e.to_string().contains("empty"), "{e}");
    std::fs::write(&path, "label,text,label\n1,a,1\n").unwrap();
    let e = read_labelled(&path, &ReadOptions::new()).unwrap_err();
    assert!(e.to_string().ends_with("empty.csv:1: the header has more than one `label` column"), "{e}");
    std::fs::write(&path, b"label,text\n1,\"caf\xE9\"\n").unwrap();
    let e = read_labelled(&path, &ReadOptions::new()).unwrap_err();
    assert!(e.to_string().contains("empty.csv:2: field 2 is not valid UTF-8"), "{e}");
    let e = read_labelled(dir.join("missing.tsv"), &ReadOptions::new()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn skip_mode_counts_and_lists_bad_rows() {
    let skip = ReadOptions::new().with_skip_bad_rows(true);
    let data = read_labelled(fixture("bad_rows.tsv"), &skip).unwrap();
    assert_eq!(data.texts, ["good row", "another good row"]);
    assert_eq!(data.labels, [1.0, 0.0]);
    assert_eq!(data.skipped, 4);
    let lines: Vec<usize> = data.skipped_rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 4, 6, 7]);
    assert_eq!(data.skipped_rows[1], SkippedRow { line: 4, reason: "label \"abc\" is not a number".to_owned() });

    let data = read_labelled(fixture("bad_rows.csv"), &skip).unwrap();
    assert_eq!(data.texts, ["one, quoted", "ok"]);
    assert_eq!(data.skipped, 1);
    assert_eq!(data.skipped_rows[0].line, 3);

    let data = read_labelled(fixture("non_utf8.tsv"), &skip).unwrap();
    assert_eq!(data.texts, ["valid", "valid again"]);
    assert_eq!(data.skipped, 1);
}

/// Reads `contents` as a labelled CSV file named `name` in a fresh directory.
fn read_labelled_bytes(
    test: &str,
    contents: &[u8],
    skip: bool,
) -> (PathBuf, Result<tensorgrad::data::TextDataset, Error>) {
    let dir = temp_dir(test);
    let path = dir.join("reviews.csv");
    std::fs::write(&path, contents).unwrap();
    let result = read_labelled(&path, &ReadOptions::new().with_skip_bad_rows(skip));
    (path, result)
}

#[test]
fn csv_quote_that_never_closes_is_an_error_not_a_merged_row() {
    // Issue 12: the csv crate reads `"oops` to the end of the file, so three rows became one.
    let contents = b"label,text\n1,\"oops\n0,second\n1,third\n";
    let (path, result) = read_labelled_bytes("csv_unclosed", contents, false);
    let e = result.unwrap_err();
    assert!(matches!(&e, Error::DataFile { line: Some(2), .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2: field 2 opens a quote that is never closed (it would take the rest of the file, 23 bytes, as its text)",
            path.display()
        )
    );
    // Skipping drops the bad row only and reads on from the next line.
    let (_, result) = read_labelled_bytes("csv_unclosed_skip", contents, true);
    let data = result.unwrap();
    assert_eq!(data.texts, ["second", "third"]);
    assert_eq!(data.labels, [0.0, 1.0]);
    assert_eq!(data.skipped, 1);
    assert_eq!(data.skipped_rows[0].line, 2);
    assert!(data.skipped_rows[0].reason.contains("never closed"), "{:?}", data.skipped_rows);

    // A lone quote at the very end is not an empty text.
    let (_, result) = read_labelled_bytes("csv_lone_quote", b"label,text\n1,\"", false);
    let e = result.unwrap_err();
    assert!(matches!(&e, Error::DataFile { line: Some(2), .. }), "{e}");
    assert!(e.to_string().contains("field 2 opens a quote that is never closed"), "{e}");
    let (_, result) = read_labelled_bytes("csv_lone_quote_skip", b"label,text\n1,a\n1,\"", true);
    let data = result.unwrap();
    assert_eq!((data.texts, data.skipped), (vec!["a".to_owned()], 1));

    // The line is the one where the bad quote opens, after blank lines and a good multi-line field.
    let (_, result) =
        read_labelled_bytes("csv_unclosed_late", b"label,text\n\n\r\n1,\"two\nlines\"\n0,\"open\n", false);
    let e = result.unwrap_err();
    assert!(matches!(&e, Error::DataFile { line: Some(6), .. }), "{e}");
    // In the header it is an error even when skipping.
    let (_, result) = read_labelled_bytes("csv_unclosed_header", b"\"label,text\n1,a\n", true);
    let e = result.unwrap_err();
    assert!(matches!(&e, Error::DataFile { line: Some(1), .. }), "{e}");
}

#[test]
fn csv_text_after_a_closing_quote_is_an_error() {
    // Issue 12: `"fine"x` was read as `finex`.
    let contents = b"label,text\n1,\"fine\"x\n0,next\n";
    let (path, result) = read_labelled_bytes("csv_after_quote", contents, false);
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "{}:2: field 2 has text after its closing quote: \"x\" (write a `\"` inside a quoted field as `\"\"`)",
            path.display()
        )
    );
    let (_, result) = read_labelled_bytes("csv_after_quote_skip", contents, true);
    let data = result.unwrap();
    assert_eq!(data.texts, ["next"]);
    assert_eq!(data.skipped_rows.len(), 1);
    assert_eq!(data.skipped_rows[0].line, 2);
    // A quoted field spanning lines is reported where it opens.
    let (_, result) = read_labelled_bytes("csv_after_quote_multiline", b"label,text\n1,\"a\nb\" c\n", false);
    let e = result.unwrap_err();
    assert!(matches!(&e, Error::DataFile { line: Some(2), .. }), "{e}");
    assert!(e.to_string().contains("text after its closing quote: \" c\""), "{e}");
}

#[test]
fn csv_quoted_newlines_and_doubled_quotes_still_read() {
    let contents = b"label,text\r\n1,\"two\nlines, \"\"quoted\"\"\"\r\n0,\"\"\r\n1,plain \"inch\" mark\n0,\"\"\"\"\n";
    let (_, result) = read_labelled_bytes("csv_valid_quotes", contents, false);
    let data = result.unwrap();
    assert_eq!(data.texts, ["two\nlines, \"quoted\"", "", "plain \"inch\" mark", "\""]);
    assert_eq!(data.labels, [1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn labelled_csv_lines_count_blank_lines_and_crlf() {
    // The csv crate's own line numbers skip blank lines; errors name the file's real lines.
    let (_, result) = read_labelled_bytes("csv_blank_lines", b"label,text\n\n\r\nx,a\r\n\r\n\"y\nz\",b\n", true);
    let lines: Vec<usize> = result.unwrap().skipped_rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [4, 6]);
}

#[test]
fn read_csv_rejects_malformed_quotes_too() {
    let target = CsvOptions::new().with_target("y");
    let (line, msg) = table_error("table_unclosed", b"x,y\n1,0\n\"2,1\n3,0\n", &target);
    assert_eq!(line, Some(3));
    assert!(
        msg.ends_with(
            ":3: field 1 opens a quote that is never closed (it would take the rest of the file, 9 bytes, as its text)"
        ),
        "{msg}"
    );
    let (line, msg) = table_error("table_after_quote", b"x,y\n1,0\n\"2\"5,1\n", &target);
    assert_eq!(line, Some(3));
    assert!(msg.contains("field 1 has text after its closing quote: \"5\""), "{msg}");
    // Other delimiters share the check.
    let tabs = CsvOptions::new().with_delimiter(b'\t').with_target("y");
    let (line, msg) = table_error("table_after_quote_tab", b"x\ty\n\"1\" \t0\n", &tabs);
    assert_eq!(line, Some(2));
    assert!(msg.contains("field 1 has text after its closing quote: \" \""), "{msg}");
    let (_, table) = read_table("table_quotes_ok", "t.tsv", b"x\ty\n\"1\"\t\"0\"\n\"2\"\t1\n", &tabs);
    assert_eq!(table.unwrap().feature_values(), [1.0, 2.0]);
}

/// Asserts that an error message is short, names `line`, and shows no raw control byte.
fn assert_short_message(e: &Error, line: usize) {
    let msg = e.to_string();
    assert!(msg.len() < 400, "{} bytes: {}", msg.len(), &msg[..msg.len().min(1000)]);
    assert!(msg.contains(&format!(":{line}: ")), "{msg}");
    assert!(!msg.chars().any(|c| c.is_control() && c != '\n'), "{msg:?}");
}

#[test]
fn errors_quote_at_most_an_escaped_excerpt_of_a_huge_line() {
    // Issue 12: a 48 MiB malformed line made a 50 MB message.
    let dir = temp_dir("huge_lines");
    let huge = "x".repeat(48 << 20);

    // A vocabulary file: the line is quoted cut, with its full length.
    let path = dir.join("vocab.txt");
    std::fs::write(&path, format!("tensorgrad tokenizer vocabulary v1\n{huge}\n")).unwrap();
    let e = Tokenizer::load(&path).unwrap_err();
    assert!(matches!(&e, Error::Vocabulary { line: Some(2), .. }), "{}", &e.to_string()[..200]);
    assert_short_message(&e, 2);
    assert!(e.to_string().ends_with(&format!("found \"{}\"… (50331648 bytes in all)", "x".repeat(100))), "{e}");

    // A labelled TSV file with a huge label, a CSV table with a huge field.
    let path = dir.join("huge.tsv");
    std::fs::write(&path, format!("label\ttext\n1\tok\n{huge}\ttext\n")).unwrap();
    let e = read_labelled(&path, &ReadOptions::new()).unwrap_err();
    assert_short_message(&e, 3);
    assert!(e.to_string().contains("(50331648 bytes in all) is not a number"), "{e}");
    let path = dir.join("huge.csv");
    std::fs::write(&path, format!("x,y\n1,2\n3,\"{huge}\"\n")).unwrap();
    let e = read_csv(&path, &CsvOptions::new()).unwrap_err();
    assert_short_message(&e, 3);
    // A quote that never closes in a huge file: the message only counts the bytes.
    std::fs::write(&path, format!("x,y\n1,\"{huge}\n")).unwrap();
    let e = read_csv(&path, &CsvOptions::new()).unwrap_err();
    assert_short_message(&e, 2);
    // A header of a million columns lists twenty of them.
    let header: Vec<String> = (0..1_000_000).map(|i| format!("c{i}")).collect();
    std::fs::write(&path, format!("{}\n", header.join(","))).unwrap();
    let e = read_csv(&path, &CsvOptions::new().with_target("y")).unwrap_err();
    assert_short_message(&e, 1);
    assert!(e.to_string().ends_with("`c18`, `c19`, … (1000000 in all))"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn header_errors_escape_control_bytes() {
    // Issue 12: a header with control bytes was printed raw (a terminal would run the escapes).
    let dir = temp_dir("control_bytes");
    let path = dir.join("ctrl.tsv");
    std::fs::write(&path, "lab\x1b[31mel\ttext\x07\n1\ta\n").unwrap();
    let e = read_labelled(&path, &ReadOptions::new()).unwrap_err();
    assert_short_message(&e, 1);
    assert!(
        e.to_string().ends_with(
            "ctrl.tsv:1: the header has no `label` column (found `lab\\u{1b}[31mel`, `text\\u{7}`; is this tab-separated data?)"
        ),
        "{e}"
    );
    let path = dir.join("ctrl.csv");
    std::fs::write(&path, "a\x1b]0;pwned\x07,y\n1,2\n").unwrap();
    let e = read_csv(&path, &CsvOptions::new().with_target("z")).unwrap_err();
    assert!(e.to_string().ends_with("the header has no `z` column (found `a\\u{1b}]0;pwned\\u{7}`, `y`)"), "{e}");
    std::fs::write(&path, "a\t\x08,y\n1,2\nq,3\n").unwrap();
    let e = read_csv(&path, &CsvOptions::new()).unwrap_err();
    assert!(e.to_string().ends_with("ctrl.csv:3: column `a\\t\\u{8}`: \"q\" is not a number"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Splits and batches
// ---------------------------------------------------------------------------------------------

fn assert_partition(parts: &[&[usize]], n: usize) {
    let mut seen = HashSet::new();
    for part in parts {
        for &i in *part {
            assert!(i < n, "index {i} out of range");
            assert!(seen.insert(i), "index {i} appears twice");
        }
    }
    assert_eq!(seen.len(), n, "some indices are missing");
}

#[test]
fn train_test_split_is_seeded_disjoint_and_complete() {
    for n in [0, 1, 2, 10, 101] {
        for fraction in [0.0, 0.2, 0.5, 1.0] {
            let (train, test) = train_test_split(n, fraction, 3);
            assert_partition(&[&train, &test], n);
            assert_eq!(test.len(), (fraction * n as f64).ceil() as usize);
            assert_eq!((train.clone(), test.clone()), train_test_split(n, fraction, 3));
        }
    }
    // 0.7 × 10 is 7.000000000000001 in floating point; the test part still has 7 rows.
    assert_eq!(train_test_split(10, 0.7, 0).1.len(), 7);
    // Another seed, another split (and the rows are shuffled, not taken in order).
    let (train_a, _) = train_test_split(1000, 0.2, 1);
    let (train_b, _) = train_test_split(1000, 0.2, 2);
    assert_ne!(train_a, train_b);
    assert_ne!(permutation(1000, 1), (0..1000).collect::<Vec<_>>());
}

#[test]
fn train_val_test_split_is_seeded_disjoint_and_complete() {
    for n in [0, 1, 3, 10, 97] {
        let s = train_val_test_split(n, 0.15, 0.25, 9);
        assert_partition(&[&s.train, &s.validation, &s.test], n);
        assert_eq!(s, train_val_test_split(n, 0.15, 0.25, 9));
        // The test part is the one train_test_split gives.
        assert_eq!(s.test, train_test_split(n, 0.25, 9).1);
    }
    let s = train_val_test_split(3, 0.5, 0.5, 0);
    assert_eq!((s.train.len(), s.validation.len(), s.test.len()), (0, 1, 2));
}

#[test]
#[should_panic(expected = "train_test_split: the fraction must be in [0, 1], got 1.5")]
fn train_test_split_rejects_a_bad_fraction() {
    train_test_split(10, 1.5, 0);
}

#[test]
#[should_panic(expected = "add up to more than 1")]
fn train_val_test_split_rejects_fractions_over_one() {
    train_val_test_split(10, 0.6, 0.6, 0);
}

#[test]
fn dataset_split_keeps_texts_with_their_labels() {
    let data = read_labelled(fixture("quoted.csv"), &ReadOptions::new()).unwrap();
    let (train, test) = data.train_test_split(0.34, 5);
    assert_eq!((train.len(), test.len()), (1, 2));
    for part in [&train, &test] {
        for (text, label) in part.texts.iter().zip(&part.labels) {
            let i = data.texts.iter().position(|t| t == text).unwrap();
            assert_eq!(data.labels[i], *label);
        }
    }
    assert_eq!(data.subset(&[2, 0]).texts, ["Plain text", "Funny, warm, and wise."]);
}

#[test]
fn batches_cover_every_index_once() {
    // In order without a seed; the last batch holds the remainder.
    let all: Vec<Vec<usize>> = batches(7, 3, None).collect();
    assert_eq!(all, [vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    assert_eq!(batches(0, 3, None).count(), 0);
    assert_eq!(batches(6, 3, None).len(), 2);

    // Seeded: reproducible, a permutation, and different for another seed.
    let a: Vec<Vec<usize>> = batches(100, 32, Some(7)).collect();
    assert_eq!(a, batches(100, 32, Some(7)).collect::<Vec<_>>());
    assert_ne!(a, batches(100, 32, Some(8)).collect::<Vec<_>>());
    assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), [32, 32, 32, 4]);
    let flat: Vec<usize> = a.concat();
    assert_partition(&[&flat], 100);

    // Over a subset of indices.
    let (train, _) = train_test_split(50, 0.2, 0);
    let from: Vec<usize> = batches_from(&train, 8, Some(1)).flatten().collect();
    let (mut x, mut y) = (from.clone(), train.clone());
    x.sort();
    y.sort();
    assert_eq!(x, y);
    assert_eq!(batches_from(&train, 8, None).flatten().collect::<Vec<_>>(), train);
}

#[test]
#[should_panic(expected = "batches: batch_size must be at least 1, got 0")]
fn batches_of_size_zero_panic() {
    let _ = batches(10, 0, None);
}

// ---------------------------------------------------------------------------------------------
// Numeric tables (read_csv)
// ---------------------------------------------------------------------------------------------

/// Writes `contents` to `name` in a fresh directory for `test` and reads it with `options`.
fn read_table(test: &str, name: &str, contents: &[u8], options: &CsvOptions) -> (PathBuf, Result<Table, Error>) {
    let dir = temp_dir(test);
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    let result = read_csv(&path, options);
    std::fs::remove_dir_all(&dir).unwrap();
    (path, result)
}

/// The `(line, message)` of the `DataFile` error of reading `contents`.
fn table_error(test: &str, contents: &[u8], options: &CsvOptions) -> (Option<usize>, String) {
    match read_table(test, "t.csv", contents, options) {
        (path, Err(e @ Error::DataFile { .. })) => {
            let message = e.to_string();
            assert!(message.starts_with(&path.display().to_string()), "no file name in {message:?}");
            let Error::DataFile { line, .. } = e else { unreachable!() };
            (line, message)
        }
        (_, Err(e)) => panic!("{test}: unexpected error {e}"),
        (_, Ok(t)) => panic!("{test}: a malformed file was accepted: {t:?}"),
    }
}

#[test]
fn csv_table_with_a_header_and_the_target_by_name() {
    // The target sits between features; spaces around names and numbers are trimmed.
    let csv = b"height, target ,weight\n1.5,0, 60\n1.8,1,80.5\n 1.6 ,2,-7e1\n";
    let (_, table) = read_table("csv_header", "people.csv", csv, &CsvOptions::new().with_target("target"));
    let table = table.unwrap();
    assert_eq!(table.len(), 3);
    assert_eq!(table.feature_names(), ["height", "weight"]);
    assert_eq!(table.num_features(), 2);
    assert_eq!(table.target_name(), Some("target"));
    assert_eq!(table.feature_values(), [1.5, 60.0, 1.8, 80.5, 1.6, -70.0]);
    assert_eq!(table.feature_row(1), Some(&[1.8, 80.5][..]));
    assert_eq!(table.feature_row(3), None);
    assert_eq!(table.target_values(), Some(&[0.0, 1.0, 2.0][..]));
    assert_eq!(table.column("weight"), Some(vec![60.0, 80.5, -70.0]));
    assert_eq!(table.column("target"), Some(vec![0.0, 1.0, 2.0]));
    assert_eq!(table.column("age"), None);
    assert_eq!((table.line(0), table.line(2), table.line(3)), (Some(2), Some(4), None));
    assert!(table.path().ends_with("people.csv"));

    let x: Tensor = table.features();
    assert_eq!(x.shape(), &[3, 2]);
    assert_eq!(x.to_vec(), [1.5f32, 60.0, 1.8, 80.5, 1.6, -70.0]);
    let x64: Tensor<f64> = table.features();
    assert_eq!(x64.to_vec(), table.feature_values());
    let y: Tensor = table.target().unwrap();
    assert_eq!(y.shape(), &[3]);
    assert_eq!(y.to_vec(), [0.0f32, 1.0, 2.0]);
    assert_eq!(table.target_classes(Some(3)).unwrap(), [0, 1, 2]);
    assert_eq!(table.target_classes(None).unwrap(), [0, 1, 2]);

    // The subset keeps rows, targets and lines together.
    let sub = table.subset(&[2, 0]);
    assert_eq!(sub.feature_values(), [1.6, -70.0, 1.5, 60.0]);
    assert_eq!(sub.target_values(), Some(&[2.0, 0.0][..]));
    assert_eq!((sub.line(0), sub.line(1)), (Some(4), Some(2)));

    // Without a target, every column is a feature.
    let (_, all) = read_table("csv_header_all", "people.csv", csv, &CsvOptions::new());
    let all = all.unwrap();
    assert_eq!(all.feature_names(), ["height", "target", "weight"]);
    assert_eq!(all.target_name(), None);
    assert!(all.target::<f32>().is_none());
    let e = all.target_classes(None).unwrap_err();
    assert!(matches!(&e, Error::DataFile { line: None, .. }) && e.to_string().contains("no target column"), "{e}");
}

#[test]
fn csv_table_without_a_header_and_the_target_by_index() {
    let csv = b"1,2,3\n4,5,6\n";
    let options = CsvOptions::new().with_header(false).with_target(0);
    let (_, table) = read_table("csv_no_header", "plain.csv", csv, &options);
    let table = table.unwrap();
    // The first record is data; columns are named by their position.
    assert_eq!(table.len(), 2);
    assert_eq!(table.feature_names(), ["1", "2"]);
    assert_eq!(table.target_name(), Some("0"));
    assert_eq!(table.feature_values(), [2.0, 3.0, 5.0, 6.0]);
    assert_eq!(table.target_values(), Some(&[1.0, 4.0][..]));
    assert_eq!((table.line(0), table.line(1)), (Some(1), Some(2)));

    // The same by the generated name, and features chosen by name and position, in that order.
    let options = CsvOptions::new().with_header(false).with_target("0").with_features([Column::Index(2), "1".into()]);
    let table = read_csv_from_reader(&csv[..], "plain.csv", &options).unwrap();
    assert_eq!(table.feature_names(), ["2", "1"]);
    assert_eq!(table.feature_values(), [3.0, 2.0, 6.0, 5.0]);
    assert_eq!(table.target_values(), Some(&[1.0, 4.0][..]));

    // The target by index in a file with a header.
    let csv = b"a,b,label\n1,2,1\n";
    let table = read_csv_from_reader(&csv[..], "h.csv", &CsvOptions::new().with_target(2)).unwrap();
    assert_eq!(table.target_name(), Some("label"));
    assert_eq!(table.feature_names(), ["a", "b"]);
}

#[test]
fn csv_table_options_and_file_details() {
    // Chosen features in the order given; other columns are not read, even when not numbers.
    let csv = b"id,date,x,y,note\n1,2024-01,0.5,7,fine\n2,2024-02,1.5,8,\"has, a comma\"\n";
    let options = CsvOptions::new().with_features(["y", "x"]).with_text_columns(["date"]);
    let table = read_csv_from_reader(&csv[..], "d.csv", &options).unwrap();
    assert_eq!(table.feature_names(), ["y", "x"]);
    assert_eq!(table.feature_values(), [7.0, 0.5, 8.0, 1.5]);
    assert_eq!(table.text_column("date"), Some(&["2024-01".to_owned(), "2024-02".to_owned()][..]));
    assert_eq!(table.text_column("note"), None);

    // Text columns are never features by default; `max_rows` stops before the bad third row.
    let csv = b"when,v\nmon,1\ntue,2\nwed,oops\n";
    let options = CsvOptions::new().with_text_columns([0]).with_max_rows(2);
    let table = read_csv_from_reader(&csv[..], "m.csv", &options).unwrap();
    assert_eq!(table.feature_names(), ["v"]);
    assert_eq!(table.feature_values(), [1.0, 2.0]);
    assert_eq!(table.subset(&[1]).text_column("when"), Some(&["tue".to_owned()][..]));

    // A byte order mark, Windows line ends, empty lines, quoted numbers, tabs.
    let csv = b"\xEF\xBB\xBFa\tb\r\n\r\n1\t\"2\"\r\n\r\n3\t4\r\n";
    let table =
        read_csv_from_reader(&csv[..], "w.tsv", &CsvOptions::new().with_delimiter(b'\t').with_target("b")).unwrap();
    assert_eq!(table.feature_names(), ["a"]);
    assert_eq!(table.feature_values(), [1.0, 3.0]);
    assert_eq!(table.target_values(), Some(&[2.0, 4.0][..]));
    assert_eq!((table.line(0), table.line(1)), (Some(3), Some(5)));

    // Only a target: no features, a `[n, 0]` tensor.
    let table = read_csv_from_reader(&b"y\n1\n2\n"[..], "y.csv", &CsvOptions::new().with_target("y")).unwrap();
    assert_eq!(table.num_features(), 0);
    assert_eq!(table.feature_row(1), Some(&[][..]));
    assert_eq!(table.features::<f32>().shape(), &[2, 0]);
}

#[test]
fn csv_non_numeric_field_names_the_file_line_and_column() {
    let target = CsvOptions::new().with_target("label");
    let (line, msg) = table_error("csv_nan", b"x,label\n1,0\n2,1\nabc,0\n", &target);
    assert_eq!(line, Some(4));
    assert!(msg.ends_with("t.csv:4: column `x`: \"abc\" is not a number"), "{msg}");

    // The target is checked too, and a row is reported where its quoted record starts.
    let (line, msg) = table_error("csv_nan_quoted", b"x,label\n1,0\n\"2\n3\",1\n", &target);
    assert_eq!(line, Some(3));
    assert!(msg.ends_with("t.csv:3: column `x`: \"2\\n3\" is not a number"), "{msg}");
    let (line, _) = table_error("csv_nan_after_quoted", b"x,label\n\"1\n\",0\n\r\n2,0\r\nz,1\n", &target);
    assert_eq!(line, Some(6));
    let (_, msg) = table_error("csv_nan_target2", b"x,label\n1,yes\n", &target);
    assert!(msg.ends_with("t.csv:2: column `label`: \"yes\" is not a number"), "{msg}");

    // Not finite, empty, without a header.
    for (row, reason) in [
        ("NaN,0", "column `x`: \"NaN\" is not a finite number"),
        ("-inf,0", "column `x`: \"-inf\" is not a finite number"),
        (" ,0", "column `x` is empty"),
    ] {
        let (line, msg) = table_error("csv_finite", format!("x,label\n{row}\n").as_bytes(), &target);
        assert_eq!(line, Some(2));
        assert!(msg.ends_with(&format!("t.csv:2: {reason}")), "{msg}");
    }
    let (_, msg) = table_error("csv_nan_noheader", b"1,2\n3,x\n", &CsvOptions::new().with_header(false));
    assert!(msg.ends_with("t.csv:2: column `1`: \"x\" is not a number"), "{msg}");

    // Bytes that are not UTF-8 in a column that is read (the others are not looked at).
    let (line, msg) = table_error("csv_utf8", b"x,label\n1,0\n\xE9,1\n", &target);
    assert_eq!(line, Some(3));
    assert!(msg.contains("t.csv:3: column `x` is not valid UTF-8"), "{msg}");
    let table = read_csv_from_reader(&b"x,note\n1,caf\xE9\n"[..], "n.csv", &CsvOptions::new().with_features(["x"]));
    assert_eq!(table.unwrap().feature_values(), [1.0]);
    let (line, msg) = table_error("csv_utf8_header", b"x,\xFF\n1,2\n", &target);
    assert_eq!(line, Some(1));
    assert!(msg.contains("t.csv:1: field 2 of the header is not valid UTF-8"), "{msg}");

    // Class indices: whole numbers below the class count.
    let csv = b"x,label\n1,0\n2,2\n3,1.5\n";
    let (_, table) = read_table("csv_classes", "c.csv", csv, &CsvOptions::new().with_target("label").with_max_rows(2));
    let e = table.unwrap().target_classes(Some(2)).unwrap_err();
    assert!(e.to_string().ends_with("c.csv:3: column `label`: 2 is not a class index (a whole number in 0..2)"), "{e}");
    let (_, table) = read_table("csv_classes2", "c.csv", csv, &CsvOptions::new().with_target("label"));
    let e = table.unwrap().target_classes(None).unwrap_err();
    assert!(e.to_string().ends_with("c.csv:4: column `label`: 1.5 is not a class index (a whole number ≥ 0)"), "{e}");
}

#[test]
fn csv_ragged_row_is_an_error() {
    let (line, msg) = table_error("csv_ragged", b"a,b,c\n1,2,3\n4,5\n", &CsvOptions::new());
    assert_eq!(line, Some(3));
    assert!(msg.ends_with("t.csv:3: expected 3 fields (as in the header), found 2"), "{msg}");
    let (line, msg) = table_error("csv_long", b"a,b\n1,2,3\n", &CsvOptions::new());
    assert_eq!(line, Some(2));
    assert!(msg.ends_with("t.csv:2: expected 2 fields (as in the header), found 3"), "{msg}");
    let (_, msg) = table_error("csv_ragged_noheader", b"1,2\n3\n", &CsvOptions::new().with_header(false));
    assert!(msg.ends_with("t.csv:2: expected 2 fields (as in the first row), found 1"), "{msg}");
}

#[test]
fn csv_empty_file_is_an_error() {
    for contents in [&b""[..], b"\n\n", b"\xEF\xBB\xBF"] {
        let (line, msg) = table_error("csv_empty", contents, &CsvOptions::new());
        assert_eq!(line, None);
        assert!(msg.ends_with("t.csv: the file is empty"), "{msg}");
    }
    let (line, msg) = table_error("csv_header_only", b"a,b\n", &CsvOptions::new());
    assert_eq!(line, None);
    assert!(msg.ends_with("t.csv: the file has a header but no data rows"), "{msg}");
}

#[test]
fn csv_missing_or_ambiguous_columns_are_errors_of_the_header() {
    let csv = b"a,b\n1,2\n";
    let (line, msg) = table_error("csv_no_target", csv, &CsvOptions::new().with_target("label"));
    assert_eq!(line, Some(1));
    assert!(msg.ends_with("t.csv:1: the header has no `label` column (found `a`, `b`)"), "{msg}");
    let (_, msg) = table_error("csv_no_feature", csv, &CsvOptions::new().with_features(["a", "c"]));
    assert!(msg.ends_with("t.csv:1: the header has no `c` column (found `a`, `b`)"), "{msg}");
    let (_, msg) = table_error("csv_no_index", csv, &CsvOptions::new().with_target(2));
    assert!(msg.ends_with("t.csv:1: there is no column 2: the file has 2 columns (0..2)"), "{msg}");
    let (_, msg) = table_error("csv_no_name", csv, &CsvOptions::new().with_header(false).with_target("label"));
    assert!(msg.ends_with("t.csv:1: there is no column `label`: without a header the columns are named 0..2"), "{msg}");
    let (_, msg) = table_error("csv_twice", csv, &CsvOptions::new().with_features(["a", "b"]).with_target(1));
    assert!(msg.ends_with("t.csv:1: column `b` is chosen twice (as a feature, the target or a text column)"), "{msg}");
    let (_, msg) = table_error("csv_dup", b"a,a,b\n1,2,3\n", &CsvOptions::new().with_target("a"));
    assert!(msg.ends_with("t.csv:1: the header has more than one `a` column"), "{msg}");
    let (_, msg) = table_error("csv_dup_default", b"a,a,b\n1,2,3\n", &CsvOptions::new());
    assert!(msg.ends_with("t.csv:1: two of the chosen columns are named `a`"), "{msg}");
}

#[test]
fn csv_io_failures_are_io_errors() {
    let e = read_csv(temp_dir("csv_missing").join("missing.csv"), &CsvOptions::new()).unwrap_err();
    assert!(matches!(&e, Error::Io { op: "open", .. }) && e.to_string().contains("missing.csv"), "{e}");

    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let e = read_csv_from_reader(Failing, "stream", &CsvOptions::new()).unwrap_err();
    assert!(matches!(&e, Error::Io { op: "read", .. }) && e.to_string().contains("disk on fire"), "{e}");
}

#[test]
fn csv_mutated_files_never_panic() {
    // Every single-byte overwrite, deletion and insertion of a small valid file: the reader
    // returns a table or a `DataFile` error, and a table is always consistent.
    let base = b"x,\"y\",label\n1.5,2,0\n-3,4e1,1\n\"5\",6,2\n";
    let options = [
        CsvOptions::new().with_target("label"),
        CsvOptions::new().with_header(false).with_target(2).with_max_rows(3),
        CsvOptions::new().with_features([1]).with_text_columns(["x"]),
    ];
    let bytes = [b',', b'"', b'\n', b'\r', b'a', b'1', b'.', b'-', 0xFF, 0xC3, b' ', 0];
    let mut files = Vec::new();
    for i in 0..base.len() {
        for &b in &bytes {
            let mut f = base.to_vec();
            f[i] = b;
            files.push(f);
            let mut f = base.to_vec();
            f.insert(i, b);
            files.push(f);
        }
        let mut f = base.to_vec();
        f.remove(i);
        files.push(f);
        files.push(base[..i].to_vec());
    }
    for file in &files {
        for options in &options {
            match read_csv_from_reader(&file[..], "m.csv", options) {
                Ok(t) => {
                    assert!(!t.is_empty());
                    assert_eq!(t.feature_values().len(), t.len() * t.num_features());
                    assert!(t.feature_values().iter().all(|v| v.is_finite()));
                    assert_eq!(t.features::<f32>().shape(), &[t.len(), t.num_features()]);
                    let _ = t.target_classes(Some(3));
                }
                Err(Error::DataFile { .. }) => {}
                Err(e) => panic!("{:?}: unexpected error {e}", String::from_utf8_lossy(file)),
            }
        }
    }
}

/// `Dataset`, `DataLoader`: batching, seeded shuffling, `drop_last`, prefetching, collation.
mod loader {
    use tensorgrad::Tensor;
    use tensorgrad::data::{Batch, DataLoader, Dataset, FnDataset, Sample, TensorDataset, permutation};

    /// Ten samples: input `[i]`, target `10 + i`.
    fn ten() -> TensorDataset {
        let x = Tensor::<f32>::arange(10).reshape(&[10, 1]);
        let y = Tensor::<f32>::arange(10).add_scalar(10.0);
        TensorDataset::new(&x, &y)
    }

    fn inputs_of(loader: &DataLoader, epoch: usize) -> Vec<Vec<f32>> {
        loader.epoch(epoch).map(|b| b.inputs[0].to_vec()).collect()
    }

    #[test]
    fn without_shuffling_batches_follow_the_index_order_and_keep_the_partial_batch() {
        let loader = DataLoader::new(ten(), 4);
        assert_eq!((loader.len(), loader.num_samples(), loader.batch_size()), (3, 10, 4));
        let batches: Vec<Batch> = loader.epoch(0).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].inputs[0].shape(), &[4, 1]);
        assert_eq!(batches[2].inputs[0].to_vec(), [8.0, 9.0]);
        assert_eq!(batches[2].target.to_vec(), [18.0, 19.0]);
        assert_eq!(inputs_of(&loader, 0), inputs_of(&loader, 5), "no shuffling: every epoch alike");
        assert_eq!(loader.epoch(0).len(), 3);
    }

    #[test]
    fn shuffling_is_the_seeded_permutation_of_each_epoch_and_reproducible() {
        let loader = DataLoader::new(ten(), 3).shuffle(true).seed(40);
        for epoch in 0..3 {
            let order = permutation(10, 40 + epoch as u64);
            assert_eq!(loader.order(epoch), order);
            let seen: Vec<f32> = inputs_of(&loader, epoch).concat();
            assert_eq!(seen, order.iter().map(|&i| i as f32).collect::<Vec<_>>());
            // Targets stay with their inputs.
            let targets: Vec<f32> = loader.epoch(epoch).flat_map(|b| b.target.to_vec()).collect();
            assert_eq!(targets, seen.iter().map(|v| v + 10.0).collect::<Vec<_>>());
        }
        assert_ne!(loader.order(0), loader.order(1));
        // A loader built again (another run) with the same seed gives the same batches.
        let again = DataLoader::new(ten(), 3).shuffle(true).seed(40);
        assert_eq!(inputs_of(&loader, 2), inputs_of(&again, 2));
        let other = DataLoader::new(ten(), 3).shuffle(true).seed(41);
        assert_ne!(inputs_of(&loader, 0), inputs_of(&other, 0));
    }

    #[test]
    fn drop_last_drops_only_the_partial_batch() {
        let loader = DataLoader::new(ten(), 4).shuffle(true).seed(3).drop_last(true);
        assert_eq!(loader.len(), 2);
        let batches = inputs_of(&loader, 1);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4]);
        let first_eight: Vec<f32> = loader.order(1)[..8].iter().map(|&i| i as f32).collect();
        assert_eq!(batches.concat(), first_eight);
        // Exact multiples lose nothing; too few samples leave no batch.
        assert_eq!(DataLoader::new(ten(), 5).drop_last(true).len(), 2);
        let none = DataLoader::new(ten(), 11).drop_last(true);
        assert!(none.is_empty());
        assert_eq!(none.epoch(0).count(), 0);
    }

    /// Two inputs per sample (`[2]` and `[3]`) and a `[1]` target, all computed from `i`.
    fn two_inputs(n: usize) -> FnDataset<impl Fn(usize) -> Sample + Send + Sync + Clone> {
        FnDataset::new(n, |i| {
            let f = i as f32;
            Sample::with_inputs(
                vec![Tensor::from_slice(&[f, -f]), Tensor::from_slice(&[f * 0.5, f * 0.25, 1.0])],
                Tensor::from_slice(&[f * f]),
            )
        })
    }

    #[test]
    fn prefetching_and_parallel_reads_give_the_same_batches() {
        let all = |loader: &DataLoader| -> Vec<Vec<Vec<u32>>> {
            loader
                .epoch(3)
                .map(|b| {
                    assert_eq!(b.inputs.len(), 2);
                    let mut parts: Vec<Vec<u32>> =
                        b.inputs.iter().map(|t| t.to_vec().into_iter().map(f32::to_bits).collect()).collect();
                    parts.push(b.target.to_vec().into_iter().map(f32::to_bits).collect());
                    parts
                })
                .collect()
        };
        let base = DataLoader::new(two_inputs(37), 8).shuffle(true).seed(9);
        let want = all(&base);
        assert_eq!(want.len(), 5);
        for loader in [
            base.clone().prefetch(1),
            base.clone().prefetch(3),
            base.clone().parallel(true),
            base.clone().prefetch(2).parallel(true),
        ] {
            assert_eq!(all(&loader), want, "{loader:?}");
        }
        let b = base.epoch(0).next().unwrap();
        assert_eq!(
            (b.inputs[0].shape(), b.inputs[1].shape(), b.target.shape()),
            (&[8, 2][..], &[8, 3][..], &[8, 1][..])
        );
    }

    #[test]
    fn stopping_early_ends_the_loading_thread() {
        let loader = DataLoader::new(two_inputs(1000), 10).prefetch(4);
        for _ in 0..20 {
            let first: Vec<Batch> = loader.epoch(0).take(2).collect();
            assert_eq!(first.len(), 2);
        }
    }

    #[test]
    #[should_panic(expected = "cannot read sample 13")]
    fn a_panic_in_the_loading_thread_reaches_the_caller() {
        let data = FnDataset::new(20, |i| {
            if i == 13 {
                panic!("cannot read sample 13");
            }
            Sample::new(Tensor::from_slice(&[i as f32]), Tensor::scalar(0.0))
        });
        let loader = DataLoader::new(data, 4).prefetch(2);
        for _ in loader.epoch(0) {}
    }

    #[test]
    fn collation_stacks_scalar_targets_and_a_vec_of_samples_is_a_dataset() {
        let samples: Vec<Sample> =
            (0..5).map(|i| Sample::new(Tensor::from_slice(&[i as f32, 1.0]), Tensor::scalar(i as f32))).collect();
        let batch = Batch::collate(&samples[1..3]);
        assert_eq!(batch.inputs[0].to_vec(), [1.0, 1.0, 2.0, 1.0]);
        assert_eq!((batch.target.shape(), batch.len()), (&[2][..], 2));
        let loader = DataLoader::new(samples, 2);
        let targets: Vec<Vec<f32>> = loader.epoch(0).map(|b| b.target.to_vec()).collect();
        assert_eq!(targets, [vec![0.0, 1.0], vec![2.0, 3.0], vec![4.0]]);
    }

    #[test]
    fn tensor_dataset_with_several_inputs() {
        let a = Tensor::<f32>::arange(8).reshape(&[4, 2]);
        let b = Tensor::<f32>::arange(4);
        let y = Tensor::<f32>::zeros(&[4, 1]);
        let data = TensorDataset::with_inputs(&[a, b], &y);
        let s = data.get(2);
        assert_eq!(
            (s.inputs[0].to_vec(), s.inputs[1].to_vec(), s.target.shape()),
            (vec![4.0, 5.0], vec![2.0], &[1][..])
        );
        // The default, sample by sample, and the gather agree.
        let by_gather = data.get_batch(&[3, 1]);
        let by_samples = Batch::collate(&[data.get(3), data.get(1)]);
        for k in 0..2 {
            assert_eq!(by_gather.inputs[k].to_vec(), by_samples.inputs[k].to_vec());
            assert_eq!(by_gather.inputs[k].shape(), by_samples.inputs[k].shape());
        }
        assert_eq!(by_gather.target.shape(), &[2, 1]);
    }

    #[test]
    #[should_panic(
        expected = "collate: input 0 of sample 1 (dataset index 3) has shape [3] but that of sample 0 (dataset index 0) has [2]"
    )]
    fn samples_of_different_shapes_do_not_stack() {
        let data =
            FnDataset::new(4, |i| Sample::new(Tensor::zeros(&[if i == 3 { 3 } else { 2 }]), Tensor::scalar(0.0)));
        data.get_batch(&[0, 3]);
    }

    #[test]
    #[should_panic(expected = "TensorDataset: input 1 of shape [3] does not have the target's 4 rows")]
    fn tensor_dataset_refuses_inputs_of_other_lengths() {
        TensorDataset::with_inputs(&[Tensor::<f32>::zeros(&[4, 2]), Tensor::zeros(&[3])], &Tensor::zeros(&[4]));
    }

    #[test]
    #[should_panic(expected = "FnDataset::get: index 7 is out of range for 7 samples")]
    fn reading_past_the_end_is_refused() {
        two_inputs(7).get(7);
    }

    #[test]
    #[should_panic(expected = "DataLoader::new: batch size must be at least 1")]
    fn a_batch_size_of_zero_is_refused() {
        DataLoader::new(ten(), 0);
    }
}
