"""The calculator's safe arithmetic language: its bounds, values, functions, syntax and walk.

`nodes.tools.calculator.evaluate` puts the parts together: `syntax.parse`, `syntax.validate`,
then `evaluator.Evaluator` under the wall-clock limit.
"""
