//! ferroflow-io (see ARCHITECTURE.md).
