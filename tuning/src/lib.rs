//! ferroflow-tuning (see ARCHITECTURE.md).
