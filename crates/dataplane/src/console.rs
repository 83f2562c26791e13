//! VDE management consoles for the engine's links and switches.
//!
//! [`LinkConsole`] answers like `wirefilter`'s management socket and
//! [`SwitchConsole`] like `vde_switch`'s; [`serve_link`] and
//! [`serve_switch`] put one on a unix socket (`socat - UNIX-CONNECT:PATH`).
//! Each command line runs as one job on the engine thread against the live
//! link or switch, so a command never sees a half-applied change and
//! nothing is copied or kept in step outside the engine. The command
//! language itself (parsing, checks, replies) is the `vde` crate's.

use std::path::PathBuf;
use std::sync::Arc;

use netem::{DirectionParams, ParamsUpdate};
use vde::server::{Console, Server, ServerError};
use vde::{Errno, LinkStatus, LinkTarget, Outcome, Reply, TargetError};

use crate::engine::{EngineControl, LinkId, LinkState, SwitchId};

/// A `wirefilter` console over one engine link; VDE's left-to-right is A→B.
#[derive(Debug, Clone)]
pub struct LinkConsole {
    control: EngineControl,
    id: LinkId,
}

/// A `vde_switch` console over one engine switch.
#[derive(Debug, Clone)]
pub struct SwitchConsole {
    control: EngineControl,
    id: SwitchId,
}

impl LinkConsole {
    /// A console for link `id` of the engine behind `control`.
    pub fn new(control: EngineControl, id: LinkId) -> LinkConsole {
        LinkConsole { control, id }
    }
}

impl SwitchConsole {
    /// A console for switch `id` of the engine behind `control`.
    pub fn new(control: EngineControl, id: SwitchId) -> SwitchConsole {
        SwitchConsole { control, id }
    }
}

/// Serves a link's console on a unix socket at `path` until the returned
/// server is dropped (which removes the socket file).
pub fn serve_link(control: EngineControl, id: LinkId, path: impl Into<PathBuf>) -> Result<Server, ServerError> {
    Server::start(path, Arc::new(LinkConsole::new(control, id)))
}

/// Serves a switch's console on a unix socket at `path` until the returned
/// server is dropped (which removes the socket file).
pub fn serve_switch(control: EngineControl, id: SwitchId, path: impl Into<PathBuf>) -> Result<Server, ServerError> {
    Server::start(path, Arc::new(SwitchConsole::new(control, id)))
}

/// The answer when the link or switch is gone, or the engine stopped.
fn gone() -> Outcome {
    Outcome::Reply(Reply::error(Errno::NoEnt))
}

impl Console for LinkConsole {
    fn banner(&self) -> &str {
        vde::link::BANNER
    }

    fn prompt(&self) -> &str {
        vde::link::PROMPT
    }

    fn handle_line(&self, line: &str) -> Outcome {
        let (id, line) = (self.id, line.to_owned());
        let answer = self.control.run(move |engine| {
            let now = crate::sys::now();
            let link = engine.link_mut(id)?;
            Some(vde::link::handle_line(&mut LinkView { link, now }, &line))
        });
        answer.ok().flatten().unwrap_or_else(gone)
    }
}

impl Console for SwitchConsole {
    fn banner(&self) -> &str {
        vde::switch::BANNER
    }

    fn prompt(&self) -> &str {
        vde::switch::PROMPT
    }

    fn handle_line(&self, line: &str) -> Outcome {
        let (id, line) = (self.id, line.to_owned());
        let answer = self.control.run(move |engine| Some(vde::switch::handle_line(engine.switch_mut(id)?, &line)));
        answer.ok().flatten().unwrap_or_else(gone)
    }
}

/// A live engine link as `wirefilter` sees it, for one command.
struct LinkView<'a> {
    link: &'a mut LinkState,
    now: netem::Instant,
}

fn index(dir: vde::Direction) -> usize {
    match dir {
        vde::Direction::LeftRight => 0,
        vde::Direction::RightLeft => 1,
    }
}

impl LinkTarget for LinkView<'_> {
    fn params(&self, dir: vde::Direction) -> DirectionParams {
        self.link.direction(index(dir)).params().clone()
    }

    fn status(&self, dir: vde::Direction) -> LinkStatus {
        // netem counts held frames, not their bytes.
        LinkStatus { queued_bytes: 0, queued_frames: self.link.direction(index(dir)).held_frames() as u64 }
    }

    fn apply(&mut self, dir: vde::Direction, update: &ParamsUpdate) -> Result<(), TargetError> {
        Ok(self.link.apply_params(index(dir), self.now, update)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineConfig, EngineHandle};
    use crate::port::{Port, QueuePort};

    fn frame(src: u8, dst: u8) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, dst, 0x02, 0, 0, 0, 0, src, 0x08, 0x00];
        f.resize(60, 0);
        f
    }

    fn reply(outcome: Outcome) -> String {
        outcome.render("")
    }

    #[test]
    fn a_link_console_reads_and_changes_the_live_link() {
        let engine = EngineHandle::spawn(EngineConfig { pool_slots: 64, ..EngineConfig::standard() }).expect("spawn");
        let (a, _ha) = QueuePort::new("a").expect("port");
        let (b, _hb) = QueuePort::new("b").expect("port");
        let id = engine
            .add_link(Box::new(a), Box::new(b), DirectionParams::ideal(1), DirectionParams::ideal(2))
            .expect("link");
        let console = LinkConsole::new(engine.control(), id);
        assert_eq!(reply(console.handle_line("delay LR 20")), "1000 Success\n");
        assert_eq!(reply(console.handle_line("loss 2")), "1000 Success\n");
        let stats = engine.stats().expect("stats");
        assert_eq!((stats.links[0].params[0].delay_ms, stats.links[0].params[1].delay_ms), (20.0, 0.0));
        assert_eq!(
            (stats.links[0].params[0].lossratio_percent, stats.links[0].params[1].lossratio_percent),
            (2.0, 2.0)
        );
        let info = reply(console.handle_line("showinfo"));
        assert!(info.starts_with("0000 DATA END WITH '.'\n") && info.ends_with(".\n1000 Success\n"), "{info}");
        assert!(info.contains("Delay  L->R 20+0U   R->L 0+0U"), "{info}");
        assert_eq!(reply(console.handle_line("delay LR -5")), "1022 Invalid argument\n");
        engine.remove_link(id).expect("removed");
        assert_eq!(reply(console.handle_line("showinfo")), "1002 No such file or directory\n");
    }

    #[test]
    fn a_switch_console_shows_ports_and_learnt_addresses() {
        let engine = EngineHandle::spawn(EngineConfig { pool_slots: 64, ..EngineConfig::standard() }).expect("spawn");
        let (ports, handles): (Vec<_>, Vec<_>) =
            (0..2).map(|i| QueuePort::new(&format!("p{i}")).expect("port")).unzip();
        let ports: Vec<Box<dyn Port>> = ports.into_iter().map(|p| Box::new(p) as Box<dyn Port>).collect();
        let id = engine.add_switch(netem::SwitchMode::Learning, ports).expect("switch");
        handles[0].inject(&frame(1, 2));
        let start = std::time::Instant::now();
        while handles[1].drain_sent().is_empty() {
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "frame not forwarded");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let console = SwitchConsole::new(engine.control(), id);
        let ports = reply(console.handle_line("port/print"));
        assert!(ports.contains("Port 0001 untagged_vlan=0000 ACTIVE"), "{ports}");
        assert!(ports.contains("module dataplane   : p1"), "{ports}");
        let hash = reply(console.handle_line("hash/print"));
        assert!(hash.contains("Addr: 02:00:00:00:00:01 VLAN 0000 to port: 001"), "{hash}");
        assert_eq!(reply(console.handle_line("vlan/create 10")), "1000 Success\n");
        assert_eq!(reply(console.handle_line("port/setvlan 2 10")), "1000 Success\n");
        // Port 2 is now in VLAN 10 only: a broadcast from port 1 reaches nobody.
        handles[0].inject(&frame(1, 0xff));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(handles[1].drain_sent().is_empty());
    }
}
