//! tcp stage: see docs/ARCHITECTURE.md.
