"""The family-independent vocabulary of search spaces: choices, arch rows, layer slots, encoding groups, the family registry."""
