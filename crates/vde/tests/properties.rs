//! Property tests: no input line makes either console panic, and every reply
//! is well framed (an optional data block, then exactly one status line).

use proptest::prelude::*;
use vde::ManagedSwitch;
use vde::memory::MemoryLink;
use vde::{Outcome, link, switch};

/// Lines that look like commands (known words, numbers, suffixes), mixed
/// with arbitrary text, so the checks go past the first word.
fn line() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("help"),
        Just("showinfo"),
        Just("logout"),
        Just("shutdown"),
        Just("port/print"),
        Just("port/allprint"),
        Just("port/setvlan"),
        Just("port/sethub"),
        Just("vlan/create"),
        Just("vlan/remove"),
        Just("vlan/addport"),
        Just("vlan/delport"),
        Just("vlan/print"),
        Just("hash/setexpire"),
        Just("delay"),
        Just("loss"),
        Just("lostburst"),
        Just("dup"),
        Just("bandwidth"),
        Just("speed"),
        Just("noise"),
        Just("mtu"),
        Just("chanbufsize"),
        Just("fifo"),
    ];
    let arg =
        prop_oneof!["-?[0-9]{1,12}", "(LR|RL)? ?[0-9.e+-]{0,12}[KMGkmg]?[UNPQun]?( ?\\[[0-9]\\])?", "\\PC{0,12}",];
    prop_oneof![
        (word, prop::collection::vec(arg, 0..4)).prop_map(|(w, args)| format!("{w} {}", args.join(" "))),
        any::<String>(),
    ]
}

fn well_framed(outcome: &Outcome) {
    if let Outcome::Reply(reply) = outcome {
        let text = reply.render();
        let lines: Vec<&str> = text.lines().collect();
        let status = lines.last().expect("a reply has a status line");
        assert!(status.len() > 5 && status.starts_with('1'), "{text:?}");
        if reply.data.is_some() {
            assert_eq!(lines[0], "0000 DATA END WITH '.'");
            assert_eq!(lines[lines.len() - 2], ".");
            assert!(!lines[1..lines.len() - 2].contains(&"."), "{text:?}");
        } else {
            assert_eq!(lines.len(), 1, "{text:?}");
        }
    }
}

proptest! {
    #[test]
    fn switch_console_never_panics(lines in prop::collection::vec(line(), 1..8)) {
        let mut sw = ManagedSwitch::new(8, 1);
        sw.add_port(1, "t", "a").expect("free");
        sw.add_port(2, "t", "b").expect("free");
        for line in &lines {
            let _ = switch::parse(line);
            well_framed(&switch::handle_line(&mut sw, line));
        }
    }

    #[test]
    fn link_console_never_panics(lines in prop::collection::vec(line(), 1..8)) {
        let mut wire = MemoryLink::ideal();
        for line in &lines {
            let _ = link::parse(line);
            well_framed(&link::handle_line(&mut wire, line));
        }
    }
}
