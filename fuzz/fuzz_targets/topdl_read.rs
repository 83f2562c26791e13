//! Fuzz target: any bytes through the topdl reader. A document that reads
//! must write and read back as itself, expand within a small bound without
//! panicking, and map to a topology.

#![no_main]

use libfuzzer_sys::fuzz_target;
use model::file::topdl::{self, WriteConfig};
use model::layout::{ExpandConfig, expand};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(doc) = topdl::read(text) else { return };
    let written = topdl::write(&doc, &WriteConfig::default());
    let again = topdl::read(&written).expect("our own output reads");
    assert_eq!(again, doc, "a document round-trips");
    if let Ok(x) = expand(&doc, &ExpandConfig { max_vertices: 2_000 }) {
        let _ = model::layout::convert::to_topology(&x.layout);
    }
});
