//! http stage: see docs/ARCHITECTURE.md.
