"""Entry points over any registered family: storage, extraction and counting."""
