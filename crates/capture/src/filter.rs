//! Capture filters in tcpdump syntax, compiled by libpcap and run in-process.
//!
//! ToMaTo passes `capture_filter` straight to tcpdump, so users write pcap
//! filter expressions. We keep that language by letting libpcap compile the
//! expression for link type Ethernet (`pcap_open_dead` + `pcap_compile`) and
//! running the resulting classic BPF program on each frame with
//! `pcap_offline_filter`, instead of writing our own compiler.

use pcap::{BpfProgram, Linktype};

/// Errors from compiling a filter expression.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// libpcap rejected the expression; `message` is libpcap's own text.
    #[error("invalid capture filter {expression:?}: {message}")]
    Invalid {
        /// The expression as given.
        expression: String,
        /// libpcap's error message.
        message: String,
    },
}

/// A compiled pcap filter for Ethernet frames; the empty expression matches every frame.
///
/// `Filter` is `Send` but not `Sync`: libpcap's program is owned by one
/// thread at a time (the data plane's engine thread, via [`crate::Tap`]).
pub struct Filter {
    expression: String,
    /// `None` for the empty expression, so the hot path skips the BPF call.
    program: Option<BpfProgram>,
}

impl Filter {
    /// Compiles `expression` (tcpdump syntax) for link type Ethernet.
    pub fn compile(expression: &str) -> Result<Filter, FilterError> {
        let invalid = |message: String| FilterError::Invalid { expression: expression.to_owned(), message };
        if expression.trim().is_empty() {
            return Ok(Filter { expression: expression.to_owned(), program: None });
        }
        // A dead handle carries the link type and snaplen the compiler needs;
        // the compiled program does not borrow it and outlives it.
        let handle = pcap::Capture::dead(Linktype::ETHERNET).map_err(|e| invalid(e.to_string()))?;
        let program = handle.compile(expression, true).map_err(|e| match e {
            pcap::Error::PcapError(message) => invalid(message),
            other => invalid(other.to_string()),
        })?;
        Ok(Filter { expression: expression.to_owned(), program: Some(program) })
    }

    /// A filter that matches every frame.
    pub fn match_all() -> Filter {
        Filter { expression: String::new(), program: None }
    }

    /// Returns whether `frame` (a whole Ethernet frame) passes the filter.
    pub fn matches(&self, frame: &[u8]) -> bool {
        match &self.program {
            None => true,
            Some(program) => program.filter(frame),
        }
    }

    /// The expression this filter was compiled from.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Number of classic BPF instructions (0 for the empty expression).
    pub fn n_instructions(&self) -> usize {
        self.program.as_ref().map_or(0, |p| p.get_instructions().len())
    }
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter").field("expression", &self.expression).finish_non_exhaustive()
    }
}
