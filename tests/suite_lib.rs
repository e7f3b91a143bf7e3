//! Empty library target: the root package exists only to own `tests/it` and `benches/`.
