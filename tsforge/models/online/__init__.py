"""Online recurrent learners: one reading at a time, constant memory, no BPTT.

- :class:`~tsforge.models.online.learners.RTRLForecaster` (``rtrl``): exact
  forward-mode gradient through the influence matrix.
- :class:`~tsforge.models.online.learners.UOROForecaster` (``uoro``): unbiased
  rank-one estimate of the influence matrix.
- :class:`~tsforge.models.online.esn.EchoStateForecaster` (``esn``): fixed
  reservoir, readout learned by recursive least squares.
- :class:`~tsforge.models.online.ptncn.PTNCNForecaster` (``ptncn``): P-TNCN trained
  by local representation alignment, no gradients and no activation derivatives.

The learning math is numpy (float64) with analytic Jacobians, so the same code
can run on an edge box without torch; torch is only used to export the
inference step to ONNX.
"""
