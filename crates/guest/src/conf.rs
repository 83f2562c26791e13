//! `/etc/nlXTP.conf`, ToMaTo's guest configuration: shell-style
//! `key=value` lines (`#` starts a comment, quotes around a value are
//! dropped). Unknown keys are ignored, as the old shell modules did.

use std::path::PathBuf;
use std::time::Duration;

/// Where the guest modules read their configuration.
pub const PATH: &str = "/etc/nlXTP.conf";

/// When the daemon starts the monitor (`nlxtp_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0: never; uploads into a running guest are run by the host alone.
    Off,
    /// 1: once at boot, if an archive waits (ToMaTo's default).
    AtBoot,
    /// 2: at boot and then every `nlxtp_daemon_check_interval` seconds.
    Poll,
}

/// The guest configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The archive directory (`nlxtp_dir`, default `/mnt/nlXTP`).
    pub dir: PathBuf,
    /// `nlxtp_mode` (default 1).
    pub mode: Mode,
    /// How often the monitor renews `running` (`nlxtp_mon_check_interval`, default 60 s).
    pub mon_check_interval: Duration,
    /// How often the daemon looks for a new archive in poll mode
    /// (`nlxtp_daemon_check_interval`, default 60 s).
    pub daemon_check_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dir: PathBuf::from(crate::status::GUEST_DIR),
            mode: Mode::AtBoot,
            mon_check_interval: Duration::from_secs(60),
            daemon_check_interval: Duration::from_secs(60),
        }
    }
}

fn seconds(key: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(s) if (1..=86_400).contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(format!("{key}={value:?}: allowed are whole seconds from 1 to 86400")),
    }
}

/// Parses the configuration's text; an error names the key and the
/// allowed values.
pub fn parse(text: &str) -> Result<Config, String> {
    let mut config = Config::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((key, value)) = line.split_once('=') else { continue };
        let (key, value) = (key.trim(), value.trim().trim_matches(|c| c == '"' || c == '\''));
        match key {
            "nlxtp_dir" if value.starts_with('/') => config.dir = PathBuf::from(value),
            "nlxtp_dir" => return Err(format!("nlxtp_dir={value:?}: allowed is an absolute path")),
            "nlxtp_mode" => {
                config.mode = match value {
                    "0" => Mode::Off,
                    "1" => Mode::AtBoot,
                    "2" => Mode::Poll,
                    _ => return Err(format!("nlxtp_mode={value:?}: allowed are 0 (off), 1 (once at boot), 2 (poll)")),
                }
            }
            "nlxtp_mon_check_interval" => config.mon_check_interval = seconds(key, value)?,
            "nlxtp_daemon_check_interval" => config.daemon_check_interval = seconds(key, value)?,
            _ => {}
        }
    }
    Ok(config)
}

/// Reads `path`; a missing file gives the defaults.
pub fn load(path: &std::path::Path) -> Result<Config, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The configuration the busybox template ships.
pub const TEMPLATE_CONF: &str = "\
# nlXTP guest modules (executable archives), read by tomato-guest.
# nlxtp_mode: 0 off, 1 run a waiting archive once at boot, 2 poll for new ones.
nlxtp_dir=/mnt/nlXTP
nlxtp_mode=1
nlxtp_mon_check_interval=60
nlxtp_daemon_check_interval=60
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tomatos_file_and_the_template_parse() {
        let c = parse("nlxtp_dir=\"/srv/x\"\nnlxtp_mode=2 # poll\nnlxtp_mon_check_interval=5\nother=1\n").expect("ok");
        assert_eq!(c.dir, PathBuf::from("/srv/x"));
        assert_eq!(c.mode, Mode::Poll);
        assert_eq!(c.mon_check_interval, Duration::from_secs(5));
        assert_eq!(parse(TEMPLATE_CONF).expect("template"), Config::default());
    }

    #[test]
    fn bad_values_name_the_key_and_what_is_allowed() {
        let e = parse("nlxtp_mode=3").expect_err("mode");
        assert!(e.contains("nlxtp_mode") && e.contains("2 (poll)"), "{e}");
        let e = parse("nlxtp_dir=relative").expect_err("dir");
        assert!(e.contains("absolute"), "{e}");
        let e = parse("nlxtp_daemon_check_interval=0").expect_err("interval");
        assert!(e.contains("nlxtp_daemon_check_interval") && e.contains("1 to 86400"), "{e}");
    }
}
