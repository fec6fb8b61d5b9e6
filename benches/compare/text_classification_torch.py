#!/usr/bin/env python3
"""The flagship `examples/text_classification.rs`, trained with PyTorch on the same split.

Reads the split that the example writes with `--save-split` (`train.tsv`, `test.tsv`, header
`label<TAB>text`), tokenizes it with the rules of `tensorgrad::data::Tokenizer` (Keras's
Tokenizer: lower-case, Keras's default punctuation filter, vocabulary by decreasing frequency,
ties in order of first appearance, ids from 1, 0 = padding, `num_words` = 10000), pads and
truncates `post` to 100, and trains, in float32 on the CPU:

    Embedding(10000, 16)  ->  LSTM(16 -> 128)  ->  Linear(128, 1) + sigmoid

with binary cross-entropy, Adam (lr 1e-3, PyTorch defaults), batches of 128, 10 epochs, the
training set shuffled every epoch, validation on the test split after every epoch. The
initialisation is PyTorch's (as the crate's): embedding N(0, 1), LSTM and Linear U(+-1/sqrt(fan)).

Two LSTMs (`--variant`):

* `cell`: an op-by-op LSTM cell loop over all `--max-len` steps, the crate's model exactly:
  Keras's `dropout` (one mask per sequence on the inputs, shared over time) and
  `recurrent_dropout` (one mask per sequence on the h fed to W_hh, shared over time), and
  Keras's masking (`mask_zero`): at a padded step h and c are carried over, so the final state
  is each sequence's state at its last real token.
* `packed`: `nn.LSTM` (the fused kernel) on a `pack_padded_sequence` of the true lengths, which
  is what the masking means. `nn.LSTM` has no recurrent dropout, so this variant applies the input
  dropout (one mask per sequence, shared over time) and NO recurrent dropout.

`--no-mask` reads the state after the last of the `--max-len` steps, pads included (the crate's
`--no-mask`); with `packed` it runs `nn.LSTM` on the padded batch without packing.

Each epoch's seconds cover the training pass and the validation pass, as the crate's history does.

On a shared, oversubscribed machine, PyTorch's OpenMP threads spin at every barrier by default and
each small op of the cell loop can wait a whole scheduler time slice for a descheduled thread; set
`OMP_WAIT_POLICY=PASSIVE` in the environment (it must be set before torch is imported) to make
them sleep instead. The policy in effect is printed.

    python benches/compare/text_classification_torch.py /tmp/tc_split/train.tsv /tmp/tc_split/test.tsv \
        --variant cell --threads 2
"""

import argparse
import json
import os
import re
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

# Keras's default `filters`: ASCII punctuation except `'`, plus tab and newline.
DEFAULT_FILTERS = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n"
# Rust's `char::is_whitespace` (Unicode White_Space), which the crate's tokenizer splits on.
# (Python's str.split() would also split on U+001C..U+001F, which White_Space does not contain.)
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


class Tokenizer:
    """tensorgrad's `Tokenizer` (Keras's) with no OOV token."""

    def __init__(self, num_words=None, filters=DEFAULT_FILTERS, lower=True):
        self.num_words = num_words if num_words else None
        self.lower = lower
        self.split_re = re.compile("[" + _WHITESPACE + re.escape(filters) + "]+")
        self.word_counts = {}  # insertion order = order of first appearance
        self.word_index = {}

    def tokenize(self, text):
        if self.lower:
            text = text.lower()
        return [w for w in self.split_re.split(text) if w]

    def fit_on_texts(self, texts):
        for text in texts:
            for w in self.tokenize(text):
                self.word_counts[w] = self.word_counts.get(w, 0) + 1
        # sorted() is stable: ties keep the order of first appearance.
        ranked = sorted(self.word_counts.items(), key=lambda kv: -kv[1])
        self.word_index = {w: i + 1 for i, (w, _) in enumerate(ranked)}

    def texts_to_sequences(self, texts):
        out = []
        for text in texts:
            ids = []
            for w in self.tokenize(text):
                i = self.word_index.get(w)
                if i is not None and (self.num_words is None or i < self.num_words):
                    ids.append(i)
            out.append(ids)
        return out


def pad_post(seqs, max_len):
    """Keras's pad_sequences(padding='post', truncating='post', value=0) -> (ids, lengths)."""
    x = torch.zeros(len(seqs), max_len, dtype=torch.long)
    lengths = torch.zeros(len(seqs), dtype=torch.long)
    for r, s in enumerate(seqs):
        s = s[:max_len]
        if s:
            x[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        lengths[r] = len(s)
    return x, lengths


def read_tsv(path, limit=None):
    labels, texts = [], []
    with open(path, encoding="utf-8", newline="\n") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:2] != ["label", "text"]:
            sys.exit(f"{path}: expected a header 'label<TAB>text', got {header!r}")
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            label, text = line.split("\t", 1)
            labels.append(float(label))
            texts.append(text)
            if limit is not None and len(texts) >= limit:
                break
    return texts, torch.tensor(labels, dtype=torch.float32).unsqueeze(1)


class Classifier(nn.Module):
    def __init__(self, vocab, variant, mask, dropout=0.2, recurrent_dropout=0.2, emb=16, hidden=128):
        super().__init__()
        self.variant, self.mask = variant, mask
        self.dropout = dropout
        # nn.LSTM has no recurrent dropout: the packed variant runs without it.
        self.recurrent_dropout = recurrent_dropout if variant == "cell" else 0.0
        self.hidden = hidden
        self.embedding = nn.Embedding(vocab, emb)  # N(0, 1)
        # Both variants hold their weights in an nn.LSTM (PyTorch's init, gate order i, f, g, o);
        # the cell variant only reads its parameters.
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.dense = nn.Linear(hidden, 1)

    def _input_dropout(self, e):
        if self.training and self.dropout > 0:
            b, _, f = e.shape
            keep = 1.0 - self.dropout
            m = torch.bernoulli(torch.full((b, 1, f), keep, dtype=e.dtype)) / keep
            e = e * m  # one mask per sequence, shared by every step
        return e

    def forward(self, ids, lengths):
        e = self._input_dropout(self.embedding(ids))
        h = self._cell(e, ids) if self.variant == "cell" else self._packed(e, lengths)
        return torch.sigmoid(self.dense(h))

    def _packed(self, e, lengths):
        if not self.mask:
            _, (h, _) = self.lstm(e)
            return h[-1]
        # pack_padded_sequence refuses empty sequences; with masking their state stays zero.
        nonempty = lengths > 0
        if bool(nonempty.all()):
            packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)
            return h[-1]
        out = e.new_zeros(e.shape[0], self.hidden)
        idx = nonempty.nonzero().squeeze(1)
        if idx.numel():
            packed = pack_padded_sequence(e[idx], lengths[idx], batch_first=True, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)
            out = out.index_copy(0, idx, h[-1])
        return out

    def _cell(self, e, ids):
        b, steps, _ = e.shape
        H = self.hidden
        l = self.lstm
        # One matmul projects every step; both biases are added up front (as the crate does).
        xp = F.linear(e, l.weight_ih_l0, l.bias_ih_l0 + l.bias_hh_l0)  # [B, T, 4H]
        w_hh_t = l.weight_hh_l0.t()
        h = e.new_zeros(b, H)
        c = e.new_zeros(b, H)
        rec = None
        if self.training and self.recurrent_dropout > 0:
            keep = 1.0 - self.recurrent_dropout
            rec = torch.bernoulli(torch.full((b, H), keep, dtype=e.dtype)) / keep  # one per sequence
        m = (ids != 0).to(e.dtype).unsqueeze(2) if self.mask else None  # [B, T, 1]
        for t in range(steps):
            hin = h * rec if rec is not None else h
            z = xp[:, t] + hin @ w_hh_t
            i, f, g, o = z.chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            cn = f * c + i * g
            hn = o * torch.tanh(cn)
            if m is None:
                h, c = hn, cn
            else:
                mt = m[:, t]
                # Keras masking: at a padded step the state is carried over.
                c = c + mt * (cn - c)
                h = h + mt * (hn - h)
        return h


def evaluate(model, x, lengths, y, batch_size):
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            xb, lb, yb = x[s : s + batch_size], lengths[s : s + batch_size], y[s : s + batch_size]
            p = model(xb, lb)
            loss_sum += F.binary_cross_entropy(p, yb).item() * len(xb)
            correct += ((p > 0.5) == (yb >= 0.5)).sum().item()
    model.train()
    return loss_sum / len(x), correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train", help="train.tsv written by the example's --save-split")
    ap.add_argument("test", help="test.tsv written by the example's --save-split")
    ap.add_argument("--variant", choices=["packed", "cell"], default="cell")
    ap.add_argument("--no-mask", action="store_true", help="read the state after the last step, pads included")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-len", type=int, default=100)
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N rows of each file")
    ap.add_argument("--json", default=None, help="also write the history and summary to this file")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    train_texts, y_train = read_tsv(args.train, args.limit)
    test_texts, y_test = read_tsv(args.test, args.limit)
    tok = Tokenizer(num_words=args.vocab)
    tok.fit_on_texts(train_texts)
    x_train, len_train = pad_post(tok.texts_to_sequences(train_texts), args.max_len)
    x_test, len_test = pad_post(tok.texts_to_sequences(test_texts), args.max_len)
    used = min(len(tok.word_index), args.vocab - 1)
    print(
        f"data: {len(train_texts)} training and {len(test_texts)} test snippets "
        f"({int(y_train.sum().item())} positive in training); {len(tok.word_index)} distinct words, "
        f"{used + 1} ids used (with padding); padded/truncated post to {args.max_len}; "
        f"empty sequences: {int((len_train == 0).sum())} train, {int((len_test == 0).sum())} test"
    )

    model = Classifier(args.vocab, args.variant, mask=not args.no_mask)
    n_params = sum(p.numel() for p in model.parameters())
    if args.variant == "cell":
        lstm_desc = "op-by-op LSTM cell loop, dropout 0.2 (input, per sequence), recurrent_dropout 0.2 (h before W_hh, per sequence)"
    else:
        lstm_desc = (
            "nn.LSTM" + ("" if args.no_mask else " on pack_padded_sequence")
            + ", dropout 0.2 (input, per sequence), NO recurrent dropout (nn.LSTM has none)"
        )
    print(
        f"model: Embedding({args.vocab}, 16) -> LSTM(16 -> 128) [{lstm_desc}] -> Linear(128, 1) + sigmoid; "
        f"{n_params} parameters; padding {'not masked (--no-mask)' if args.no_mask else 'masked'}"
    )
    print(
        f"torch {torch.__version__}, float32, CPU, {torch.get_num_threads()} threads "
        f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}); Adam lr 1e-3; "
        f"batch {args.batch_size}; {args.epochs} epochs; seed {args.seed}"
    )
    sys.stdout.flush()

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    shuffle_gen = torch.Generator().manual_seed(args.seed)
    history = []
    model.train()
    n = len(x_train)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=shuffle_gen)
        loss_sum, correct = 0.0, 0
        for s in range(0, n, args.batch_size):
            idx = order[s : s + args.batch_size]
            xb, lb, yb = x_train[idx], len_train[idx], y_train[idx]
            p = model(xb, lb)
            loss = F.binary_cross_entropy(p, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += ((p.detach() > 0.5) == (yb >= 0.5)).sum().item()
        t_train = time.perf_counter() - t0
        val_loss, val_acc = evaluate(model, x_test, len_test, y_test, args.batch_size)
        seconds = time.perf_counter() - t0
        rec = {
            "epoch": epoch + 1,
            "loss": loss_sum / n,
            "accuracy": correct / n,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": seconds,
            "train_seconds": t_train,
        }
        history.append(rec)
        print(
            f"Epoch {epoch + 1}/{args.epochs} - {seconds:.1f}s (train {t_train:.1f}s) - loss: {rec['loss']:.4f} "
            f"- accuracy: {rec['accuracy']:.4f} - val_loss: {val_loss:.4f} - val_accuracy: {val_acc:.4f}"
        )
        sys.stdout.flush()

    test_loss, test_acc = evaluate(model, x_test, len_test, y_test, args.batch_size)
    secs = [r["seconds"] for r in history]
    mean_s = sum(secs) / len(secs) if secs else float("nan")
    median_s = statistics.median(secs) if secs else float("nan")
    print(
        f"{mean_s:.1f} s per epoch on average (median {median_s:.1f} s); "
        f"{time.perf_counter() - started:.1f} s in all"
    )
    print(f"test_accuracy={test_acc:.4f} test_loss={test_loss:.4f}")
    if args.json:
        summary = {
            "variant": args.variant,
            "mask": not args.no_mask,
            "recurrent_dropout": model.recurrent_dropout,
            "threads": args.threads,
            "torch": torch.__version__,
            "history": history,
            "mean_seconds_per_epoch": mean_s,
            "median_seconds_per_epoch": median_s,
            "test_accuracy": test_acc,
            "test_loss": test_loss,
        }
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
