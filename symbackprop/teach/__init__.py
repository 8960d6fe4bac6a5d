"""Teaching the chain rule: a gradient explained path by path, and a worked SGD step.

- ``paths.explain``: the computation graph from one parameter to the loss, the product of the
  local derivatives along every path, their sum, and backpropagation's cached form of it.
- ``worked.work_example``: one step of gradient descent with real numbers, computed exactly from
  the equations of a ``Derivation``.
- ``present``: both as text, Markdown or LaTeX, through ``printers`` and the templates
  ``explain.*.j2`` / ``example.*.j2``.
"""
