//! ferroflow-engine (see ARCHITECTURE.md).
