"""Custom CPU kernels: C++ operators where MindSpore's own CPU kernels are slow.

MindSpore's CPU LayerNorm and LayerNormGrad split their rows over clamp(cores / 8, 1, 4) threads
(one thread on a laptop) and raise to powers element by element; attention's masked softmax and
the tanh-GELU are chains of small element-wise kernels; GPT's self-attention is a split, four
head transposes, two batched MatMuls and a softmax (twice as many launches backward); gradient
clipping and AdamW launch two or three kernels per parameter. mindtf ships C++ versions of them
(``csrc/``), compiled on first use into a cache folder and launched as ``ops.Custom`` operators
(``func_type="aot"``) with their own backward, in GRAPH_MODE and PyNative alike::

    mindtf.nn.LayerNorm.__init__ ──► kernels.layer_norm_op() ──► ops.Custom or None
                                          │
                 active()? CPU target, MINDTF_KERNELS != 0, library() built
                                          │
             library(): CACHE/<hash>/libmindtf_kernels.so  (compiled once, then reused)

GPU and Ascend keep MindSpore's kernels. Without a compiler (or when the build fails) every layer
falls back to the built-in ops after one :class:`KernelWarning`; results are the same to float32
rounding (the tests check 1e-5). ``MINDTF_KERNELS=0`` turns the kernels off.

This package sits on layer 1: it imports MindSpore and the standard library only, so
``mindtf.nn`` (layer 2) can use it.
"""
from mindtf.kernels.build import KernelWarning, cache_root, compiler, library, switch
from mindtf.kernels.ops import (active, adamw_op, fused_attention_op, gelu_tanh_op, layer_norm_op,
                               masked_softmax_op, sum_squares_op)

__all__ = ["KernelWarning", "active", "layer_norm_op", "gelu_tanh_op", "masked_softmax_op",
           "fused_attention_op", "sum_squares_op", "adamw_op", "library", "compiler", "cache_root",
           "switch"]
