"""The generated sentences of `embeddings_ref.py --bench` and
scripts/measure/embeddings_throughput.py, so that both embed the same text.

Standard library only: the measure scripts import it without numpy / onnxruntime.
"""

import random

# Short and long words, numbers, accents and a capitalised name, so that tokenisation varies.
WORDS = ("the a quick brown fox jumps over lazy dog server speech model audio stream "
         "request latency token batch vector search index query result fast slow small "
         "large network memory thread core Ember transcribes whisper embedding image "
         "safe review cache disk file user answer question today tomorrow because while "
         "unbelievably internationalisation 2024 42 3.14 naïve café").split()


def sentences(n, seed=0):
    """n sentences of 5-40 words from WORDS, each ending in "."; the same n and seed give
    the same list."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40))) + "."
            for _ in range(n)]
