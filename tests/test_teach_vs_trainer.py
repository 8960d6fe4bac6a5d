"""The worked example and the generated trainer, two printings of one derivation, agree.

``symbackprop example`` computes every number in exact SymPy arithmetic from the Derivation;
the generated trainer computes them in float64 NumPy from the same Derivation's printed kernels.
On the same weights and samples their gradients and updated parameters must coincide.
"""
import numpy as np
import pytest
import sympy as sp
from codegen_helpers import load

from symbackprop import derive, parse_arch
from symbackprop.teach.inputs import draw_parameters, parse_samples
from symbackprop.teach.worked import work_example

CASES = [
    ("2-2:relu-2:identity", "mse", "0.5, 1; -1, 2; 0.25, -0.75", "1, 0; 0, 1; 0.5, 0.5"),
    ("2-3-1", "half_sse", "0.5, 1; 1, 2; -0.5, 0.25; 0, 1; 2, -1", "1; 0; 1; 0; 1"),
    ("2-3:tanh-3:softmax", "cross_entropy", "0.5, 1; 1, -2", "1, 0, 0; 0, 0.5, 0.5"),
    ("3-2:leaky_relu-2:softplus-2:sigmoid", "bce", "1, 0, -1; 0.5, 0.5, 2", "1, 0; 0, 1"),
]


def as_array(matrix) -> np.ndarray:
    return np.array(sp.N(sp.Matrix(matrix), 30).tolist(), dtype=np.float64)


@pytest.mark.parametrize("spec,loss,x,y", CASES, ids=[f"{s} {l}" for s, l, _, _ in CASES])
def test_worked_example_matches_the_generated_trainer(spec, loss, x, y):
    arch = parse_arch(spec, loss)
    params = draw_parameters(7, arch.sizes)
    samples = parse_samples(x, y, arch.sizes[0], arch.sizes[-1])
    lr = sp.Rational(1, 10)
    worked = work_example(derive(arch), params, samples, lr)

    trainer = load(spec, loss)
    numpy_params = {}
    for l, (W, b) in enumerate(zip(params.weights, params.biases), start=1):
        numpy_params[f"W{l}"] = as_array(W)
        numpy_params[f"b{l}"] = as_array(b).reshape(-1)
    X, Y = as_array(samples.X).T, as_array(samples.Y).T  # the trainer's rows are examples
    grads = trainer.gradients(numpy_params, X, Y)
    assert trainer.cost(numpy_params, X, Y) == pytest.approx(float(worked.cost), rel=1e-12)

    for l in range(1, arch.depth + 1):
        dW = as_array(worked.value_of(f"dW[{l}]"))
        db = as_array(worked.value_of(f"db[{l}]")).reshape(-1)
        np.testing.assert_allclose(grads[f"W{l}"], dW, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(grads[f"b{l}"], db, rtol=1e-10, atol=1e-13)

    step = trainer.Trainer({k: v.copy() for k, v in numpy_params.items()}, lr=0.1,
                           optimizer="sgd", batch_size=samples.m)
    step.step(X, Y)
    for l in range(1, arch.depth + 1):
        np.testing.assert_allclose(step.params[f"W{l}"],
                                   as_array(worked.updated_value(f"W[{l}]")), rtol=1e-10,
                                   atol=1e-13)
