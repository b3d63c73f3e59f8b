"""Complete runs built from the layers below: each recipe turns configs into a trained model,
a summary and files in a run folder.

* :mod:`mindtf.recipes.char_lm` -- a character-level GPT (the quickstart);
* :mod:`mindtf.recipes.translation` -- a Transformer on Multi30k, scored with sacreBLEU;
* :mod:`mindtf.recipes.ladder` -- the perplexity ladder: n-grams, the NNLM and the GPT on one split.

Each has a ``*_setup`` module with its configs and data preparation (no MindSpore import).
"""
