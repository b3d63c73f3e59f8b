"""Decoding: sampling for decoder-only models (:mod:`~mindtf.decoding.gpt_sampling`) and greedy /
beam search for encoder-decoder models (:mod:`~mindtf.decoding.seq2seq_search`).
"""

#: the most tokens one call of :func:`~mindtf.decoding.gpt_sampling.generate` (and ``python -m
#: mindtf generate --max-new-tokens``) produces: minutes of decoding for a small model on a CPU.
#: For more, call it again with the end of its output as the prompt (the context window slides
#: anyway: a GPT sees at most its last ``block_size`` tokens).
MAX_NEW_TOKENS = 100_000
