//! `Tokenizer`: Keras's word-level text tokenizer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use super::vocab_file;
use crate::Result;

/// Keras's default `filters`: ASCII punctuation except `'`, plus tab and newline.
///
/// ```
/// use tensorgrad::data::{DEFAULT_FILTERS, Tokenizer, text_to_word_sequence};
/// assert!(DEFAULT_FILTERS.contains('!') && !DEFAULT_FILTERS.contains('\''));
/// // Keep hyphens inside words: the default filters without '-'.
/// let filters: String = DEFAULT_FILTERS.chars().filter(|&c| c != '-').collect();
/// assert_eq!(text_to_word_sequence("A well-made film!", &filters, true), ["a", "well-made", "film"]);
/// let tokenizer = Tokenizer::new().with_filters(filters);
/// assert_eq!(tokenizer.tokenize("Self-aware."), ["self-aware"]);
/// ```
pub const DEFAULT_FILTERS: &str = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";

/// The characters a tokenizer replaces by a separator, with a fast path for ASCII.
#[derive(Clone, Debug)]
struct FilterSet {
    ascii: [bool; 128],
    other: Vec<char>,
}

impl FilterSet {
    fn new(filters: &str) -> Self {
        let mut set = FilterSet { ascii: [false; 128], other: Vec::new() };
        for c in filters.chars() {
            if c.is_ascii() {
                set.ascii[c as usize] = true;
            } else if !set.other.contains(&c) {
                set.other.push(c);
            }
        }
        set
    }

    fn contains(&self, c: char) -> bool {
        if c.is_ascii() { self.ascii[c as usize] } else { self.other.contains(&c) }
    }
}

/// Calls `f` on each word of `text`: lower-cased if `lower`, every character of `filters`
/// replaced by a separator, split on whitespace, empty pieces dropped.
fn for_each_word(text: &str, filters: &FilterSet, lower: bool, mut f: impl FnMut(&str)) {
    let text: Cow<'_, str> = if lower { Cow::Owned(text.to_lowercase()) } else { Cow::Borrowed(text) };
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() || filters.contains(c) {
            if let Some(s) = start.take() {
                f(&text[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        f(&text[s..]);
    }
}

/// Splits a text into words as [`Tokenizer`] does (Keras's `text_to_word_sequence`): lower-cases
/// it if `lower`, replaces every character of `filters` by a separator, splits on whitespace and
/// drops empty pieces.
///
/// ```
/// use tensorgrad::data::{DEFAULT_FILTERS, text_to_word_sequence};
/// let words = text_to_word_sequence("Don't panic: it's the U.S.A.!", DEFAULT_FILTERS, true);
/// assert_eq!(words, ["don't", "panic", "it's", "the", "u", "s", "a"]);
/// ```
pub fn text_to_word_sequence(text: &str, filters: &str, lower: bool) -> Vec<String> {
    let mut words = Vec::new();
    for_each_word(text, &FilterSet::new(filters), lower, |w| words.push(w.to_owned()));
    words
}

/// A word-level tokenizer with the semantics of Keras's `tf.keras.preprocessing.text.Tokenizer`.
///
/// - **Splitting** ([`text_to_word_sequence`]): lower-case the text (unless
///   [`with_lower(false)`](Self::with_lower)), replace every character of the filters (default
///   [`DEFAULT_FILTERS`], all ASCII punctuation except `'`, plus tab and newline) by a
///   separator, split on whitespace. `"Don't stop, U.S."` gives `don't`, `stop`, `u`, `s`.
/// - **Vocabulary** ([`fit_on_texts`](Self::fit_on_texts)): every word seen gets an id from 1
///   (0 is reserved for padding), the most frequent word first; words with equal counts keep the
///   order in which they were first seen. Fitting again adds to the counts and re-ranks.
/// - **`oov_token`**: if set, it gets id 1 (the words then start at 2) and replaces unknown words
///   in [`texts_to_sequences`](Self::texts_to_sequences); without it, unknown words are dropped.
/// - **`num_words`**: [`word_index`](Self::word_index) always holds every word, but
///   `texts_to_sequences` only emits ids below `num_words` — the padding id counts, so at most
///   `num_words − 1` ids are used, the OOV id among them. A word whose id is too large becomes
///   the OOV id if there is one, and is dropped otherwise.
///
/// [`vocab_size`](Self::vocab_size) is the table size an [`Embedding`](crate::nn::Embedding)
/// needs for the ids `texts_to_sequences` can emit. [`save`](Self::save) and
/// [`load`](Self::load) store the whole tokenizer in a small text file.
///
/// Two tokenizers are equal (`==`) when they have the same settings (`num_words`, filters,
/// lower-casing, OOV token) and have learned the same thing: the same document count and the
/// same word counts in the same order of first appearance, hence the same ids. A tokenizer
/// equals its copy saved and loaded again.
///
/// ```
/// use tensorgrad::data::Tokenizer;
///
/// let mut tokenizer = Tokenizer::new().with_oov_token("<OOV>").with_num_words(4);
/// tokenizer.fit_on_texts(["The cat sat.", "The cat ran!", "The dog."]);
/// // By frequency: the (3), cat (2), then sat, ran, dog (1 each) in order of first appearance.
/// assert_eq!(tokenizer.word_index()["<OOV>"], 1);
/// assert_eq!(tokenizer.word_index()["the"], 2);
/// assert_eq!(tokenizer.word_index()["cat"], 3);
/// assert_eq!(tokenizer.word_index()["sat"], 4);
/// // num_words = 4 keeps ids 1..=3; `sat` (4) and the unknown `bird` become the OOV id.
/// assert_eq!(tokenizer.texts_to_sequences(["the cat sat on a bird"]), [vec![2, 3, 1, 1, 1, 1]]);
/// assert_eq!(tokenizer.vocab_size(), 4);
/// ```
#[derive(Clone, Debug)]
pub struct Tokenizer {
    /// `None` or `Some(n)` with `n ≥ 1`.
    num_words: Option<usize>,
    filters: String,
    filter_set: FilterSet,
    lower: bool,
    oov_token: Option<String>,
    document_count: usize,
    /// Every word seen with its count, in order of first appearance (Keras's `word_counts`).
    word_counts: Vec<(String, usize)>,
    /// Position of each word in `word_counts`.
    count_pos: HashMap<String, usize>,
    word_index: HashMap<String, usize>,
    index_word: HashMap<usize, String>,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Tokenizer {
    fn eq(&self, other: &Tokenizer) -> bool {
        // The maps and the filter set are derived from these fields.
        self.num_words == other.num_words
            && self.filters == other.filters
            && self.lower == other.lower
            && self.oov_token == other.oov_token
            && self.document_count == other.document_count
            && self.word_counts == other.word_counts
    }
}

impl Eq for Tokenizer {}

impl Tokenizer {
    /// A tokenizer with Keras's defaults: no `num_words` cap, [`DEFAULT_FILTERS`], lower-casing
    /// on, no OOV token.
    pub fn new() -> Self {
        Tokenizer {
            num_words: None,
            filters: DEFAULT_FILTERS.to_owned(),
            filter_set: FilterSet::new(DEFAULT_FILTERS),
            lower: true,
            oov_token: None,
            document_count: 0,
            word_counts: Vec::new(),
            count_pos: HashMap::new(),
            word_index: HashMap::new(),
            index_word: HashMap::new(),
        }
    }

    /// Caps the ids [`texts_to_sequences`](Self::texts_to_sequences) emits to those below
    /// `num_words` (Keras's `num_words`: only the `num_words − 1` most frequent entries are used,
    /// the OOV token included). `0` means no cap, as in Keras, where `num_words=0` is falsy.
    pub fn with_num_words(mut self, num_words: usize) -> Self {
        self.num_words = (num_words > 0).then_some(num_words);
        self
    }

    /// Sets the OOV token: it gets id 1 and stands for unknown or capped words.
    ///
    /// May be called before or after fitting (the ids are recomputed). If the token also occurs
    /// as a word of the texts, those occurrences share id 1. (Keras would give the word a second
    /// id and leave id 1 without an `index_word` entry; this tokenizer keeps one id per token.)
    pub fn with_oov_token(mut self, token: impl Into<String>) -> Self {
        self.oov_token = Some(token.into());
        self.rebuild_index();
        self
    }

    /// Whether to lower-case texts before splitting (default `true`). Applies to texts split from
    /// now on; words already counted stay as they are.
    pub fn with_lower(mut self, lower: bool) -> Self {
        self.lower = lower;
        self
    }

    /// The characters replaced by a separator before splitting (default [`DEFAULT_FILTERS`]);
    /// `""` keeps punctuation attached to words. Applies to texts split from now on.
    pub fn with_filters(mut self, filters: impl Into<String>) -> Self {
        self.filters = filters.into();
        self.filter_set = FilterSet::new(&self.filters);
        self
    }

    /// The `num_words` cap, `None` if there is none.
    pub fn num_words(&self) -> Option<usize> {
        self.num_words
    }

    /// The OOV token, if any.
    pub fn oov_token(&self) -> Option<&str> {
        self.oov_token.as_deref()
    }

    /// Whether texts are lower-cased.
    pub fn lower(&self) -> bool {
        self.lower
    }

    /// The characters replaced by a separator.
    pub fn filters(&self) -> &str {
        &self.filters
    }

    /// How many texts have been fitted.
    pub fn document_count(&self) -> usize {
        self.document_count
    }

    /// Every word fitted with the number of times it occurred, in order of first appearance
    /// (Keras's `word_counts`). The OOV token is not counted unless it occurs in the texts.
    pub fn word_counts(&self) -> &[(String, usize)] {
        &self.word_counts
    }

    /// The id of every word (and of the OOV token): `1, 2, …` by decreasing frequency. Holds
    /// every word fitted, whatever `num_words`.
    pub fn word_index(&self) -> &HashMap<String, usize> {
        &self.word_index
    }

    /// The word of every id, the inverse of [`word_index`](Self::word_index).
    pub fn index_word(&self) -> &HashMap<usize, String> {
        &self.index_word
    }

    /// One more than the largest id [`texts_to_sequences`](Self::texts_to_sequences) can emit:
    /// the `num_embeddings` of an [`Embedding`](crate::nn::Embedding) fed its padded output.
    ///
    /// Without a cap this is the number of entries of `word_index` plus one (for padding id 0);
    /// with `num_words` it is at most `num_words` (but at least 2 with an OOV token, which
    /// Keras emits even when `num_words` is 1).
    pub fn vocab_size(&self) -> usize {
        let entries = self.word_index.len();
        let max_id = match self.num_words {
            None => entries,
            Some(n) => {
                let capped = entries.min(n - 1);
                if self.oov_token.is_some() { capped.max(1) } else { capped }
            }
        };
        max_id + 1
    }

    /// Splits `text` into words with this tokenizer's settings (see [`text_to_word_sequence`]).
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut words = Vec::new();
        for_each_word(text, &self.filter_set, self.lower, |w| words.push(w.to_owned()));
        words
    }

    /// Counts the words of `texts` and re-ranks the vocabulary (Keras's `fit_on_texts`).
    ///
    /// Takes anything iterable over strings: `&[&str]`, `&Vec<String>`, an array, an iterator.
    pub fn fit_on_texts<I>(&mut self, texts: I)
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for text in texts {
            self.document_count += 1;
            let (counts, pos) = (&mut self.word_counts, &mut self.count_pos);
            for_each_word(text.as_ref(), &self.filter_set, self.lower, |w| match pos.get(w) {
                Some(&i) => counts[i].1 += 1,
                None => {
                    pos.insert(w.to_owned(), counts.len());
                    counts.push((w.to_owned(), 1));
                }
            });
        }
        self.rebuild_index();
    }

    /// The ids of the words of each text (Keras's `texts_to_sequences`); see the type's docs for
    /// unknown words and the `num_words` cap.
    pub fn texts_to_sequences<I>(&self, texts: I) -> Vec<Vec<usize>>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        texts.into_iter().map(|t| self.text_to_sequence(t.as_ref())).collect()
    }

    /// The ids of the words of one text.
    pub fn text_to_sequence(&self, text: &str) -> Vec<usize> {
        let oov = self.oov_token.as_ref().map(|_| 1);
        let mut ids = Vec::new();
        for_each_word(text, &self.filter_set, self.lower, |w| {
            let id = match self.word_index.get(w) {
                Some(&id) if self.num_words.is_some_and(|n| id >= n) => oov,
                Some(&id) => Some(id),
                None => oov,
            };
            ids.extend(id);
        });
        ids
    }

    /// The words of each sequence of ids, joined by spaces (Keras's `sequences_to_texts`).
    ///
    /// As in Keras, an id at or above `num_words`, or with no word (padding id 0 included),
    /// becomes the OOV token if there is one and is dropped otherwise.
    ///
    /// ```
    /// use tensorgrad::data::Tokenizer;
    /// let mut tokenizer = Tokenizer::new().with_oov_token("<OOV>");
    /// tokenizer.fit_on_texts(["the cat sat", "the dog"]);
    /// let ids = tokenizer.texts_to_sequences(["The bird sat!"]);
    /// assert_eq!(tokenizer.sequences_to_texts(&ids), ["the <OOV> sat"]); // lower-cased, filtered
    /// assert_eq!(tokenizer.sequences_to_texts(&[vec![0, 2]]), ["<OOV> the"]); // padding id 0
    /// ```
    pub fn sequences_to_texts<S: AsRef<[usize]>>(&self, sequences: &[S]) -> Vec<String> {
        sequences
            .iter()
            .map(|seq| {
                let words: Vec<&str> = seq
                    .as_ref()
                    .iter()
                    .filter_map(|&id| match self.index_word.get(&id) {
                        Some(w) if self.num_words.is_none_or(|n| id < n) => Some(w.as_str()),
                        _ => self.oov_token.as_deref(),
                    })
                    .collect();
                words.join(" ")
            })
            .collect()
    }

    /// Writes the tokenizer (settings, document count, and every word with its count) to a text
    /// file at `path`, crash-safely: to a temporary file next to it, synced, then renamed over it.
    ///
    /// The format is UTF-8 text, one entry per line, fields separated by a tab; in values, `\`,
    /// tab, newline and carriage return are written `\\`, `\t`, `\n`, `\r`:
    ///
    /// ```text
    /// tensorgrad tokenizer vocabulary v1
    /// lower<TAB>true
    /// filters<TAB>!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n
    /// num_words<TAB>10000                  (or "none")
    /// oov_token<TAB><OOV>                  (only if there is one)
    /// document_count<TAB>3
    /// words<TAB>5                          (the number of word lines that follow)
    /// <id><TAB><count><TAB><word>          one line per word, in order of first appearance
    /// end
    /// ```
    ///
    /// The ids are redundant (they follow from the counts and the order) and are checked on
    /// loading, which makes a damaged file very likely to be rejected.
    ///
    /// ```
    /// use tensorgrad::data::Tokenizer;
    /// let mut tokenizer = Tokenizer::new().with_num_words(100).with_oov_token("<OOV>");
    /// tokenizer.fit_on_texts(["A tab\there", "and a newline\nthere"]);
    /// let path = std::env::temp_dir().join(format!("tensorgrad-vocab-doc-{}.txt", std::process::id()));
    /// tokenizer.save(&path)?;
    /// let loaded = Tokenizer::load(&path)?;
    /// assert_eq!(loaded, tokenizer);
    /// assert_eq!(loaded.texts_to_sequences(["there and here"]), tokenizer.texts_to_sequences(["there and here"]));
    /// std::fs::remove_file(&path).ok();
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the file cannot be written or renamed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        vocab_file::save(self, path.as_ref())
    }

    /// Reads a tokenizer written by [`save`](Self::save).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the file cannot be read;
    /// [`Error::Vocabulary`](crate::Error::Vocabulary), naming the line, if it is not UTF-8,
    /// truncated, or otherwise not a valid vocabulary. Never panics.
    pub fn load(path: impl AsRef<Path>) -> Result<Tokenizer> {
        vocab_file::load(path.as_ref())
    }

    /// A fitted tokenizer from its saved state; the ids are computed from `word_counts`.
    pub(super) fn from_state(
        lower: bool,
        filters: String,
        num_words: Option<usize>,
        oov_token: Option<String>,
        document_count: usize,
        word_counts: Vec<(String, usize)>,
    ) -> Self {
        let count_pos = word_counts.iter().enumerate().map(|(i, (w, _))| (w.clone(), i)).collect();
        let mut t = Tokenizer {
            num_words: num_words.filter(|&n| n > 0),
            filter_set: FilterSet::new(&filters),
            filters,
            lower,
            oov_token,
            document_count,
            word_counts,
            count_pos,
            word_index: HashMap::new(),
            index_word: HashMap::new(),
        };
        t.rebuild_index();
        t
    }

    /// Ranks the words: OOV token first, then by decreasing count, ties in order of first
    /// appearance (a stable sort of `word_counts`, as Keras sorts its `OrderedDict`).
    fn rebuild_index(&mut self) {
        let mut order: Vec<usize> = (0..self.word_counts.len()).collect();
        order.sort_by(|&a, &b| self.word_counts[b].1.cmp(&self.word_counts[a].1));
        self.word_index.clear();
        self.index_word.clear();
        let mut next = 1;
        if let Some(oov) = &self.oov_token {
            self.word_index.insert(oov.clone(), next);
            self.index_word.insert(next, oov.clone());
            next += 1;
        }
        for i in order {
            let word = &self.word_counts[i].0;
            if self.oov_token.as_ref() == Some(word) {
                continue;
            }
            self.word_index.insert(word.clone(), next);
            self.index_word.insert(next, word.clone());
            next += 1;
        }
    }
}
