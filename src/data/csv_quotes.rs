//! The RFC 4180 quoting checks that the `csv` crate leaves out, and the line numbers of its
//! records.
//!
//! The `csv` crate reads any input without an error: a quote that is never closed takes the rest
//! of the file into its field, and text after a closing quote is appended to the field
//! (`"fine"x` reads as `finex`). Both silently merge or change rows, so [`read_labelled`] and
//! [`read_csv`] check the quoting of every record they read with [`check_quotes`], which walks
//! the record's bytes through the same states as the `csv` parser with its default settings:
//! `"` quotes a field that starts with it, `""` inside quotes is one `"`, a `\r`, `\n` or `\r\n`
//! ends a record, and line breaks before a record are skipped. A `"` inside a field that does
//! not start with one is text, as the `csv` crate (and Python's `csv`, and pandas) read it.
//!
//! [`read_labelled`]: super::read_labelled
//! [`read_csv`]: super::read_csv

use crate::error::quoted;

/// A record whose quoting is malformed.
#[derive(Debug)]
pub(super) struct QuoteError {
    /// The byte offset of the opening quote of the bad field.
    pub(super) offset: usize,
    /// Whether that quote is never closed, so the `csv` reader took the rest of the input into
    /// the field (and read no further records).
    pub(super) unclosed: bool,
    /// What is wrong, for a message.
    pub(super) reason: String,
}

/// Checks the quoting of the record that starts at byte `start` of `bytes` (where the `csv`
/// reader's position was before reading it), with fields separated by `delimiter`.
pub(super) fn check_quotes(bytes: &[u8], start: u64, delimiter: u8) -> Result<(), QuoteError> {
    let is_break = |b: u8| b == b'\r' || b == b'\n';
    let mut i = usize::try_from(start).map_or(bytes.len(), |s| s.min(bytes.len()));
    while i < bytes.len() && is_break(bytes[i]) {
        i += 1;
    }
    let mut field = 1;
    loop {
        if bytes.get(i) != Some(&b'"') {
            // An unquoted field runs to the delimiter or the end of the record.
            match bytes[i..].iter().position(|&b| b == delimiter || is_break(b)) {
                Some(k) if bytes[i + k] == delimiter => {
                    i += k + 1;
                    field += 1;
                    continue;
                }
                _ => return Ok(()),
            }
        }
        let open = i;
        i += 1;
        // Find the closing quote: a `"` not followed by another (`""` is an escaped quote).
        loop {
            match bytes[i..].iter().position(|&b| b == b'"') {
                None => {
                    return Err(QuoteError {
                        offset: open,
                        unclosed: true,
                        reason: format!(
                            "field {field} opens a quote that is never closed (it would take the rest of the file, \
                             {} bytes, as its text)",
                            bytes.len() - open
                        ),
                    });
                }
                Some(k) if bytes.get(i + k + 1) == Some(&b'"') => i += k + 2,
                Some(k) => {
                    i += k + 1;
                    break;
                }
            }
        }
        match bytes.get(i) {
            None => return Ok(()),
            Some(&b) if b == delimiter => {
                i += 1;
                field += 1;
            }
            Some(&b) if is_break(b) => return Ok(()),
            Some(_) => {
                let end = bytes[i..].iter().position(|&b| b == delimiter || is_break(b)).map_or(bytes.len(), |k| i + k);
                let after = String::from_utf8_lossy(&bytes[i..end]);
                return Err(QuoteError {
                    offset: open,
                    unclosed: false,
                    reason: format!(
                        "field {field} has text after its closing quote: {} (write a `\"` inside a quoted field as `\"\"`)",
                        quoted(&after)
                    ),
                });
            }
        }
    }
}

/// The 1-based line of byte offsets of the input, counted forward from the last call.
pub(super) struct LineCounter<'a> {
    bytes: &'a [u8],
    /// The offset counted up to, and the line it is on.
    pos: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    /// A counter over `bytes`, at line 1.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        LineCounter { bytes, pos: 0, line: 1 }
    }

    /// The line of the record the CSV reader places at `offset`. The reader's own line numbers
    /// are off after blank lines and `\r\n`, and its offsets point before the line breaks it
    /// skips, so those are skipped here.
    pub(super) fn record_line(&mut self, offset: u64) -> usize {
        let mut start = usize::try_from(offset).map_or(self.bytes.len(), |o| o.min(self.bytes.len()));
        while start < self.bytes.len() && matches!(self.bytes[start], b'\n' | b'\r') {
            start += 1;
        }
        self.line_at(start)
    }

    /// The line of the byte at `offset` (the line after the last, for the end of the input).
    pub(super) fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.bytes.len());
        if offset < self.pos {
            (self.pos, self.line) = (0, 1);
        }
        self.line += self.bytes[self.pos..offset].iter().filter(|&&b| b == b'\n').count();
        self.pos = offset;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check's verdict on a record: `Err((offset, unclosed))` for a bad one.
    type Verdict = Result<(), (usize, bool)>;

    /// The fields of each record `csv` reads from `input`, with the check's verdict on it.
    fn records(input: &[u8]) -> Vec<(Vec<String>, Verdict)> {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        loop {
            let start = reader.position().byte();
            if !reader.read_byte_record(&mut record).unwrap() {
                return out;
            }
            let fields = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
            out.push((fields, check_quotes(input, start, b',').map_err(|e| (e.offset, e.unclosed))));
        }
    }

    #[test]
    fn well_formed_quoting_passes() {
        let input = b"a,\"b,\"\"c\"\"\nd\",e\r\n\r\n\"\",\"x\"\n\n1,2\"3,\"\"\n\"last\"";
        let got = records(input);
        let fields: Vec<Vec<String>> = got.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(fields, [vec!["a", "b,\"c\"\nd", "e"], vec!["", "x"], vec!["1", "2\"3", ""], vec!["last"]]);
        assert!(got.iter().all(|(_, verdict)| verdict.is_ok()), "{got:?}");
    }

    #[test]
    fn unclosed_quotes_and_text_after_a_closing_quote_fail() {
        // The csv crate reads `"oops` to the end of the input as one field.
        let got = records(b"label,text\n1,\"oops\n0,second\n1,third\n");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, Err((13, true)));
        assert_eq!(records(b"label,text\n1,\"")[1].1, Err((13, true)));
        assert_eq!(records(b"1,\"a\"\"\n")[0].1, Err((2, true)));
        let got = records(b"x,\"fine\"x,y\n2,3\n");
        assert_eq!(got[0].0, ["x", "finex", "y"]);
        assert_eq!(got[0].1, Err((2, false)));
        assert!(got[1].1.is_ok());
        let e = check_quotes(b"\"ab\"cd\tef,g", 0, b'\t').unwrap_err();
        assert_eq!(
            e.reason,
            "field 1 has text after its closing quote: \"cd\" (write a `\"` inside a quoted field as `\"\"`)"
        );
    }

    #[test]
    fn line_counter_skips_the_breaks_before_a_record() {
        let bytes = b"a\n\r\n\nb\nc";
        let mut lines = LineCounter::new(bytes);
        assert_eq!(lines.record_line(0), 1);
        assert_eq!(lines.record_line(1), 4);
        assert_eq!(lines.line_at(7), 5);
        assert_eq!(lines.line_at(0), 1);
        assert_eq!(lines.line_at(100), 5);
    }
}
