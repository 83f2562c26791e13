//! Golden transcripts of the `wirefilter` console over an in-memory link,
//! the value grammar, and the mapping onto netem parameters
//! (`UPDATE_EXPECT=1` refreshes).

use expect_test::{Expect, expect};
use netem::{DirectionParams, Distribution};
use vde::Errno;
use vde::link::{self, Algo, Direction, Dirs, LinkParam, LinkTarget, WireValue};
use vde::memory::MemoryLink;

/// Runs `script` line by line and compares the transcript.
fn check(target: &mut MemoryLink, script: &str, expect: Expect) {
    let mut transcript = String::new();
    for line in script.lines() {
        transcript.push_str("VDEwf$ ");
        transcript.push_str(line);
        transcript.push('\n');
        let rendered = link::handle_line(target, line).render("");
        transcript.push_str(&rendered);
        if !rendered.is_empty() && !rendered.ends_with('\n') {
            transcript.push('\n');
        }
    }
    expect.assert_eq(&transcript);
}

#[test]
fn help_showinfo_and_refusals() {
    check(
        &mut MemoryLink::ideal(),
        "help\nshowinfo\nshowinfo 0\nshowinfo 1\nfoo\nload /etc/passwd\nshutdown\n\n# c\nlogout",
        expect![[r#"
            VDEwf$ help
            0000 DATA END WITH '.'
            COMMAND      HELP
            ------------ ------------
            help         print a summary of mgmt commands
            showinfo     show status and parameter values
            loss         set loss percentage
            lostburst    mean length of lost packet bursts
            delay        set delay ms
            dup          set dup packet percentage
            bandwidth    set channel bandwidth bytes/sec
            speed        set interface speed bytes/sec (same as bandwidth here)
            noise        set noise factor bits/Mbyte
            mtu          set channel MTU (bytes)
            chanbufsize  set channel buffer size (bytes)
            fifo         set channel fifoness (only 1 unless reordering is on)
            shutdown     shut the channel down (refused: the testbed owns it)
            logout       log out from this mgmt session
            .
            1000 Success
            VDEwf$ showinfo
            0000 DATA END WITH '.'
            WireFilter: bidirectional
            Loss   L->R 0+0U   R->L 0+0U
            Lburst L->R 0+0U   R->L 0+0U
            Delay  L->R 0+0U   R->L 0+0U
            Dup    L->R 0+0U   R->L 0+0U
            Bandw  L->R 0+0U   R->L 0+0U
            Speed  L->R 0+0U   R->L 0+0U
            Noise  L->R 0+0U   R->L 0+0U
            MTU    L->R 0     R->L 0   
            Cap.   L->R 0+0U   R->L 0+0U
            Current Delay Queue size:   L->R 0      R->L 0   
            Fifoness TRUE
            Waiting packets in delay queues 0
            .
            1000 Success
            VDEwf$ showinfo 0
            0000 DATA END WITH '.'
            WireFilter: bidirectional
            Loss   L->R 0+0U   R->L 0+0U
            Lburst L->R 0+0U   R->L 0+0U
            Delay  L->R 0+0U   R->L 0+0U
            Dup    L->R 0+0U   R->L 0+0U
            Bandw  L->R 0+0U   R->L 0+0U
            Speed  L->R 0+0U   R->L 0+0U
            Noise  L->R 0+0U   R->L 0+0U
            MTU    L->R 0     R->L 0   
            Cap.   L->R 0+0U   R->L 0+0U
            Current Delay Queue size:   L->R 0      R->L 0   
            Fifoness TRUE
            Waiting packets in delay queues 0
            .
            1000 Success
            VDEwf$ showinfo 1
            0000 DATA END WITH '.'
            .
            1022 Invalid argument
            VDEwf$ foo
            1038 Function not implemented
            VDEwf$ load /etc/passwd
            1038 Function not implemented
            VDEwf$ shutdown
            0000 DATA END WITH '.'
            shutdown refused: the testbed owns this link; stop it through ToMaTo
            .
            1001 Operation not permitted
            VDEwf$ 
            VDEwf$ # c
            VDEwf$ logout
            9999 END OF SESSION
        "#]],
    );
}

#[test]
fn every_parameter_per_direction() {
    let mut wire = MemoryLink::ideal();
    check(
        &mut wire,
        "delay 20\ndelay LR 20+5\ndelay RL30+6N\nloss 1.5\nlostburst 4\ndup 2\nbandwidth 1M\nband LR 2G\n\
         speed RL 10K\nnoise 3\nmtu 1500\nchanbufsize 100000\ncapacity RL 9K\nshowinfo",
        expect![[r#"
            VDEwf$ delay 20
            1000 Success
            VDEwf$ delay LR 20+5
            1000 Success
            VDEwf$ delay RL30+6N
            1000 Success
            VDEwf$ loss 1.5
            1000 Success
            VDEwf$ lostburst 4
            1000 Success
            VDEwf$ dup 2
            1000 Success
            VDEwf$ bandwidth 1M
            1000 Success
            VDEwf$ band LR 2G
            1000 Success
            VDEwf$ speed RL 10K
            1000 Success
            VDEwf$ noise 3
            1000 Success
            VDEwf$ mtu 1500
            1000 Success
            VDEwf$ chanbufsize 100000
            1000 Success
            VDEwf$ capacity RL 9K
            1000 Success
            VDEwf$ showinfo
            0000 DATA END WITH '.'
            WireFilter: bidirectional
            Loss   L->R 1.5+0U   R->L 1.5+0U
            Lburst L->R 4+0U   R->L 4+0U
            Delay  L->R 20+5U   R->L 30+6N
            Dup    L->R 2+0U   R->L 2+0U
            Bandw  L->R 2.14748e+09+0U   R->L 10250+0U
            Speed  L->R 0+0U   R->L 0+0U
            Noise  L->R 3+0U   R->L 3+0U
            MTU    L->R 1500     R->L 1500   
            Cap.   L->R 100000+0U   R->L 9216+0U
            Current Delay Queue size:   L->R 0      R->L 0   
            Fifoness TRUE
            Waiting packets in delay queues 0
            .
            1000 Success
        "#]],
    );
    let lr = wire.params(Direction::LeftRight);
    let rl = wire.params(Direction::RightLeft);
    assert_eq!((lr.delay_ms, lr.jitter_ms, lr.distribution), (20.0, 5.0, Distribution::Uniform));
    // wirefilter's N spreads over ±plus with σ = plus/3; netem's jitter is σ.
    assert_eq!((rl.delay_ms, rl.jitter_ms, rl.distribution), (30.0, 2.0, Distribution::Normal));
    // 2 GiB/s and 10 KiB/s in kbit/s, rounded.
    assert_eq!((lr.bandwidth_kbit, rl.bandwidth_kbit), (17_179_869, 82));
    assert_eq!((lr.queue_bytes, rl.queue_bytes), (100_000, 9216));
    assert_eq!(
        DirectionParams { seed: 0, ..lr },
        DirectionParams {
            bandwidth_kbit: 17_179_869,
            queue_bytes: 100_000,
            delay_ms: 20.0,
            jitter_ms: 5.0,
            lossratio_percent: 1.5,
            lossburst_frames: 4.0,
            duplicate_percent: 2.0,
            noise_bits_per_mbyte: 3.0,
            mtu: 1500,
            ..DirectionParams::ideal(0)
        }
    );
}

#[test]
fn refusals_change_nothing() {
    let mut wire = MemoryLink::ideal();
    check(
        &mut wire,
        "delay 10\ndelay\ndelay abc\ndelay -5\ndelay LR\nloss 200\nloss 1+1\ndup 5N\nlostburst 0.5\n\
         delay 20 [0]\ndelay 30 [1]\ndelay 20 RL 30\nmtu 1e12\nfifo 0\nfifo 2\nfifo 1\ndelayx 3",
        expect![[r#"
            VDEwf$ delay 10
            1000 Success
            VDEwf$ delay
            1022 Invalid argument
            VDEwf$ delay abc
            1022 Invalid argument
            VDEwf$ delay -5
            1022 Invalid argument
            VDEwf$ delay LR
            1022 Invalid argument
            VDEwf$ loss 200
            1022 Invalid argument
            VDEwf$ loss 1+1
            1095 Operation not supported
            VDEwf$ dup 5N
            1095 Operation not supported
            VDEwf$ lostburst 0.5
            1022 Invalid argument
            VDEwf$ delay 20 [0]
            1000 Success
            VDEwf$ delay 30 [1]
            1022 Invalid argument
            VDEwf$ delay 20 RL 30
            1022 Invalid argument
            VDEwf$ mtu 1e12
            1022 Invalid argument
            VDEwf$ fifo 0
            1095 Operation not supported
            VDEwf$ fifo 2
            1022 Invalid argument
            VDEwf$ fifo 1
            1000 Success
            VDEwf$ delayx 3
            1038 Function not implemented
        "#]],
    );
    let p = wire.params(Direction::LeftRight);
    assert_eq!((p.delay_ms, p.lossratio_percent, p.lossburst_frames), (20.0, 0.0, 0.0));
}

#[test]
fn tomato_only_attributes_show_when_set() {
    let mut lr = DirectionParams::ideal(1);
    lr.reorder_percent = 10.0;
    lr.corrupt_percent = 0.5;
    lr.queue_frames = 50;
    lr.delay_ms = 5.0;
    lr.jitter_ms = 2.0;
    lr.distribution = Distribution::Pareto;
    let mut wire = MemoryLink::new(lr, DirectionParams::ideal(2)).expect("valid parameters");
    check(
        &mut wire,
        "showinfo\nfifo 0\nfifo 1",
        expect![[r#"
            VDEwf$ showinfo
            0000 DATA END WITH '.'
            WireFilter: bidirectional
            Loss   L->R 0+0U   R->L 0+0U
            Lburst L->R 0+0U   R->L 0+0U
            Delay  L->R 5+2P   R->L 0+0U
            Dup    L->R 0+0U   R->L 0+0U
            Bandw  L->R 0+0U   R->L 0+0U
            Speed  L->R 0+0U   R->L 0+0U
            Noise  L->R 0+0U   R->L 0+0U
            MTU    L->R 0     R->L 0   
            Cap.   L->R 0+0U   R->L 0+0U
            Corrupt L->R 0.5   R->L 0
            Reorder L->R 10   R->L 0
            Queue   L->R 50 pkts   R->L 0 pkts
            Current Delay Queue size:   L->R 0      R->L 0   
            Fifoness FALSE
            Waiting packets in delay queues 0
            .
            1000 Success
            VDEwf$ fifo 0
            1000 Success
            VDEwf$ fifo 1
            1000 Success
        "#]],
    );
    assert_eq!(wire.params(Direction::LeftRight).reorder_percent, 0.0);
}

#[test]
fn value_grammar() {
    let v = |value, plus, algo| WireValue { value, plus, algo };
    let lr = Dirs::One(Direction::LeftRight);
    let rl = Dirs::One(Direction::RightLeft);
    let cases = [
        ("20", Ok((Dirs::Both, v(20.0, 0.0, Algo::Uniform)))),
        ("  LR 20+5 ", Ok((lr, v(20.0, 5.0, Algo::Uniform)))),
        ("RL20+5n", Ok((rl, v(20.0, 5.0, Algo::Normal)))),
        ("20+5 N", Ok((Dirs::Both, v(20.0, 5.0, Algo::Normal)))),
        ("1.5K", Ok((Dirs::Both, v(1536.0, 0.0, Algo::Uniform)))),
        ("1+1MU", Ok((Dirs::Both, v(1_048_576.0, 1_048_576.0, Algo::Uniform)))),
        ("2g", Ok((Dirs::Both, v(2_147_483_648.0, 0.0, Algo::Uniform)))),
        ("1e+3", Ok((Dirs::Both, v(1000.0, 0.0, Algo::Uniform)))),
        ("+7", Ok((Dirs::Both, v(7.0, 0.0, Algo::Uniform)))),
        ("5+2P [0]", Ok((Dirs::Both, v(5.0, 2.0, Algo::Pareto)))),
        ("5+2Q", Ok((Dirs::Both, v(5.0, 2.0, Algo::Paretonormal)))),
        ("", Err(Errno::Inval)),
        ("LR", Err(Errno::Inval)),
        ("inf", Err(Errno::Inval)),
        ("nan", Err(Errno::Inval)),
        ("1e999", Err(Errno::Inval)),
        ("20+", Err(Errno::Inval)),
        ("lr 20", Err(Errno::Inval)),
        ("5 [2]", Err(Errno::Inval)),
        ("5 ]", Err(Errno::Inval)),
    ];
    for (text, want) in cases {
        assert_eq!(link::parse_value(text), want, "{text:?}");
    }
    assert_eq!(
        link::to_update(LinkParam::Bandwidth, v(1.0, 0.0, Algo::Uniform)).map(|u| u.bandwidth_kbit),
        Ok(Some(1))
    );
    assert_eq!(link::to_update(LinkParam::Speed, v(0.0, 0.0, Algo::Uniform)).map(|u| u.bandwidth_kbit), Ok(Some(0)));
    assert_eq!(link::to_update(LinkParam::Mtu, v(-1.0, 0.0, Algo::Uniform)), Err(Errno::Inval));
}
