//! replay stage: see docs/ARCHITECTURE.md.
