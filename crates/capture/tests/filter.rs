//! Capture filters in tcpdump syntax, compiled by libpcap: which of a set
//! of known frames each expression passes, and libpcap's error text for a
//! bad expression.

mod common;

use capture::{Filter, FilterError};
use common::{arp_request, icmp_echo, udp};

/// Returns, for the frames [icmp, udp/53, udp/5000, arp], which pass `expression`.
fn check(expression: &str) -> [bool; 4] {
    let filter = Filter::compile(expression).expect("valid expression");
    let frames = [icmp_echo(1), udp(40000, 53, b"q"), udp(40000, 5000, b"x"), arp_request()];
    frames.map(|frame| filter.matches(&frame))
}

#[test]
fn expressions_select_the_expected_frames() {
    assert_eq!(check(""), [true, true, true, true]);
    assert_eq!(check("icmp"), [true, false, false, false]);
    assert_eq!(check("udp port 53"), [false, true, false, false]);
    assert_eq!(check("udp"), [false, true, true, false]);
    assert_eq!(check("not arp"), [true, true, true, false]);
    assert_eq!(check("arp"), [false, false, false, true]);
    assert_eq!(check("host 10.0.0.2 and (icmp or udp dst port 5000)"), [true, false, true, false]);
    assert_eq!(check("ether broadcast"), [false, false, false, true]);
}

#[test]
fn short_frames_do_not_match_protocol_filters_and_do_not_crash() {
    let filter = Filter::compile("udp port 53").expect("valid");
    let frame = udp(1, 53, b"");
    // The destination port ends at byte 38; BPF loads past the end fail the match.
    for len in 0..38 {
        assert!(!filter.matches(&frame[..len]), "{len} bytes");
    }
    assert!(filter.matches(&frame[..38]));
}

#[test]
fn a_bad_expression_quotes_libpcap() {
    let error = Filter::compile("udp prot 53").expect_err("typo");
    let FilterError::Invalid { expression, message } = &error;
    assert_eq!(expression, "udp prot 53");
    assert!(message.contains("syntax error"), "libpcap's message: {message}");
    assert_eq!(error.to_string(), format!("invalid capture filter \"udp prot 53\": {message}"));

    let error = Filter::compile("port 99999").expect_err("port out of range");
    assert!(error.to_string().contains("99999"), "{error}");
}

#[test]
fn compiled_filters_expose_their_program() {
    assert_eq!(Filter::compile("").expect("empty").n_instructions(), 0);
    let filter = Filter::compile("icmp").expect("valid");
    assert!(filter.n_instructions() > 0);
    assert_eq!(filter.expression(), "icmp");
}
