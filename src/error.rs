//! The crate's error type, for fallible construction and I/O.

/// Errors returned by fallible constructors and by file I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The number of values does not match the requested shape.
    #[error("{op}: {len} values cannot fill shape {shape:?}, which holds {expected}")]
    DataLength {
        /// The constructor that failed.
        op: &'static str,
        /// How many values were given.
        len: usize,
        /// The requested shape.
        shape: Vec<usize>,
        /// How many values the shape holds.
        expected: usize,
    },
    /// A value that must be finite was NaN or infinite.
    #[error("{op}: value {value} at position {position} is not finite")]
    NonFinite {
        /// The operation that checked.
        op: &'static str,
        /// The offending value, as text.
        value: String,
        /// Its position in the input.
        position: usize,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
