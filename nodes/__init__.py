"""The graph's nodes, one module each, plus the provider and tool catalogues."""
