//! Fault tests of `betrace serve` as a process (being written).
