//! ferroflow-engine: threads and pipelines (receive/decode workers, sinks, the Kafka->ES
//! consumer engine, metrics) and the file-decoding job behind `ferroflow decode`.

pub mod decode_file;
