//! sink stage: see docs/ARCHITECTURE.md.
