"""One module per provider kind, each defining `KIND = ProviderSpec(...)`; found on import.

`nodes.providers.registry.provider_kinds` imports every module here whose name does not start
with `_`. Adding a kind is adding a module (and its test); nothing else lists the kinds.
"""
