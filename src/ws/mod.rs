//! ws stage: see docs/ARCHITECTURE.md.
