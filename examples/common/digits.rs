//! What the two digit classifiers (`mlp_digits`, `cnn_mnist`) share: the predicted class of each
//! row of logits, and the confusion matrix they print.

use tensorgrad::Tensor;

/// The number of classes (the digits 0..9).
pub const CLASSES: usize = 10;

/// The index of the largest logit of each row of `[N, C]`.
pub fn argmax_rows(logits: &Tensor) -> Vec<usize> {
    let c = logits.shape()[1];
    logits
        .to_vec()
        .chunks_exact(c)
        .map(|row| row.iter().enumerate().fold(0, |best, (i, &v)| if v > row[best] { i } else { best }))
        .collect()
}

/// Prints the confusion matrix (rows: true digit, columns: predicted digit) with each row's
/// recall, under the heading `confusion matrix on {what} …`.
pub fn print_confusion(what: &str, actual: &[usize], predicted: &[usize]) {
    let mut counts = [[0usize; CLASSES]; CLASSES];
    for (&a, &p) in actual.iter().zip(predicted) {
        counts[a][p] += 1;
    }
    println!("confusion matrix on {what} (rows: true digit, columns: predicted digit):");
    let header: String = (0..CLASSES).map(|c| format!("{c:>5}")).collect();
    println!("      {header}   recall");
    for (digit, row) in counts.iter().enumerate() {
        let cells: String = row
            .iter()
            .enumerate()
            .map(|(j, &n)| if n == 0 && j != digit { format!("{:>5}", ".") } else { format!("{n:>5}") })
            .collect();
        let total: usize = row.iter().sum();
        let recall = if total == 0 { "-".to_string() } else { format!("{:.3}", row[digit] as f64 / total as f64) };
        println!("  {digit:>3} {cells}   {recall:>6}");
    }
}
