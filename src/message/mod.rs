//! message stage: see docs/ARCHITECTURE.md.
