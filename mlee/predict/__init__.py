"""Energy prediction from measured kernels (NeuralPower, DeepEn2023, BUTTER-E).

Modules, lowest first (none imports torch, numpy or sklearn at module level):

- :mod:`.kernels`    kernel kinds, their configurations and cost features (pure)
- :mod:`.grids`      the quick/full profiling grids (pure)
- :mod:`.builders`   a runnable torch module and input for one kernel configuration; torch threads
- :mod:`.models`     model names (mlee's registry, then torchvision) and building them, on ``meta`` too
- :mod:`.decompose`  a PyTorch model as the kernels it runs, with their configurations
- :mod:`.polyfit`    polynomial least squares with degree and transform chosen by cross-validation
- :mod:`.gbm`        gradient-boosted trees (scikit-learn) exported to plain JSON data
- :mod:`.families`   lasso, huber, random forest beside them, chosen per kind by CV (``--kind auto``)
- :mod:`.predictor`  the predictor file: per kernel kind models of runtime and power, fingerprint, loading
- :mod:`.forecast`   per-layer and total predictions for a decomposed model
- :mod:`.layers`     the per-layer breakdown as a rich table (the timing lives in :mod:`mlee.runners.layers`)
- :mod:`.profile`    measuring kernels over a grid, repeated until stable, into experiment folders
- :mod:`.training`   profiled points from a database or experiment folders, and fitting a predictor
- :mod:`.layerdata`  the layer-data CSV; :mod:`.importers` NeuralPower and nn-Meter/DeepEn2023 files
- :mod:`.evaluate`   held-out splits and MAPE/RMSPE beside the constant baseline
- :mod:`.onnx_graph` an ONNX graph as kernels; :mod:`.architecture` names and architecture files
- :mod:`.measure`    measuring a whole model to check a prediction
- :mod:`.probe`      the speed probe that tracks how fast the machine is during and after a profile
- :mod:`.cache`      CPU cache sizes read from the machine
- :mod:`.sweep`      BUTTER-E style MLP sweeps; :mod:`.sweepfit` their cache-aware energy model;
  :mod:`.sweepimport` published sweep records (their tables live in :mod:`mlee.commands._predict_tables`)
"""

from __future__ import annotations
