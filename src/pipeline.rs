//! Wires the stages together for one run.
