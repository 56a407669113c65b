//! Decode errors: small, `Copy`, with the offset and what was expected.

/// Why a datagram, set, record or sample could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header or declared length needs.
    #[error("truncated {what} at offset {offset}: needed {needed} bytes, {available} available")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// The version field names no protocol we decode.
    #[error("unsupported version {version}")]
    UnsupportedVersion { version: u32 },
    /// A length, count or id that the RFC forbids.
    #[error("invalid {what} at offset {offset}: {value}")]
    Invalid {
        what: &'static str,
        offset: usize,
        value: u64,
    },
}

impl DecodeError {
    #[cold]
    pub fn truncated(what: &'static str, offset: usize, needed: usize, available: usize) -> Self {
        DecodeError::Truncated {
            what,
            offset,
            needed,
            available,
        }
    }

    #[cold]
    pub fn invalid(what: &'static str, offset: usize, value: u64) -> Self {
        DecodeError::Invalid {
            what,
            offset,
            value,
        }
    }

    /// Where in the datagram the error was found. An unsupported version is at offset 0 (the
    /// version field opens every datagram).
    pub fn offset(&self) -> usize {
        match self {
            DecodeError::Truncated { offset, .. } | DecodeError::Invalid { offset, .. } => *offset,
            DecodeError::UnsupportedVersion { .. } => 0,
        }
    }

    /// The counter this error is reported under.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::Truncated { .. } => ErrorKind::Truncated,
            DecodeError::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            DecodeError::Invalid { .. } => ErrorKind::Invalid,
        }
    }
}

/// Error kinds, for counters (`ferroflow_decode_errors_total{kind=...}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Truncated,
    UnsupportedVersion,
    Invalid,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 3] = [
        ErrorKind::Truncated,
        ErrorKind::UnsupportedVersion,
        ErrorKind::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Truncated => "truncated",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::Invalid => "invalid",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::{DecodeError, ErrorKind};

    #[test]
    fn offset_and_kind_of_each_variant() {
        let t = DecodeError::truncated("set header", 20, 4, 2);
        assert_eq!((t.kind(), t.offset()), (ErrorKind::Truncated, 20));
        let i = DecodeError::invalid("set length", 36, 3);
        assert_eq!((i.kind(), i.offset()), (ErrorKind::Invalid, 36));
        let v = DecodeError::UnsupportedVersion { version: 7 };
        assert_eq!((v.kind(), v.offset()), (ErrorKind::UnsupportedVersion, 0));
    }
}
