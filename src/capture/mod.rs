//! capture stage: see docs/ARCHITECTURE.md.
