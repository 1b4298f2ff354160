"""Trigger conditions, enrollment rule and debounce of a webhook (contract §2, §3, §5b).

Pure domain code: :mod:`~careflow.conditions.models` holds the configuration and outcome models
(imported by :mod:`careflow.models`, so it imports nothing from ``careflow``);
:mod:`~careflow.conditions.evaluate` decides whether a parsed payload meets a webhook's
conditions, reusing the mapping's JSONPath evaluation and value coercion;
:mod:`~careflow.conditions.checks` refuses unusable conditions when a webhook is saved
(``invalid_condition``, naming the rule). This package's ``__init__`` imports nothing, so
``careflow.models`` can import the models without an import cycle.
"""
