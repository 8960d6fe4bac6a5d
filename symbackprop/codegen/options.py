"""The choices ``symbackprop generate`` offers (no SymPy here: ``--help`` imports this)."""
from __future__ import annotations

OPTIMIZERS = ("sgd", "momentum", "adam")
DTYPES = ("float64", "float32")

# Standard deviation of the initial weights of a layer with n_in inputs and n_out units,
# as the generated init_params computes it.
INITS = {
    "he": "np.sqrt(2.0 / n_in)",
    "xavier": "np.sqrt(2.0 / (n_in + n_out))",
    "normal": "0.01",
}

# The learning-rate schedules of the generated Trainer and estimators (scikit-learn's three
# and cosine annealing).
SCHEDULES = ("constant", "invscaling", "adaptive", "cosine")

# The backends that print a plan: in-place NumPy, and pure functions of any array-API library.
BACKENDS = ("numpy", "array-api")
