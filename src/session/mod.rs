//! session stage: see docs/ARCHITECTURE.md.
