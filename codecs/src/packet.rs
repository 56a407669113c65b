//! L2-L4 parsing of sampled packet headers (sFlow raw packet header records).
//! (placeholder: being written)
