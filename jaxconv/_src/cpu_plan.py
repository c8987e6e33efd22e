"""The CPU cost model: which algorithm ``method="auto"`` runs for each map on CPU.

:func:`rules` is :func:`jaxconv._src.plan._auto` on the CPU backend: deterministic
rules from the geometry and the shapes, each calibrated from per-map timings on the
project's 2-core benchmark machine, which the docstrings quote (losses included).
The constants below the rules are their thresholds.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.typing import DTypeLike

from .algorithms import pads, transposed_geometry
from .geometry import ConvGeometry
from .plan import ALGORITHMS, MAPS, Plan, Shape, unsupported


def rules(geom: ConvGeometry, dtype: jnp.dtype, x_shape: Shape, w_shape: Shape) -> Plan:
    """CPU: per map, among xla / im2col / direct / phase / fft / winograd.

    Calibrated on the 2-core benchmark machine (XLA CPU, float32) from per-map
    timings of the benchmark cases (``benchmarks/run.py``'s shapes; one
    map jitted alone, interleaved rounds, medians in ms below). XLA's CPU
    convolution is fast for 1-D; on 2-D and 3-D maps im2col's chunked patch
    products match or beat it, strided or not; it is slow for depthwise
    (direct) and for input gradients that insert zeros (phase, or im2col).

    * tiny convolutions (fewer than :data:`MIN_OUTPUT` output elements): ``xla``.
    * depthwise (one input and output channel per group): ``direct`` for all
      three maps (C=128 3x3 56x56 N=8: 1.4-2.4 / 1.3 / 4.6-5.5 against xla
      75 / 79 / 39), but ``fft`` at stride 1 for the weight gradient from 9x9 and for
      every map from 13x13 (:func:`_depthwise`: 9x9 weight gradient 48-75 ms against
      4.5-7.4).
    * large ungrouped kernels, where :func:`algorithms.fft.prefer_over_direct`
      says the FFT costs less than 0.15x the direct flops and the kernel's
      spectrum is small enough (:data:`algorithms.fft.MAX_KERNEL_SPECTRUM`: 9x9
      128->128 at 28x28 ran 242 ms against xla's 91): ``fft`` for all three.
    * 3x3, stride 1, ungrouped 2-D float32 from :data:`WINOGRAD_CHANNELS` channels
      each way and :data:`WINOGRAD_TILES` output tiles: ``winograd`` for the forward
      and the input gradient (:func:`_winograd3`: 0.7-0.95x the best of xla and
      im2col, at par at 14x14 from 64 and 128 channels), and for the weight gradient
      where the rules below would take im2col's (0.7-0.85x its time). 5x5 likewise from
      :data:`WINOGRAD5_CHANNELS` channels and enough tiles (:func:`_winograd5`),
      for the forward, the input gradient where 'same'-like, and the weight
      gradient up to :data:`WINOGRAD5_DW_CHANNELS` channels (LeNet's conv2: forward
      2.3 against im2col's 3.5 ms, weight gradient 3.5 against xla's 4.0, at batch
      128; the step 8-9% faster at 128 and 500).
    * otherwise ungrouped 2-D, stride 1, from :data:`WIDENED_XLA_CHANNELS` channels each way:
      ``xla`` for the forward and the input gradient where its widened
      convolution (:func:`algorithms.xla.widened`, off YNNPACK) adds at most
      :data:`WIDENED_XLA_AT_MOST` of the work (:func:`_widened_xla`: 0.69-1.02x
      im2col's time per map in a sweep of 2026-12-07). The rules below were
      calibrated before that widening, with XLA's 2-D convolutions YNNPACK's
      wherever YNNPACK took them.
    * ungrouped stride-1 2-D first layers (at most :data:`DILATED_DW_CHANNELS`
      input channels), 5x5-or-wider kernels and 3x3 ones between many channels
      (:func:`_dilated_dw_layer`), small outputs: ``xla`` for the weight gradient,
      its correlation dilated off YNNPACK (:func:`_dilated_xla_weight_grad`; LeNet's
      conv1: the step 8-9% faster at batch 128 and 256; conv2 too: 5-7% more).
    * ungrouped, from :data:`SAMPLE_PRODUCTS_BATCH` samples, few patch rows onto at
      least 20 output channels (:func:`algorithms.im2col.sample_products`) where the
      dilated weight gradient above is not taken (a large cotangent): ``im2col``'s
      weight gradient as one product per sample (LeNet's conv1 at batch 500: 8.5 ms
      against direct's 22-27; the step 1-1.5% faster).
    * ungrouped 2-D and 3-D: ``im2col`` for the weight gradient (3x3 64->64
      56x56: 10.0 ms against xla's 15.0; LeNet conv2 at batch 128: 2.7 against
      5.6; strided, 9.2 against 10.5 for the 4x4 stride-2 128 -> 64 transposed
      convolution's geometry, 9.9 against 8.7 for 7x7 stride 2 3 -> 64) and
      for the input gradient, except ``phase`` when strided onto at least
      :data:`PHASE_MIN_CHANNELS` channels with a kernel of more taps than im2col's
      fold sums at once (:data:`algorithms.im2col.FOLD_AT_ONCE`, 9). A strided 1x1
      kernel's phases are one product and zeros: im2col's product and fold, ms,
      phase / im2col, 128->256 28x28 N=64 30.7-40.0 / 12.9-21.1, 64->128 56x56 N=16
      8.3 / 5.1, 2026-12-04. Since im2col folds strided taps one phase at a time
      (2026-12-07), ms, phase / im2col: 3x3 stride 2 32->64 56x56 N=8 2.4 / 2.0,
      16->32 N=16 2.1 / 1.5, 64->128 6.0 / 5.2, 64->64 28x28 N=16 2.2 / 2.1, 128->256
      28x28 N=16 10.1 / 8.7, 256->512 14x14 10.1 / 9.4; 3x3 stride 3 32->32 48x48 1.8
      / 1.5; 2x2 stride 2 64->64 56x56 8.6 / 4.5; but 4x4 stride 2 64->128 64x64 N=8
      11.0 / 14.4, 64->64 6.7 / 11.0, 128->128 32x32 5.9 / 6.1; 5x5 stride 2 32->64
      28x28 2.8 / 4.7; 7x7 stride 2 64->64 56x56 13.4 / 24.4. And ``xla`` for many stride-1 2-D ones
      (:func:`_xla_input_grad`: 'valid' ones, few width-patch rows, or where im2col
      would fold) and for strided 2-D ones onto fewer than :data:`PHASE_MIN_CHANNELS`, a multiple of
      :data:`XLA_DX_CHANNELS`, from at most :data:`STRIDED_XLA_DX_OUT` (ms, im2col /
      xla, stride 2: 7x7 8->16 14x14 N=32
      2.33 / 1.38, 28x28 N=16 5.06 / 3.00, 56x56 N=4 2.20 / 2.33, 112x112 N=2 8.04 /
      6.28; 7x7 4->16 28x28 2.02 / 1.58; 3x3 8->32 28x28 1.15 / 0.93; 3x3 8->8 28x28
      0.70 / 0.62, 14x14 1.03 / 1.05; 5x5 8->16 56x56 2.14 / 2.04; but from 64
      channels im2col's, 7x7 3->64 112x112 7.89 / 9.69, and onto 1-3 channels,
      3x3 3->16 32x32 N=64 1.60 / 2.11, 2->32 56x56 2.14 / 3.64, 5x5 1->20 28x28
      1.10 / 1.41, 7x7 3->32 56x56 7.71 / 9.20; onto 4, 7x7 4->16 28x28 2.02 /
      1.58, one shape, is left to im2col). The 2-D forward is ``xla`` when the
      output channels are a multiple of :data:`XLA_FORWARD_CHANNELS`, unless
      im2col's width-patch forward is faster (:func:`_width_patches_win`: 3x3
      64->64 56x56 N=8, 13.9 against 19.2 ms; 1x1 64->64, 2.2 against 4.8);
      otherwise, and in 3-D, ``im2col``. Forward, ms, xla / im2col (one run;
      width patches where :func:`algorithms.im2col.rows_forward` says so):
      3x3x3 16->32 on 16x32x32, N=2 28.9 / 12.1; 32->32 32x32 N=32 6.7 / 7.1;
      256->256 14x14 N=8 9.9 / 12.5; LeNet conv2 12.7 / 5.1 (XLA's CPU
      convolution runs 100-200 GFLOP/s on most shapes but 36 there, 20 -> 50
      channels, 5x5); 7x7 stride 2 3->64, from the full patch matrix (3
      channels are too few for width patches), 9.9 / 13.7 (9.3 / 9.3 since the
      patches are stacked one spatial dim at a time; from 3 or 5 channels onto other
      than 64 the full patch matrix wins, :func:`_patch_matrix_win`). :data:`XLA_FORWARD_CHANNELS`
      is 8 since a sweep of 2026-12-03 (N=64): 3x3 8->8 14x14 / 28x28 / 56x56
      0.7 / 2.0-2.5 / 9.0 against 0.9 / 3.7-4.2 / 20.4; 8->24 28x28 4.9 / 6.4 (5x5
      8->8 measured 4.8-5.4 / 4.3-5.1: a loss of up to 20% there). A 1x1 kernel
      from at least :data:`PRODUCT_MIN_CHANNELS` channels is ``im2col``, one matrix
      product of the input (N=64, xla / im2col: 48->48 28x28 18.1 / 11.2; 64->64
      56x56 170 / 65; 32->32 28x28 8.9 / 5.9 against direct's 10.1).
      Whole fwd+bwd: the transposed convolution 24.3 ms against 30.2 with the
      previous xla / phase / xla, 7x7 stride 2 20.1 against 22.5. When each
      output sums at most :data:`DIRECT_TERMS` products (LeNet's conv1: 25)
      the forward is ``direct``, which runs over chunks of samples so that XLA cannot fuse
      it into a following max-pool (conv1's forward in a LeNet step: 1.5 ms
      against 3.2 with im2col; the step 3-6% faster) at stride 1; strided, direct's
      slices step through memory and im2col is faster (N=64, 56x56, stride 2: 'same'
      3x3 3->64 8.8 against direct's 22.1 and xla's 10.4; 2->32 2.6 against 3.5 and
      3.9; 5x5 1->20 3.8 against 4.0 and 4.5). With as few products, the weight
      gradient from a one-channel input is ``direct`` too: at stride 1 one
      matrix-vector product per tap (:func:`algorithms.direct._weight_grad_taps`;
      LeNet's conv1 3.3 ms against im2col's 8.4 at batch 128, 14.9 against 33.8
      at 500, 2026-12-04), strided one pass of fused products
      (:data:`algorithms.direct.VARIADIC_TERMS`; 5x5 1->20 7.5 against im2col's
      9.4, 3x3 1->32 3.6 against 4.7). From more input channels im2col's product
      is 2.4-3.2x faster than direct's (1x1 32->32 28x28 N=64 4.2 against 13.7 ms;
      'same' 3x3 3->16 56x56 10.1 against 23.7; 2->32 28x28 3.1 against 8.0).
      The weight gradient is ``xla`` for some padded
      convolutions with few output channels, and for wide kernels onto many channels
      at small outputs (:func:`_xla_weight_grad`).
    * ungrouped 1-D: ``xla`` for the forward and the weight gradient (k=9
      64->64: xla 9.2 / 8.2 against im2col 11.7 / 32); the input gradient is
      ``im2col`` onto at most :data:`FEW_CHANNELS` channels, ``phase`` when
      strided onto at least :data:`PHASE_MIN_CHANNELS`, else xla.
    * other grouped convolutions (:func:`_grouped`), from a sweep of 23 shapes
      (3x3 and 5x5, 2-32 channels per group, 2-64 groups, stride 1 and 2,
      14x14 to 56x56, N=8; ms per map, 2026-12-03). Beyond
      :data:`XLA_GROUPS` groups the xla algorithm runs one grouped
      convolution (up to it, one per group) and XLA is slow in the forward
      and the input gradient (32 groups of 2 / 4 / 8 channels: 2.9 / 3.0 / 1.6
      ms against xla 76 / 29 / 7.0).

      - Forward: ``direct`` up to :data:`DIRECT_TERMS` products per output,
        and up to :data:`MANY_GROUPS_TERMS` beyond :data:`XLA_GROUPS` groups
        or from at most :data:`FEW_GROUP_CHANNELS` channels per group, whose
        per-group convolutions XLA runs slowly (16 groups of 4: 3.5 against
        xla 27.9 at 3x3 56x56, 5.6 against 19.4 at 5x5 28x28); but ``im2col``
        beyond :data:`XLA_GROUPS` groups when strided with more than
        :data:`DIRECT_TERMS` products (32 groups of 8, 14x14 stride 2: 1.3-2.6
        against direct 3.6-4.2, xla 3.1-3.5; 32 of 4, 28x28: 2.1-2.9 against
        2.7-3.0; but 32 of 2, 56x56: direct 2.2 against 5.7). Otherwise
        ``xla`` up to :data:`XLA_GROUPS` groups (8 of 8 channels: 7.9 against
        direct 7.6, im2col 17.2), else ``im2col``.
      - Input gradient beyond :data:`XLA_GROUPS` groups: ``direct`` at
        stride 1 when no group widens (4.0 / 3.1 / 1.6 against xla 76 / 19 /
        7.1), else ``im2col`` (channel multiplier 2: 6.8 against direct 22,
        xla 82). Up to it: ``xla`` when strided (16 groups of 8, 28x28: 3.9
        against im2col 4.8; 8 groups of 8, 56x56: 6.7 against 7.5);
        ``direct`` at stride 1 when no group widens and each input sums at
        most :data:`GROUPED_DIRECT_DX_TERMS` products (16 groups of 4 at
        56x56: 3.4-3.6 against im2col 8.5-9.7, xla 34-36; with 8 channels per
        group it won at 56x56, 6.7-7.8 against im2col 10.8-13.5 and xla
        10.0-11.7, and lost at 28x28, 5.9-6.9 against 4.0-6.0 and 5.0-7.3, so
        it is left out); else ``im2col`` from fewer than
        :data:`IM2COL_DX_CHANNELS` channels per group, or that many with a
        kernel under :data:`WIDE_KERNEL_TAPS` taps, and ``xla`` otherwise
        (5x5, 8 groups of 8 at 28x28: 4.3 against im2col 6.0).
      - Weight gradient: XLA's whole grouped weight gradient is 25-700x
        slower than the others, but ``xla`` runs one ungrouped correlation per
        group on CPU (:func:`algorithms.xla.split_weight_grad`), and that is
        the fastest of all for 2-D convolutions from at least 4 to at most 16
        channels per group (:data:`GROUPED_XLA_DW_CHANNELS`) in at most
        :data:`GROUPED_XLA_DW_GROUPS` groups (compile time), at stride 1 or
        with a kernel under :data:`WIDE_KERNEL_TAPS` taps. 3x3 N=8, ms, against
        direct / im2col: 256 -> 256 at 14x14 in 32 groups 2.5 against 9.6 /
        4.4, in 64 groups 3.4 / 5.7 / 9.2, in 16 groups 2.8 / 7.7 / 6.7, in 32
        groups at stride 2 1.0 / 5.0 / 2.0; 64 -> 64 at 56x56 in 8 groups 7.4
        / 34 / 19, in 4 groups 13.3 / 88 / 20; 128 -> 128 at 28x28 in 8 groups
        5.9 / 21 / 14, in 16 groups at stride 2 2.3 / 6.4 / 3.9; 256 -> 64 at
        28x28 in 4 groups 7.7 / - / 19.9. It lost with 2 channels per group
        (128 -> 128 at 28x28 in 64 groups: 5.9 against direct's 4.9; 5x5 64
        -> 64 in 32 groups: 6.2 against 8.7, kept direct), 32 (64 -> 64 at
        56x56 in 2 groups: 36 against im2col's 23; but 256 -> 256 at 14x14 in
        8: 7.2 against 10.4), a 5x5 kernel at stride 2 (64 -> 64 at 56x56 in 8
        groups, N=4: 17 against direct's 8.3) and from 16 to 64 channels per
        group (24 against 12). Otherwise ``direct`` up to
        :data:`algorithms.direct.VARIADIC_TERMS` products per output, else
        ``im2col`` (3x3 56x56 N=8, 64 -> 64: 32 groups of 2 direct 3.5 against
        im2col 18; 4 groups of 16 direct 36.5 against 13.5). A whole fwd+bwd
        of 32 groups of 2: 36 ms against 3.4 s with xla's whole grouped
        gradients (lax: 3.5 s).
    """
    c_in = x_shape[1]
    c_out = w_shape[0]
    if x_shape[0] * c_out * math.prod(geom.out_spatial) < MIN_OUTPUT:
        return Plan("xla", "xla", "xla")  # tiny: time is compile time, where XLA's one op wins
    G = geom.groups
    cin_g, cout_g = c_in // G, c_out // G
    taps = math.prod(geom.kernel)
    strided = any(s > 1 for s in geom.stride)
    if cin_g == 1 and cout_g == 1:  # depthwise
        return _checked(_depthwise(geom, dtype, taps, strided), geom, dtype, x_shape, w_shape)
    few_terms = taps * cin_g <= DIRECT_TERMS
    if G > 1:
        return _checked(_grouped(geom, taps, cin_g, cout_g, strided), geom, dtype, x_shape,
                        w_shape)
    fft = ALGORITHMS.get("fft")
    if fft is not None and fft.prefer_over_direct(geom, x_shape[0], c_in, c_out):
        # large kernels: the FFT's O(n log n) beats every O(n k) algorithm (crossover
        # measured on XLA:CPU, see algorithms/fft.py; all three maps behave alike)
        return _checked(Plan("fft", "fft", "fft"), geom, dtype, x_shape, w_shape)
    if geom.ndim >= 2:
        input_grad = ("phase" if strided and c_in >= PHASE_MIN_CHANNELS
                      and taps > ALGORITHMS["im2col"].FOLD_AT_ONCE else "im2col")
        if _winograd(geom, "input_grad", x_shape[0], c_in, c_out, dtype):
            input_grad = "winograd"
        elif _xla_input_grad(geom, c_in, c_out) or _widened_xla(geom, "input_grad", c_in, c_out):
            input_grad = "xla"
        elif (strided and input_grad == "im2col" and geom.ndim == 2
              and c_in < PHASE_MIN_CHANNELS and c_in % XLA_DX_CHANNELS == 0
              and c_out <= STRIDED_XLA_DX_OUT):
            input_grad = "xla"  # few channels each way (see the docstring)
        if taps == 1 and c_in >= PRODUCT_MIN_CHANNELS:
            forward = "im2col"  # a 1x1 kernel: one matrix product, no patches to build
        elif few_terms:
            forward = "im2col" if strided else "direct"
        elif _winograd(geom, "forward", x_shape[0], c_in, c_out, dtype):
            forward = "winograd"
        elif _widened_xla(geom, "forward", c_in, c_out):
            forward = "xla"
        else:
            xla_fast = (geom.ndim == 2 and c_out % XLA_FORWARD_CHANNELS == 0
                        and not _width_patches_win(geom, c_in, c_out)
                        and not _patch_matrix_win(geom, c_in, c_out))
            forward = "xla" if xla_fast else "im2col"
        if geom.kernel[0] != 3 and _winograd(geom, "weight_grad", x_shape[0], c_in, c_out,
                                             dtype):
            weight_grad = "winograd"  # 5x5
        elif (_dilated_dw_layer(geom, x_shape[0], c_in, c_out)
                and _dilated_xla_weight_grad(geom, x_shape[0], c_out, dtype)):
            weight_grad = "xla"
        elif (x_shape[0] >= SAMPLE_PRODUCTS_BATCH
                and ALGORITHMS["im2col"].sample_products(geom, c_in, c_out)):
            weight_grad = "im2col"  # one product per sample (see the docstring)
        elif few_terms and c_in == 1:
            weight_grad = "direct"
        else:
            weight_grad = "xla" if _xla_weight_grad(geom, c_in, c_out) else "im2col"
        if (weight_grad == "im2col" and geom.kernel[0] == 3
                and _winograd(geom, "weight_grad", x_shape[0], c_in, c_out, dtype)):
            weight_grad = "winograd"  # 3x3: only where im2col's would run (see _winograd3)
        return _checked(Plan(forward, input_grad, weight_grad), geom, dtype, x_shape, w_shape)
    if c_in <= FEW_CHANNELS:
        input_grad = "im2col"
    elif strided and c_in >= PHASE_MIN_CHANNELS:
        input_grad = "phase"
    else:
        input_grad = "xla"
    return _checked(Plan("xla", input_grad, "xla"), geom, dtype, x_shape, w_shape)


def _width_patches_win(geom: ConvGeometry, c_in: int, c_out: int) -> bool:
    """Whether im2col's width-patch forward beats XLA's 2-D convolution (ungrouped).

    When its width patches have ``k[-1] * C_in`` rows within
    :data:`WIDTH_PATCHES_ROWS`. Forward, ms, xla / im2col, one sweep (3x3 padding 1
    unless said, N scaled to about the same work, :func:`algorithms.im2col.rows_forward`
    true in all): 16->16 56x56 (48 rows) 10.5 / 16.3; 16->32 stride 2 (48) 8.4 / 9.7;
    32->32 56x56 (96) 19.2 / 19.4; 32->64 28x28 (96) 19.9 / 18.5; 32->64 stride 2 (96)
    45.6 / 25.1; 48->48 (144) 20.3 / 18.5; 5x5 32->32 (160) 22.3 / 19.5; 64->64 56x56
    / 28x28 / 14x14 (192) 19.2 / 13.9, 17.1 / 13.0 (to 128), 8.8 / 7.4; 64->128 stride
    2 (192) 26.4 / 15.9; 4x4 stride 2 64->128 (256) 21.4 / 22.3; 5x5 64->64 (320) 43.5
    / 34.4; 128->128 28x28 / 56x56 (384) 8.8 / 9.5, 9.9 / 9.3; 128->256 stride 2 (384)
    13.9 / 11.5; 256->256 14x14 (768) 10.3 / 11.2; 5x5 128->128 (640) 25.6 / 30.0. A
    1x1 kernel is one product: 64 -> 64 / 256 -> 64 / 64 -> 128 stride 2 (64 / 256 /
    64 rows) 4.8 / 2.2, 6.6 / 3.3, 8.0 / 3.8; 32 -> 64 4.8 / 4.2; 16 -> 16 3.5 / 5.6.
    A kernel of 25 taps or more needs :data:`WIDE_KERNEL_MIN_ROWS` rows: two sweeps of
    2026-12-03 (N=64 unless said), 5x5 'same' 16->16 (80 rows) 14x14 / 28x28 / 56x56
    (N=46) 2.3-2.5 / 9.3-11.9 / 28.4-28.7 against 3.2-3.8 / 10.6-15.2 / 33.8-35.3;
    32->32 (160) im2col's, 0.74-0.91x XLA's time. Onto at least
    :data:`WIDE_KERNEL_WIDE_OUTPUT` ``[0]`` channels such a kernel's width patches have
    at most ``[1]`` rows: 5x5 'same', xla / im2col, 48->128 (240 rows) 14x14 N=32 21.3
    / 32.0, 64->128 (320) 14x14 N=32 25.5 / 29.9 (N=23: 19.6-23.0 / 33.4-49.2), 28x28
    N=8 22.8 / 28.2, 56x56 N=4 52.6 / 61.4; but 32->128 (160) 14x14 25.3 / 20.7, and
    64->64 28x28 42.8 / 41.2 (0.6-0.8x XLA's time in an earlier sweep).
    """
    if not ALGORITHMS["im2col"].rows_forward(geom, c_in):
        return False
    lo, hi = WIDTH_PATCHES_ROWS
    if math.prod(geom.kernel) >= WIDE_KERNEL_TAPS:
        lo = WIDE_KERNEL_MIN_ROWS
        if c_out >= WIDE_KERNEL_WIDE_OUTPUT[0]:
            hi = WIDE_KERNEL_WIDE_OUTPUT[1]
    return lo <= geom.kernel[-1] * c_in <= hi


def _depthwise(geom: ConvGeometry, dtype: DTypeLike, taps: int, strided: bool) -> Plan:
    """Depthwise: ``direct`` for all three maps, but ``fft`` at stride 1 for the weight
    gradient of more than :data:`algorithms.direct.VARIADIC_TERMS` taps (direct's one
    reduction per tap there) and for every map from :data:`DEPTHWISE_FFT_TAPS` taps.

    Per map, ms, direct / fft, 'same', 2026-12-07: C=32 64x64 N=4 5x5 1.1 / 4.6, 0.6 /
    4.5, 1.7 / 3.9; 7x7 2.4 / 4.7, 1.3 / 4.7, 4.3 / 3.9; 9x9 4.0 / 4.9, 2.7 / 4.9,
    48.1 / 4.5; 11x11 6.8 / 5.4, 4.0 / 5.3, 66.3 / 4.4; 13x13 9.7 / 5.6, 5.5 / 5.8,
    95.6 / 5.4; 15x15 15.3 / 6.5, 9.0 / 6.6, 127.8 / 5.9. C=128 28x28 N=8 9x9 11.2 /
    7.8, 6.3 / 7.8, 75.4 / 7.4; C=64 56x56 N=8 11x11 20.7 / 20.9, 12.1 / 20.2, 211.6
    / 22.0; C=128 56x56 N=8 7x7 14.2 / 40.2, 7.0 / 30.9, 21.2 / 31.0.
    """
    fft = ALGORITHMS.get("fft")
    if strided or fft is None or fft.supports(geom, dtype) is not None:
        return Plan("direct", "direct", "direct")
    if taps >= DEPTHWISE_FFT_TAPS:
        return Plan("fft", "fft", "fft")
    if taps > ALGORITHMS["direct"].VARIADIC_TERMS:
        return Plan("direct", "direct", "fft")
    return Plan("direct", "direct", "direct")


def _patch_matrix_win(geom: ConvGeometry, c_in: int, c_out: int) -> bool:
    """Whether im2col's forward from the full patch matrix (few channels: no width
    patches, :func:`algorithms.im2col.rows_forward`) beats XLA's 2-D convolution: from
    an odd number of input channels, at least 3, onto a number of output channels
    other than :data:`XLA_PATCH_FORWARD_OUT`.

    XLA's CPU forward from 3 or 5 channels runs far below its rate onto most output
    channel counts (onto 64 it won); from 1, 2, 4, 6 or 8 channels it beats the patch
    matrix. Forward, ms, xla / im2col (its patches stacked one spatial dim at a time),
    2026-12-07. From 3 or 5 channels: 5x5 stride 2 3->32 64x64 N=32 7.7 / 2.9,
    128x128 N=8 7.1 / 2.6, 3->48 3.7 / 3.3, 3->16 2.1 / 2.1, 3->96 128x128 N=8 5.1 /
    5.2, 3->128 64x64 N=16 3.2 / 3.2, but 3->64 1.6-1.7 / 2.3-2.4; 5x5 stride 1
    64x64 N=16 3->32 13.4 / 4.6, 5->32 13.6 / 6.2, 3->128 28.1 / 18.4, 3->16 3.5 /
    3.3, but 3->64 6.5 / 7.9; 7x7 stride 2 3->24 / 3->32 / 3->128 112x112 N=8 28.8 /
    2.8, 10.8 / 3.3, 8.5 / 7.5, 3->256 56x56 N=16 9.8 / 6.5, but 3->64 224x224 N=4
    9.3 / 9.3, 112x112 N=16 8.7 / 9.6; 7x7 stride 1 3->128 64x64 N=8 10.9 / 9.1; 4x4
    stride 4 3->32 / 3->96 0.92 / 0.36, 2.4 / 1.4; 8x8 stride 8 3->128 0.69 / 0.60.
    From even channel counts or one: 5x5 2->32 64x64 N=16 2.1 / 3.4, 4->32 3.5 / 5.3;
    7x7 stride 2 2->64 / 4->64 64x64 N=16 1.9 / 2.5, 3.5 / 4.1, 2->128 4.4 / 3.8; 3x3
    8->8 28x28 / 56x56 N=64 1.5 / 2.3, 5.7 / 7.1, 8->32 56x56 N=32 5.9 / 9.2, 6->32
    5.0 / 5.9; 7x7 1->32 64x64 N=16 2.1 / 3.2.
    """
    if (geom.ndim != 2 or c_in < 3 or c_in % 2 == 0
            or ALGORITHMS["im2col"].rows_forward(geom, c_in)):
        return False
    return c_out not in XLA_PATCH_FORWARD_OUT


def _winograd(geom: ConvGeometry, which: str, n: int, c_in: int, c_out: int,
              dtype: DTypeLike) -> bool:
    """Whether Winograd's F(4x4, r x r) (:mod:`algorithms.winograd`) runs this float32
    map (``"forward"``, ``"input_grad"`` or ``"weight_grad"``) where it applies
    (3x3 or 5x5, stride 1, dilation 1, ungrouped, 2-D). A map's tiles are
    ``N * ceil(H/4) * ceil(W/4)`` of its output (the input gradient's, of the
    transposed geometry's); with ``C_in * C_out / (C_in + C_out)`` of them the tiles'
    transforms and products (``n * n * tiles * (C_in + C_out)`` elements) equal the
    kernel's transform (``n * n * C_in * C_out``).

    3x3 (:func:`_winograd3`): the same bounds for the three maps, the weight
    gradient taken only where :func:`rules` would run im2col's. 5x5
    (:func:`_winograd5`): all three maps, within narrower bounds.
    """
    mod = ALGORITHMS.get("winograd")
    if mod is None or jnp.dtype(dtype) != jnp.float32 or not mod.applies(geom):
        return False
    # the input gradient is the forward of the transposed geometry (its tiles cover x)
    tiled = transposed_geometry(geom) if which == "input_grad" else geom
    count = n * math.prod(mod.tiles(tiled))
    balance = c_in * c_out / (c_in + c_out)
    if geom.kernel[0] == 3:
        return _winograd3(count, balance, c_in, c_out)
    return _winograd5(geom, which, count, balance, c_in, c_out)


def _winograd3(count: int, balance: float, c_in: int, c_out: int) -> bool:
    """F(4x4, 3x3)'s maps (the weight gradient in place of im2col's): from at least
    :data:`WINOGRAD_CHANNELS` channels each way and :data:`WINOGRAD_TILES` tiles, and at
    least ``balance``.

    Per map, ms, winograd / the best of xla and im2col, forward then input gradient
    (3x3 'same' unless said, 2026-12-07): 64->64 56x56 N=8 7.7 / 10.7, 8.0 / 11.0;
    28x28 N=32 9.1 / 10.9, 7.8 / 10.6; 'valid' 28x28 N=16 4.2 / 4.7, 4.3 / 5.1; 14x14
    N=32 2.5 / 2.6, 2.6 / 2.6; 64->128 28x28 N=8 3.7 / 5.0, 4.4 / 5.0; 128->128 28x28
    N=8 7.1 / 8.5, 6.8 / 8.4; 14x14 N=16 4.8 / 4.7, 4.4 / 4.7; 256->256 14x14 N=8 7.5 /
    8.6, 6.4 / 8.7; 7x7 N=32 7.4 / 10.1, 6.2 / 9.0; 128->128 12x12 N=8 (72 tiles) 2.0 /
    2.1, 1.9 / 2.0. Lost: with few tiles, where the kernel's transform is most of the
    work (512->512 7x7 N=8, 32 tiles: 25.5 / 12.2, 23.5 / 12.5; 14x14 N=8, 128 tiles:
    38.6 / 31.7, 35.7 / 32.5), and from fewer channels (16->16 56x56 1.9 / 1.3; 32->32 3.6 / 3.5,
    3.5 / 3.3; 3->64 3.4 / 1.5). Its weight gradient replaces im2col's only (where the
    rules below pick xla, xla's is faster): once at most four chunks ran fenced rather
    than in a loop (:data:`algorithms.FENCED_CHUNKS`), ms, winograd / im2col / xla
    (2026-12-07): 64->64 56x56 N=8 12.3 / 16.9 / 15.2 (11.2 / 13.2 in a faster
    minute); 28x28 N=32 11.9 / 14.7 / 13.0; 14x14 N=32 3.7 / 4.3 / 3.6; 'valid' 28x28
    N=16 6.7 / 6.6 / 5.8; 64->128 28x28 N=8 5.0 / 7.3 / 5.8; 128->128 28x28 N=8 7.6 /
    10.5 / 9.2; but where xla's is taken, 128->128 14x14 N=16 5.5 / 7.7 / 5.1,
    256->256 14x14 N=8 11.4 / 22.2 / 7.9, 512->512 7x7 27.3 / 41.3 / 10.4 (before the
    fence it lost at 64->64 56x56: 22 / 11.5). Fwd+bwd, ms, im2col's weight gradient
    -> winograd's: 64->64 56x56 N=8 24.8 -> 21.4 (with ``relu`` 27.8 -> 27.2), 128->128
    28x28 N=8 21.5 -> 16.5 (``relu`` 24.1 -> 20.6), 64->64 28x28 N=32 25.0 -> 21.8
    (``relu`` 26.7 -> 25.7). These per-map times
    are with the whole batch's tiles; large batches run in chunks
    (:data:`algorithms.winograd.CHUNK_ELEMENTS`), where a map alone runs about 1.2x
    slower (64->64 56x56 forward 8.8 against 7.3) but a forward and an input
    gradient in one program run faster, which is what a training step does (see
    there: fwd+bwd 0.77-0.97x the previous plan's time, with ``relu`` or without).
    """
    return (min(c_in, c_out) >= WINOGRAD_CHANNELS
            and count >= max(WINOGRAD_TILES, balance))


def _winograd5(geom: ConvGeometry, which: str, count: int, balance: float, c_in: int,
               c_out: int) -> bool:
    """F(4x4, 5x5): from at least :data:`WINOGRAD5_CHANNELS` channels each way,
    :data:`WINOGRAD5_TILES` tiles and :data:`WINOGRAD5_BALANCE` times ``balance``
    (its kernel transform is 64 elements a channel pair, against 3x3's 36); the
    input gradient only where at most :data:`WINOGRAD5_DX_ZEROS` of the transposed
    geometry's padded input is padding, the weight gradient only up to
    :data:`WINOGRAD5_DW_CHANNELS` channels each way and at most
    :data:`WINOGRAD5_DW_WASTE` of the tiles past the output.

    Per map, ms, winograd / the best of xla and im2col, forward, input gradient,
    weight gradient (5x5 'same' unless said, 2026-12-07): LeNet's conv2 ('valid' 20
    -> 50, 12x12) at N=500 9.1 / 14.0, 19.2 / 11.2, 13.1 / 17.8; N=128 2.3 / 3.5, 5.0 /
    3.5, 3.5 / 4.0; N=32 0.88 / 1.16, 1.48 / 1.03, 1.17 / 1.12; 64->64 28x28 N=8 4.3 /
    6.1, 4.3 / 6.1, 5.8 / 7.6; 14x14 N=32 5.6 / 6.2, 5.6 / 6.3, 7.8 / 7.0; 32->32 28x28
    N=16 2.9 / 3.9, 2.8 / 3.7, 3.9 / 6.3; 96->96 28x28 N=8 9.1 / 12.2, 9.1 / 13.7, 25.9 /
    14.8; 64->128 N=8 9.1 / 10.3, 8.7 / 11.8, 20.7 / 12.3; 16->32 32x32 N=32 5.8 / 5.7,
    4.7 / 6.6, 7.9 / 9.6. Lost everywhere: 128->128 14x14 N=8 (128 tiles, balance 64)
    8.9 / 6.4, 8.3 / 6.2, 9.9 / 6.0, and 7x7 N=16; few channels: 8->16 28x28 N=32 1.8 /
    1.8, 2.7 / 2.1, 2.7 / 2.3; 3->32 32x32 5.5 / 3.4, 3.5 / 2.8, 4.3 / 2.5; few tiles:
    32->32 28x28 N=2 (98 tiles) 0.72 / 0.65, 0.77 / 0.72, 1.04 / 1.09 (N=4: 1.10 / 1.13,
    1.07 / 1.14, 1.22 / 2.00); 64->64 N=2 2.14 / 1.79, 2.22 / 1.77, 2.68 / 2.27.
    """
    if (min(c_in, c_out) < WINOGRAD5_CHANNELS or count < WINOGRAD5_TILES
            or count < WINOGRAD5_BALANCE * balance):
        return False
    if which == "input_grad":
        return ALGORITHMS["im2col"].transposed_zeros(geom) <= WINOGRAD5_DX_ZEROS
    if which == "weight_grad":
        mod = ALGORITHMS["winograd"]
        covered = math.prod(mod.M_OUT * t for t in mod.tiles(geom))
        return (max(c_in, c_out) <= WINOGRAD5_DW_CHANNELS
                and 1 - math.prod(geom.out_spatial) / covered <= WINOGRAD5_DW_WASTE)
    return True


def _widened_xla(geom: ConvGeometry, which: str, c_in: int, c_out: int) -> bool:
    """Whether XLA's widened convolution (:func:`algorithms.xla.widened`) runs this
    stride-1 2-D ungrouped map (``"forward"`` or ``"input_grad"``), as it does from at
    least :data:`WIDENED_XLA_CHANNELS` channels each way when the extra outputs are at
    most :data:`WIDENED_XLA_AT_MOST` of the work.

    Widened, XLA's convolution is not YNNPACK's (see :data:`algorithms.xla.WIDEN_AT_MOST`)
    and beat im2col (or, once, matched it) in every such shape of a sweep
    (2026-12-07, ms, xla / im2col, forward then input gradient; 3x3 'same' unless
    said, N scaled to about the same work): 64->64 56x56 9.4 / 11.1, 9.6 / 10.3;
    32->32 56x56 5.9 / 7.4, 6.4 / 7.3; 32->32 28x28 1.6 / 1.8, 1.7 / 1.8; 32->64 28x28
    2.8 / 3.3, 2.8 / 3.1; 48->48 2.8 / 3.0, 2.7 / 3.0; 64->128 4.3 / 5.3, 4.7 / 4.6;
    128->128 7.6 / 8.0, 7.7 / 7.9; 128->256 14x14 4.2 / 4.3, 4.5 / 4.6; 5x5 'same'
    32->32 28x28 3.5 / 4.5, 3.5 / 4.4; 64->64 5.7 / 6.6, 5.8 / 6.7; 'valid' 32->32
    56x56 (6% more outputs) 5.8 / 6.6. It lost from fewer channels (24->24 28x28 1.29
    / 1.16; 20->20 56x56 4.7 / 3.0) and with more extra outputs ('valid' 3x3 64->64
    28x28, 12%: 4.6 / 4.1). Dilated kernels are unmeasured and left to the other rules,
    as is a 1x1 kernel, which im2col runs as one product.
    """
    if (geom.ndim != 2 or geom.groups != 1 or any(s != 1 for s in geom.stride)
            or any(d != 1 for d in geom.dilation) or min(c_in, c_out) < WIDENED_XLA_CHANNELS
            or math.prod(geom.kernel) == 1):
        return False  # a 1x1 kernel: im2col's one product (64->64 56x56 dx 2.2 / 3.4 ms)
    xla = ALGORITHMS["xla"]
    if which == "forward":
        lhs, rhs, out = ((1, c_in, *geom.in_spatial), (c_out, c_in, *geom.kernel),
                         geom.out_spatial)  # the shapes xla.forward convolves
        padding = pads(geom)
    else:
        geom_t = transposed_geometry(geom)
        lhs, rhs, out = ((1, c_out, *geom_t.in_spatial), (c_in, c_out, *geom.kernel),
                         geom.in_spatial)
        padding = geom_t.padding
    wide = xla.widened(lhs, rhs, geom.stride, padding, geom.dilation, (1,) * geom.ndim,
                       backend="cpu")
    return wide is not None and wide[1] / out[wide[0]] <= WIDENED_XLA_AT_MOST


def _dilated_dw_layer(geom: ConvGeometry, n: int, c_in: int, c_out: int) -> bool:
    """The layers :func:`rules` gives XLA's dilated weight gradient when
    :func:`_dilated_xla_weight_grad` allows it: first layers (at most
    :data:`DILATED_DW_CHANNELS` input channels), and from batches of at least
    :data:`DILATED_DW_BATCH`, wide kernels (at least :data:`WIDE_KERNEL_TAPS` taps)
    and 3x3 from at least :data:`DILATED_DW_WIDE` channels each way at up to
    :data:`SMALL_DW_OUTPUT` output positions.

    Per map, ms, xla dilated / im2col (2026-12-07): won, LeNet's conv2 (5x5 20->50)
    3.7 / 5.3 at batch 128; 5x5 64->128 28x28 N=8 11.8 / 15.0, 48->128 8x8 N=16 1.6 /
    2.7, 128->128 16x16 N=16 14.9 / 35.9; 3x3 128->128 12x12 N=32 6.5 / 8.1, 256->256
    14x14 N=8 8.2 / 21.2, 512->512 7x7 N=32 30.0 / 77.9. Lost, so not taken: 3x3
    64->64 at 16x16 N=64 8.7 / 7.8, 28x28 N=64 30.1 / 24.6, 32x32 N=16 9.7 / 8.9 and
    N=64 40.9 / 32.5; 128->128 28x28 N=32 40.5 / 39.0. LeNet step, A/B in one process,
    conv2's weight gradient dilated too: 0.93x the time at batch 128, 0.95x at 256,
    0.99x at 500, peak memory 1.125x lax's at 128 (1.129x without), 1.00x at 500.
    The batch is the correlation's input channels: 5x5 16->32 28x28 won at N=8, 2.2 /
    2.8 (32->32 3.8 / 4.0), but lost at N=2, 1.6 / 0.8.
    """
    if c_in <= DILATED_DW_CHANNELS:
        return True
    if n < DILATED_DW_BATCH:
        return False
    if math.prod(geom.kernel) >= WIDE_KERNEL_TAPS:
        return True
    return (min(c_in, c_out) >= DILATED_DW_WIDE
            and math.prod(geom.out_spatial) <= SMALL_DW_OUTPUT)


def _dilated_xla_weight_grad(geom: ConvGeometry, n: int, c_out: int,
                             dtype: DTypeLike) -> bool:
    """Whether an ungrouped stride-1 2-D weight gradient could be XLA's dilated
    correlation (:func:`algorithms.xla.dilates_weight_grad`): at most
    :data:`DILATED_DW_OUTPUT` output positions a sample and a cotangent of at most
    :data:`DILATED_DW_COTANGENT` elements. :func:`rules` takes it for the layers
    :func:`_dilated_dw_layer` names.

    Per map, ms, xla dilated / im2col (or direct): LeNet's conv2 at batch 128 3.8 /
    5.6, conv1 3.5 / direct's 4.4 (im2col 3.6); 3x3 256->256 14x14 N=8 8.2 / 21.2;
    'valid' 64->64 28x28 N=16 5.8 / 8.0; 24->24 28x28 2.2 / 3.4; 3x3 'same' 128->128
    12x12 N=32 6.5 / 8.1, 16->32 16x16 N=32 1.0 / 1.7; 5x5 'same' 64->128 28x28 N=8
    11.8 / 15.0, 32->32 N=16 6.4 / 6.6, 48->128 8x8 N=16 1.6 / 2.7; but 3x3 'same'
    64->64 56x56 15.4 / 12.7 (3136 positions) and a 1x1 kernel, im2col's one product
    (64->64 12x12 N=64 1.4 / 1.2). First layers, N=64 unless said: 3x3 'valid' 4->32
    28x28 1.8 / 2.3; 'same' 3->16 32x32 1.5 / 2.7; 5x5 'same' 3->32 5.7 / 7.2; 3x3 'same'
    1->32 28x28 N=128 3.0 / 3.4 (direct 6.4).

    XLA copies ``x`` and the cotangent into its convolution's layout whole; the copy
    of ``x`` is tied to the cotangent (:func:`algorithms.xla.after_cotangent`), or
    XLA made it in the forward pass and with LeNet's conv2 (20 -> 50) on it the
    step's peak memory was 1.21x lax's (the bound is 1.2x). LeNet step,
    A/B in one process (2026-12-07), ms: conv2's alone 19.6 -> 18.4 at batch 128, 81.9
    -> 82.0 at 500; conv1's alone 19.8 -> 18.1 at 128, 37.4 -> 34.7 at 256, but 84.3 ->
    93.5 at 500 (its cotangent 5.8 M elements, 23 MB: :data:`DILATED_DW_COTANGENT`);
    both 20.0 -> 16.8 at 128 and 37.0 -> 32.5 at 256.
    """
    if (geom.ndim != 2 or geom.groups != 1 or any(s != 1 for s in geom.stride)
            or any(d != 1 for d in geom.dilation) or math.prod(geom.kernel) == 1
            or math.prod(geom.out_spatial) > DILATED_DW_OUTPUT
            or n * c_out * math.prod(geom.out_spatial) > DILATED_DW_COTANGENT):
        return False
    return bool(ALGORITHMS["xla"].dilates_weight_grad(geom.ndim, geom.groups, n, c_out, dtype,
                                                       backend="cpu"))


def _xla_input_grad(geom: ConvGeometry, c_in: int, c_out: int) -> bool:
    """Whether a 2-D, stride-1 convolution's input gradient is XLA's (ungrouped, not 1x1).

    That gradient correlates the cotangent (``C_out`` channels) with the flipped kernel
    into ``C_in`` channels. XLA's CPU convolution is slow when it writes few or
    unaligned channels, so XLA needs ``C_in`` a multiple of :data:`XLA_DX_CHANNELS`
    (5x5 'valid' 1 -> 20 / 3 -> 16 28x28: im2col 6.7 / 13.9 against xla 34.2 / 34.5
    ms; 3x3 'valid' 3 -> 64 56x56, 4 -> 32 28x28: 47.9 / 12.2 against 53.8 / 16.7;
    3x3 'same' 12 -> 48 27.7 against 42.7). Then it is XLA's:

    * where im2col runs the transposed forward
      (:func:`algorithms.im2col.transposed_forward`) and the convolution is 'valid'
      (a 'full' correlation), or those width patches have fewer than
      ``WIDTH_PATCHES_ROWS[0]`` rows (as in the forward), or the kernel has 25 taps
      or more onto at most 32 channels. ms, xla / im2col, 3x3 unless said: 'valid'
      16->16 56x56 10.6 / 16.2; 32->32 28x28 7.2 / 10.7; 48->48 28x28 12.1 / 18.0;
      64->64 56x56 10.8 / 13.8; 64->128 28x28 11.6 / 12.0;
      128->128 9.6 / 10.9; 5x5 32->32 56x56 29.9 / 36.5; 'same' 16->16 (48 rows)
      56x56 18.8-20.7 / 23.9-27.2, 28x28 5.5-5.9 / 5.5-6.9, 14x14 1.6 / 2.7; 'same'
      5x5 16->16 / 32->32 28x28 8.4-9.8 / 25.3-36.4 against 9.1-12.8 / 29.4-42.0
      (56x56: 25.6-26.9 / 30.6-36.4 against 25.9-27.8 / 21.8-38.5).
    * where im2col would fold ``dP^T`` (:func:`algorithms.im2col.input_grad`) and
      less than :data:`FOLD_MIN_ZEROS` of the transposed input is padding (the
      fold's ``prod(k) * C_in`` columns per input element cost more than XLA's
      correlation unless most of what it would read is zeros). N scaled to about
      the same work, ms, xla / im2col, one sweep (two or three for some): 'valid'
      3x3 on 14x14 (0.44 zeros) 8 / 16 / 32 / 48 / 64 / 256 channels 1.1 / 1.3 /
      3.3 / 5.7 / 10.8-15.9 / 13.7 against 1.8 / 2.4 / 5.5 / 8.4 / 15.5-25.6 /
      15.2; 5x5 'same' on 14x14 (0.40) 16 / 64 / 128 channels 2.3 / 35.3-37.3 /
      21.0-22.1 against 3.8 / 36.2-48.3 / 28.0-29.0; 'same' 3x3 8->8 (24
      width-patch rows, too few for the transposed forward) 14x14 / 28x28 1.0 /
      2.6-3.1 against 1.3 / 3.4-3.5. It loses some: 'same' 3x3 8->8 56x56 9.1-17.6
      against 8.0-12.8; 5x5 'same' 14x14 48->48 25.5-28.3 against 17.6-25.4,
      32->128 34.0 against 26.2, 64->128 32.9-42.7 against 22.4-48.2; 'valid' 3x3
      8->32 14x14 3.0 against 2.5. LeNet's conv2 ('valid' 5x5 on 12x12, 0.75 zeros)
      keeps the fold: with 16-32 input channels, N=128, im2col 5.1-15.0 against
      XLA's 9.8-21.3 ms.
    """
    if (geom.ndim != 2 or any(s != 1 for s in geom.stride) or math.prod(geom.kernel) == 1
            or c_in % XLA_DX_CHANNELS):
        return False
    im2col = ALGORITHMS["im2col"]
    if im2col.transposed_forward(geom, c_out):
        valid = all(p == (0, 0) for p in geom.padding)
        few_rows = geom.kernel[-1] * c_out < WIDTH_PATCHES_ROWS[0]
        return valid or few_rows or (math.prod(geom.kernel) >= WIDE_KERNEL_TAPS and c_out <= 32)
    return bool(im2col.transposed_zeros(geom) < FOLD_MIN_ZEROS)


def _xla_weight_grad(geom: ConvGeometry, c_in: int, c_out: int) -> bool:
    """Whether a 2-D, padded convolution's weight gradient is XLA's (ungrouped), at
    stride 1: at most 8 output channels, or at most 16 with a kernel of 25 taps or
    more, from a multiple of :data:`XLA_DX_CHANNELS` input channels.

    XLA's CPU weight-gradient convolution is 2-10x slower than im2col's product on
    most shapes (3x3 'same' 16->32 56x56 N=64 239 against 66 ms, 'valid' 8->8 56x56
    62-66 against 20-21), but faster for these padded ones. ms, xla / im2col, two
    runs of each (N=64 unless said): 'same' 3x3 8->8 14x14 / 28x28 / 56x56 0.65-1.4
    / 3.4 / 11.1-22.2 against 0.86-2.0 / 3.4 / 18.0-33.2; 5x5 8->8 14x14 / 28x28 /
    56x56 2.0 / 6.0-7.5 / 18.1-18.7 against 2.0 / 6.8-9.0 / 50.5-51.5; 5x5 16->16
    28x28 / 56x56 (N=46) 27.2-31.5 / 33.9-46.3 against 33.9-36.2 / 64.1-94.3. Not
    taken, as the two measure alike or im2col is faster: 3x3 16->16 14x14 / 28x28 /
    56x56 3.3 / 17.8-21.5 / 43.5-72.3 against 3.2 / 8.9-15.2 / 52.0-66.2; 3x3 8->16
    56x56 29.6 against 29.4; from one input channel (5x5 1->8 56x56 13.4 against
    5.5). XLA measured faster in a few shapes this leaves to im2col: 3x3 32->16 56x56
    N=32 29.5 against 38.9 (one run); 5x5 128->128 56x56 N=1 27.5 against 40.2.

    Also XLA's: a kernel of :data:`WIDE_KERNEL_TAPS` or more from at least
    :data:`WIDE_DW_CHANNELS` [0] onto at least [1] channels with at most
    :data:`SMALL_DW_OUTPUT` output positions a sample (5x5 'same', ms, xla / im2col,
    2026-12-04): 64->128 14x14 N=23 20.6-25.6 / 31.5-34.3; 128->128 14x14 N=12
    22.4-27.9 / 32.0-35.8; 128->256 14x14 N=6 19.4 / 28.5; 7x7: 64->128 N=92
    19.6 / 34.9, 128->128 N=48 16.7 / 38.1, 256->256 N=12 29.6 / 77.3. Not
    where it lost: 64->64 14x14 N=46 44.6 / 22.7; 32->64 22.9 / 14.7; 64->128
    28x28 N=23 150 / 96; 3x3 128->128 14x14 27.9 / 14.9. It misses 256->256
    14x14 N=3, 33.5-34.8 / 27.0-27.3. Strided alike (5x5 stride 2 from 28x28,
    padded 2: 64->128 N=23 23.6 / 41.4, 128->256 N=6 27.9 / 38.7).

    And strided, from at least :data:`STRIDED_XLA_DW_ROWS` patch rows (``C_in *
    prod(k)``), ms, xla / im2col (padded 1, stride 2, 2026-12-07): 4x4 64->128 64x64
    N=8 (the transposed-convolution case's geometry) 11.0-12.3 / 13.1-14.1, its
    fwd+bwd 31.4-32.1 against 33.8-33.9; 4x4 64->64 7.4 / 8.5; 4x4 128->128 28x28
    N=16 7.6 / 10.7; 3x3 128->256 28x28 N=16 8.0 / 9.5. Not below: 3x3 64->128 56x56
    N=16 (576 rows) 12.9 / 11.7; 4x4 32->64 (512) 4.4 / 4.2; 7x7 3->64 (147) 14.7 /
    12.5.
    """
    if (geom.ndim != 2 or all(p == (0, 0) for p in geom.padding)
            or c_in % XLA_DX_CHANNELS):
        return False
    wide = math.prod(geom.kernel) >= WIDE_KERNEL_TAPS
    if (wide and c_in >= WIDE_DW_CHANNELS[0] and c_out >= WIDE_DW_CHANNELS[1]
            and math.prod(geom.out_spatial) <= SMALL_DW_OUTPUT):
        return True  # at any stride
    if any(s != 1 for s in geom.stride):
        return c_in * math.prod(geom.kernel) >= STRIDED_XLA_DW_ROWS
    return c_out <= 8 or (c_out <= 16 and wide)


def _grouped(geom: ConvGeometry, taps: int, cin_g: int, cout_g: int, strided: bool) -> Plan:
    """The CPU plan of a grouped, not depthwise, convolution (see :func:`rules`)."""
    direct = ALGORITHMS["direct"]
    many = geom.groups > XLA_GROUPS
    terms = taps * cin_g
    few = cin_g <= FEW_GROUP_CHANNELS  # XLA's per-group convolutions are slow there
    if terms <= DIRECT_TERMS or (terms <= MANY_GROUPS_TERMS and (many or few)):
        forward = "im2col" if many and strided and terms > DIRECT_TERMS else "direct"
    else:
        forward = "im2col" if many else "xla"
    if many:
        input_grad = "direct" if cout_g <= cin_g and not strided else "im2col"
    elif strided:
        input_grad = "xla"
    elif cout_g <= cin_g and taps * cout_g <= GROUPED_DIRECT_DX_TERMS:
        input_grad = "direct"
    elif cin_g < IM2COL_DX_CHANNELS or (cin_g == IM2COL_DX_CHANNELS and taps < WIDE_KERNEL_TAPS):
        input_grad = "im2col"
    else:
        input_grad = "xla"
    if (geom.ndim == 2 and geom.groups <= GROUPED_XLA_DW_GROUPS
            and cin_g >= GROUPED_XLA_DW_CHANNELS[0] and cout_g <= GROUPED_XLA_DW_CHANNELS[1]
            and (not strided or taps < WIDE_KERNEL_TAPS)):
        weight_grad = "xla"  # one correlation per group (algorithms.xla.split_weight_grad)
    else:
        weight_grad = "direct" if terms <= direct.VARIADIC_TERMS else "im2col"
    return Plan(forward, input_grad, weight_grad)


def _checked(plan: Plan, geom: ConvGeometry, dtype: DTypeLike, x_shape: Shape,
             w_shape: Shape) -> Plan:
    """``plan`` with ``xla`` wherever its algorithm declines (e.g. a huge patch matrix)."""
    for which in MAPS:  # never a choice the algorithm declines (e.g. huge patch matrices)
        if unsupported(plan[which], which, geom, dtype, x_shape, w_shape) is not None:
            plan = Plan(**{**{m: plan[m] for m in MAPS}, which: "xla"})
    return plan


#: Depthwise convolutions of at least this many taps (13x13) run every map by FFT
#: (:func:`_depthwise`).
DEPTHWISE_FFT_TAPS = 169
#: Below this many output elements (N * C_out * prod(O)) auto picks xla.
MIN_OUTPUT = 4096
#: direct's forward when each output sums at most this many products (``prod(k) * C_in/G``).
DIRECT_TERMS = 32
#: Grouped, more groups than this (where the xla algorithm stops writing one
#: convolution per group): direct's forward up to :data:`MANY_GROUPS_TERMS` terms.
XLA_GROUPS = 16
MANY_GROUPS_TERMS = 100
#: ... and, with fewer groups, from at most this many input channels per group.
FEW_GROUP_CHANNELS = 4
#: Grouped, at most :data:`XLA_GROUPS` groups, stride 1: direct's input gradient when
#: each input sums at most this many products (``prod(k) * C_out/G``).
GROUPED_DIRECT_DX_TERMS = 36
#: Grouped, at most :data:`XLA_GROUPS` groups, stride 1, no direct: im2col's input
#: gradient up to this many input channels per group (fewer with a 5x5 kernel), else xla.
IM2COL_DX_CHANNELS = 8
#: Grouped, 2-D, stride 1: the weight gradient is xla's (one correlation per group) from
#: this many input channels per group, up to this many output channels per group.
GROUPED_XLA_DW_CHANNELS = (4, 16)
#: ... and at most this many groups: each is a program to compile (the gradient of the
#: benchmark's 32 groups of 8 compiles in 2.2-2.6 s against 1.1-1.2 with direct's
#: weight gradient; 64 groups of 4, 2.7-2.8 against 0.8-0.9; 128 groups, 5-6 s).
GROUPED_XLA_DW_GROUPS = 64
#: 1-D: im2col's input gradient (no groups, any stride) onto at most this many channels.
FEW_CHANNELS = 4
#: phase's input gradient (strided, no groups) onto at least this many channels.
PHASE_MIN_CHANNELS = 16
#: ... onto fewer (a multiple of :data:`XLA_DX_CHANNELS`), 2-D, XLA's from at most this
#: many output channels (else im2col's).
STRIDED_XLA_DX_OUT = 32
#: XLA's stride-1 2-D input and weight gradients (:func:`_xla_input_grad`,
#: :func:`_xla_weight_grad`) only with a multiple of this many input channels.
XLA_DX_CHANNELS = 8
#: XLA's 2-D forward from an odd number of channels beats im2col's full patch matrix
#: only onto these many output channels (:func:`_patch_matrix_win`).
XLA_PATCH_FORWARD_OUT = (64,)
#: ... and, where im2col would fold, only when less than this fraction of the
#: transposed input is padding.
FOLD_MIN_ZEROS = 0.6
#: XLA's CPU 2-D forward convolution keeps up with im2col's when the output
#: channels are a multiple of this (see :func:`rules`).
XLA_FORWARD_CHANNELS = 8
#: ... unless im2col's width patches have a number of rows in this range
#: (:func:`_width_patches_win`).
WIDTH_PATCHES_ROWS = (64, 320)
#: ... at least this many for a kernel of :data:`WIDE_KERNEL_TAPS` taps or more,
WIDE_KERNEL_MIN_ROWS = 96
#: ... and onto at least ``[0]`` channels at most ``[1]``.
WIDE_KERNEL_WIDE_OUTPUT = (128, 160)
#: A kernel of this many taps or more (5x5) is "wide" in the rules that treat 5x5
#: apart from 3x3 (:func:`_width_patches_win`, :func:`_xla_input_grad`,
#: :func:`_xla_weight_grad`).
WIDE_KERNEL_TAPS = 25
#: A wide kernel's padded weight gradient from at least [0] onto at least [1] channels
#: is XLA's at up to :data:`SMALL_DW_OUTPUT` output positions (:func:`_xla_weight_grad`).
WIDE_DW_CHANNELS = (64, 128)
SMALL_DW_OUTPUT = 14 * 14
#: Winograd's F(4x4, 3x3) (:func:`_winograd`) runs 3x3 stride-1 forwards and input
#: gradients from at least this many channels each way ...
WINOGRAD_CHANNELS = 64
#: ... and this many 4x4 output tiles in the batch.
WINOGRAD_TILES = 64
#: Strided 2-D weight gradients from at least this many patch rows (``C_in * prod(k)``,
#: ungrouped) are XLA's (:func:`_xla_weight_grad`).
STRIDED_XLA_DW_ROWS = 1024
#: F(4x4, 5x5) (:func:`_winograd5`): from this many channels each way ...
WINOGRAD5_CHANNELS = 20
#: ... this many 4x4 output tiles in the batch ...
WINOGRAD5_TILES = 128
#: ... and this many times ``C_in * C_out / (C_in + C_out)``; ...
WINOGRAD5_BALANCE = 4
#: ... the input gradient where at most this fraction of the transposed geometry's
#: padded input is padding ('same' 5x5 on 14x14: 0.40; 'valid', LeNet's conv2: 0.75) ...
WINOGRAD5_DX_ZEROS = 0.5
#: ... and the weight gradient up to this many channels each way ...
WINOGRAD5_DW_CHANNELS = 64
#: ... where at most this fraction of the tiles' outputs lies past the output (14x14 in
#: 4x4 tiles: 0.23).
WINOGRAD5_DW_WASTE = 0.15
#: XLA's widened convolution (:func:`_widened_xla`) runs an ungrouped stride-1 2-D
#: forward and input gradient from at least this many channels each way ...
WIDENED_XLA_CHANNELS = 32
#: ... when its extra outputs are at most this fraction of the work.
WIDENED_XLA_AT_MOST = 0.08
#: XLA's dilated weight gradient (:func:`_dilated_xla_weight_grad`) up to this many
#: output positions a sample ...
DILATED_DW_OUTPUT = 32 * 32
#: ... and this many cotangent elements (16 MiB in float32) ...
DILATED_DW_COTANGENT = 1 << 22
#: ... for first layers (at most this many input channels), wide kernels, and ...
DILATED_DW_CHANNELS = 4
#: ... 3x3 kernels from at least this many channels each way (:func:`_dilated_dw_layer`),
#: the last two from batches of at least this many samples.
DILATED_DW_WIDE = 128
DILATED_DW_BATCH = 8
#: From this batch the weight gradient of a few-row patch matrix runs per-sample
#: products (:func:`algorithms.im2col.sample_products`); at 8 samples, LeNet's conv1
#: took 0.28 ms so against xla's 0.24.
SAMPLE_PRODUCTS_BATCH = 16
#: A 1x1 convolution from at least this many channels runs im2col's forward, which is
#: then one matrix product of the input (see :func:`rules`).
PRODUCT_MIN_CHANNELS = 16
