//! decode stage: see docs/ARCHITECTURE.md.
