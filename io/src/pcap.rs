//! pcap / pcapng reading (placeholder: being written).
