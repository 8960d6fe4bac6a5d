"""Real data: a generated 64-32:relu-10:softmax trainer on scikit-learn's load_digits."""
from __future__ import annotations

import numpy as np
from codegen_helpers import load
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def test_digits_test_accuracy_is_at_least_097():
    module = load("64-32:relu-10:softmax", "cross_entropy")
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
    Y_train = np.eye(10)[y_train]
    # Plain SGD, lr 0.1, batches of 16, 100 epochs; three initialisations, each must pass.
    for seed in (0, 1, 2):
        trainer = module.Trainer(lr=0.1, optimizer="sgd", batch_size=16, seed=seed)
        costs = trainer.fit(X_train, Y_train, epochs=100, verbose=False)
        accuracy = float(np.mean(trainer.predict(X_test).argmax(axis=1) == y_test))
        print(f"seed {seed}: load_digits test accuracy {accuracy:.4f}, "
              f"final training cost {costs[-1]:.4f}")
        assert costs[-1] < costs[0] / 5
        assert accuracy >= 0.97, (seed, accuracy)
