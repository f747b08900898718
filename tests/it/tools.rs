//! External tools some tests need (tshark, Python `websockets`, root for
//! live capture, `script` for a pseudo-terminal): one rule for all of them.
//! On a developer's machine a missing tool makes the test print `SKIP` and
//! pass; under CI (`CI` set, as CI systems set it, to anything but empty,
//! `0` or `false`) it fails the test, so a broken set-up cannot turn the
//! suite green. `.ci/setup` installs every tool listed here.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// What a test does when a tool it needs is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMissing {
    Skip,
    Fail,
}

/// The rule, from the value of the `CI` variable.
pub fn on_missing(ci: Option<&OsStr>) -> OnMissing {
    match ci.and_then(OsStr::to_str) {
        None => OnMissing::Skip,
        Some(v) if v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false") => OnMissing::Skip,
        Some(_) => OnMissing::Fail,
    }
}

/// Whether `test` can go on: true if `available`; otherwise prints
/// `SKIP test: needs what` and returns false, or under CI panics.
pub fn need(test: &str, what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    match on_missing(std::env::var_os("CI").as_deref()) {
        OnMissing::Skip => {
            eprintln!("SKIP {test}: needs {what}");
            false
        }
        OnMissing::Fail => {
            panic!("{test}: needs {what}, which CI must have (.ci/setup installs it)")
        }
    }
}

/// Whether `program args…` runs and exits 0.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// tshark 4.0 on PATH: the version the expected tshark outputs and the
/// known-bug list (`tests/it/tshark_diff.rs`) were made with.
pub fn tshark_4_0() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("TShark (Wireshark) 4.0.")
        })
}

/// Any tshark on PATH.
pub fn tshark() -> bool {
    runs("tshark", &["--version"])
}

/// python3 with the `websockets` package (a real, independent peer).
pub fn python_websockets() -> bool {
    runs("python3", &["-c", "import websockets"])
}

/// Root (or at least euid 0): live capture needs it.
#[cfg(feature = "live")]
pub fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// util-linux `script`, which runs a command on a pseudo-terminal.
pub fn script() -> bool {
    runs("script", &["--version"])
}

#[test]
fn ci_turns_a_missing_tool_into_a_failure() {
    let v = |s: &str| on_missing(Some(OsStr::new(s)));
    assert_eq!(on_missing(None), OnMissing::Skip);
    assert_eq!(v(""), OnMissing::Skip);
    assert_eq!(v("0"), OnMissing::Skip);
    assert_eq!(v("false"), OnMissing::Skip);
    assert_eq!(v("FALSE"), OnMissing::Skip);
    assert_eq!(v("true"), OnMissing::Fail);
    assert_eq!(v("1"), OnMissing::Fail);
    assert_eq!(v("yes"), OnMissing::Fail);
}

#[test]
fn an_available_tool_never_skips_and_a_missing_one_follows_ci() {
    assert!(need("t", "nothing", true));
    // The missing case with this process's own `CI`: skips (false) outside
    // CI, panics under it.
    let missing = std::panic::catch_unwind(|| need("t", "a tool that is not there", false));
    match on_missing(std::env::var_os("CI").as_deref()) {
        OnMissing::Skip => assert!(matches!(missing, Ok(false))),
        OnMissing::Fail => assert!(missing.is_err()),
    }
}
