"""Fixed-feedback training (DSF, Caillon, Fagnou & Allauzen 2025, arXiv 2503.23104).

BPTT propagates state errors backwards through the time-varying Jacobians
``J_t``; DSF replaces them by one fixed diagonal matrix ``A``, so the backward
pass becomes the linear time-invariant filter ``g_t = e_t + a ⊙ g_{t+1}``.

- :mod:`.scan`: the filter as a log-depth parallel scan, with sequential references;
- :mod:`.cells`: tanh RNN, GRU, LSTM and diagonal SSM cells as pure functions, and
  their local derivatives written out by hand;
- :mod:`.window`: the window form's layer (graph-free forward, blocked DSF backward);
- :mod:`.core`: the stacked streaming core, its window-form training forward and the
  plain reference form;
- :mod:`.trace`: the streaming trace form (eligibility traces, online gradient);
- :mod:`.forecasters`: the registered models ``dsf_rnn``, ``dsf_gru``, ``dsf_lstm``,
  ``diag_ssm``.
"""
