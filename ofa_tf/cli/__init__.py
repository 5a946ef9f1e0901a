"""The ofa-tf command line (click): one module per command group; the library never imports it."""
