pub mod bench;
pub mod collect;
pub mod decode;
pub mod generate;
pub mod index;
pub mod replay;
pub mod tune;

/// Log to stderr (stdout carries documents), at `level` unless RUST_LOG says otherwise.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// An error and its causes on one line, each said once. Errors that put their source in their
/// own message (`"UDP socket {addr}: bind: {source}"`) and also return it as `source()` would
/// otherwise print the OS error twice through anyhow's `{:#}`.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if msg.is_empty() || out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// Like `ferroflow_io::udp::IoError`: the source in the message and as `source()`.
    #[derive(Debug)]
    struct Wrapped {
        source: std::io::Error,
    }

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "UDP socket 127.0.0.1:9: bind: {}", self.source)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn an_os_error_is_said_once() {
        let os = std::io::Error::from_raw_os_error(libc::EADDRINUSE);
        let os_text = os.to_string();
        let e = anyhow::Error::new(Wrapped { source: os }).context("starting");
        let line = error_chain(&e);
        assert_eq!(line.matches(&os_text).count(), 1, "{line}");
        assert!(
            line.starts_with("starting: UDP socket 127.0.0.1:9: bind: "),
            "{line}"
        );
        // and anyhow alone says it twice: the reason for this function
        assert_eq!(format!("{e:#}").matches(&os_text).count(), 2);
        // a cause not in the message above it is kept
        let e = anyhow::Error::new(std::io::Error::other("disk full")).context("writing x");
        assert_eq!(error_chain(&e), "writing x: disk full");
    }
}
