"""Fixed-feedback training (DSF, Caillon, Fagnou & Allauzen 2025, arXiv 2503.23104).

BPTT propagates state errors backwards through the time-varying Jacobians
``J_t``; DSF replaces them by one fixed diagonal matrix ``A``, so the backward
pass becomes the linear time-invariant filter ``g_t = e_t + a ⊙ g_{t+1}``,
computed here with a log-depth parallel scan (:mod:`.scan`).
"""
