"""AutoPQ: calibrated quantile forecasts from any point forecast (a cINN), automated with optuna.

The public API is re-exported from :mod:`hai.grid` (``hai.grid.AutoPQ``); the modules here
are the implementation, one concept each: data, forecasters, cinn, quantiles, metrics,
tuning, risk, estimator, cli, demo.
"""
