//! Golden transcripts of the `vde_switch` console over an in-memory switch:
//! every command, its errors, and the framing (`UPDATE_EXPECT=1` refreshes).

use expect_test::{Expect, expect};
use netem::Instant;
use vde::ManagedSwitch;
use vde::switch::{self, SwitchTarget};

/// A 32-port switch with ports 1 and 5 connected.
fn two_port_switch() -> ManagedSwitch {
    let mut sw = ManagedSwitch::new(32, 7);
    sw.add_port(1, "tomato", "element 3 eth0").expect("port 1 is free");
    sw.add_port(5, "tomato", "element 4 eth0").expect("port 5 is free");
    sw
}

/// Runs `script` line by line and compares the transcript (each command
/// after `vde$ `, replies without the prompt).
fn check(target: &mut ManagedSwitch, script: &str, expect: Expect) {
    let mut transcript = String::new();
    for line in script.lines() {
        transcript.push_str("vde$ ");
        transcript.push_str(line);
        transcript.push('\n');
        let rendered = switch::handle_line(target, line).render("");
        transcript.push_str(&rendered);
        if !rendered.is_empty() && !rendered.ends_with('\n') {
            transcript.push('\n');
        }
    }
    expect.assert_eq(&transcript);
}

#[test]
fn help_and_info() {
    check(
        &mut two_port_switch(),
        "help\nhelp vlan/p\nhelp zzz\nshowinfo\nport/showinfo\nhash/showinfo\nhash/print",
        expect![[r#"
            vde$ help
            0000 DATA END WITH '.'
            COMMAND PATH       SYNTAX          HELP
            ------------       --------------  ------------
            help               [arg]           Help (limited to arg when specified)
            logout                             logout from this mgmt terminal
            shutdown                           shutdown of the switch (refused: the testbed owns it)
            showinfo                           show switch version and info
            hash               ============    HASH TABLE MENU
            hash/showinfo                      show hash info
            hash/setexpire     N               change hash entries expire time
            hash/print                         print the hash table
            port               ============    PORT STATUS MENU
            port/showinfo                      show port info
            port/sethub        0/1             1=HUB 0=switch
            port/setvlan       N VLAN          set port VLAN (untagged)
            port/print         [N]             print the port/endpoint table
            port/allprint      [N]             print the port/endpoint table (including inactive port)
            vlan               ============    VLAN MANAGEMENT MENU
            vlan/create        N               create the VLAN with tag N
            vlan/remove        N               remove the VLAN with tag N
            vlan/addport       N PORT          add port to the vlan N (tagged)
            vlan/delport       N PORT          remove port from the vlan N (tagged)
            vlan/print         [N]             print the list of defined vlan
            vlan/allprint      [N]             print the list of defined vlan (including inactive port)
            .
            1000 Success
            vde$ help vlan/p
            0000 DATA END WITH '.'
            COMMAND PATH       SYNTAX          HELP
            ------------       --------------  ------------
            vlan/print         [N]             print the list of defined vlan
            .
            1000 Success
            vde$ help zzz
            0000 DATA END WITH '.'
            COMMAND PATH       SYNTAX          HELP
            ------------       --------------  ------------
            .
            1000 Success
            vde$ showinfo
            0000 DATA END WITH '.'
            VDE switch V.2.3.2 (ToMaTo-rs)
            (C) ToMaTo-rs, a VDE-compatible management console - AGPL-3.0-or-later

            in-memory switch, 2 ports allocated
            .
            1000 Success
            vde$ port/showinfo
            0000 DATA END WITH '.'
            Numports=32
            HUB=false
            counters=true
            .
            1000 Success
            vde$ hash/showinfo
            0000 DATA END WITH '.'
            Hash size 1024
            GC expire 100 secs
            Entries 0
            .
            1000 Success
            vde$ hash/print
            0000 DATA END WITH '.'
            .
            1000 Success
        "#]],
    );
}

#[test]
fn ports_with_counters() {
    let mut sw = two_port_switch();
    sw.add_port(7, "tomato", "element 5 eth1").expect("port 7 is free");
    sw.set_active(7, false);
    // One broadcast frame from port 1 floods to port 5 (port 7 too: an
    // inactive VDE port is only unlisted).
    let mut frame = vec![0xff; 6];
    frame.extend([0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    frame.resize(60, 0);
    let _ = sw.switch_mut().handle_frame(Instant::from_secs(1), netem::PortIdx(1), &frame);
    check(
        &mut sw,
        "port/print\nport/allprint 7\nport/print 7\nport/print 40\nport/print x\nport/printx",
        expect![[r#"
            vde$ port/print
            0000 DATA END WITH '.'
            Port 0001 untagged_vlan=0000 ACTIVE - Unnamed Allocatable
             Current User: NONE Access Control: (User: NONE - Group: NONE)
             IN:  pkts          1          bytes                   60
             OUT: pkts          0          bytes                    0
              -- endpoint ID 0001 module tomato      : element 3 eth0
            Port 0005 untagged_vlan=0000 ACTIVE - Unnamed Allocatable
             Current User: NONE Access Control: (User: NONE - Group: NONE)
             IN:  pkts          0          bytes                    0
             OUT: pkts          1          bytes                   60
              -- endpoint ID 0002 module tomato      : element 4 eth0
            .
            1000 Success
            vde$ port/allprint 7
            0000 DATA END WITH '.'
            Port 0007 untagged_vlan=0000 INACTIVE - Unnamed Allocatable
             Current User: NONE Access Control: (User: NONE - Group: NONE)
             IN:  pkts          0          bytes                    0
             OUT: pkts          1          bytes                   60
              -- endpoint ID 0003 module tomato      : element 5 eth1
            .
            1000 Success
            vde$ port/print 7
            0000 DATA END WITH '.'
            .
            1006 No such device or address
            vde$ port/print 40
            0000 DATA END WITH '.'
            .
            1022 Invalid argument
            vde$ port/print x
            0000 DATA END WITH '.'
            .
            1022 Invalid argument
            vde$ port/printx
            1038 Function not implemented
        "#]],
    );
}

#[test]
fn vlans_follow_vde_rules() {
    let mut sw = two_port_switch();
    check(
        &mut sw,
        "vlan/create 10\nvlan/create 10\nvlan/create 0\nvlan/create 4094\nvlan/create 4093\nvlan/create\n\
         vlan/addport 10 5\nvlan/addport 11 5\nvlan/addport 10 40\nvlan/addport 10 3\n\
         port/setvlan 1 10\nport/setvlan 3 10\nport/setvlan 1 12\nport/setvlan 0 0\nport/setvlan 33 0\n\
         vlan/print\nvlan/print 10\nvlan/print 11\nvlan/print 5000\n\
         vlan/delport 10 1\nvlan/delport 10 5\nvlan/delport 10 5\n\
         vlan/remove 10\nport/setvlan 1 4095\nvlan/remove 10\nvlan/remove 10\nvlan/remove 4093\nvlan/remove 0\n\
         port/setvlan 5 4095\nvlan/remove 0\nvlan/allprint",
        expect![[r#"
            vde$ vlan/create 10
            1000 Success
            vde$ vlan/create 10
            1017 File exists
            vde$ vlan/create 0
            1022 Invalid argument
            vde$ vlan/create 4094
            1022 Invalid argument
            vde$ vlan/create 4093
            1000 Success
            vde$ vlan/create
            1022 Invalid argument
            vde$ vlan/addport 10 5
            1000 Success
            vde$ vlan/addport 11 5
            1006 No such device or address
            vde$ vlan/addport 10 40
            1022 Invalid argument
            vde$ vlan/addport 10 3
            1006 No such device or address
            vde$ port/setvlan 1 10
            1000 Success
            vde$ port/setvlan 3 10
            1006 No such device or address
            vde$ port/setvlan 1 12
            1006 No such device or address
            vde$ port/setvlan 0 0
            1006 No such device or address
            vde$ port/setvlan 33 0
            1022 Invalid argument
            vde$ vlan/print
            0000 DATA END WITH '.'
            VLAN 0000
             -- Port 0005 tagged=0 active=1 status=Forwarding
            VLAN 0010
             -- Port 0001 tagged=0 active=1 status=Forwarding
             -- Port 0005 tagged=1 active=1 status=Forwarding
            VLAN 4093
            .
            1000 Success
            vde$ vlan/print 10
            0000 DATA END WITH '.'
            VLAN 0010
             -- Port 0001 tagged=0 active=1 status=Forwarding
             -- Port 0005 tagged=1 active=1 status=Forwarding
            .
            1000 Success
            vde$ vlan/print 11
            0000 DATA END WITH '.'
            .
            1006 No such device or address
            vde$ vlan/print 5000
            0000 DATA END WITH '.'
            .
            1022 Invalid argument
            vde$ vlan/delport 10 1
            1098 Address already in use
            vde$ vlan/delport 10 5
            1000 Success
            vde$ vlan/delport 10 5
            1000 Success
            vde$ vlan/remove 10
            1098 Address already in use
            vde$ port/setvlan 1 4095
            1000 Success
            vde$ vlan/remove 10
            1000 Success
            vde$ vlan/remove 10
            1006 No such device or address
            vde$ vlan/remove 4093
            1000 Success
            vde$ vlan/remove 0
            1098 Address already in use
            vde$ port/setvlan 5 4095
            1000 Success
            vde$ vlan/remove 0
            1022 Invalid argument
            vde$ vlan/allprint
            0000 DATA END WITH '.'
            VLAN 0000
            .
            1000 Success
        "#]],
    );
    let ports = sw.ports();
    assert_eq!(ports.iter().map(|p| p.untagged).collect::<Vec<_>>(), [None, None]);
}

#[test]
fn modes_session_and_refusals() {
    let mut sw = two_port_switch();
    check(
        &mut sw,
        "port/sethub 1\nport/showinfo\nport/sethub 0\nport/sethub x\nhash/setexpire 50\nhash/setexpire 0\n\
         hash/setexpire\nhash/showinfo\nhub/setonoff 1\nvlan/add 1 1\nfoo\n\n   # a comment\n  showinfo extra\n\
         shutdown\nlogout",
        expect![[r#"
            vde$ port/sethub 1
            1000 Success
            vde$ port/showinfo
            0000 DATA END WITH '.'
            Numports=32
            HUB=true
            counters=true
            .
            1000 Success
            vde$ port/sethub 0
            1000 Success
            vde$ port/sethub x
            1022 Invalid argument
            vde$ hash/setexpire 50
            1000 Success
            vde$ hash/setexpire 0
            1022 Invalid argument
            vde$ hash/setexpire
            1022 Invalid argument
            vde$ hash/showinfo
            0000 DATA END WITH '.'
            Hash size 1024
            GC expire 50 secs
            Entries 0
            .
            1000 Success
            vde$ hub/setonoff 1
            1038 Function not implemented
            vde$ vlan/add 1 1
            1038 Function not implemented
            vde$ foo
            1038 Function not implemented
            vde$ 
            vde$    # a comment
            vde$   showinfo extra
            0000 DATA END WITH '.'
            VDE switch V.2.3.2 (ToMaTo-rs)
            (C) ToMaTo-rs, a VDE-compatible management console - AGPL-3.0-or-later

            in-memory switch, 2 ports allocated
            .
            1000 Success
            vde$ shutdown
            0000 DATA END WITH '.'
            shutdown refused: the testbed owns this switch; stop it through ToMaTo
            .
            1001 Operation not permitted
            vde$ logout
            9999 END OF SESSION
        "#]],
    );
}

#[test]
fn parser_yields_typed_commands() {
    use vde::Errno;
    use vde::switch::{ParseError, SwitchCommand as C, parse};
    let cases: Vec<(&str, Result<Option<C>, ParseError>)> = vec![
        ("", Ok(None)),
        ("# x", Ok(None)),
        ("help", Ok(Some(C::Help(None)))),
        ("help port", Ok(Some(C::Help(Some("port".into()))))),
        ("showinfo", Ok(Some(C::ShowInfo))),
        ("logout", Ok(Some(C::Logout))),
        ("shutdown", Ok(Some(C::Shutdown))),
        ("hash/showinfo", Ok(Some(C::HashShowInfo))),
        ("hash/print", Ok(Some(C::HashPrint))),
        ("hash/setexpire 30", Ok(Some(C::HashSetExpire(30)))),
        ("port/showinfo", Ok(Some(C::PortShowInfo))),
        ("port/sethub 1", Ok(Some(C::PortSetHub(true)))),
        ("port/sethub 0", Ok(Some(C::PortSetHub(false)))),
        ("port/setvlan 3 10", Ok(Some(C::PortSetVlan { port: 3, vlan: 10 }))),
        ("port/print", Ok(Some(C::PortPrint { port: None, all: false }))),
        ("port/allprint 4", Ok(Some(C::PortPrint { port: Some(4), all: true }))),
        ("vlan/create 9", Ok(Some(C::VlanCreate(9)))),
        ("vlan/remove 9", Ok(Some(C::VlanRemove(9)))),
        ("vlan/addport 9 2", Ok(Some(C::VlanAddPort { vlan: 9, port: 2 }))),
        ("vlan/delport 9 2", Ok(Some(C::VlanDelPort { vlan: 9, port: 2 }))),
        ("vlan/print", Ok(Some(C::VlanPrint { vlan: None, all: false }))),
        ("vlan/allprint 9", Ok(Some(C::VlanPrint { vlan: Some(9), all: true }))),
        ("port/setvlan 3", Err(ParseError { errno: Errno::Inval, data: false })),
        ("port/print 1 2", Err(ParseError { errno: Errno::Inval, data: true })),
        ("port/setvlan -1 0", Err(ParseError { errno: Errno::Inval, data: false })),
        ("vlan/create 70000", Err(ParseError { errno: Errno::Inval, data: false })),
        ("fstp/print", Err(ParseError { errno: Errno::NoSys, data: false })),
    ];
    for (line, want) in cases {
        assert_eq!(parse(line), want, "{line:?}");
    }
}

#[test]
fn hash_print_lists_learnt_addresses_with_their_age() {
    let mut sw = two_port_switch();
    let frame = |dst: u8, src: u8| {
        let mut f = vec![0x02, 0, 0, 0, 0, dst, 0x02, 0, 0, 0, 0, src, 0x08, 0x00];
        f.resize(60, 0);
        f
    };
    let _ = sw.switch_mut().handle_frame(Instant::from_secs(1), netem::PortIdx(1), &frame(2, 1));
    let _ = sw.switch_mut().handle_frame(Instant::from_secs(3), netem::PortIdx(5), &frame(1, 2));
    sw.set_now(Instant::from_secs(4));
    check(
        &mut sw,
        "hash/print",
        expect![[r#"
            vde$ hash/print
            0000 DATA END WITH '.'
            Hash: 0000 Addr: 02:00:00:00:00:01 VLAN 0000 to port: 001  age 3 secs
            Hash: 0001 Addr: 02:00:00:00:00:02 VLAN 0000 to port: 005  age 1 secs
            .
            1000 Success
        "#]],
    );
}

#[test]
fn ports_come_and_go_and_the_switch_grows() {
    let mut sw = two_port_switch();
    assert_eq!(sw.free_port(), 2);
    sw.add_port(40, "tomato", "element 9 eth0").expect("port 40 is free");
    assert_eq!(sw.info().numports, 41);
    sw.remove_port(1).expect("port 1 exists");
    assert_eq!(sw.free_port(), 1);
    assert!(sw.remove_port(1).is_err());
    assert_eq!(sw.ports().iter().map(|p| p.number).collect::<Vec<_>>(), [5, 40]);
}
