//! ferroflow-perf (see ARCHITECTURE.md).
