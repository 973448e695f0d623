//! Name resolution, type checking, cost estimation and diagnostics for `.btr` rules.
