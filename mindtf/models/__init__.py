"""Models: the encoder-decoder Transformer and GPT, each owning its config and its files.

``mindtf.models.registry`` maps a saved ``model_type`` to its class.
"""
