"""Neural architecture search: encodings, accuracy predictor, efficiency models."""
