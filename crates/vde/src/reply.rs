//! VDE's reply framing, status codes, banners and prompts.
//!
//! Every command gets a status line: `1000 Success`, or `1NNN <strerror>`
//! where NNN is an errno (VDE's management code prints `strerror(errno)`).
//! A command that prints data first sends `0000 DATA END WITH '.'`, the
//! lines, and a line holding `.`; it does so even when it then fails (as
//! `port/print 7` does on a real switch). `logout` ends with
//! `9999 END OF SESSION` and no newline. After every reply and every empty
//! or comment line the console sends its prompt, which starts with a
//! newline (`"\nvde$ "`).

use std::fmt::Write as _;

use thiserror::Error;

/// The first line of a data block.
pub const DATA_HEADER: &str = "0000 DATA END WITH '.'";
/// The line that ends a data block.
pub const DATA_END: &str = ".";
/// The status line of a successful command.
pub const SUCCESS: &str = "1000 Success";
/// What `logout` sends before the server closes the connection.
pub const END_OF_SESSION: &str = "9999 END OF SESSION";

/// The errno values VDE's consoles report, with glibc's `strerror` texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    /// EPERM: the testbed refuses (e.g. `shutdown`).
    Perm,
    /// ENOENT: a named object does not exist.
    NoEnt,
    /// EIO: the target failed to apply a valid change.
    Io,
    /// ENXIO: no such port or VLAN (VDE's answer for inactive ports).
    NxIo,
    /// EEXIST: the VLAN already exists.
    Exist,
    /// EINVAL: a malformed or out-of-range argument.
    Inval,
    /// ENOSYS: unknown command.
    NoSys,
    /// EOPNOTSUPP: a VDE feature the emulation cannot provide.
    OpNotSupp,
    /// EADDRINUSE: the VLAN or membership is in use.
    AddrInUse,
}

impl Errno {
    /// The errno number (Linux).
    pub fn code(self) -> u16 {
        match self {
            Errno::Perm => 1,
            Errno::NoEnt => 2,
            Errno::Io => 5,
            Errno::NxIo => 6,
            Errno::Exist => 17,
            Errno::Inval => 22,
            Errno::NoSys => 38,
            Errno::OpNotSupp => 95,
            Errno::AddrInUse => 98,
        }
    }

    /// glibc's `strerror` text, which VDE prints after the code.
    pub fn text(self) -> &'static str {
        match self {
            Errno::Perm => "Operation not permitted",
            Errno::NoEnt => "No such file or directory",
            Errno::Io => "Input/output error",
            Errno::NxIo => "No such device or address",
            Errno::Exist => "File exists",
            Errno::Inval => "Invalid argument",
            Errno::NoSys => "Function not implemented",
            Errno::OpNotSupp => "Operation not supported",
            Errno::AddrInUse => "Address already in use",
        }
    }

    /// The status line, e.g. `1022 Invalid argument`.
    pub fn status_line(self) -> String {
        format!("1{:03} {}", self.code(), self.text())
    }
}

/// A target's refusal or failure: an errno for the status line and, if not
/// empty, a detail sent as a data line before it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{}{detail}", errno.text(), if detail.is_empty() { "" } else { ": " })]
pub struct TargetError {
    /// The status code to report.
    pub errno: Errno,
    /// Free text for the user, e.g. the data plane's error message.
    pub detail: String,
}

impl TargetError {
    /// An error with only a code, as VDE reports its own errors.
    pub fn code(errno: Errno) -> TargetError {
        TargetError { errno, detail: String::new() }
    }

    /// A failure to apply a change, with the data plane's message.
    pub fn failed(detail: impl Into<String>) -> TargetError {
        TargetError { errno: Errno::Io, detail: detail.into() }
    }
}

impl From<netem::ParamsError> for TargetError {
    /// Link parameters a direction refused: an invalid argument, with why.
    fn from(e: netem::ParamsError) -> TargetError {
        TargetError { errno: Errno::Inval, detail: e.to_string() }
    }
}

/// The answer to one command: optional data lines, then a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Data lines, if the command prints a data block (even an empty one).
    pub data: Option<Vec<String>>,
    /// Success, or the errno of the failure.
    pub status: Result<(), Errno>,
}

impl Reply {
    /// `1000 Success` with no data.
    pub fn success() -> Reply {
        Reply { data: None, status: Ok(()) }
    }

    /// An error status with no data.
    pub fn error(errno: Errno) -> Reply {
        Reply { data: None, status: Err(errno) }
    }

    /// A data block followed by `status`.
    pub fn data(lines: Vec<String>, status: Result<(), Errno>) -> Reply {
        Reply { data: Some(lines), status }
    }

    /// A target error: its detail (if any) as a data line, then its code.
    pub fn target_error(error: &TargetError) -> Reply {
        if error.detail.is_empty() {
            Reply::error(error.errno)
        } else {
            Reply::data(error.detail.lines().map(str::to_owned).collect(), Err(error.errno))
        }
    }

    /// The bytes sent on the wire, every line ending in `\n` (no prompt).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(lines) = &self.data {
            out.push_str(DATA_HEADER);
            out.push('\n');
            for line in lines {
                // A lone "." would end the block early; VDE never sends one
                // inside data, and our data never comes from users, but a
                // target's detail text might.
                if line == DATA_END {
                    out.push_str(". ");
                } else {
                    out.push_str(line);
                }
                out.push('\n');
            }
            out.push_str(DATA_END);
            out.push('\n');
        }
        match self.status {
            Ok(()) => out.push_str(SUCCESS),
            Err(errno) => {
                let _ = write!(out, "1{:03} {}", errno.code(), errno.text());
            }
        }
        out.push('\n');
        out
    }
}

/// What one input line produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An empty or comment line: only the prompt follows.
    Nothing,
    /// A reply, then the prompt.
    Reply(Reply),
    /// `logout`: send [`END_OF_SESSION`] and close.
    Logout,
}

impl Outcome {
    /// The bytes sent for this outcome, followed by `prompt` unless it ends
    /// the session.
    pub fn render(&self, prompt: &str) -> String {
        match self {
            Outcome::Nothing => prompt.to_owned(),
            Outcome::Reply(reply) => reply.render() + prompt,
            Outcome::Logout => END_OF_SESSION.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_use_errno_numbers() {
        let lines: Vec<String> = [
            Errno::Perm,
            Errno::NoEnt,
            Errno::Io,
            Errno::NxIo,
            Errno::Exist,
            Errno::Inval,
            Errno::NoSys,
            Errno::OpNotSupp,
            Errno::AddrInUse,
        ]
        .into_iter()
        .map(Errno::status_line)
        .collect();
        expect_test::expect![[r#"
            [
                "1001 Operation not permitted",
                "1002 No such file or directory",
                "1005 Input/output error",
                "1006 No such device or address",
                "1017 File exists",
                "1022 Invalid argument",
                "1038 Function not implemented",
                "1095 Operation not supported",
                "1098 Address already in use",
            ]
        "#]]
        .assert_debug_eq(&lines);
    }

    #[test]
    fn framing_of_data_errors_and_logout() {
        let reply = Reply::data(vec!["a".into(), ".".into()], Err(Errno::NxIo));
        assert_eq!(reply.render(), "0000 DATA END WITH '.'\na\n. \n.\n1006 No such device or address\n");
        assert_eq!(Outcome::Reply(Reply::success()).render("\nvde$ "), "1000 Success\n\nvde$ ");
        assert_eq!(Outcome::Nothing.render("\nvde$ "), "\nvde$ ");
        assert_eq!(Outcome::Logout.render("\nvde$ "), "9999 END OF SESSION");
        let failed = Reply::target_error(&TargetError::failed("tc: no such qdisc"));
        assert_eq!(failed.render(), "0000 DATA END WITH '.'\ntc: no such qdisc\n.\n1005 Input/output error\n");
    }
}
