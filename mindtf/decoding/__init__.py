"""Decoding: sampling for decoder-only models (:mod:`~mindtf.decoding.gpt_sampling`) and greedy /
beam search for encoder-decoder models (:mod:`~mindtf.decoding.seq2seq_search`).
"""
